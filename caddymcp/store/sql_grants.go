// SQL of grants and the tokens issued under them: access-token records
// (for revocation and the deny-list) and refresh tokens with their
// rotation.

package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

const grantCols = `id, client_id, user_id, scope, resource, redirect_uri, created_at, updated_at, expires_at, revoked_at`

func (s *sqlStore) CreateGrant(ctx context.Context, g *Grant) error {
	if err := insertGrant(ctx, s.db, g); err != nil {
		return fmt.Errorf("creating grant: %w", err)
	}
	return nil
}

func insertGrant(ctx context.Context, q querier, g *Grant) error {
	_, err := q.exec(ctx, `INSERT INTO grants (`+grantCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		g.ID, g.ClientID, g.UserID, g.Scope, g.Resource, g.RedirectURI, ts(g.CreatedAt), ts(g.UpdatedAt), ts(g.ExpiresAt), ts(g.RevokedAt))
	return err
}

func scanGrant(r row, g *Grant) error {
	var (
		createdAt, updatedAt, expiresAt time.Time
		revoked                         nt
	)
	if err := r.Scan(&g.ID, &g.ClientID, &g.UserID, &g.Scope, &g.Resource, &g.RedirectURI,
		&createdAt, &updatedAt, &expiresAt, &revoked.t); err != nil {
		return err
	}
	g.CreatedAt, g.UpdatedAt, g.ExpiresAt, g.RevokedAt = createdAt.UTC(), updatedAt.UTC(), expiresAt.UTC(), revoked.val()
	return nil
}

func (s *sqlStore) GetGrant(ctx context.Context, id string) (*Grant, error) {
	g, err := queryOne(ctx, s.db, scanGrant, `SELECT `+grantCols+` FROM grants WHERE id = $1`, id)
	if err != nil {
		return nil, fmt.Errorf("getting grant: %w", err)
	}
	return g, nil
}

func (s *sqlStore) ListGrantsByUser(ctx context.Context, userID string, now time.Time) ([]Grant, error) {
	list, err := queryAll(ctx, s.db, scanGrant, `SELECT `+grantCols+` FROM grants
		WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 ORDER BY created_at DESC, id`, userID, ts(now))
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
	return revokeTokens(ctx, q, id, now)
}

// revokeTokens revokes the access and refresh tokens of a grant that are
// not revoked yet.
func revokeTokens(ctx context.Context, q querier, id string, now time.Time) error {
	for _, table := range []string{"access_tokens", "refresh_tokens"} {
		if _, err := q.exec(ctx, `UPDATE `+table+` SET revoked_at = $2 WHERE grant_id = $1 AND revoked_at IS NULL`, id, ts(now)); err != nil {
			return err
		}
	}
	return nil
}

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

// ---- access tokens ----

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

func scanRevoked(r row, t *RevokedToken) error {
	if err := r.Scan(&t.JTI, &t.ExpiresAt, &t.RevokedAt); err != nil {
		return err
	}
	t.ExpiresAt, t.RevokedAt = t.ExpiresAt.UTC(), t.RevokedAt.UTC()
	return nil
}

func (s *sqlStore) RevokedAccessTokens(ctx context.Context, since, now time.Time) ([]RevokedToken, error) {
	list, err := queryAll(ctx, s.db, scanRevoked, `SELECT jti, expires_at, revoked_at FROM access_tokens
		WHERE revoked_at IS NOT NULL AND revoked_at >= $1 AND expires_at > $2 ORDER BY revoked_at`, ts(since), ts(now))
	if err != nil {
		return nil, fmt.Errorf("listing revoked access tokens: %w", err)
	}
	return list, nil
}

// ---- refresh tokens ----

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
	t, err := queryOne(ctx, s.db, scanRefresh, `SELECT `+refreshCols+` FROM refresh_tokens
		WHERE token_hash = $1 AND rotated_at IS NULL AND `+activeRefresh, Hash(token), ts(now))
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
		prev, err = queryOne(ctx, q, scanRefresh, `UPDATE refresh_tokens SET rotated_at = $2
			WHERE token_hash = $1 AND rotated_at IS NULL AND `+activeRefresh+`
			RETURNING `+refreshCols, h, ts(now))
		if err != nil {
			return err
		}
		g, err := queryOne(ctx, q, scanGrant, `SELECT `+grantCols+` FROM grants WHERE id = $1`, prev.GrantID)
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
	switch {
	case err == nil:
		return prev, nil
	case !errors.Is(err, ErrNotFound): // a callerError never is
		return nil, txError("refreshing grant", err)
	}
	// Tell a replay of an already rotated token from an unknown one.
	t, err := queryOne(ctx, s.db, scanRefresh, `SELECT `+refreshCols+` FROM refresh_tokens
		WHERE token_hash = $1 AND rotated_at IS NOT NULL AND revoked_at IS NULL
		AND EXISTS (SELECT 1 FROM grants g WHERE g.id = refresh_tokens.grant_id AND g.revoked_at IS NULL)`, h)
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
