// SQL of users, their login sessions and their consents to clients.

package store

import (
	"context"
	"fmt"
	"time"
)

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
	out, err := queryOne(ctx, s.db, scanUser, `INSERT INTO users (`+userCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (provider, subject) DO UPDATE SET
			email = excluded.email, email_verified = excluded.email_verified, name = excluded.name,
			picture = excluded.picture, hosted_domain = excluded.hosted_domain,
			updated_at = excluded.updated_at, last_login_at = excluded.last_login_at
		RETURNING `+userCols,
		u.ID, u.Provider, u.Subject, u.Email, u.EmailVerified, u.Name, u.Picture, u.HostedDomain,
		ts(u.CreatedAt), ts(u.UpdatedAt), ts(u.LastLoginAt))
	if err != nil {
		return nil, fmt.Errorf("upserting user: %w", err)
	}
	return out, nil
}

func (s *sqlStore) GetUser(ctx context.Context, id string) (*User, error) {
	u, err := queryOne(ctx, s.db, scanUser, `SELECT `+userCols+` FROM users WHERE id = $1`, id)
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
	se, err := queryOne(ctx, s.db, scanSession, `SELECT `+sessionCols+` FROM sessions
		WHERE id_hash = $1 AND idle_expires_at > $2 AND expires_at > $2`, Hash(id), ts(now))
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
	list, err := queryAll(ctx, s.db, scanSession, `SELECT `+sessionCols+` FROM sessions
		WHERE user_id = $1 AND idle_expires_at > $2 AND expires_at > $2 ORDER BY created_at DESC`, userID, ts(now))
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
	c, err := queryOne(ctx, s.db, scanConsent, `SELECT user_id, client_id, scope, redirect_uri, resource, created_at, updated_at
		FROM consents WHERE user_id = $1 AND client_id = $2`, userID, clientID)
	if err != nil {
		return nil, fmt.Errorf("getting consent: %w", err)
	}
	return c, nil
}

func (s *sqlStore) ListConsentsByUser(ctx context.Context, userID string) ([]Consent, error) {
	list, err := queryAll(ctx, s.db, scanConsent, `SELECT user_id, client_id, scope, redirect_uri, resource, created_at, updated_at
		FROM consents WHERE user_id = $1 ORDER BY client_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("listing consents: %w", err)
	}
	return list, nil
}

func (s *sqlStore) DeleteConsent(ctx context.Context, userID, clientID string) error {
	n, err := s.db.exec(ctx, `DELETE FROM consents WHERE user_id = $1 AND client_id = $2`, userID, clientID)
	return affected("deleting consent", n, err)
}
