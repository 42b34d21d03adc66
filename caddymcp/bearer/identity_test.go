package bearer

import (
	"context"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// fakeUsers answers GetUser from a map and counts the calls.
type fakeUsers struct {
	users map[string]string // id -> email
	fail  bool
	calls int
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
	return &store.User{ID: id, Email: email}, nil
}

func TestEmails(t *testing.T) {
	users := &fakeUsers{users: map[string]string{"u1": "ada@example.com"}}
	now := time.Now()
	c := NewEmails(users, func() time.Time { return now })
	ctx := context.Background()
	for range 3 {
		if got := c.Lookup(ctx, "u1"); got != "ada@example.com" {
			t.Fatalf("lookup(u1) = %q", got)
		}
		if got := c.Lookup(ctx, "external-sub"); got != "" {
			t.Fatalf("lookup(unknown) = %q", got)
		}
	}
	if users.calls != 2 {
		t.Fatalf("GetUser called %d times, want 2 (answers, also negative, are remembered)", users.calls)
	}
	now = now.Add(EmailTTL + time.Second)
	users.users["u1"] = "ada@new.example"
	if got := c.Lookup(ctx, "u1"); got != "ada@new.example" {
		t.Fatalf("after the TTL: %q", got)
	}
	users.fail = true
	now = now.Add(EmailTTL + time.Second)
	if got := c.Lookup(ctx, "u1"); got != "" {
		t.Fatalf("database down: %q, want empty", got)
	}
	users.fail = false
	if got := c.Lookup(ctx, "u1"); got != "ada@new.example" || users.calls != 5 {
		t.Fatalf("a failure must not be remembered: %q after %d calls", got, users.calls)
	}
	var nilCache *Emails
	if nilCache.Lookup(ctx, "u1") != "" {
		t.Fatal("a nil cache answers nothing")
	}
}
