package bearer

// The identity a verified request carries beyond its token: the email
// address of a local user, and the claims of a legacy opaque token.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/jose"
	"github.com/caddymcp/caddymcp/caddymcp/store"
	"github.com/golang-jwt/jwt/v5"
)

// EmailTTL is how long a user's email address is remembered for
// {http.auth.user.email}, so that a request costs no query.
const EmailTTL = time.Minute

// maxEmails bounds the remembered addresses.
const maxEmails = 10000

// Emails remembers the verified email addresses of the local users whose
// tokens the resource verified (caddymcp's access tokens do not carry
// one, so that clients cannot read it from them), by issuer and subject.
type Emails struct {
	users store.Users
	mu    sync.Mutex
	m     map[emailKey]cachedEmail
	now   func() time.Time
}

type emailKey struct{ issuer, subject string }

type cachedEmail struct {
	email string
	until time.Time
}

// NewEmails returns an empty cache over users; now is the clock
// (default time.Now).
func NewEmails(users store.Users, now func() time.Time) *Emails {
	if now == nil {
		now = time.Now
	}
	return &Emails{users: users, m: map[emailKey]cachedEmail{}, now: now}
}

// Of returns the verified email address of a principal, or "": the
// address a token of an external issuer carries (Principal.Email, set
// only when verified), else, for a token of the local issuer only, the
// address of the local user, if the provider that user signed in with
// verified it. The subject of an external token is never looked up
// among local users: it names someone else.
func (c *Emails) Of(ctx context.Context, p *Principal) string {
	switch {
	case p.Email != "":
		return p.Email
	case !p.Local:
		return ""
	}
	return c.Lookup(ctx, p.Issuer, p.Subject)
}

// Lookup returns the verified email address of the local user with this
// id, whose token the issuer signed, or "" for an unknown user, an
// address the provider did not verify, or when the database cannot say:
// the address is a convenience for the next handler, never a reason to
// refuse a request.
func (c *Emails) Lookup(ctx context.Context, issuer, userID string) string {
	if c == nil || userID == "" {
		return ""
	}
	key := emailKey{issuer, userID}
	now := c.now()
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.email
	}
	u, err := c.users.GetUser(ctx, userID)
	switch {
	case err == nil && u.EmailVerified:
		e = cachedEmail{email: u.Email, until: now.Add(EmailTTL)}
	case err == nil, errors.Is(err, store.ErrNotFound):
		e = cachedEmail{until: now.Add(EmailTTL)}
	default:
		return "" // not remembered: the next request asks again
	}
	c.mu.Lock()
	if len(c.m) >= maxEmails {
		clear(c.m)
	}
	c.m[key] = e
	c.mu.Unlock()
	return e.email
}

// LegacyLookup returns the ResourceConfig.Legacy of the opaque access
// tokens of the system that predates OAuth, stored in st: a found token
// gives its user, scope and expiry; an unknown, expired or revoked one
// an error wrapping jose.ErrInvalidToken.
func LegacyLookup(st store.LegacyTokens, now func() time.Time) func(context.Context, string) (*jose.AccessClaims, error) {
	if now == nil {
		now = time.Now
	}
	return func(ctx context.Context, token string) (*jose.AccessClaims, error) {
		lt, err := st.GetLegacyToken(ctx, token, now())
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%w: unknown legacy token", jose.ErrInvalidToken)
		}
		if err != nil {
			return nil, err
		}
		return &jose.AccessClaims{
			RegisteredClaims: jwt.RegisteredClaims{Subject: lt.UserID, ExpiresAt: jwt.NewNumericDate(lt.ExpiresAt),
				IssuedAt: jwt.NewNumericDate(lt.CreatedAt)},
			ClientID: "legacy:" + lt.ID,
			Scope:    lt.Scope,
		}, nil
	}
}
