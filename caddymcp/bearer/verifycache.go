package bearer

import (
	"strings"
	"sync"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/jose"
)

// verifiedCacheSize bounds the verified-token cache.
const verifiedCacheSize = 10000

// VerifiedCacheTTL is the longest a verified token is remembered without
// checking its signature again, whatever its expiry: no more than the
// interval at which the local issuer's keys are reloaded
// (signing.ReloadInterval), so that nothing outlives a key rotation by
// more than that. A cached token is also accepted only while the key
// that signed it is still published (Resource.claims).
const VerifiedCacheTTL = 5 * time.Minute

// verifiedCache remembers the claims of tokens whose signature and claims
// were verified, until they expire or for VerifiedCacheTTL, whichever
// comes first, so that the steady-state cost of a
// request is a map lookup. It is keyed by the token itself (only tokens
// that verified are kept, so its size is bounded by what the issuers
// signed) and each entry records the origin and resource it was verified
// for, compared on every lookup.
type verifiedCache struct {
	max int
	mu  sync.RWMutex
	m   map[string]*cachedToken
}

// cachedToken is a verified token's claims, with what requests need from
// them prepared once.
type cachedToken struct {
	origin, resource string // what the token was verified for
	claims           *jose.AccessClaims
	// kid and alg name the key that signed the token, and remote its
	// issuer when it is not the local one; a legacy token has no key.
	kid, alg string
	remote   *RemoteIssuer
	legacy   bool
	scopes   []string // claims.Scope split; shared, never modified
	until    time.Time
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{max: max, m: make(map[string]*cachedToken)}
}

// get returns the entry of a token verified for origin and resource, if it
// has not expired at now.
func (c *verifiedCache) get(token, origin, resource string, now time.Time) (*cachedToken, bool) {
	c.mu.RLock()
	e, ok := c.m[token]
	c.mu.RUnlock()
	if !ok || e.origin != origin || e.resource != resource || !now.Before(e.until) {
		return nil, false
	}
	return e, true
}

// put caches a verified entry until its token's expiry (plus the leeway
// the verifier allowed), at most VerifiedCacheTTL after now, and returns
// it.
func (c *verifiedCache) put(token string, e *cachedToken, now time.Time, leeway time.Duration) *cachedToken {
	if e.claims.ExpiresAt == nil {
		return e // not cached: it would never expire
	}
	e.until = e.claims.ExpiresAt.Add(leeway)
	if limit := now.Add(VerifiedCacheTTL); limit.Before(e.until) {
		e.until = limit
	}
	c.store(token, e)
	return e
}

// drop forgets a token.
func (c *verifiedCache) drop(token string) {
	c.mu.Lock()
	delete(c.m, token)
	c.mu.Unlock()
}

// putLegacy caches a legacy token's claims until a given time.
func (c *verifiedCache) putLegacy(token, origin, resource string, claims *jose.AccessClaims, until time.Time) *cachedToken {
	e := newCachedToken(origin, resource, claims, until)
	e.legacy = true
	c.store(token, e)
	return e
}

func newCachedToken(origin, resource string, claims *jose.AccessClaims, until time.Time) *cachedToken {
	return &cachedToken{origin: origin, resource: resource, claims: claims, scopes: strings.Fields(claims.Scope), until: until}
}

// store adds an entry. When full, it first drops about a tenth of the
// entries (map order makes the choice arbitrary).
func (c *verifiedCache) store(token string, e *cachedToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		drop := c.max/10 + 1
		for key := range c.m {
			if drop == 0 {
				break
			}
			delete(c.m, key)
			drop--
		}
	}
	c.m[token] = e
}
