// Package teststore opens migrated stores for tests: an embedded file or
// a PostgreSQL schema, each closed when the test ends. Opening and
// migrating is the first step of nearly every test that needs a store,
// in this package's callers as in package store's own tests.
package teststore

import (
	"context"
	"testing"

	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// Embedded opens the embedded store at path, creating the file and its
// folder, and migrates it. It fails tb on any error.
func Embedded(tb testing.TB, path string) *store.Embedded {
	tb.Helper()
	e, err := store.OpenEmbedded(path)
	if err != nil {
		tb.Fatal(err)
	}
	migrate(tb, e)
	return e
}

// Postgres opens a store on dsn (a schema of testpg.Schema) and migrates
// it. It fails tb on any error. The pool holds up to 20 connections, more
// than the default, for the tests that race many callers.
func Postgres(tb testing.TB, dsn string) *store.Postgres {
	tb.Helper()
	p, err := store.OpenPostgres(dsn, store.PostgresOptions{MaxConns: 20})
	if err != nil {
		tb.Fatal(err)
	}
	migrate(tb, p)
	return p
}

// migrate closes s when tb ends, and migrates it now.
func migrate(tb testing.TB, s store.Store) {
	tb.Helper()
	tb.Cleanup(s.Close)
	if _, err := s.Migrate(context.Background()); err != nil {
		tb.Fatal(err)
	}
}
