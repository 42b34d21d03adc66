// SQL of the account page: a user's own grants, listed with their
// clients' names and revoked together with the consent that would have
// approved the client again, and the user's own sessions.

package store

import (
	"context"
	"fmt"
	"time"
)

// scanUserGrant reads the columns of ListUserGrants: those of a grant,
// then the client's name.
func scanUserGrant(r row, g *UserGrant) error {
	var (
		createdAt, updatedAt, expiresAt time.Time
		revoked                         nt
	)
	if err := r.Scan(&g.ID, &g.ClientID, &g.UserID, &g.Scope, &g.Resource, &g.RedirectURI,
		&createdAt, &updatedAt, &expiresAt, &revoked.t, &g.ClientName); err != nil {
		return err
	}
	g.CreatedAt, g.UpdatedAt, g.ExpiresAt, g.RevokedAt = createdAt.UTC(), updatedAt.UTC(), expiresAt.UTC(), revoked.val()
	g.LastUsedAt = g.UpdatedAt // moved by each refresh; a live grant's was never moved by revocation
	return nil
}

func (s *sqlStore) ListUserGrants(ctx context.Context, userID string, now time.Time) ([]UserGrant, error) {
	// A grant made before grants kept their redirect URI shows the one
	// its user's consent to the client was given for.
	list, err := queryAll(ctx, s.db, scanUserGrant, `SELECT g.id, g.client_id, g.user_id, g.scope, g.resource,
			CASE WHEN g.redirect_uri <> '' THEN g.redirect_uri ELSE COALESCE(c.redirect_uri, '') END,
			g.created_at, g.updated_at, g.expires_at, g.revoked_at, COALESCE(oc.client_name, '')
		FROM grants g
		LEFT JOIN oauth_clients oc ON oc.client_id = g.client_id
		LEFT JOIN consents c ON c.user_id = g.user_id AND c.client_id = g.client_id
		WHERE g.user_id = $1 AND g.revoked_at IS NULL AND g.expires_at > $2
		ORDER BY g.created_at DESC, g.id`, userID, ts(now))
	if err != nil {
		return nil, fmt.Errorf("listing a user's grants: %w", err)
	}
	return list, nil
}

func (s *sqlStore) RevokeUserGrant(ctx context.Context, userID, grantID string, now time.Time) (*Grant, error) {
	var g *Grant
	err := s.db.inTx(ctx, false, func(q querier) error {
		var err error
		g, err = queryOne(ctx, q, scanGrant, `SELECT `+grantCols+` FROM grants WHERE id = $1 AND user_id = $2`, grantID, userID)
		if err != nil {
			return err
		}
		// Only the revocation that takes effect forgets the consent: a
		// repeated one must not undo an approval the user gave since.
		n, err := q.exec(ctx, `UPDATE grants SET revoked_at = $3, updated_at = $3
			WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL`, grantID, userID, ts(now))
		if err != nil || n == 0 {
			return err
		}
		if err := revokeTokens(ctx, q, grantID, now); err != nil {
			return err
		}
		_, err = q.exec(ctx, `DELETE FROM consents WHERE user_id = $1 AND client_id = $2`, userID, g.ClientID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("revoking a user's grant: %w", err)
	}
	return g, nil
}

func (s *sqlStore) EndUserSession(ctx context.Context, userID string, idHash []byte) error {
	n, err := s.db.exec(ctx, `DELETE FROM sessions WHERE id_hash = $1 AND user_id = $2`, idHash, userID)
	return affected("ending a user's session", n, err)
}
