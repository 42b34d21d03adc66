package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/caddymcp/caddymcp/migrations"
)

// sqlStore implements Store once for every engine, on top of database.
type sqlStore struct {
	db database
}

// ---- clients ----

const clientCols = `client_id, secret_hash, secret_expires_at, client_name, redirect_uris,
	grant_types, response_types, scope, token_endpoint_auth_method, metadata,
	created_at, updated_at, last_used_at, tls_subject_kind, tls_subject, jwks, tls_bound_tokens`

func (s *sqlStore) CreateClient(ctx context.Context, c *Client) error {
	meta := c.Metadata
	if len(meta) == 0 {
		meta = []byte("{}")
	}
	_, err := s.db.exec(ctx, `INSERT INTO oauth_clients (`+clientCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		c.ID, c.SecretHash, ts(c.SecretExpiresAt), c.Name, jsonList(c.RedirectURIs),
		jsonList(c.GrantTypes), jsonList(c.ResponseTypes), c.Scope, c.TokenEndpointAuthMethod,
		string(meta), ts(c.CreatedAt), ts(c.UpdatedAt), ts(c.LastUsedAt),
		c.TLSSubject.Kind, c.TLSSubject.Value, string(c.JWKS), c.CertificateBoundTokens)
	if err != nil {
		return fmt.Errorf("creating client: %w", err)
	}
	return nil
}

func scanClient(r row, c *Client) error {
	var (
		secretExp, lastUsed      nt
		redirects, grants, resps string
		meta, jwks               string
		createdAt, updatedAt     time.Time
	)
	err := r.Scan(&c.ID, &c.SecretHash, &secretExp.t, &c.Name, &redirects, &grants, &resps,
		&c.Scope, &c.TokenEndpointAuthMethod, &meta, &createdAt, &updatedAt, &lastUsed.t,
		&c.TLSSubject.Kind, &c.TLSSubject.Value, &jwks, &c.CertificateBoundTokens)
	if err != nil {
		return err
	}
	c.SecretExpiresAt, c.LastUsedAt = secretExp.val(), lastUsed.val()
	c.CreatedAt, c.UpdatedAt = createdAt.UTC(), updatedAt.UTC()
	c.Metadata = []byte(meta)
	if jwks != "" {
		c.JWKS = []byte(jwks)
	}
	if c.RedirectURIs, err = parseList(redirects); err != nil {
		return err
	}
	if c.GrantTypes, err = parseList(grants); err != nil {
		return err
	}
	if c.ResponseTypes, err = parseList(resps); err != nil {
		return err
	}
	return nil
}

func (s *sqlStore) GetClient(ctx context.Context, id string) (*Client, error) {
	c, err := scanRow(s.db.queryRow(ctx, `SELECT `+clientCols+` FROM oauth_clients WHERE client_id = $1`, id), scanClient)
	if err != nil {
		return nil, fmt.Errorf("getting client: %w", err)
	}
	return c, nil
}

func (s *sqlStore) TouchClient(ctx context.Context, id string, t time.Time) error {
	n, err := s.db.exec(ctx, `UPDATE oauth_clients SET last_used_at = $2 WHERE client_id = $1`, id, ts(t))
	return affected("touching client", n, err)
}

// deleteClientsWhere removes the clients matched by cond (a condition on
// oauth_clients with $1 as its argument) with their grants, codes and
// consents, in one transaction.
func (s *sqlStore) deleteClientsWhere(ctx context.Context, cond string, arg any) (int64, error) {
	var n int64
	err := s.db.inTx(ctx, false, func(q querier) error {
		sub := `(SELECT client_id FROM oauth_clients WHERE ` + cond + `)`
		// Grants are revoked, not deleted: the revocation of their access
		// tokens must reach every instance's deny-list (which reads
		// revoked rows) before the rows go with the grants' expiry.
		now := ts(time.Now())
		grants := `(SELECT id FROM grants WHERE revoked_at IS NULL AND client_id IN ` + sub + `)`
		for _, table := range []string{"access_tokens", "refresh_tokens"} {
			if _, err := q.exec(ctx, `UPDATE `+table+` SET revoked_at = $2 WHERE revoked_at IS NULL AND grant_id IN `+grants, arg, now); err != nil {
				return err
			}
		}
		if _, err := q.exec(ctx, `UPDATE grants SET revoked_at = $2, updated_at = $2 WHERE revoked_at IS NULL AND client_id IN `+sub, arg, now); err != nil {
			return err
		}
		for _, table := range []string{"authorization_codes", "consents"} {
			if _, err := q.exec(ctx, `DELETE FROM `+table+` WHERE client_id IN `+sub, arg); err != nil {
				return err
			}
		}
		var err error
		n, err = q.exec(ctx, `DELETE FROM oauth_clients WHERE `+cond, arg)
		return err
	})
	return n, err
}

func (s *sqlStore) DeleteClient(ctx context.Context, id string) error {
	n, err := s.deleteClientsWhere(ctx, `client_id = $1`, id)
	return affected("deleting client", n, err)
}

func (s *sqlStore) ListClients(ctx context.Context, afterID string, limit int) ([]Client, error) {
	if limit <= 0 {
		limit = 100
	}
	rs, err := s.db.query(ctx, `SELECT `+clientCols+` FROM oauth_clients WHERE client_id > $1
		ORDER BY client_id LIMIT $2`, afterID, int64(limit))
	if err != nil {
		return nil, fmt.Errorf("listing clients: %w", err)
	}
	list, err := scanRows(rs, scanClient)
	if err != nil {
		return nil, fmt.Errorf("listing clients: %w", err)
	}
	return list, nil
}

func (s *sqlStore) CountClients(ctx context.Context) (int, error) {
	var n int64
	if err := s.db.queryRow(ctx, `SELECT COUNT(*) FROM oauth_clients`).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting clients: %w", err)
	}
	return int(n), nil
}

func (s *sqlStore) DeleteStaleClients(ctx context.Context, before time.Time) (int64, error) {
	n, err := s.deleteClientsWhere(ctx, `COALESCE(last_used_at, created_at) < $1
		AND client_id NOT IN (SELECT client_id FROM grants WHERE revoked_at IS NULL)`, ts(before))
	if err != nil {
		return 0, fmt.Errorf("deleting stale clients: %w", err)
	}
	return n, nil
}

// ---- authorization codes ----

const codeCols = `grant_id, client_id, user_id, redirect_uri, scope, resource,
	code_challenge, code_challenge_method, dpop_jkt, created_at, expires_at, consumed_at`

func (s *sqlStore) CreateCode(ctx context.Context, code string, c *AuthCode) error {
	_, err := s.db.exec(ctx, `INSERT INTO authorization_codes (code_hash, `+codeCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		Hash(code), c.GrantID, c.ClientID, c.UserID, c.RedirectURI, c.Scope, c.Resource,
		c.CodeChallenge, c.CodeChallengeMethod, c.DPoPJKT, ts(c.CreatedAt), ts(c.ExpiresAt), ts(c.ConsumedAt))
	if err != nil {
		return fmt.Errorf("creating authorization code: %w", err)
	}
	return nil
}

func scanCode(r row, c *AuthCode) error {
	var (
		createdAt, expiresAt time.Time
		consumed             nt
	)
	if err := r.Scan(&c.GrantID, &c.ClientID, &c.UserID, &c.RedirectURI, &c.Scope, &c.Resource,
		&c.CodeChallenge, &c.CodeChallengeMethod, &c.DPoPJKT, &createdAt, &expiresAt, &consumed.t); err != nil {
		return err
	}
	c.CreatedAt, c.ExpiresAt, c.ConsumedAt = createdAt.UTC(), expiresAt.UTC(), consumed.val()
	return nil
}

func (s *sqlStore) RedeemCode(ctx context.Context, code string, now time.Time, issue func(*AuthCode) (*Issue, error)) (*AuthCode, error) {
	h := Hash(code)
	var c *AuthCode
	err := s.db.inTx(ctx, false, func(q querier) error {
		var err error
		c, err = scanRow(q.queryRow(ctx, `UPDATE authorization_codes SET consumed_at = $2
			WHERE code_hash = $1 AND consumed_at IS NULL AND expires_at > $2
			RETURNING `+codeCols, h, ts(now)), scanCode)
		if err != nil {
			return err
		}
		out, err := issue(c)
		if err != nil {
			return &callerError{err}
		}
		if out.Grant == nil {
			return errors.New("redeeming a code must create a grant")
		}
		if err := insertGrant(ctx, q, out.Grant); err != nil {
			return err
		}
		return storeIssue(ctx, q, out)
	})
	var ce *callerError
	switch {
	case err == nil:
		return c, nil
	case errors.As(err, &ce):
		return nil, ce.err
	case !errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("redeeming authorization code: %w", err)
	}
	c, err = scanRow(s.db.queryRow(ctx, `SELECT `+codeCols+` FROM authorization_codes WHERE code_hash = $1`, h), scanCode)
	switch {
	case err != nil:
		return nil, fmt.Errorf("redeeming authorization code: %w", err)
	case !c.ConsumedAt.IsZero():
		return c, fmt.Errorf("redeeming authorization code: %w", ErrAlreadyUsed)
	default: // expired
		return nil, fmt.Errorf("redeeming authorization code: %w", ErrNotFound)
	}
}

// callerError carries an error of a caller's callback out of a
// transaction unchanged.
type callerError struct{ err error }

func (e *callerError) Error() string { return e.err.Error() }

// storeIssue stores the access-token record and the refresh token of an
// issue.
func storeIssue(ctx context.Context, q querier, out *Issue) error {
	if out.Access != nil {
		if err := insertAccess(ctx, q, out.Access); err != nil {
			return err
		}
	}
	if out.Refreshed != nil {
		if err := insertRefresh(ctx, q, out.Refresh, out.Refreshed); err != nil {
			return err
		}
	}
	return nil
}

// ---- pending authorization requests ----

const authRequestCols = `client_id, user_id, csrf_hash, params, created_at, expires_at, consumed_at`

func (s *sqlStore) CreateAuthRequest(ctx context.Context, id string, r *AuthRequest) error {
	params := r.Params
	if len(params) == 0 {
		params = []byte("{}")
	}
	_, err := s.db.exec(ctx, `INSERT INTO auth_requests (id_hash, `+authRequestCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		Hash(id), r.ClientID, r.UserID, r.CSRFHash, string(params), ts(r.CreatedAt), ts(r.ExpiresAt), ts(r.ConsumedAt))
	if err != nil {
		return fmt.Errorf("creating authorization request: %w", err)
	}
	return nil
}

func scanAuthRequest(r row, a *AuthRequest) error {
	var (
		params               string
		createdAt, expiresAt time.Time
		consumed             nt
	)
	if err := r.Scan(&a.ClientID, &a.UserID, &a.CSRFHash, &params, &createdAt, &expiresAt, &consumed.t); err != nil {
		return err
	}
	a.Params = []byte(params)
	a.CreatedAt, a.ExpiresAt, a.ConsumedAt = createdAt.UTC(), expiresAt.UTC(), consumed.val()
	return nil
}

func (s *sqlStore) ConsumeAuthRequest(ctx context.Context, id string, now time.Time) (*AuthRequest, error) {
	h := Hash(id)
	a, err := scanRow(s.db.queryRow(ctx, `UPDATE auth_requests SET consumed_at = $2
		WHERE id_hash = $1 AND consumed_at IS NULL AND expires_at > $2 RETURNING `+authRequestCols, h, ts(now)), scanAuthRequest)
	if err == nil {
		return a, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("consuming authorization request: %w", err)
	}
	a, err = scanRow(s.db.queryRow(ctx, `SELECT `+authRequestCols+` FROM auth_requests WHERE id_hash = $1`, h), scanAuthRequest)
	switch {
	case err != nil:
		return nil, fmt.Errorf("consuming authorization request: %w", err)
	case !a.ConsumedAt.IsZero():
		return a, fmt.Errorf("consuming authorization request: %w", ErrAlreadyUsed)
	default:
		return nil, fmt.Errorf("consuming authorization request: %w", ErrNotFound)
	}
}

// ---- grants and tokens ----

const grantCols = `id, client_id, user_id, scope, resource, created_at, updated_at, expires_at, revoked_at`

func (s *sqlStore) CreateGrant(ctx context.Context, g *Grant) error {
	if err := insertGrant(ctx, s.db, g); err != nil {
		return fmt.Errorf("creating grant: %w", err)
	}
	return nil
}

func insertGrant(ctx context.Context, q querier, g *Grant) error {
	_, err := q.exec(ctx, `INSERT INTO grants (`+grantCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		g.ID, g.ClientID, g.UserID, g.Scope, g.Resource, ts(g.CreatedAt), ts(g.UpdatedAt), ts(g.ExpiresAt), ts(g.RevokedAt))
	return err
}

func scanGrant(r row, g *Grant) error {
	var (
		createdAt, updatedAt, expiresAt time.Time
		revoked                         nt
	)
	if err := r.Scan(&g.ID, &g.ClientID, &g.UserID, &g.Scope, &g.Resource, &createdAt, &updatedAt, &expiresAt, &revoked.t); err != nil {
		return err
	}
	g.CreatedAt, g.UpdatedAt, g.ExpiresAt, g.RevokedAt = createdAt.UTC(), updatedAt.UTC(), expiresAt.UTC(), revoked.val()
	return nil
}

func (s *sqlStore) GetGrant(ctx context.Context, id string) (*Grant, error) {
	g, err := scanRow(s.db.queryRow(ctx, `SELECT `+grantCols+` FROM grants WHERE id = $1`, id), scanGrant)
	if err != nil {
		return nil, fmt.Errorf("getting grant: %w", err)
	}
	return g, nil
}

func (s *sqlStore) ListGrantsByUser(ctx context.Context, userID string, now time.Time) ([]Grant, error) {
	rs, err := s.db.query(ctx, `SELECT `+grantCols+` FROM grants
		WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 ORDER BY created_at DESC, id`, userID, ts(now))
	if err != nil {
		return nil, fmt.Errorf("listing grants: %w", err)
	}
	list, err := scanRows(rs, scanGrant)
	if err != nil {
		return nil, fmt.Errorf("listing grants: %w", err)
	}
	return list, nil
}

func (s *sqlStore) RevokeGrant(ctx context.Context, id string, now time.Time) error {
	err := s.db.inTx(ctx, false, func(q querier) error { return revokeGrant(ctx, q, id, now) })
	if err != nil {
		return fmt.Errorf("revoking grant: %w", err)
	}
	return nil
}

// revokeGrant revokes a grant and all its tokens within a transaction.
// Revoking an already revoked grant succeeds.
func revokeGrant(ctx context.Context, q querier, id string, now time.Time) error {
	n, err := q.exec(ctx, `UPDATE grants SET revoked_at = $2, updated_at = $2 WHERE id = $1 AND revoked_at IS NULL`, id, ts(now))
	if err != nil {
		return err
	}
	if n == 0 {
		var one int64
		if err := q.queryRow(ctx, `SELECT 1 FROM grants WHERE id = $1`, id).Scan(&one); err != nil {
			return err
		}
	}
	for _, table := range []string{"access_tokens", "refresh_tokens"} {
		if _, err := q.exec(ctx, `UPDATE `+table+` SET revoked_at = $2 WHERE grant_id = $1 AND revoked_at IS NULL`, id, ts(now)); err != nil {
			return err
		}
	}
	return nil
}

func (s *sqlStore) RecordAccessToken(ctx context.Context, t *AccessToken) error {
	if err := insertAccess(ctx, s.db, t); err != nil {
		return fmt.Errorf("recording access token: %w", err)
	}
	return nil
}

func insertAccess(ctx context.Context, q querier, t *AccessToken) error {
	_, err := q.exec(ctx, `INSERT INTO access_tokens
		(jti, grant_id, client_id, user_id, scope, resource, created_at, expires_at, revoked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		t.JTI, t.GrantID, t.ClientID, t.UserID, t.Scope, t.Resource, ts(t.CreatedAt), ts(t.ExpiresAt), ts(t.RevokedAt))
	return err
}

func (s *sqlStore) AccessTokenActive(ctx context.Context, jti string, now time.Time) (bool, error) {
	var one int64
	err := s.db.queryRow(ctx, `SELECT 1 FROM access_tokens a JOIN grants g ON g.id = a.grant_id
		WHERE a.jti = $1 AND a.revoked_at IS NULL AND g.revoked_at IS NULL AND a.expires_at > $2`, jti, ts(now)).Scan(&one)
	switch {
	case errors.Is(err, ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("checking access token: %w", err)
	}
	return true, nil
}

func (s *sqlStore) RevokeAccessToken(ctx context.Context, jti string, now time.Time) error {
	n, err := s.db.exec(ctx, `UPDATE access_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE jti = $1`, jti, ts(now))
	return affected("revoking access token", n, err)
}

func (s *sqlStore) RevokedAccessTokens(ctx context.Context, since, now time.Time) ([]RevokedToken, error) {
	rs, err := s.db.query(ctx, `SELECT jti, expires_at, revoked_at FROM access_tokens
		WHERE revoked_at IS NOT NULL AND revoked_at >= $1 AND expires_at > $2 ORDER BY revoked_at`, ts(since), ts(now))
	if err != nil {
		return nil, fmt.Errorf("listing revoked access tokens: %w", err)
	}
	list, err := scanRows(rs, func(r row, t *RevokedToken) error {
		if err := r.Scan(&t.JTI, &t.ExpiresAt, &t.RevokedAt); err != nil {
			return err
		}
		t.ExpiresAt, t.RevokedAt = t.ExpiresAt.UTC(), t.RevokedAt.UTC()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing revoked access tokens: %w", err)
	}
	return list, nil
}

const refreshCols = `grant_id, client_id, user_id, scope, resource, dpop_jkt, cert_thumbprint,
	created_at, expires_at, rotated_at, revoked_at, successor`

func (s *sqlStore) CreateRefreshToken(ctx context.Context, token string, t *RefreshToken) error {
	if err := insertRefresh(ctx, s.db, token, t); err != nil {
		return fmt.Errorf("creating refresh token: %w", err)
	}
	return nil
}

func insertRefresh(ctx context.Context, q querier, token string, t *RefreshToken) error {
	_, err := q.exec(ctx, `INSERT INTO refresh_tokens (token_hash, `+refreshCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		Hash(token), t.GrantID, t.ClientID, t.UserID, t.Scope, t.Resource, t.DPoPJKT, t.CertThumbprint,
		ts(t.CreatedAt), ts(t.ExpiresAt), ts(t.RotatedAt), ts(t.RevokedAt), t.Successor)
	return err
}

func scanRefresh(r row, t *RefreshToken) error {
	var (
		createdAt, expiresAt time.Time
		rotated, revoked     nt
	)
	if err := r.Scan(&t.GrantID, &t.ClientID, &t.UserID, &t.Scope, &t.Resource, &t.DPoPJKT, &t.CertThumbprint,
		&createdAt, &expiresAt, &rotated.t, &revoked.t, &t.Successor); err != nil {
		return err
	}
	t.CreatedAt, t.ExpiresAt, t.RotatedAt, t.RevokedAt = createdAt.UTC(), expiresAt.UTC(), rotated.val(), revoked.val()
	return nil
}

// activeRefresh is the condition for a usable refresh token at $2.
const activeRefresh = `revoked_at IS NULL AND expires_at > $2
	AND EXISTS (SELECT 1 FROM grants g WHERE g.id = refresh_tokens.grant_id AND g.revoked_at IS NULL)`

func (s *sqlStore) GetRefreshToken(ctx context.Context, token string, now time.Time) (*RefreshToken, error) {
	t, err := scanRow(s.db.queryRow(ctx, `SELECT `+refreshCols+` FROM refresh_tokens
		WHERE token_hash = $1 AND rotated_at IS NULL AND `+activeRefresh, Hash(token), ts(now)), scanRefresh)
	if err != nil {
		return nil, fmt.Errorf("getting refresh token: %w", err)
	}
	return t, nil
}

func (s *sqlStore) RefreshGrant(ctx context.Context, token string, now time.Time, issue func(*RefreshToken, *Grant) (*Issue, error)) (*RefreshToken, error) {
	h := Hash(token)
	var prev *RefreshToken
	err := s.db.inTx(ctx, false, func(q querier) error {
		var err error
		prev, err = scanRow(q.queryRow(ctx, `UPDATE refresh_tokens SET rotated_at = $2
			WHERE token_hash = $1 AND rotated_at IS NULL AND `+activeRefresh+`
			RETURNING `+refreshCols, h, ts(now)), scanRefresh)
		if err != nil {
			return err
		}
		g, err := scanRow(q.queryRow(ctx, `SELECT `+grantCols+` FROM grants WHERE id = $1`, prev.GrantID), scanGrant)
		if err != nil {
			return err
		}
		out, err := issue(prev, g)
		if err != nil {
			return &callerError{err}
		}
		if out.Refreshed != nil {
			n := *out.Refreshed
			n.GrantID, n.ClientID, n.UserID = prev.GrantID, prev.ClientID, prev.UserID
			out.Refreshed = &n
		}
		if out.Access != nil {
			out.Access.GrantID = prev.GrantID
		}
		if err := storeIssue(ctx, q, out); err != nil {
			return err
		}
		_, err = q.exec(ctx, `UPDATE refresh_tokens SET successor = $2 WHERE token_hash = $1`, h, out.Sealed)
		if err != nil {
			return err
		}
		// The grant lives as long as the newest of its tokens.
		var until time.Time
		if out.Refreshed != nil {
			until = out.Refreshed.ExpiresAt
		}
		if out.Access != nil && out.Access.ExpiresAt.After(until) {
			until = out.Access.ExpiresAt
		}
		if !until.IsZero() {
			_, err = q.exec(ctx, `UPDATE grants SET updated_at = $2,
				expires_at = CASE WHEN expires_at < $3 THEN $3 ELSE expires_at END WHERE id = $1`,
				prev.GrantID, ts(now), ts(until))
		}
		return err
	})
	var ce *callerError
	switch {
	case err == nil:
		return prev, nil
	case errors.As(err, &ce):
		return nil, ce.err
	case !errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("refreshing grant: %w", err)
	}
	// Tell a replay of an already rotated token from an unknown one.
	t, err := scanRow(s.db.queryRow(ctx, `SELECT `+refreshCols+` FROM refresh_tokens
		WHERE token_hash = $1 AND rotated_at IS NOT NULL AND revoked_at IS NULL
		AND EXISTS (SELECT 1 FROM grants g WHERE g.id = refresh_tokens.grant_id AND g.revoked_at IS NULL)`, h), scanRefresh)
	if err != nil {
		return nil, fmt.Errorf("refreshing grant: %w", err)
	}
	return t, fmt.Errorf("refreshing grant: %w", ErrAlreadyUsed)
}

func (s *sqlStore) RevokeRefreshToken(ctx context.Context, token string, now time.Time) error {
	err := s.db.inTx(ctx, false, func(q querier) error {
		var grantID string
		if err := q.queryRow(ctx, `SELECT grant_id FROM refresh_tokens WHERE token_hash = $1`, Hash(token)).Scan(&grantID); err != nil {
			return err
		}
		return revokeGrant(ctx, q, grantID, now)
	})
	if err != nil {
		return fmt.Errorf("revoking refresh token: %w", err)
	}
	return nil
}

// ---- users ----

const userCols = `id, provider, subject, email, email_verified, name, picture, hosted_domain,
	created_at, updated_at, last_login_at`

func scanUser(r row, u *User) error {
	var (
		createdAt, updatedAt time.Time
		lastLogin            nt
	)
	if err := r.Scan(&u.ID, &u.Provider, &u.Subject, &u.Email, &u.EmailVerified, &u.Name, &u.Picture,
		&u.HostedDomain, &createdAt, &updatedAt, &lastLogin.t); err != nil {
		return err
	}
	u.CreatedAt, u.UpdatedAt, u.LastLoginAt = createdAt.UTC(), updatedAt.UTC(), lastLogin.val()
	return nil
}

func (s *sqlStore) UpsertUser(ctx context.Context, u *User) (*User, error) {
	out, err := scanRow(s.db.queryRow(ctx, `INSERT INTO users (`+userCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (provider, subject) DO UPDATE SET
			email = excluded.email, email_verified = excluded.email_verified, name = excluded.name,
			picture = excluded.picture, hosted_domain = excluded.hosted_domain,
			updated_at = excluded.updated_at, last_login_at = excluded.last_login_at
		RETURNING `+userCols,
		u.ID, u.Provider, u.Subject, u.Email, u.EmailVerified, u.Name, u.Picture, u.HostedDomain,
		ts(u.CreatedAt), ts(u.UpdatedAt), ts(u.LastLoginAt)), scanUser)
	if err != nil {
		return nil, fmt.Errorf("upserting user: %w", err)
	}
	return out, nil
}

func (s *sqlStore) GetUser(ctx context.Context, id string) (*User, error) {
	u, err := scanRow(s.db.queryRow(ctx, `SELECT `+userCols+` FROM users WHERE id = $1`, id), scanUser)
	if err != nil {
		return nil, fmt.Errorf("getting user: %w", err)
	}
	return u, nil
}

// ---- sessions ----

const sessionCols = `id_hash, user_id, user_agent, remote_addr, created_at, last_seen_at, idle_expires_at, expires_at`

func scanSession(r row, s *Session) error {
	var created, lastSeen, idleExp, absolute time.Time
	if err := r.Scan(&s.IDHash, &s.UserID, &s.UserAgent, &s.RemoteAddr, &created, &lastSeen, &idleExp, &absolute); err != nil {
		return err
	}
	s.CreatedAt, s.LastSeenAt, s.IdleExpiresAt, s.ExpiresAt = created.UTC(), lastSeen.UTC(), idleExp.UTC(), absolute.UTC()
	return nil
}

func (s *sqlStore) CreateSession(ctx context.Context, id string, se *Session) error {
	_, err := s.db.exec(ctx, `INSERT INTO sessions (`+sessionCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		Hash(id), se.UserID, se.UserAgent, se.RemoteAddr, ts(se.CreatedAt), ts(se.LastSeenAt), ts(se.IdleExpiresAt), ts(se.ExpiresAt))
	if err != nil {
		return fmt.Errorf("creating session: %w", err)
	}
	return nil
}

func (s *sqlStore) GetSession(ctx context.Context, id string, now time.Time) (*Session, error) {
	se, err := scanRow(s.db.queryRow(ctx, `SELECT `+sessionCols+` FROM sessions
		WHERE id_hash = $1 AND idle_expires_at > $2 AND expires_at > $2`, Hash(id), ts(now)), scanSession)
	if err != nil {
		return nil, fmt.Errorf("getting session: %w", err)
	}
	return se, nil
}

func (s *sqlStore) TouchSession(ctx context.Context, id string, now, idleUntil time.Time) error {
	n, err := s.db.exec(ctx, `UPDATE sessions SET last_seen_at = $2,
		idle_expires_at = CASE WHEN $3 < expires_at THEN $3 ELSE expires_at END
		WHERE id_hash = $1`, Hash(id), ts(now), ts(idleUntil))
	return affected("touching session", n, err)
}

func (s *sqlStore) DeleteSession(ctx context.Context, id string) error {
	return s.DeleteSessionByHash(ctx, Hash(id))
}

func (s *sqlStore) DeleteSessionByHash(ctx context.Context, idHash []byte) error {
	n, err := s.db.exec(ctx, `DELETE FROM sessions WHERE id_hash = $1`, idHash)
	return affected("deleting session", n, err)
}

func (s *sqlStore) ListSessionsByUser(ctx context.Context, userID string, now time.Time) ([]Session, error) {
	rs, err := s.db.query(ctx, `SELECT `+sessionCols+` FROM sessions
		WHERE user_id = $1 AND idle_expires_at > $2 AND expires_at > $2 ORDER BY created_at DESC`, userID, ts(now))
	if err != nil {
		return nil, fmt.Errorf("listing sessions: %w", err)
	}
	list, err := scanRows(rs, scanSession)
	if err != nil {
		return nil, fmt.Errorf("listing sessions: %w", err)
	}
	return list, nil
}

func (s *sqlStore) DeleteSessionsByUser(ctx context.Context, userID string) (int64, error) {
	n, err := s.db.exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID)
	if err != nil {
		return 0, fmt.Errorf("deleting sessions: %w", err)
	}
	return n, nil
}

// ---- consents ----

func scanConsent(r row, c *Consent) error {
	var created, updated time.Time
	if err := r.Scan(&c.UserID, &c.ClientID, &c.Scope, &c.RedirectURI, &c.Resource, &created, &updated); err != nil {
		return err
	}
	c.CreatedAt, c.UpdatedAt = created.UTC(), updated.UTC()
	return nil
}

func (s *sqlStore) SaveConsent(ctx context.Context, c *Consent) error {
	_, err := s.db.exec(ctx, `INSERT INTO consents (user_id, client_id, scope, redirect_uri, resource, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, redirect_uri = excluded.redirect_uri,
			resource = excluded.resource, updated_at = excluded.updated_at`,
		c.UserID, c.ClientID, c.Scope, c.RedirectURI, c.Resource, ts(c.CreatedAt), ts(c.UpdatedAt))
	if err != nil {
		return fmt.Errorf("saving consent: %w", err)
	}
	return nil
}

func (s *sqlStore) GetConsent(ctx context.Context, userID, clientID string) (*Consent, error) {
	c, err := scanRow(s.db.queryRow(ctx, `SELECT user_id, client_id, scope, redirect_uri, resource, created_at, updated_at
		FROM consents WHERE user_id = $1 AND client_id = $2`, userID, clientID), scanConsent)
	if err != nil {
		return nil, fmt.Errorf("getting consent: %w", err)
	}
	return c, nil
}

func (s *sqlStore) ListConsentsByUser(ctx context.Context, userID string) ([]Consent, error) {
	rs, err := s.db.query(ctx, `SELECT user_id, client_id, scope, redirect_uri, resource, created_at, updated_at
		FROM consents WHERE user_id = $1 ORDER BY client_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("listing consents: %w", err)
	}
	list, err := scanRows(rs, scanConsent)
	if err != nil {
		return nil, fmt.Errorf("listing consents: %w", err)
	}
	return list, nil
}

func (s *sqlStore) DeleteConsent(ctx context.Context, userID, clientID string) error {
	n, err := s.db.exec(ctx, `DELETE FROM consents WHERE user_id = $1 AND client_id = $2`, userID, clientID)
	return affected("deleting consent", n, err)
}

// ---- signing keys ----

const keyCols = `kid, algorithm, private_key, created_at, retired_at`

func scanKey(r row, k *SigningKey) error {
	var (
		created time.Time
		retired nt
	)
	if err := r.Scan(&k.ID, &k.Algorithm, &k.PrivateKey, &created, &retired.t); err != nil {
		return err
	}
	k.CreatedAt, k.RetiredAt = created.UTC(), retired.val()
	return nil
}

func (s *sqlStore) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	rs, err := s.db.query(ctx, `SELECT `+keyCols+` FROM signing_keys ORDER BY created_at DESC, kid`)
	if err != nil {
		return nil, fmt.Errorf("listing signing keys: %w", err)
	}
	list, err := scanRows(rs, scanKey)
	if err != nil {
		return nil, fmt.Errorf("listing signing keys: %w", err)
	}
	return list, nil
}

func (s *sqlStore) EnsureSigningKey(ctx context.Context, generate func() (*SigningKey, error)) (*SigningKey, error) {
	var key *SigningKey
	err := s.db.inTx(ctx, true, func(q querier) error {
		var err error
		key, err = scanRow(q.queryRow(ctx, `SELECT `+keyCols+` FROM signing_keys
			WHERE retired_at IS NULL ORDER BY created_at DESC, kid LIMIT 1`), scanKey)
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		if key, err = generate(); err != nil {
			return fmt.Errorf("generating signing key: %w", err)
		}
		return insertKey(ctx, q, key)
	})
	if err != nil {
		return nil, fmt.Errorf("ensuring signing key: %w", err)
	}
	return key, nil
}

func insertKey(ctx context.Context, q querier, k *SigningKey) error {
	_, err := q.exec(ctx, `INSERT INTO signing_keys (`+keyCols+`) VALUES ($1, $2, $3, $4, $5)`,
		k.ID, k.Algorithm, k.PrivateKey, ts(k.CreatedAt), ts(k.RetiredAt))
	return err
}

func (s *sqlStore) RotateSigningKey(ctx context.Context, olderThan time.Time, generate func() (*SigningKey, error)) (bool, error) {
	rotated := false
	err := s.db.inTx(ctx, true, func(q querier) error {
		var newest time.Time
		err := q.queryRow(ctx, `SELECT created_at FROM signing_keys WHERE retired_at IS NULL
			ORDER BY created_at DESC LIMIT 1`).Scan(&newest)
		switch {
		case err == nil && !newest.Before(olderThan):
			return nil
		case err != nil && !errors.Is(err, ErrNotFound):
			return err
		}
		key, err := generate()
		if err != nil {
			return fmt.Errorf("generating signing key: %w", err)
		}
		if err := insertKey(ctx, q, key); err != nil {
			return err
		}
		if _, err := q.exec(ctx, `UPDATE signing_keys SET retired_at = $2 WHERE retired_at IS NULL AND kid <> $1`,
			key.ID, ts(key.CreatedAt)); err != nil {
			return err
		}
		rotated = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("rotating signing keys: %w", err)
	}
	return rotated, nil
}

func (s *sqlStore) AddSigningKey(ctx context.Context, k *SigningKey) error {
	if err := insertKey(ctx, s.db, k); err != nil {
		return fmt.Errorf("adding signing key: %w", err)
	}
	return nil
}

func (s *sqlStore) RetireSigningKey(ctx context.Context, id string, now time.Time) error {
	// The earlier of the two: retiring never postpones a retirement.
	n, err := s.db.exec(ctx, `UPDATE signing_keys SET retired_at = CASE WHEN retired_at IS NULL OR retired_at > $2 THEN $2 ELSE retired_at END
		WHERE kid = $1`, id, ts(now))
	return affected("retiring signing key", n, err)
}

// ---- shared secrets ----

func (s *sqlStore) EnsureSecret(ctx context.Context, name string, now time.Time, generate func() ([]byte, error)) ([]byte, error) {
	read := func() ([]byte, error) {
		var secret []byte
		err := s.db.queryRow(ctx, `SELECT secret FROM server_secrets WHERE name = $1`, name).Scan(&secret)
		return secret, err
	}
	secret, err := read()
	if !errors.Is(err, ErrNotFound) {
		if err != nil {
			return nil, fmt.Errorf("reading secret %s: %w", name, err)
		}
		return secret, nil
	}
	fresh, err := generate()
	if err != nil {
		return nil, fmt.Errorf("generating secret %s: %w", name, err)
	}
	// Of concurrent creators the first insert wins; everyone reads it.
	if _, err := s.db.exec(ctx, `INSERT INTO server_secrets (name, secret, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO NOTHING`, name, fresh, ts(now)); err != nil {
		return nil, fmt.Errorf("storing secret %s: %w", name, err)
	}
	if secret, err = read(); err != nil {
		return nil, fmt.Errorf("reading secret %s: %w", name, err)
	}
	return secret, nil
}

// ---- maintenance ----

// sweepBatch bounds the rows one statement of DeleteExpired deletes, so
// that a sweep never holds locks for long, whatever the backlog.
const sweepBatch = 500

func (s *sqlStore) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	// Each batch commits on its own: no long transaction, and a sweep cut
	// short by its timeout keeps what it deleted.
	row := "ctid"
	if s.db.dialect() == "sqlite" {
		row = "rowid"
	}
	var total int64
	for _, t := range []struct{ table, cond string }{
		{"authorization_codes", "expires_at <= $1"},
		{"auth_requests", "expires_at <= $1"},
		{"access_tokens", "expires_at <= $1"},
		{"refresh_tokens", "expires_at <= $1"},
		{"grants", "expires_at <= $1"},
		{"sessions", "expires_at <= $1"},
		{"sessions", "idle_expires_at <= $1"},
	} {
		stmt := `DELETE FROM ` + t.table + ` WHERE ` + row + ` IN (SELECT ` + row + ` FROM ` + t.table +
			` WHERE ` + t.cond + ` LIMIT ` + strconv.Itoa(sweepBatch) + `)`
		for {
			n, err := s.db.exec(ctx, stmt, ts(now))
			if err != nil {
				return total, fmt.Errorf("deleting expired rows of %s: %w", t.table, err)
			}
			total += n
			if n < sweepBatch {
				break
			}
		}
	}
	return total, nil
}

func (s *sqlStore) Ping(ctx context.Context) error { return s.db.ping(ctx) }

func (s *sqlStore) Close() { s.db.close() }

// ---- migrations ----

func (s *sqlStore) SchemaVersion(ctx context.Context) (int, error) {
	ok, err := s.db.tableExists(ctx, "schema_migrations")
	if err != nil || !ok {
		return 0, err
	}
	var v int64
	if err := s.db.queryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("reading schema version: %w", err)
	}
	return int(v), nil
}

// Migrate applies each pending migration in its own exclusive
// transaction, which re-reads the version first, so concurrent callers
// (also in other processes) apply every migration exactly once.
func (s *sqlStore) Migrate(ctx context.Context) (int, error) {
	all, err := migrations.List(s.db.dialect())
	if err != nil {
		return 0, err
	}
	tsType := "TIMESTAMP"
	if s.db.dialect() == "postgres" {
		tsType = "TIMESTAMPTZ"
	}
	version := 0
	for {
		applied := false
		err := s.db.inTx(ctx, true, func(q querier) error {
			if _, err := q.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
				version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at `+tsType+` NOT NULL)`); err != nil {
				return err
			}
			var v int64
			if err := q.queryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
				return err
			}
			version = int(v)
			if version > len(all) {
				return fmt.Errorf("database schema version %d is newer than this build knows (%d): upgrade caddymcp", version, len(all))
			}
			if version == len(all) {
				return nil
			}
			m := all[version]
			if _, err := q.exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("applying migration %04d_%s: %w", m.Version, m.Name, err)
			}
			if _, err := q.exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				int64(m.Version), m.Name, ts(time.Now())); err != nil {
				return err
			}
			version, applied = m.Version, true
			return nil
		})
		if err != nil {
			return version, fmt.Errorf("migrating schema: %w", err)
		}
		if !applied {
			return version, nil
		}
	}
}

// ---- helpers ----

// affected turns "no row changed" into ErrNotFound.
func affected(what string, n int64, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}
