// SQL of OAuth clients (dynamic registration, RFC 7591): creation,
// lookup, listing, and deletion with everything issued to them.

package store

import (
	"context"
	"fmt"
	"time"
)

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
	c, err := queryOne(ctx, s.db, scanClient, `SELECT `+clientCols+` FROM oauth_clients WHERE client_id = $1`, id)
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
	list, err := queryAll(ctx, s.db, scanClient, `SELECT `+clientCols+` FROM oauth_clients WHERE client_id > $1
		ORDER BY client_id LIMIT $2`, afterID, int64(limit))
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

// unusedClient is the condition of a client never used that holds no
// unrevoked grant.
const unusedClient = `last_used_at IS NULL
	AND client_id NOT IN (SELECT client_id FROM grants WHERE revoked_at IS NULL)`

func (s *sqlStore) DeleteUnusedClients(ctx context.Context, before time.Time) (int64, error) {
	n, err := s.deleteClientsWhere(ctx, `created_at < $1 AND `+unusedClient, ts(before))
	if err != nil {
		return 0, fmt.Errorf("deleting unused clients: %w", err)
	}
	return n, nil
}

func (s *sqlStore) EvictUnusedClient(ctx context.Context) (string, error) {
	// The candidate is chosen first and deleted only if it is still
	// unused: a client used meanwhile, or evicted by a concurrent call,
	// makes way for the next candidate.
	for range 3 {
		var id string
		err := s.db.queryRow(ctx, `SELECT client_id FROM oauth_clients WHERE `+unusedClient+`
			ORDER BY created_at, client_id LIMIT 1`).Scan(&id)
		if err != nil {
			return "", fmt.Errorf("evicting an unused client: %w", err)
		}
		n, err := s.deleteClientsWhere(ctx, `client_id = $1 AND `+unusedClient, id)
		if err != nil {
			return "", fmt.Errorf("evicting an unused client: %w", err)
		}
		if n == 1 {
			return id, nil
		}
	}
	return "", fmt.Errorf("evicting an unused client: %w", ErrNotFound)
}
