package oauth

import (
	"crypto/sha256"
	"sync"
	"time"
)

// verifiedCacheSize bounds the verified-token cache.
const verifiedCacheSize = 10000

// verifiedCache remembers the claims of tokens whose signature and claims
// were verified, keyed by a hash of the token (and the issuer and
// resource it was checked for), until they expire.
type verifiedCache struct {
	max int
	mu  sync.RWMutex
	m   map[[32]byte]cachedClaims
}

type cachedClaims struct {
	claims *AccessClaims
	until  time.Time
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{max: max, m: make(map[[32]byte]cachedClaims)}
}

func (c *verifiedCache) get(key string, now time.Time) (*AccessClaims, bool) {
	k := sha256.Sum256([]byte(key))
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return nil, false
	}
	return e.claims, true
}

// put caches claims until the token's expiry (plus the leeway the
// verifier allowed). When full, it first drops about a tenth of the
// entries (map order makes the choice arbitrary).
func (c *verifiedCache) put(key string, claims *AccessClaims, leeway time.Duration) {
	if claims.ExpiresAt == nil {
		return
	}
	c.putUntil(key, claims, claims.ExpiresAt.Add(leeway))
}

// putUntil caches claims until a given time.
func (c *verifiedCache) putUntil(key string, claims *AccessClaims, until time.Time) {
	k := sha256.Sum256([]byte(key))
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
	c.m[k] = cachedClaims{claims: claims, until: until}
}
