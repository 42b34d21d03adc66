package caddymcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testflow"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testpg"
	"github.com/caddymcp/caddymcp/caddymcp/jose"
	"github.com/caddymcp/caddymcp/caddymcp/signing"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// toolsSite is an in-process Caddy serving mcp_bearer and mcp_tools on a
// free port, on PostgreSQL when CADDYMCP_TEST_DATABASE_URL is set (else
// the embedded store).
type toolsSite struct {
	base      string
	storeLine string
	// hc is the HTTP client of the site's MCP clients.
	hc *http.Client
}

// startToolsSite loads the site, with toolsBlock (subdirectives) inside
// mcp_tools, and stops Caddy when the test ends.
func startToolsSite(tb testing.TB, toolsBlock string) *toolsSite {
	tb.Helper()
	s := &toolsSite{base: fmt.Sprintf("http://127.0.0.1:%d", testflow.FreePort(tb)),
		storeLine: "embedded_path " + filepath.Join(tb.TempDir(), "tools.db"), hc: &http.Client{Transport: &http.Transport{}}}
	if os.Getenv(testpg.EnvVar) != "" {
		tb.Setenv("CADDYMCP_TOOLS_DSN", testpg.Schema(tb))
		s.storeLine = "database {env.CADDYMCP_TOOLS_DSN}"
	}
	if err := load(tb, s.config(tb, toolsBlock)); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { stopCaddy(tb) })
	return s
}

// config is the site's JSON config with toolsBlock inside mcp_tools.
func (s *toolsSite) config(tb testing.TB, toolsBlock string) []byte {
	tb.Helper()
	return adaptCaddyfile(tb, fmt.Sprintf("{\n\tadmin off\n\tlog {\n\t\tlevel ERROR\n\t}\n\tcaddymcp {\n\t\tissuer %s\n\t\t%s\n\t}\n}\n%s {\n\tmcp_bearer /mcp*\n\tmcp_tools {\n%s\n\t}\n}\n",
		s.base, s.storeLine, s.base, toolsBlock))
}

// store is the site's pooled store.
func (s *toolsSite) store(tb testing.TB) *pooledStore {
	tb.Helper()
	var ps *pooledStore
	stores.Range(func(_, v any) bool { ps, _ = v.(*pooledStore); return false })
	if ps == nil {
		tb.Fatal("no pooled store")
	}
	return ps
}

// seedProducts creates n products.
func (s *toolsSite) seedProducts(tb testing.TB, n int) {
	tb.Helper()
	ps := s.store(tb)
	for i := range n {
		now := time.Now()
		if err := ps.CreateProduct(context.Background(), &store.Product{ID: fmt.Sprintf("p%02d", i), SKU: fmt.Sprintf("SKU-%02d", i),
			Name: fmt.Sprintf("Product %02d", i), PriceMinor: 100, Currency: "EUR", Stock: 10,
			Audit: store.Audit{CreatedAt: now, UpdatedAt: now, CreatedBy: "seed", UpdatedBy: "seed"}}); err != nil {
			tb.Fatal(err)
		}
	}
}

// token mints an hour's access token for the MCP endpoint.
func (s *toolsSite) token(tb testing.TB, subject, scope string) string {
	tb.Helper()
	ks, err := s.store(tb).prepare(context.Background(), signing.Policy{RotateAfter: 30 * 24 * time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	token, err := ks.Sign(&jose.AccessClaims{RegisteredClaims: jwt.RegisteredClaims{Issuer: s.base, Subject: subject,
		Audience: jwt.ClaimStrings{s.base + "/mcp"}, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
		ID: subject + "-" + scope}, ClientID: "test", Scope: scope})
	if err != nil {
		tb.Fatal(err)
	}
	return token
}

// mcpClient is mcp-go's client with a token, on the last protocol version
// that has sessions; with id set it joins that session.
func (s *toolsSite) mcpClient(t *testing.T, token, id string) *client.Client {
	t.Helper()
	opts := []transport.StreamableHTTPCOption{transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}),
		transport.WithHTTPBasicClient(s.hc)}
	copts := []client.ClientOption{client.WithProtocolVersion("2025-11-25")}
	if id != "" {
		opts = append(opts, transport.WithSession(id))
		copts = append(copts, client.WithSession())
	}
	tr, err := transport.NewStreamableHTTP(s.base+"/mcp", opts...)
	if err != nil {
		t.Fatal(err)
	}
	tr.SetProtocolVersion("2025-11-25")
	c := client.NewClient(tr, copts...)
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if id == "" {
		if _, err := c.Initialize(context.Background(), mcp.InitializeRequest{}); err != nil {
			t.Fatalf("initialize: %v", err)
		}
		if c.GetSessionId() == "" {
			t.Fatal("initialize returned no session id")
		}
	}
	return c
}

// TestToolsSessionsAcrossReload runs MCP sessions through Caddy: a
// session works for its user only, and a config reload ends it (the
// module's Cleanup closes the sessions, including an open stream).
func TestToolsSessionsAcrossReload(t *testing.T) {
	site := startToolsSite(t, "\t\tsessions 15m")
	site.seedProducts(t, 3)
	alice, bob := site.token(t, "alice", "product:read"), site.token(t, "bob", "product:read")

	c := site.mcpClient(t, alice, "")
	id := c.GetSessionId()
	if err := testflow.ListProducts(c); err != nil {
		t.Fatalf("alice in her session: %v", err)
	}
	if err := testflow.ListProducts(site.mcpClient(t, bob, id)); !errors.Is(err, transport.ErrSessionTerminated) {
		t.Fatalf("bob in alice's session: %v, want 404", err)
	}
	if err := testflow.ListProducts(site.mcpClient(t, site.token(t, "alice", "product:read product:write"), id)); err != nil {
		t.Fatalf("alice with another token: %v", err)
	}

	// An open listening stream on the session…
	res := testflow.ListenStream(t, site.hc, site.base+"/mcp", alice, id)
	defer res.Body.Close()

	// …ends with the reload, and the session with it. (Were the
	// module's Cleanup to leave the session open, the read below would
	// never end.)
	if err := load(t, site.config(t, "\t\tsessions 20m")); err != nil {
		t.Fatalf("reloading: %v", err)
	}
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		t.Errorf("stream ended with %v", err)
	}
	site.hc.CloseIdleConnections() // they were to the old server
	if err := testflow.ListProducts(c); !errors.Is(err, transport.ErrSessionTerminated) {
		t.Errorf("alice's session after the reload: %v, want 404", err)
	}
	if err := testflow.ListProducts(site.mcpClient(t, alice, "")); err != nil {
		t.Errorf("a new session after the reload: %v", err)
	}
}

func TestToolsValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		tools   Tools
		wantErr string
	}{
		"default":              {Tools{}, ""},
		"sessions":             {Tools{Sessions: &ToolsSessions{}}, ""},
		"idle timeout":         {Tools{Sessions: &ToolsSessions{IdleTimeout: caddy.Duration(time.Minute)}}, ""},
		"negative idle":        {Tools{Sessions: &ToolsSessions{IdleTimeout: caddy.Duration(-time.Minute)}}, "negative idle_timeout"},
		"path with a wildcard": {Tools{Path: "/mcp*"}, "must start with '/'"},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.tools.Validate()
			if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Validate() = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
