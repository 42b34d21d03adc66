package caddymcp

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/pflag"

	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// createFlags are the flags of `caddy mcp-token create`.
func createFlags(t *testing.T, args ...string) caddycmd.Flags {
	t.Helper()
	fs := pflag.NewFlagSet("create", pflag.ContinueOnError)
	fs.String("user", "", "")
	fs.String("scope", "", "")
	fs.Duration("expires", 90*24*time.Hour, "")
	fs.String("name", "", "")
	fs.Bool("token-stdin", false, "")
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return caddycmd.Flags{FlagSet: fs}
}

func TestCreateLegacyTokenCommand(t *testing.T) {
	s, ctx := migratedStore(t), context.Background()
	var out, errOut bytes.Buffer
	err := createLegacyToken(ctx, s, createFlags(t, "--user", "alice", "--scope", "product:read,order:read", "--name", "export"), nil, &out, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(out.String())
	if !strings.HasPrefix(token, legacyTokenPrefix) || len(token) < 40 || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("stdout %q: want the token alone", out.String())
	}
	lt, err := s.GetLegacyToken(ctx, token, time.Now())
	if err != nil || lt.UserID != "alice" || lt.Scope != "product:read order:read" || lt.Name != "export" ||
		!strings.Contains(errOut.String(), lt.ID) || strings.Contains(errOut.String(), token) {
		t.Fatalf("stored %+v, %v; stderr %q", lt, err, errOut.String())
	}
	// An old system's token carried over from stdin.
	out.Reset()
	old := "0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"
	if err := createLegacyToken(ctx, s, createFlags(t, "--user", "bob", "--scope", "booking:read", "--token-stdin"), strings.NewReader(old+"\n"), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out.String()) != old {
		t.Fatalf("stdout %q", out.String())
	}
	if err := createLegacyToken(ctx, s, createFlags(t, "--user", "bob", "--scope", "booking:read", "--token-stdin"), strings.NewReader(old), io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "already stored") {
		t.Fatalf("duplicate: %v", err)
	}
	for name, tc := range map[string]struct {
		args  []string
		stdin string
		want  string
	}{
		"no user":        {[]string{"--scope", "a"}, "", "--user"},
		"no scope":       {[]string{"--user", "u"}, "", "--scope"},
		"bad scope":      {[]string{"--user", "u", "--scope", `a"b`}, "", "scope"},
		"bad lifetime":   {[]string{"--user", "u", "--scope", "a", "--expires", "-1h"}, "", "--expires"},
		"short stdin":    {[]string{"--user", "u", "--scope", "a", "--token-stdin"}, "short", "20 to 4096"},
		"JWT on stdin":   {[]string{"--user", "u", "--scope", "a", "--token-stdin"}, "aaaaaaaaaa.bbbbbbbbbb.cccccccccc", "JWT"},
		"space in stdin": {[]string{"--user", "u", "--scope", "a", "--token-stdin"}, "abcdefghij klmnopqrstuvwxyz", "not allowed"},
	} {
		err := createLegacyToken(ctx, s, createFlags(t, tc.args...), strings.NewReader(tc.stdin), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to mention %q", name, err, tc.want)
		}
	}
	var table bytes.Buffer
	if err := s.RevokeLegacyToken(ctx, lt.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := listLegacyTokens(ctx, s, "", &table); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(table.String()), "\n")
	if len(lines) != 3 || !strings.Contains(table.String(), lt.ID) || !strings.Contains(table.String(), "revoked") || strings.Contains(table.String(), token) {
		t.Fatalf("list:\n%s", table.String())
	}
}

// TestBearerLegacyTokens runs mcp_bearer with legacy_tokens in Caddy: a
// token created in the store is accepted with its user and scopes, the
// route's scope requirement applies, a revocation applies within the
// cache time, and without the option the same token is refused.
func TestBearerLegacyTokens(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "legacy.db")
	site := startSite(t, "\tcaddymcp {\n\t\tembedded_path "+dbPath+"\n\t}\n", `	mcp_bearer /mcp* {
		legacy_tokens
		scope product:read
	}
	mcp_bearer /plain* {
		scope product:read
	}
	respond "user={http.auth.user.id} client={http.auth.user.client_id} scope={http.auth.user.scope}"
`)

	s, err := store.OpenEmbedded(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := time.Now()
	mk := func(id, scope string) string {
		tok := legacyTokenPrefix + randomString(32)
		if err := s.CreateLegacyToken(ctx, tok, &store.LegacyToken{ID: id, UserID: "alice@example.com", Scope: scope,
			CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good, narrow := mk("lt_good", "product:read order:read"), mk("lt_narrow", "order:read")
	call := func(path, token string) (int, string, string) { return postBearer(t, site+path, token) }
	if code, body, _ := call("/mcp", good); code != 200 || body != "user=alice@example.com client=legacy:lt_good scope=product:read order:read" {
		t.Fatalf("legacy token: %d %q", code, body)
	}
	if code, _, chal := call("/mcp", narrow); code != 403 || !strings.Contains(chal, `error="insufficient_scope"`) {
		t.Fatalf("narrow token: %d %q", code, chal)
	}
	if code, _, chal := call("/mcp", legacyTokenPrefix+"unknown0123456789"); code != 401 || !strings.Contains(chal, `error="invalid_token"`) {
		t.Fatalf("unknown token: %d %q", code, chal)
	}
	if code, _, _ := call("/plain", good); code != 401 {
		t.Fatalf("legacy token where they are off: %d", code)
	}
	if err := s.RevokeLegacyToken(ctx, "lt_good", time.Now()); err != nil {
		t.Fatal(err)
	}
	// The revocation applies once the 5 s cache entry lapses; allow
	// generous slack for a loaded machine.
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _, _ := call("/mcp", good)
		if code == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoked legacy token still accepted: %d", code)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
