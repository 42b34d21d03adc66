// The SQL core shared by both engines: the sqlStore type, schema
// migrations, the expiry sweep and the helpers every sql_*.go file uses.
// The statements of each kind of record live in a sql_*.go file of their
// own (sql_shop.go and the four after it for the back office); rows are
// scanned as scan.go describes.

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

// callerError carries an error of a caller's callback out of a
// transaction unchanged.
type callerError struct{ err error }

func (e *callerError) Error() string { return e.err.Error() }

// txError is what a method returns for err, the error of a transaction
// that called back its caller: the callback's own error unchanged, for
// the caller to recognise, and any other wrapped with what.
func txError(what string, err error) error {
	var ce *callerError
	if errors.As(err, &ce) {
		return ce.err
	}
	return fmt.Errorf("%s: %w", what, err)
}
