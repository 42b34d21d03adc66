package caddymcp

import (
	"context"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddymcp/caddymcp/caddymcp/bearer"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// countingUsers knows one user and counts the lookups.
type countingUsers struct {
	store.Users
	calls int
}

func (c *countingUsers) GetUser(_ context.Context, id string) (*store.User, error) {
	c.calls++
	if id != "u1" {
		return nil, store.ErrNotFound
	}
	return &store.User{ID: id, Email: "ada@example.com"}, nil
}

// TestLazyEmail: {http.auth.user.email} costs a lookup only when a
// placeholder asks for it, and one per request however often it is asked.
func TestLazyEmail(t *testing.T) {
	users := &countingUsers{}
	b := &BearerAuth{emails: bearer.NewEmails(users, nil)}
	repl := caddy.NewReplacer()
	repl.Map(b.lazyEmail(context.Background(), "u1"))
	if got := repl.ReplaceAll("{http.auth.user.id}", "-"); got != "-" || users.calls != 0 {
		t.Fatalf("another placeholder: %q after %d lookups, want no lookup", got, users.calls)
	}
	if got := repl.ReplaceAll("{http.auth.user.email} {http.auth.user.email}", ""); got != "ada@example.com ada@example.com" {
		t.Fatalf("email placeholders: %q", got)
	}
	if users.calls != 1 {
		t.Fatalf("%d lookups, want 1", users.calls)
	}
}
