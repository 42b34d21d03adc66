package bearer

import (
	"context"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// fakeUsers answers GetUser from a map and counts the calls.
type fakeUsers struct {
	users      map[string]string // id -> email
	unverified map[string]bool   // ids whose email is not verified
	fail       bool
	calls      int
}

func (f *fakeUsers) UpsertUser(context.Context, *store.User) (*store.User, error) { return nil, nil }
func (f *fakeUsers) FindUsers(context.Context, string, int) ([]store.User, error) { return nil, nil }
func (f *fakeUsers) GetUser(_ context.Context, id string) (*store.User, error) {
	f.calls++
	if f.fail {
		return nil, store.ErrUnavailable
	}
	email, ok := f.users[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	return &store.User{ID: id, Email: email, EmailVerified: !f.unverified[id]}, nil
}

func TestEmails(t *testing.T) {
	users := &fakeUsers{users: map[string]string{"u1": "ada@example.com"}}
	now := time.Now()
	c := NewEmails(users, func() time.Time { return now })
	ctx := context.Background()
	const iss = "https://mcp.example.com"
	for range 3 {
		if got := c.Lookup(ctx, iss, "u1"); got != "ada@example.com" {
			t.Fatalf("lookup(u1) = %q", got)
		}
		if got := c.Lookup(ctx, iss, "external-sub"); got != "" {
			t.Fatalf("lookup(unknown) = %q", got)
		}
	}
	if users.calls != 2 {
		t.Fatalf("GetUser called %d times, want 2 (answers, also negative, are remembered)", users.calls)
	}
	now = now.Add(EmailTTL + time.Second)
	users.users["u1"] = "ada@new.example"
	if got := c.Lookup(ctx, iss, "u1"); got != "ada@new.example" {
		t.Fatalf("after the TTL: %q", got)
	}
	users.fail = true
	now = now.Add(EmailTTL + time.Second)
	if got := c.Lookup(ctx, iss, "u1"); got != "" {
		t.Fatalf("database down: %q, want empty", got)
	}
	users.fail = false
	if got := c.Lookup(ctx, iss, "u1"); got != "ada@new.example" || users.calls != 5 {
		t.Fatalf("a failure must not be remembered: %q after %d calls", got, users.calls)
	}
	var nilCache *Emails
	if nilCache.Lookup(ctx, iss, "u1") != "" {
		t.Fatal("a nil cache answers nothing")
	}
}

// TestEmailsVerifiedOnly: only verified addresses of local users, looked
// up only for the local issuer, remembered by issuer and subject
// (security finding 3).
func TestEmailsVerifiedOnly(t *testing.T) {
	users := &fakeUsers{users: map[string]string{"u1": "ada@example.com", "u2": "ceo@victim.example"},
		unverified: map[string]bool{"u2": true}}
	c := NewEmails(users, nil)
	ctx := context.Background()
	if got := c.Lookup(ctx, "https://a.example", "u2"); got != "" {
		t.Errorf("unverified address: %q", got)
	}
	if got := c.Of(ctx, &Principal{Issuer: "https://a.example", Subject: "u1", Local: true}); got != "ada@example.com" {
		t.Errorf("local principal: %q", got)
	}
	calls := users.calls
	if got := c.Of(ctx, &Principal{Issuer: "https://idp.example", Subject: "u1"}); got != "" || users.calls != calls {
		t.Errorf("external principal named like a local user: %q after %d lookups", got, users.calls-calls)
	}
	if got := c.Of(ctx, &Principal{Issuer: "https://idp.example", Subject: "x", Email: "kc@example.com"}); got != "kc@example.com" {
		t.Errorf("external principal with a verified address: %q", got)
	}
	c.Lookup(ctx, "https://b.example", "u1")
	if users.calls != calls+1 {
		t.Errorf("another issuer's entry was reused: %d lookups", users.calls-calls)
	}
}
