package store_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // the driver the embedded store registers, named here for sql.Open

	"github.com/caddymcp/caddymcp/caddymcp/internal/testpg"
	"github.com/caddymcp/caddymcp/caddymcp/internal/teststore"
	"github.com/caddymcp/caddymcp/migrations"
)

// schema is a database's tables, each with the set of its columns.
type schema map[string]map[string]bool

func (s schema) add(table, column string) {
	if s[table] == nil {
		s[table] = map[string]bool{}
	}
	s[table][column] = true
}

// schemaException is a table, or a column of a table, that one dialect
// has and the other lacks on purpose.
type schemaException struct {
	// only is the dialect that has it: "postgres" or "sqlite".
	only string
	// table, and column ("" for the whole table).
	table, column string
	// why the other dialect does without it.
	reason string
}

func (e schemaException) String() string {
	if e.column == "" {
		return "table " + e.table + ": only in " + e.only
	}
	return "column " + e.table + "." + e.column + ": only in " + e.only
}

// schemaDiff lists, sorted, each table and each column present in one
// schema but not the other, except those excepted. It also lists each
// exception without a reason, and each that no longer matches a
// difference, so that the list of exceptions cannot outlive its
// reasons. A table missing from one side is one difference, not one per
// column.
func schemaDiff(pg, lite schema, except []schemaException) []string {
	var found []schemaException
	oneWay := func(have, lack schema, only string) {
		for table, cols := range have {
			if lack[table] == nil {
				found = append(found, schemaException{only: only, table: table})
				continue
			}
			for col := range cols {
				if !lack[table][col] {
					found = append(found, schemaException{only: only, table: table, column: col})
				}
			}
		}
	}
	oneWay(pg, lite, "postgres")
	oneWay(lite, pg, "sqlite")
	matches := func(a, b schemaException) bool {
		return a.only == b.only && a.table == b.table && a.column == b.column
	}
	var out []string
	for _, f := range found {
		if !slices.ContainsFunc(except, func(e schemaException) bool { return matches(e, f) }) {
			out = append(out, f.String())
		}
	}
	for _, e := range except {
		if e.reason == "" {
			out = append(out, "listed exception without a reason: "+e.String())
		}
		if !slices.ContainsFunc(found, func(f schemaException) bool { return matches(e, f) }) {
			out = append(out, "listed exception no longer holds: "+e.String()+" ("+e.reason+")")
		}
	}
	slices.Sort(out)
	return out
}

// TestMigrationsMatchAcrossDialects applies every migration of each
// dialect to a fresh database, through the stores' own Migrate, and
// compares the tables and columns that result: version N must mean the
// same tables in either store (package migrations).
func TestMigrationsMatchAcrossDialects(t *testing.T) {
	pg, err := migrations.List("postgres")
	must(t, err)
	lite, err := migrations.List("sqlite")
	must(t, err)
	if len(pg) != len(lite) {
		t.Fatalf("postgres has %d migrations, sqlite %d: a schema version must mean the same in both", len(pg), len(lite))
	}
	// The tables and columns that only one store has, and why.
	except := []schemaException{
		// None: both stores hold the same tables with the same columns.
		// An entry reads {only: "postgres", table: "t", column: "c",
		// reason: "why the embedded store does without it"}.
	}
	pgSchema, liteSchema := postgresSchema(t), embeddedSchema(t)
	// A catalog query that saw no table would make any two schemas alike.
	if len(pgSchema) == 0 || len(liteSchema) == 0 {
		t.Fatalf("the migrated databases have %d (postgres) and %d (sqlite) tables", len(pgSchema), len(liteSchema))
	}
	for _, d := range schemaDiff(pgSchema, liteSchema, except) {
		t.Error(d)
	}
}

// postgresSchema migrates a fresh PostgreSQL schema and reads its
// tables and columns from information_schema.
func postgresSchema(t *testing.T) schema {
	t.Helper()
	dsn := testpg.Schema(t)
	teststore.Postgres(t, dsn) // migrated through the store's own Migrate
	conn, err := pgx.Connect(ctx(), dsn)
	must(t, err)
	defer conn.Close(ctx())
	rs, err := conn.Query(ctx(), `SELECT c.table_name, c.column_name
		FROM information_schema.columns c JOIN information_schema.tables t
			ON t.table_schema = c.table_schema AND t.table_name = c.table_name
		WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'`)
	must(t, err)
	defer rs.Close()
	return readSchema(t, rs)
}

// embeddedSchema migrates a fresh embedded file and reads its tables and
// columns from SQLite's catalog, leaving out SQLite's own sqlite_*
// bookkeeping tables.
func embeddedSchema(t *testing.T) schema {
	t.Helper()
	path := filepath.Join(t.TempDir(), "schema.db")
	teststore.Embedded(t, path) // migrated through the store's own Migrate
	db, err := sql.Open("sqlite", path)
	must(t, err)
	defer db.Close()
	// SQLite keeps names as written; PostgreSQL folds unquoted ones to
	// lower case, which the migrations rely on. (The names are ASCII, all
	// that SQLite's lower folds.)
	rs, err := db.QueryContext(ctx(), `SELECT lower(m.name), lower(c.name)
		FROM sqlite_master m JOIN pragma_table_info(m.name) c
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\_%' ESCAPE '\'`)
	must(t, err)
	defer rs.Close()
	return readSchema(t, rs)
}

// readSchema reads a schema from rows of a table name and a column name:
// pgx.Rows and *sql.Rows alike.
func readSchema(t *testing.T, rs interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}) schema {
	t.Helper()
	s := schema{}
	for rs.Next() {
		var table, column string
		must(t, rs.Scan(&table, &column))
		s.add(table, column)
	}
	must(t, rs.Err())
	return s
}

func TestSchemaDiff(t *testing.T) {
	base := func() schema {
		return schema{
			"users":   {"id": true, "email": true},
			"clients": {"client_id": true},
		}
	}
	for _, tc := range []struct {
		name   string
		change func(pg, lite schema)
		except []schemaException
		want   []string
	}{
		{name: "same", change: func(pg, lite schema) {}},
		{
			name:   "column dropped from sqlite",
			change: func(pg, lite schema) { delete(lite["users"], "email") },
			want:   []string{"column users.email: only in postgres"},
		},
		{
			name:   "column added to sqlite",
			change: func(pg, lite schema) { lite.add("clients", "jwks") },
			want:   []string{"column clients.jwks: only in sqlite"},
		},
		{
			name:   "table only in postgres, reported once",
			change: func(pg, lite schema) { pg.add("locks", "id"); pg.add("locks", "holder") },
			want:   []string{"table locks: only in postgres"},
		},
		{
			name:   "excepted table",
			change: func(pg, lite schema) { pg.add("locks", "id") },
			except: []schemaException{{only: "postgres", table: "locks", reason: "advisory locks"}},
		},
		{
			name:   "exception for the other dialect does not excuse",
			change: func(pg, lite schema) { pg.add("locks", "id") },
			except: []schemaException{{only: "sqlite", table: "locks", reason: "wrong side"}},
			want: []string{
				"listed exception no longer holds: table locks: only in sqlite (wrong side)",
				"table locks: only in postgres",
			},
		},
		{
			name:   "exception without a reason",
			change: func(pg, lite schema) { pg.add("locks", "id") },
			except: []schemaException{{only: "postgres", table: "locks"}},
			want:   []string{"listed exception without a reason: table locks: only in postgres"},
		},
		{
			name:   "stale exception",
			change: func(pg, lite schema) {},
			except: []schemaException{{only: "sqlite", table: "users", column: "legacy", reason: "gone"}},
			want:   []string{"listed exception no longer holds: column users.legacy: only in sqlite (gone)"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pg, lite := base(), base()
			tc.change(pg, lite)
			got := schemaDiff(pg, lite, tc.except)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("schemaDiff =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}
