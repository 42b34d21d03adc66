package tools

import (
	"crypto/rand"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/bearer"
	"github.com/mark3labs/mcp-go/server"
)

// TestSessionIdManager checks the binding where mcp-go meets it: the
// session id manager it resolves for each request sees only the
// requesting user's sessions, and the one it uses on its own (idle
// sweeper, shutdown) ends any session.
func TestSessionIdManager(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	table := newSessionTable(func() time.Time { return now }, rand.Reader, time.Minute)
	as := func(issuer, subject string) server.SessionIdManager {
		r := httptest.NewRequest("POST", "/mcp", nil)
		r = r.WithContext(bearer.WithPrincipal(r.Context(), &bearer.Principal{Issuer: issuer, Subject: subject}))
		return table.ResolveSessionIdManager(r)
	}
	alice, bob, otherAlice := as("https://a.example", "alice"), as("https://a.example", "bob"), as("https://b.example", "alice")

	id, second := alice.Generate(), alice.Generate()
	if id == "" || id == second {
		t.Fatalf("session ids %q and %q", id, second)
	}
	if _, err := alice.Validate(id); err != nil {
		t.Errorf("alice validating her session: %v", err)
	}
	for name, m := range map[string]server.SessionIdManager{"bob": bob, "alice of another issuer": otherAlice} {
		if _, err := m.Validate(id); err == nil {
			t.Errorf("%s validated alice's session", name)
		}
		if notAllowed, err := m.Terminate(id); !notAllowed || err != nil {
			t.Errorf("%s terminating alice's session: not allowed %v, %v", name, notAllowed, err)
		}
	}
	if _, err := as("", "").Validate(id); err == nil {
		t.Error("an empty principal validated alice's session")
	}
	noPrincipal := table.ResolveSessionIdManager(httptest.NewRequest("GET", "/mcp", nil))
	if noPrincipal.Generate() != "" {
		t.Error("a session was started without a principal")
	}
	if _, err := noPrincipal.Validate(id); err == nil {
		t.Error("a request without a principal validated a session")
	}

	if notAllowed, err := alice.Terminate(id); notAllowed || err != nil {
		t.Fatalf("alice ending her session: %v %v", notAllowed, err)
	}
	if _, err := alice.Validate(id); err == nil {
		t.Error("an ended session validated")
	}

	// Idle sessions end; mcp-go's own manager ends any session.
	id = alice.Generate()
	now = now.Add(time.Minute)
	if _, err := alice.Validate(id); err == nil {
		t.Error("an idle session validated")
	}
	id = bob.Generate()
	if notAllowed, err := table.ResolveSessionIdManager(nil).Terminate(id); notAllowed || err != nil {
		t.Fatalf("mcp-go ending a session: %v %v", notAllowed, err)
	}
	if table.len() != 1 { // alice's second, idle: mcp-go's sweeper ends it
		t.Errorf("%d sessions left, want 1", table.len())
	}

	// No user gets more than MaxSessionsPerUser, also when initialize
	// requests race past the gate.
	carol := as("https://a.example", "carol")
	for range MaxSessionsPerUser {
		if carol.Generate() == "" {
			t.Fatal("no session below the limit")
		}
	}
	if id := carol.Generate(); id != "" {
		t.Errorf("a session beyond the limit: %q", id)
	}
}
