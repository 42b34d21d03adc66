package caddymcp

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// emailTTL is how long a user's email address is remembered for
// {http.auth.user.email}, so that a request costs no query.
const emailTTL = time.Minute

// maxEmails bounds the remembered addresses.
const maxEmails = 10000

// emailCache remembers the email addresses of the local users whose
// tokens mcp_bearer verified (caddymcp's access tokens do not carry one,
// so that clients cannot read it from them).
type emailCache struct {
	users store.Users
	mu    sync.Mutex
	m     map[string]cachedEmail
	now   func() time.Time
}

type cachedEmail struct {
	email string
	until time.Time
}

func newEmailCache(users store.Users) *emailCache {
	return &emailCache{users: users, m: map[string]cachedEmail{}, now: time.Now}
}

// lookup returns the email address of the user with this id, or "" for
// an unknown user (a token of another issuer) or when the database cannot
// say: the address is a convenience for the next handler, never a reason
// to refuse a request.
func (c *emailCache) lookup(ctx context.Context, userID string) string {
	if c == nil || userID == "" {
		return ""
	}
	now := c.now()
	c.mu.Lock()
	e, ok := c.m[userID]
	c.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.email
	}
	u, err := c.users.GetUser(ctx, userID)
	switch {
	case err == nil:
		e = cachedEmail{email: u.Email, until: now.Add(emailTTL)}
	case errors.Is(err, store.ErrNotFound):
		e = cachedEmail{until: now.Add(emailTTL)}
	default:
		return "" // not remembered: the next request asks again
	}
	c.mu.Lock()
	if len(c.m) >= maxEmails {
		clear(c.m)
	}
	c.m[userID] = e
	c.mu.Unlock()
	return e.email
}
