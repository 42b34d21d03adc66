package store

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestPgErrUnavailable checks that the errors of a database that went
// away mid-query are "unavailable" (a 503), not internal errors.
func TestPgErrUnavailable(t *testing.T) {
	for name, err := range map[string]error{
		"unexpected EOF":     fmt.Errorf("getting client: %w", io.ErrUnexpectedEOF),
		"EOF":                io.EOF,
		"conn closed":        fmt.Errorf("begin: %w", pgconn.ErrConnClosed),
		"admin shutdown":     &pgconn.PgError{Code: "57P01"},
		"connection failure": &pgconn.PgError{Code: "08006"},
		"too many clients":   &pgconn.PgError{Code: "53300"},
		"bad password":       &pgconn.PgError{Code: "28P01"},
	} {
		if got := pgErr(err); !errors.Is(got, ErrUnavailable) {
			t.Errorf("%s: %v is not ErrUnavailable", name, got)
		}
	}
	for name, tc := range map[string]struct {
		err  error
		want error
	}{
		"no rows":          {pgx.ErrNoRows, ErrNotFound},
		"unique violation": {&pgconn.PgError{Code: "23505"}, ErrConflict},
	} {
		if got := pgErr(tc.err); !errors.Is(got, tc.want) || errors.Is(got, ErrUnavailable) {
			t.Errorf("%s: %v", name, got)
		}
	}
	if got := pgErr(&pgconn.PgError{Code: "42P01"}); errors.Is(got, ErrUnavailable) {
		t.Errorf("a missing table is not an outage: %v", got)
	}
}
