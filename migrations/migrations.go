// Package migrations embeds the SQL schema of caddymcp's stores.
//
// Each dialect has its own folder (postgres/, sqlite/) of forward-only
// files named NNNN_description.sql. Numbers start at 0001, have no gaps,
// and are the same in both folders: version N means the same tables in
// either store (package store's TestMigrationsMatchAcrossDialects applies
// both folders and compares the tables and columns they build). A
// released file is never edited; a change is a new file. Each file is
// applied in its own transaction by package store.
package migrations

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// Dialects lists the SQL dialects that have migrations.
var Dialects = []string{"postgres", "sqlite"}

// Migration is one numbered schema change.
type Migration struct {
	// Version is the file's number, starting at 1.
	Version int
	// Name is the file name without the number and extension.
	Name string
	// SQL is the file's content.
	SQL string
}

// List returns the migrations of a dialect ("postgres" or "sqlite"),
// ordered by version. It fails if the numbering has a gap or a duplicate.
func List(dialect string) ([]Migration, error) {
	entries, err := fs.ReadDir(files, dialect)
	if err != nil {
		return nil, fmt.Errorf("reading %s migrations: %w", dialect, err)
	}
	var out []Migration
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || path.Ext(name) != ".sql" {
			continue
		}
		num, rest, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
		if !ok {
			return nil, fmt.Errorf("migration %s/%s: name must be NNNN_description.sql", dialect, name)
		}
		v, err := strconv.Atoi(num)
		if err != nil || v < 1 {
			return nil, fmt.Errorf("migration %s/%s: bad version number", dialect, name)
		}
		body, err := files.ReadFile(dialect + "/" + name)
		if err != nil {
			return nil, fmt.Errorf("reading migration %s/%s: %w", dialect, name, err)
		}
		out = append(out, Migration{Version: v, Name: rest, SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("%s migrations: expected version %d, found %d (%s)", dialect, i+1, m.Version, m.Name)
		}
	}
	return out, nil
}
