package tools_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/caddymcp/caddymcp/caddymcp/bearer"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testclock"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testflow"
	"github.com/caddymcp/caddymcp/caddymcp/tools"
)

const testIssuer = "https://auth.example"

// sessionSite serves a tools server with sessions over real HTTP. The
// bearer token stands for the principal: "user" is that user of
// testIssuer, "user@issuer" that user of another issuer, and anything
// after a '/' names the client (another token of the same user).
type sessionSite struct {
	srv   *tools.Server
	url   string
	clock *testclock.Clock
}

const idle = 10 * time.Minute

func newSessionSite(t *testing.T) *sessionSite {
	t.Helper()
	c := testclock.New(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	srv, err := tools.New(tools.Config{Shop: stores(t)["embedded"](t), Sessions: true, SessionIdleTimeout: idle, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			srv.ServeHTTP(w, r)
			return
		}
		token, clientID, _ := strings.Cut(token, "/")
		user, issuer, ok := strings.Cut(token, "@")
		if !ok {
			issuer = testIssuer
		}
		p := &bearer.Principal{Issuer: issuer, Subject: user, ClientID: clientID, Scopes: allScopes}
		srv.ServeHTTP(w, r.WithContext(bearer.WithPrincipal(r.Context(), p)))
	}))
	t.Cleanup(hs.Close)
	return &sessionSite{srv: srv, url: hs.URL + "/mcp", clock: c}
}

// client is mcp-go's client for a user, on the last protocol version
// that has sessions; with id set it joins that session instead of
// starting one.
func (s *sessionSite) client(t *testing.T, token, id string) *client.Client {
	t.Helper()
	opts := []transport.StreamableHTTPCOption{transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token})}
	copts := []client.ClientOption{client.WithProtocolVersion("2025-11-25")}
	if id != "" {
		opts = append(opts, transport.WithSession(id))
		copts = append(copts, client.WithSession())
	}
	tr, err := transport.NewStreamableHTTP(s.url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	tr.SetProtocolVersion("2025-11-25")
	c := client.NewClient(tr, copts...)
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

// connect starts a session for a user with mcp-go's client.
func (s *sessionSite) connect(t *testing.T, token string) *client.Client {
	t.Helper()
	c := s.client(t, token, "")
	if _, err := c.Initialize(context.Background(), mcp.InitializeRequest{}); err != nil {
		t.Fatalf("initialize as %s: %v", token, err)
	}
	if !strings.HasPrefix(c.GetSessionId(), "mcp_") {
		t.Fatalf("initialize returned session id %q", c.GetSessionId())
	}
	return c
}

// raw sends a request on the MCP endpoint and returns its status.
func (s *sessionSite) raw(t *testing.T, method, token, id, body string) int {
	t.Helper()
	status, _ := s.rawSession(t, method, token, id, body)
	return status
}

// rawSession sends a request on the MCP endpoint and returns its status
// and the session id it returned.
func (s *sessionSite) rawSession(t *testing.T, method, token, id, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	if id != "" {
		req.Header.Set("Mcp-Session-Id", id)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") || method != "GET" {
		_, _ = io.Copy(io.Discard, res.Body) // a listening stream would not end
	}
	return res.StatusCode, res.Header.Get("Mcp-Session-Id")
}

const listBody = `{"jsonrpc":"2.0","id":7,"method":"tools/list"}`

// responseBody is a client's answer to a request of the server.
const responseBody = `{"jsonrpc":"2.0","id":3,"result":{"content":"x"}}`
const initBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

func TestSessionsBelongToTheirUser(t *testing.T) {
	s := newSessionSite(t)
	alice := s.connect(t, "alice")
	id := alice.GetSessionId()
	if err := testflow.ListProducts(alice); err != nil {
		t.Fatalf("alice in her session: %v", err)
	}

	// Someone else with alice's session id: the session does not exist
	// for them, whatever the method, and it survives their attempts.
	for _, other := range []string{"bob", "alice@https://other-issuer.example"} {
		if err := testflow.ListProducts(s.client(t, other, id)); !errors.Is(err, transport.ErrSessionTerminated) {
			t.Errorf("%s calling a tool in alice's session: %v, want 404", other, err)
		}
		for _, method := range []string{"POST", "GET", "DELETE"} {
			if got := s.raw(t, method, other, id, listBody); got != http.StatusNotFound {
				t.Errorf("%s %s in alice's session: %d, want 404", other, method, got)
			}
		}
		if got := s.raw(t, "POST", other, id, responseBody); got != http.StatusNotFound {
			t.Errorf("%s answering in alice's session: %d, want 404", other, got)
		}
	}
	// The same user with another token (another client, a refreshed
	// token) is at home.
	if err := testflow.ListProducts(s.client(t, "alice/another-client", id)); err != nil {
		t.Errorf("alice with another token: %v", err)
	}
	if err := testflow.ListProducts(alice); err != nil {
		t.Errorf("alice after the others: %v", err)
	}

	// Requests other than initialize need the header; unknown ids are 404.
	for _, method := range []string{"POST", "GET", "DELETE"} {
		if got := s.raw(t, method, "alice", "", listBody); got != http.StatusBadRequest {
			t.Errorf("%s without a session id: %d, want 400", method, got)
		}
		if got := s.raw(t, method, "alice", "mcp_unknown", listBody); got != http.StatusNotFound {
			t.Errorf("%s with an unknown session id: %d, want 404", method, got)
		}
	}
	if got := s.raw(t, "POST", "", id, listBody); got != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", got)
	}

	// DELETE by its owner ends it, for everyone.
	if n := s.srv.Sessions(); n != 1 {
		t.Fatalf("%d sessions, want 1", n)
	}
	if got := s.raw(t, "DELETE", "alice", id, ""); got != http.StatusOK {
		t.Fatalf("alice ending her session: %d", got)
	}
	if err := testflow.ListProducts(alice); !errors.Is(err, transport.ErrSessionTerminated) {
		t.Errorf("alice after ending her session: %v, want 404", err)
	}
	if n := s.srv.Sessions(); n != 0 {
		t.Errorf("%d sessions after DELETE, want 0", n)
	}

}

func TestSessionsIdleOut(t *testing.T) {
	s := newSessionSite(t)
	alice := s.connect(t, "alice")
	// Each request restarts the idle time.
	for range 3 {
		s.clock.Advance(idle - time.Second)
		if err := testflow.ListProducts(alice); err != nil {
			t.Fatalf("within the idle timeout: %v", err)
		}
	}
	s.clock.Advance(idle)
	if err := testflow.ListProducts(alice); !errors.Is(err, transport.ErrSessionTerminated) {
		t.Fatalf("after the idle timeout: %v, want 404", err)
	}
	if n := s.srv.Sessions(); n != 0 {
		t.Errorf("%d sessions after idling out, want 0", n)
	}
	// A new session works.
	if err := testflow.ListProducts(s.connect(t, "alice")); err != nil {
		t.Errorf("a new session: %v", err)
	}
}

func TestSessionsPerUserLimit(t *testing.T) {
	s := newSessionSite(t)
	var ids []string
	for i := range tools.MaxSessionsPerUser {
		status, id := s.rawSession(t, "POST", "alice", "", initBody)
		if status != http.StatusOK || id == "" {
			t.Fatalf("initialize %d: %d, session %q", i, status, id)
		}
		ids = append(ids, id)
	}
	if got := s.raw(t, "POST", "alice", "", initBody); got != http.StatusTooManyRequests {
		t.Fatalf("initialize over the limit: %d, want 429", got)
	}
	// Other users are not affected.
	s.connect(t, "bob")
	// Ending a session makes room for one more.
	if got := s.raw(t, "DELETE", "alice", ids[0], ""); got != http.StatusOK {
		t.Fatalf("ending a session: %d", got)
	}
	if got := s.raw(t, "POST", "alice", "", initBody); got != http.StatusOK {
		t.Fatalf("initialize after ending one: %d", got)
	}
	if got := s.raw(t, "POST", "alice", "", initBody); got != http.StatusTooManyRequests {
		t.Fatalf("initialize over the limit again: %d, want 429", got)
	}
	// So does idling: all but the last session idle out.
	s.clock.Advance(idle - time.Second)
	if got := s.raw(t, "POST", "alice", ids[len(ids)-1], listBody); got != http.StatusOK {
		t.Fatalf("using the last session: %d", got)
	}
	s.clock.Advance(time.Second)
	if got := s.raw(t, "POST", "alice", "", initBody); got != http.StatusOK {
		t.Fatalf("initialize after sessions idled out: %d", got)
	}
	if n := s.srv.Sessions(); n != 3 { // alice's last and newest, bob's
		t.Errorf("%d sessions, want 3", n)
	}
}

func TestSessionsEndOnClose(t *testing.T) {
	s := newSessionSite(t)
	alice := s.connect(t, "alice")
	// A listening stream (GET) on the session stays open until the
	// server closes the session.
	res := testflow.ListenStream(t, http.DefaultClient, s.url, "alice", alice.GetSessionId())
	defer res.Body.Close()
	if err := s.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, bufio.NewReader(res.Body)); err != nil {
		t.Errorf("stream ended with %v", err)
	}
	if n := s.srv.Sessions(); n != 0 {
		t.Errorf("%d sessions after Close, want 0", n)
	}
	if err := testflow.ListProducts(alice); !errors.Is(err, transport.ErrSessionTerminated) {
		t.Errorf("after Close: %v, want 404", err)
	}
}

// TestSessionsAndTheCurrentProtocol checks that protocol version
// 2026-07-28, which has no sessions, works unchanged on a server with
// sessions, and that a stateless server hands out no session ids.
func TestSessionsAndTheCurrentProtocol(t *testing.T) {
	s := newSessionSite(t)
	c, err := client.NewStreamableHttpClient(s.url, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer alice"}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Initialize(context.Background(), mcp.InitializeRequest{})
	if err != nil || !mcp.IsModernProtocol(res.ProtocolVersion) || c.GetSessionId() != "" {
		t.Fatalf("current protocol: %v %v, session %q", res, err, c.GetSessionId())
	}
	if err := testflow.ListProducts(c); err != nil {
		t.Errorf("current protocol: %v", err)
	}

	srv, err := tools.New(tools.Config{Shop: stores(t)["embedded"](t)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	stateless := &env{t: t, srv: srv, h: srv}
	w := stateless.request("POST", "/mcp", initBody, allScopes, nil)
	if w.Code != 200 || w.Header().Get("Mcp-Session-Id") != "" {
		t.Errorf("stateless initialize: %d, session %q", w.Code, w.Header().Get("Mcp-Session-Id"))
	}
	if w := stateless.request("POST", "/mcp", listBody, allScopes, map[string]string{"MCP-Protocol-Version": "2025-11-25"}); w.Code != 200 {
		t.Errorf("stateless request without a session: %d", w.Code)
	}
	if w := stateless.request("GET", "/mcp", "", allScopes, map[string]string{"MCP-Protocol-Version": "2025-11-25"}); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("stateless GET: %d, want 405 (nothing to listen for)", w.Code)
	}
}
