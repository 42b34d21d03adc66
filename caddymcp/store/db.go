package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// row is one result row.
type row interface {
	Scan(dest ...any) error
}

// rows is a result set.
type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// querier runs statements. Both implementations accept $1-style
// placeholders and time.Time, []byte, string, int64 and bool arguments,
// and scan TIMESTAMP columns into *time.Time / **time.Time.
type querier interface {
	exec(ctx context.Context, q string, args ...any) (int64, error)
	queryRow(ctx context.Context, q string, args ...any) row
	query(ctx context.Context, q string, args ...any) (rows, error)
}

// database is what the SQL core needs from an engine.
type database interface {
	querier
	// inTx runs fn in a transaction that is committed if fn returns nil.
	// With exclusive set, the transaction is serialized against every
	// other exclusive transaction on the same database, also in other
	// processes (PostgreSQL: an advisory lock; SQLite: BEGIN IMMEDIATE).
	inTx(ctx context.Context, exclusive bool, fn func(q querier) error) error
	// tableExists reports whether a table exists.
	tableExists(ctx context.Context, name string) (bool, error)
	dialect() string
	ping(ctx context.Context) error
	close()
}

// ts normalises a time for storage: UTC, microsecond precision (the
// resolution both engines keep), and NULL for the zero time.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Truncate(time.Microsecond)
}

// nt is a scan destination for a nullable timestamp.
type nt struct{ t *time.Time }

// val returns the scanned time, or the zero time for NULL.
func (n *nt) val() time.Time {
	if n.t == nil {
		return time.Time{}
	}
	return n.t.UTC()
}

func jsonList(v []string) string {
	if v == nil {
		v = []string{}
	}
	b, _ := json.Marshal(v) // a []string always marshals
	return string(b)
}

func parseList(s string) ([]string, error) {
	var v []string
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("decoding stored list: %w", err)
	}
	return v, nil
}
