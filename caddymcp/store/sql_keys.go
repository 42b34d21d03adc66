// SQL of the server's own secrets: token signing keys with their
// rotation, and named shared secrets (such as the DPoP nonce key).

package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

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
	list, err := queryAll(ctx, s.db, scanKey, `SELECT `+keyCols+` FROM signing_keys ORDER BY created_at DESC, kid`)
	if err != nil {
		return nil, fmt.Errorf("listing signing keys: %w", err)
	}
	return list, nil
}

func (s *sqlStore) EnsureSigningKey(ctx context.Context, generate func() (*SigningKey, error)) (*SigningKey, error) {
	var key *SigningKey
	err := s.db.inTx(ctx, true, func(q querier) error {
		var err error
		key, err = queryOne(ctx, q, scanKey, `SELECT `+keyCols+` FROM signing_keys
			WHERE retired_at IS NULL ORDER BY created_at DESC, kid LIMIT 1`)
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
