package store_test

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testpg"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

func TestEmbeddedPersistsAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	e, err := store.OpenEmbedded(path)
	must(t, err)
	_, err = e.Migrate(ctx())
	must(t, err)
	u := newUser(t, e)
	e.Close()

	e2, err := store.OpenEmbedded(path)
	must(t, err)
	defer e2.Close()
	_, err = e2.Migrate(ctx())
	must(t, err)
	if _, err := e2.GetUser(ctx(), u.ID); err != nil {
		t.Fatalf("user lost across reopen: %v", err)
	}
	files, _ := filepath.Glob(path + "*")
	for _, f := range files {
		fi, err := os.Stat(f)
		must(t, err)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600: it holds signing keys", filepath.Base(f), fi.Mode().Perm())
		}
	}
}

func TestEmbeddedBadFiles(t *testing.T) {
	dir := t.TempDir()
	notADir := filepath.Join(dir, "file")
	must(t, os.WriteFile(notADir, []byte("x"), 0o600))
	garbage := filepath.Join(dir, "garbage.db")
	must(t, os.WriteFile(garbage, []byte(strings.Repeat("this is not a database ", 400)), 0o600))

	tests := []struct {
		name, path, want string
	}{
		{"folder is a file", filepath.Join(notADir, "caddymcp.db"), "creating folder"},
		{"not a database", garbage, "not a valid caddymcp database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := store.OpenEmbedded(tt.path)
			must(t, err)
			defer e.Close()
			_, err = e.Migrate(ctx())
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.path) {
				t.Fatalf("Migrate error = %v, want one naming %s and %q", err, tt.path, tt.want)
			}
		})
	}
	t.Run("read-only file", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Log("running as root: checking a read-only file system path instead of permission bits")
			e, err := store.OpenEmbedded("/proc/caddymcp-test/caddymcp.db")
			must(t, err)
			defer e.Close()
			if _, err := e.Migrate(ctx()); err == nil {
				t.Fatal("Migrate on an unwritable path succeeded")
			}
			return
		}
		ro := filepath.Join(dir, "ro")
		must(t, os.Mkdir(ro, 0o500))
		e, err := store.OpenEmbedded(filepath.Join(ro, "caddymcp.db"))
		must(t, err)
		defer e.Close()
		_, err = e.Migrate(ctx())
		if err == nil || !strings.Contains(err.Error(), "cannot open or write") {
			t.Fatalf("Migrate error = %v", err)
		}
	})
	if _, err := store.OpenEmbedded(""); err == nil {
		t.Error("empty path accepted")
	}
	if _, err := store.OpenEmbedded("/tmp/a?b.db"); err == nil {
		t.Error("path with '?' accepted")
	}
}

func TestPostgresBadConnections(t *testing.T) {
	dsn := testpg.URL(t)
	u, err := url.Parse(dsn)
	must(t, err)

	// A closed port: nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	closed := l.Addr().String()
	l.Close()

	wrongPass := *u
	wrongPass.User = url.UserPassword(u.User.Username(), "Wrong-Pa55word-xyz")
	unreachable := *u
	unreachable.Host = closed

	tests := []struct {
		name, dsn, secret string
	}{
		{"wrong password", wrongPass.String(), "Wrong-Pa55word-xyz"},
		{"unreachable", unreachable.String(), passwordOf(u)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := store.OpenPostgres(tt.dsn, store.PostgresOptions{ConnectTimeout: 3 * time.Second})
			must(t, err)
			defer p.Close()
			c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err = p.Migrate(c)
			if !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("Migrate error = %v, want ErrUnavailable", err)
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Fatalf("error reveals the password: %v", err)
			}
		})
	}
	t.Run("invalid URL", func(t *testing.T) {
		err := store.ParsePostgresURL("postgres://user:Sup3rSecret@host:notaport/db")
		if err == nil || strings.Contains(err.Error(), "Sup3rSecret") {
			t.Fatalf("ParsePostgresURL error = %v", err)
		}
	})
}

func passwordOf(u *url.URL) string {
	p, _ := u.User.Password()
	return p
}
