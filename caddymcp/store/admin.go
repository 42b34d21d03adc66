package store

import (
	"context"
	"fmt"
	"time"
)

const legacyCols = `id, user_id, scope, name, created_at, expires_at, revoked_at`

func scanLegacy(r row, t *LegacyToken) error {
	var (
		created, expires time.Time
		revoked          nt
	)
	if err := r.Scan(&t.ID, &t.UserID, &t.Scope, &t.Name, &created, &expires, &revoked.t); err != nil {
		return err
	}
	t.CreatedAt, t.ExpiresAt, t.RevokedAt = created.UTC(), expires.UTC(), revoked.val()
	return nil
}

func (s *sqlStore) CreateLegacyToken(ctx context.Context, token string, t *LegacyToken) error {
	_, err := s.db.exec(ctx, `INSERT INTO legacy_tokens (id, token_hash, user_id, scope, name, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, t.ID, Hash(token), t.UserID, t.Scope, t.Name, ts(t.CreatedAt), ts(t.ExpiresAt))
	if err != nil {
		return fmt.Errorf("creating legacy token: %w", err)
	}
	return nil
}

func (s *sqlStore) GetLegacyToken(ctx context.Context, token string, now time.Time) (*LegacyToken, error) {
	t, err := queryOne(ctx, s.db, scanLegacy, `SELECT `+legacyCols+` FROM legacy_tokens
		WHERE token_hash = $1 AND expires_at > $2 AND revoked_at IS NULL`, Hash(token), ts(now))
	if err != nil {
		return nil, fmt.Errorf("getting legacy token: %w", err)
	}
	return t, nil
}

func (s *sqlStore) ListLegacyTokens(ctx context.Context, userID string) ([]LegacyToken, error) {
	list, err := queryAll(ctx, s.db, scanLegacy, `SELECT `+legacyCols+` FROM legacy_tokens
		WHERE $1 = '' OR user_id = $1 ORDER BY created_at DESC, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("listing legacy tokens: %w", err)
	}
	return list, nil
}

func (s *sqlStore) RevokeLegacyToken(ctx context.Context, id string, now time.Time) error {
	n, err := s.db.exec(ctx, `UPDATE legacy_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL`, id, ts(now))
	return affected("revoking legacy token", n, err)
}

func (s *sqlStore) FindUsers(ctx context.Context, email string, limit int) ([]User, error) {
	if limit <= 0 {
		limit = 100
	}
	list, err := queryAll(ctx, s.db, scanUser, `SELECT `+userCols+` FROM users
		WHERE $1 = '' OR LOWER(email) = LOWER($1) ORDER BY LOWER(email), id LIMIT $2`, email, int64(limit))
	if err != nil {
		return nil, fmt.Errorf("finding users: %w", err)
	}
	return list, nil
}
