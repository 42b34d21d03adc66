package caddymcp

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/bearer"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testflow"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testpg"
	"github.com/caddymcp/caddymcp/caddymcp/jose"
	"github.com/caddymcp/caddymcp/caddymcp/oauth"
)

// testConfig is a JSON config with the caddymcp app and one plain-HTTP
// server running mcp_oauth and mcp_bearer.
func testConfig(t *testing.T, app map[string]any, port int, scopes []string) []byte {
	t.Helper()
	oauthHandler := map[string]any{"handler": "mcp_oauth"}
	if scopes != nil {
		oauthHandler["scopes"] = scopes
	}
	cfg := map[string]any{
		"admin":   map[string]any{"disabled": true},
		"logging": map[string]any{"logs": map[string]any{"default": map[string]any{"level": "ERROR"}}},
		"storage": map[string]any{"module": "file_system", "root": t.TempDir()},
		"apps": map[string]any{
			"caddymcp": app,
			"http": map[string]any{
				"servers": map[string]any{
					"test": map[string]any{
						"listen":          []string{fmt.Sprintf("127.0.0.1:%d", port)},
						"automatic_https": map[string]any{"disable": true},
						"routes": []any{
							map[string]any{"handle": []any{oauthHandler}},
							map[string]any{
								"match":  []any{map[string]any{"path": []string{"/mcp*", "/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"}}},
								"handle": []any{map[string]any{"handler": "mcp_bearer", "resource": "/mcp"}},
							},
						},
					},
				},
			},
		},
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func kidOf(t *testing.T, base string) string {
	t.Helper()
	var doc jose.JWKS
	if code := getJSON(t, base+"/oauth/jwks", &doc); code != 200 || len(doc.Keys) != 1 {
		t.Fatalf("JWKS: status %d, %d keys", code, len(doc.Keys))
	}
	return doc.Keys[0].Kid
}

// TestReloadKeepsKeysAndSharesStore loads a config, reloads a changed one
// and restarts, on both stores: the signing key survives, one store is
// shared across the reload, and it is released at the end.
func TestReloadKeepsKeysAndSharesStore(t *testing.T) {
	backends := map[string]func(t *testing.T) (app map[string]any, key string){
		"embedded": func(t *testing.T) (map[string]any, string) {
			path := filepath.Join(t.TempDir(), "state", "caddymcp.db")
			return map[string]any{"embedded_path": path}, "sqlite:" + path
		},
		"postgres": func(t *testing.T) (map[string]any, string) {
			t.Setenv("CADDYMCP_LIFECYCLE_DSN", testpg.Schema(t))
			return map[string]any{"database": "{env.CADDYMCP_LIFECYCLE_DSN}"}, ""
		},
	}
	for name, setup := range backends {
		t.Run(name, func(t *testing.T) {
			app, key := setup(t)
			port := testflow.FreePort(t)
			base := fmt.Sprintf("http://127.0.0.1:%d", port)
			if err := load(t, testConfig(t, app, port, nil)); err != nil {
				t.Fatalf("loading: %v", err)
			}
			defer stopCaddy(t)
			kid := kidOf(t, base)
			if key == "" { // postgres: find the pooled key
				key = soleStoreKey(t, "postgres:")
			}
			if n, _ := stores.References(key); n != 1 {
				t.Fatalf("store references = %d, want 1", n)
			}

			// A reload with changed settings keeps the key and the store.
			if err := load(t, testConfig(t, app, port, []string{"only:this"})); err != nil {
				t.Fatalf("reloading: %v", err)
			}
			var meta oauth.ASMetadata
			getJSON(t, base+"/.well-known/oauth-authorization-server", &meta)
			if len(meta.ScopesSupported) != 1 || meta.ScopesSupported[0] != "only:this" {
				t.Fatalf("reload not applied: scopes %v", meta.ScopesSupported)
			}
			if got := kidOf(t, base); got != kid {
				t.Fatalf("kid changed across reload: %s -> %s", kid, got)
			}
			if n, _ := stores.References(key); n != 1 {
				t.Fatalf("store references after reload = %d, want 1", n)
			}
			if meta.Issuer != base {
				t.Errorf("issuer = %q, want %q", meta.Issuer, base)
			}
			var prm bearer.PRM
			getJSON(t, base+"/.well-known/oauth-protected-resource/mcp", &prm)
			if len(prm.AuthorizationServers) != 1 || prm.AuthorizationServers[0] != meta.Issuer || prm.Resource != base+"/mcp" {
				t.Errorf("PRM = %+v, want issuer %s byte-identical", prm, meta.Issuer)
			}

			// Stop and start again: the store is closed, then reopened
			// with the same key.
			stopCaddy(t)
			if n, ok := stores.References(key); ok || n != 0 {
				t.Fatalf("store still referenced after stop: %d", n)
			}
			if err := load(t, testConfig(t, app, port, nil)); err != nil {
				t.Fatalf("restarting: %v", err)
			}
			if got := kidOf(t, base); got != kid {
				t.Fatalf("kid changed across restart: %s -> %s", kid, got)
			}
		})
	}
}

func soleStoreKey(t *testing.T, prefix string) string {
	t.Helper()
	var found []string
	stores.Range(func(k, _ any) bool {
		if s, ok := k.(string); ok && strings.HasPrefix(s, prefix) {
			found = append(found, s)
		}
		return true
	})
	if len(found) != 1 {
		t.Fatalf("%d pooled stores with prefix %s", len(found), prefix)
	}
	return found[0]
}

// TestStartFailures checks that a store that cannot be used stops Caddy
// from loading the config, with a clear message and no secret in it, and
// that nothing stays pooled.
func TestStartFailures(t *testing.T) {
	dsn, err := url.Parse(testpg.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	wrong := *dsn
	wrong.User = url.UserPassword(dsn.User.Username(), "N0t-The-Pa55word")
	unreachable := *dsn
	unreachable.Host = fmt.Sprintf("127.0.0.1:%d", testflow.FreePort(t))

	tests := []struct {
		name    string
		env     string
		app     map[string]any
		want    string
		secrets []string
	}{
		{"wrong password", wrong.String(), map[string]any{"database": "{env.CADDYMCP_BAD_DSN}"}, "password authentication failed", []string{"N0t-The-Pa55word"}},
		{"unreachable", unreachable.String(), map[string]any{"database": "{env.CADDYMCP_BAD_DSN}", "start_timeout": "5s"}, "PostgreSQL store", nil},
		{"unset placeholder", "", map[string]any{"database": "{env.CADDYMCP_BAD_DSN}"}, "database", nil},
		{"literal bad URL", "", map[string]any{"database": "postgres://u:S3cr3t-In-URL@host:nope/db"}, "invalid database URL", []string{"S3cr3t-In-URL"}},
		{"bad issuer", "", map[string]any{"issuer": "http://example.com"}, "must use https", nil},
		{"short key rotation", "", map[string]any{"key_rotation": "1h"}, "at least 48h", nil},
		{"unknown algorithm", "", map[string]any{"signing_algorithm": "HS256"}, "use ES256, RS256 or EdDSA", nil},
		{"unset key encryption secret", "", map[string]any{"key_encryption_key": "{env.CADDYMCP_BAD_DSN}"}, "key_encryption_key", nil},
		{"unwritable embedded path", "", map[string]any{"embedded_path": "/proc/caddymcp/x.db"}, "/proc/caddymcp/x.db", nil},
	}
	if pass, ok := dsn.User.Password(); ok {
		tests[1].secrets = []string{pass}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CADDYMCP_BAD_DSN", tt.env)
			start := time.Now()
			err := load(t, testConfig(t, tt.app, testflow.FreePort(t), nil))
			if err == nil {
				stopCaddy(t)
				t.Fatal("config with a broken store loaded")
			}
			t.Logf("load error: %v", err)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want it to mention %q", err, tt.want)
			}
			for _, s := range tt.secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error reveals a secret: %v", err)
				}
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("failing took %v", d)
			}
			stores.Range(func(k, _ any) bool {
				t.Errorf("store %v still pooled after a failed load", k)
				return true
			})
		})
	}
}

// TestToolsMustBeGuarded: a config whose mcp_tools no mcp_bearer guards
// does not load, unless the operator says unguarded.
func TestToolsMustBeGuarded(t *testing.T) {
	db := filepath.Join(t.TempDir(), "g.db")
	site := func(body string) []byte {
		return adaptCaddyfile(t, fmt.Sprintf("{\n\tadmin off\n\tcaddymcp {\n\t\tembedded_path %s\n\t}\n}\nhttp://127.0.0.1:%d {\n%s\n}\n", db, testflow.FreePort(t), body))
	}
	err := load(t, site("\tmcp_tools"))
	if err == nil {
		stopCaddy(t)
		t.Fatal("unguarded mcp_tools loaded")
	}
	if !strings.Contains(err.Error(), "not behind an mcp_bearer") {
		t.Errorf("error = %v", err)
	}
	for name, body := range map[string]string{
		"guarded":          "\tmcp_bearer /mcp*\n\tmcp_tools",
		"other path":       "\tmcp_bearer /rpc*\n\tmcp_tools /rpc*",
		"unguarded opt-in": "\tmcp_tools {\n\t\tunguarded\n\t}",
	} {
		if err := load(t, site(body)); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		stopCaddy(t)
	}
}
