package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// advisoryLockKey serializes migrations and signing-key creation across
// every process that shares a PostgreSQL database ("caddymcp" in ASCII).
const advisoryLockKey int64 = 0x63616464796d6370

// DefaultMaxConns is the pool size when none is configured: enough to
// keep a 2-core server busy while each connection waits on a round trip
// (pgx's own default, max(4, CPUs), leaves the token endpoint waiting).
const DefaultMaxConns = 16

// PostgresOptions tune the PostgreSQL pool.
type PostgresOptions struct {
	// MaxConns caps the pool size. Default: DefaultMaxConns.
	MaxConns int32
	// ConnectTimeout bounds each connection attempt. Default: 10s.
	ConnectTimeout time.Duration
}

// Postgres is the PostgreSQL store, on a pgx connection pool.
type Postgres struct {
	sqlStore
	pool *pgxpool.Pool
}

// ParsePostgresURL checks a connection URL without connecting. Its error
// never contains the password.
func ParsePostgresURL(dsn string) error {
	_, err := parsePostgresConfig(dsn, PostgresOptions{})
	return err
}

func parsePostgresConfig(dsn string, opts PostgresOptions) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// Name what is wrong, never the input: it may hold a password.
		// pgx's messages are "cannot parse `<redacted input>`: <reason>".
		var ue *url.Error
		msg := err.Error()
		switch i := strings.LastIndex(msg, "`: "); {
		case errors.As(err, &ue):
			return nil, fmt.Errorf("invalid database URL: %v", ue.Err)
		case i >= 0:
			return nil, fmt.Errorf("invalid database URL: %s", msg[i+3:])
		}
		return nil, errors.New("invalid database URL")
	}
	cfg.MaxConns = DefaultMaxConns
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	if opts.ConnectTimeout > 0 {
		cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
	}
	return cfg, nil
}

// OpenPostgres creates a pool for dsn. It does not connect: the first
// query (usually Migrate) does.
func OpenPostgres(dsn string, opts PostgresOptions) (*Postgres, error) {
	cfg, err := parsePostgresConfig(dsn, opts)
	if err != nil {
		return nil, err
	}
	// The pool outlives any one request or config; it is closed by Close.
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("creating database pool: %w", err)
	}
	return &Postgres{sqlStore: sqlStore{db: pgDB{pool: pool}}, pool: pool}, nil
}

// Stat reports the pool's connection counts: total, idle, in use.
func (p *Postgres) Stat() (total, idle, inUse int32) {
	s := p.pool.Stat()
	return s.TotalConns(), s.IdleConns(), s.AcquiredConns()
}

// pgQuerier is what a pool and a transaction have in common.
type pgQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

type pgQ struct{ q pgQuerier }

func (p pgQ) exec(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := p.q.Exec(ctx, q, args...)
	if err != nil {
		return 0, pgErr(err)
	}
	return tag.RowsAffected(), nil
}

func (p pgQ) queryRow(ctx context.Context, q string, args ...any) row {
	return pgRow{p.q.QueryRow(ctx, q, args...)}
}

func (p pgQ) query(ctx context.Context, q string, args ...any) (rows, error) {
	rs, err := p.q.Query(ctx, q, args...)
	if err != nil {
		return nil, pgErr(err)
	}
	return pgRows{rs}, nil
}

type pgRow struct{ r pgx.Row }

func (r pgRow) Scan(dest ...any) error { return pgErr(r.r.Scan(dest...)) }

type pgRows struct{ pgx.Rows }

func (r pgRows) Scan(dest ...any) error { return pgErr(r.Rows.Scan(dest...)) }
func (r pgRows) Err() error             { return pgErr(r.Rows.Err()) }

type pgDB struct {
	pool *pgxpool.Pool
}

func (d pgDB) exec(ctx context.Context, q string, args ...any) (int64, error) {
	return pgQ{d.pool}.exec(ctx, q, args...)
}

func (d pgDB) queryRow(ctx context.Context, q string, args ...any) row {
	return pgQ{d.pool}.queryRow(ctx, q, args...)
}

func (d pgDB) query(ctx context.Context, q string, args ...any) (rows, error) {
	return pgQ{d.pool}.query(ctx, q, args...)
}

func (d pgDB) inTx(ctx context.Context, exclusive bool, fn func(querier) error) error {
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if exclusive {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, advisoryLockKey); err != nil {
				return err
			}
		}
		return fn(pgQ{tx})
	})
	return pgErr(err)
}

func (d pgDB) tableExists(ctx context.Context, name string) (bool, error) {
	var ok bool
	if err := d.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&ok); err != nil {
		return false, fmt.Errorf("looking up table %s: %w", name, pgErr(err))
	}
	return ok, nil
}

func (d pgDB) dialect() string { return "postgres" }

func (d pgDB) ping(ctx context.Context) error { return pgErr(d.pool.Ping(ctx)) }

func (d pgDB) close() { d.pool.Close() }

// pgErr maps pgx errors onto the package's sentinels, keeping the cause.
func pgErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) || errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w (%v)", ErrNotFound, err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505": // unique_violation
			return fmt.Errorf("%w: %v", ErrConflict, err)
		case pe.Code == "28P01" || pe.Code == "28000": // authentication failed
			return fmt.Errorf("%w: database refused the credentials: %v", ErrUnavailable, err)
		case len(pe.Code) == 2+3 && (pe.Code[:2] == "08" || pe.Code[:2] == "57" || pe.Code[:2] == "53"):
			// connection exception, operator intervention, insufficient resources
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		return err
	}
	var (
		ce *pgconn.ConnectError
		ne net.Error
	)
	if errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err) ||
		errors.Is(err, context.DeadlineExceeded) ||
		// A pooled connection that died with the server, mid-query or
		// before the next one.
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, pgconn.ErrConnClosed) || pgconn.SafeToRetry(err) ||
		// The pool of a configuration being unloaded (the pool's own
		// error type lives in an internal dependency).
		strings.HasSuffix(err.Error(), "closed pool") {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return err
}
