package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Embedded is the zero-config store: one SQLite database file, driven by
// a pure-Go engine (no cgo). The file is opened in WAL mode with full
// synchronous commits, so a crash or power loss never leaves a half-written
// transaction behind, and it survives restarts.
type Embedded struct {
	sqlStore
	path string
	sdb  *sql.DB
}

// OpenEmbedded prepares the store at path. It neither creates nor opens
// the file: Migrate (or any first query) does. The folder is created by
// Migrate with mode 0700.
func OpenEmbedded(path string) (*Embedded, error) {
	if path == "" {
		return nil, errors.New("embedded store: empty file path")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("embedded store %s: the path must not contain '?' or '#'", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("embedded store %s: %w", path, err)
	}
	dsn := abs + "?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(FULL)&_txlock=immediate&_time_integer_format=unix_micro&_inttotime=1"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("embedded store %s: %w", abs, err)
	}
	// SQLite has one writer at a time; a few connections let reads overlap.
	db.SetMaxOpenConns(4)
	e := &Embedded{path: abs, sdb: db}
	e.sqlStore = sqlStore{db: &liteDB{db: db, path: abs}}
	return e, nil
}

// Path returns the absolute path of the database file.
func (e *Embedded) Path() string { return e.path }

// Migrate creates the folder if needed, checks the file's integrity, and
// applies pending migrations.
func (e *Embedded) Migrate(ctx context.Context) (int, error) {
	if err := os.MkdirAll(filepath.Dir(e.path), 0o700); err != nil {
		return 0, fmt.Errorf("embedded store %s: creating folder: %w", e.path, err)
	}
	// The file holds signing keys: create it readable by the owner only.
	// SQLite gives its -wal and -shm files the same mode.
	f, err := os.OpenFile(e.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return 0, fmt.Errorf("embedded store %s: cannot open or write the file (check its permissions and folder): %w", e.path, err)
	}
	_ = f.Close()
	var result string
	if err := e.sdb.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&result); err != nil {
		return 0, liteErr(e.path, err)
	}
	if result != "ok" {
		return 0, fmt.Errorf("embedded store %s: the file is damaged (%s); restore it from a backup or move it away", e.path, result)
	}
	v, err := e.sqlStore.Migrate(ctx)
	if err != nil {
		return v, fmt.Errorf("embedded store %s: %w", e.path, err)
	}
	return v, nil
}

type liteQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type liteQ struct {
	q    liteQuerier
	path string
}

func (l liteQ) exec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := l.q.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, liteErr(l.path, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, liteErr(l.path, err)
	}
	return n, nil
}

func (l liteQ) queryRow(ctx context.Context, q string, args ...any) row {
	return liteRow{r: l.q.QueryRowContext(ctx, q, args...), path: l.path}
}

func (l liteQ) query(ctx context.Context, q string, args ...any) (rows, error) {
	rs, err := l.q.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, liteErr(l.path, err)
	}
	return &liteRows{rs: rs, path: l.path}, nil
}

type liteRow struct {
	r    *sql.Row
	path string
}

func (r liteRow) Scan(dest ...any) error { return liteErr(r.path, r.r.Scan(dest...)) }

type liteRows struct {
	rs   *sql.Rows
	path string
}

func (r *liteRows) Next() bool             { return r.rs.Next() }
func (r *liteRows) Scan(dest ...any) error { return liteErr(r.path, r.rs.Scan(dest...)) }
func (r *liteRows) Err() error             { return liteErr(r.path, r.rs.Err()) }
func (r *liteRows) Close()                 { _ = r.rs.Close() }

type liteDB struct {
	db   *sql.DB
	path string
}

func (d *liteDB) exec(ctx context.Context, q string, args ...any) (int64, error) {
	return liteQ{d.db, d.path}.exec(ctx, q, args...)
}

func (d *liteDB) queryRow(ctx context.Context, q string, args ...any) row {
	return liteQ{d.db, d.path}.queryRow(ctx, q, args...)
}

func (d *liteDB) query(ctx context.Context, q string, args ...any) (rows, error) {
	return liteQ{d.db, d.path}.query(ctx, q, args...)
}

// inTx runs fn in a BEGIN IMMEDIATE transaction (the DSN's _txlock), which
// takes SQLite's write lock up front: every transaction is exclusive.
func (d *liteDB) inTx(ctx context.Context, _ bool, fn func(querier) error) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return liteErr(d.path, err)
	}
	if err := fn(liteQ{tx, d.path}); err != nil {
		_ = tx.Rollback()
		return err
	}
	return liteErr(d.path, tx.Commit())
}

func (d *liteDB) tableExists(ctx context.Context, name string) (bool, error) {
	var n int64
	err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1`, name).Scan(&n)
	if err != nil {
		return false, liteErr(d.path, err)
	}
	return n > 0, nil
}

func (d *liteDB) dialect() string { return "sqlite" }

func (d *liteDB) ping(ctx context.Context) error { return liteErr(d.path, d.db.PingContext(ctx)) }

func (d *liteDB) close() { _ = d.db.Close() }

// liteErr maps SQLite errors onto the package's sentinels and explains
// the ones an operator can fix.
func liteErr(path string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w (%v)", ErrNotFound, err)
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return fmt.Errorf("%w: %v", ErrConflict, err)
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT:
		return fmt.Errorf("embedded store %s: the file is not a valid caddymcp database or is damaged: %w", path, err)
	case sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_AUTH:
		return fmt.Errorf("embedded store %s: cannot open or write the file (check its permissions and folder): %w", path, err)
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR:
		return fmt.Errorf("%w: embedded store %s: %v", ErrUnavailable, path, err)
	}
	return err
}
