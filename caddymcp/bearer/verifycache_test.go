package bearer_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddymcp/caddymcp/caddymcp/bearer"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testkeys"
	"github.com/caddymcp/caddymcp/caddymcp/signing"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// switchableKeys lets a test take the keys away after a first check.
type switchableKeys struct {
	ks  *signing.KeySet
	off bool
}

func (s *switchableKeys) KeySet(context.Context) (*signing.KeySet, error) {
	if s.off {
		return nil, errors.New("keys unavailable")
	}
	return s.ks, nil
}

func TestVerifiedTokenCache(t *testing.T) {
	ks := testkeys.NewKeySet(t)
	keys := &switchableKeys{ks: ks}
	now := t0.Add(time.Minute)
	revoked := map[string]bool{}
	rs, err := bearer.NewResource(bearer.ResourceConfig{Resource: "/mcp", Keys: keys, Leeway: time.Second,
		Now:    func() time.Time { return now },
		Active: func(_ context.Context, jti string) (bool, error) { return !revoked[jti], nil }})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ks.Sign(testkeys.ValidClaims())
	if err != nil {
		t.Fatal(err)
	}
	check := func() int { return checkStatus(rs, tok) }
	if got := check(); got != 200 {
		t.Fatalf("first check: %d", got)
	}
	if got := check(); got != 200 {
		t.Fatalf("cached check: %d", got)
	}
	revoked["jti-1"] = true // revocation still applies
	if got := check(); got != 401 {
		t.Fatalf("revoked cached token: %d", got)
	}
	revoked["jti-1"] = false
	// A cached token is accepted only while its key is known to be
	// published: with the keys unreadable it is verified again.
	keys.off = true
	if got := check(); got != 503 {
		t.Fatalf("cached token without keys: %d, want a fresh verification (503)", got)
	}
	keys.off = false
	if got := check(); got != 200 {
		t.Fatalf("check with the keys back: %d", got)
	}
	keys.off = true
	now = t0.Add(time.Hour + 2*time.Second) // past exp + leeway: verified again
	if got := check(); got != 503 {
		t.Fatalf("expired cached token: %d, want a fresh verification (keys are off: 503)", got)
	}
}

// A token forged with a leaked key and used once must not outlive the
// key's withdrawal (security finding 1): a cache hit counts only while
// the key that signed the token is still published by its issuer, and
// never longer than VerifiedCacheTTL.
func TestCachedTokenEndsWithItsKey(t *testing.T) {
	check := func(t *testing.T, rs *bearer.Resource, tok string) int { return checkStatus(rs, tok) }
	newKey := func(t *testing.T) store.SigningKey {
		t.Helper()
		k, err := signing.GenerateSigningKey(rand.Reader, t0.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return *k
	}
	t.Run("local key withdrawn", func(t *testing.T) {
		leaked := testkeys.NewKeySet(t)
		keys := &switchableKeys{ks: leaked}
		now := t0.Add(time.Minute)
		rs, err := bearer.NewResource(bearer.ResourceConfig{Resource: "/mcp", Keys: keys, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		c := testkeys.ValidClaims()
		c.ExpiresAt = jwt.NewNumericDate(t0.Add(23 * time.Hour))
		tok, err := leaked.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		if got := check(t, rs, tok); got != 200 {
			t.Fatalf("first use: %d", got)
		}
		keys.ks = testkeys.NewKeySet(t) // mcp-keys rotate --compromised, reloaded
		if got := check(t, rs, tok); got != 401 {
			t.Fatalf("cached token of a withdrawn key: %d, want 401", got)
		}
	})
	t.Run("external key withdrawn", func(t *testing.T) {
		env := testkeys.NewRemoteEnv(t, "/realms/x", func(c *bearer.RemoteIssuerConfig) { c.RefreshInterval = time.Minute })
		env.IdP.AddKey(t, "k1", testkeys.SignerFor(t, "ES256"), "ES256")
		tok := env.IdP.Sign(t, "k1", "ES256", "at+jwt", env.Claims(nil))
		if _, f := env.Check(t, tok); f != nil {
			t.Fatalf("first use: %v", f)
		}
		env.IdP.RemoveKey("k1")
		env.IdP.AddKey(t, "k2", testkeys.SignerFor(t, "ES256"), "ES256")
		env.Now = env.Now.Add(2 * time.Minute) // the keys are fetched again
		if _, f := env.Check(t, tok); f == nil || f.Status != 401 {
			t.Fatalf("cached token of a withdrawn key: %v, want 401", f)
		}
	})
	t.Run("cached at most VerifiedCacheTTL", func(t *testing.T) {
		// The kid stays published but names another key: only a fresh
		// verification notices, and it must happen within the TTL.
		first := newKey(t)
		keys := &switchableKeys{ks: testkeys.NewKeySet(t, first)}
		now := t0.Add(time.Minute)
		rs, err := bearer.NewResource(bearer.ResourceConfig{Resource: "/mcp", Keys: keys, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := keys.ks.Sign(testkeys.ValidClaims())
		if err != nil {
			t.Fatal(err)
		}
		if got := check(t, rs, tok); got != 200 {
			t.Fatalf("first use: %d", got)
		}
		other := newKey(t)
		other.ID = first.ID
		keys.ks = testkeys.NewKeySet(t, other)
		now = now.Add(bearer.VerifiedCacheTTL - time.Second)
		if got := check(t, rs, tok); got != 200 {
			t.Fatalf("within the cache TTL: %d", got)
		}
		now = now.Add(2 * time.Second)
		if got := check(t, rs, tok); got != 401 {
			t.Fatalf("past the cache TTL: %d, want a fresh verification (401)", got)
		}
	})
}

// Local tokens live at most MaxTokenLifetime (security finding 1): a
// token forged with exp in 2100 is refused even with the real key.
func TestLocalTokenLifetime(t *testing.T) {
	ks := testkeys.NewKeySet(t)
	now := t0.Add(time.Minute)
	tests := []struct {
		name string
		cfg  time.Duration
		iat  *jwt.NumericDate
		exp  time.Time
		want int
	}{
		{"1h", 0, jwt.NewNumericDate(t0), t0.Add(time.Hour), 200},
		{"24h exactly", 0, jwt.NewNumericDate(t0), t0.Add(24 * time.Hour), 200},
		{"24h and a second", 0, jwt.NewNumericDate(t0), t0.Add(24*time.Hour + time.Second), 401},
		{"exp in 2100", 0, jwt.NewNumericDate(t0), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), 401},
		{"no iat", 0, nil, t0.Add(time.Hour), 401},
		{"configured 2h, 3h token", 2 * time.Hour, jwt.NewNumericDate(t0), t0.Add(3 * time.Hour), 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := bearer.NewResource(bearer.ResourceConfig{Resource: "/mcp", Keys: testkeys.Static{KS: ks},
				MaxTokenLifetime: tt.cfg, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			c := testkeys.ValidClaims()
			c.IssuedAt, c.ExpiresAt = tt.iat, jwt.NewNumericDate(tt.exp)
			tok, err := ks.Sign(c)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("POST", "https://mcp.example.com/mcp", nil)
			r.TLS = tlsState()
			r.Header.Set("Authorization", "Bearer "+tok)
			got := 200
			if _, f := rs.Check(r); f != nil {
				got = f.Status
			}
			if got != tt.want {
				t.Errorf("status %d, want %d", got, tt.want)
			}
		})
	}
}

func BenchmarkCheck(b *testing.B) {
	for _, cached := range []bool{false, true} {
		name := "uncached"
		if cached {
			name = "cached"
		}
		b.Run(name, func(b *testing.B) {
			ks := testkeys.NewKeySet(b)
			rs, _ := bearer.NewResource(bearer.ResourceConfig{Resource: "/mcp", Keys: testkeys.Static{KS: ks},
				Active: func(context.Context, string) (bool, error) { return true, nil }})
			now := time.Now()
			mint := func(i int) string {
				c := testkeys.ValidClaims()
				c.IssuedAt, c.ExpiresAt = jwt.NewNumericDate(now), jwt.NewNumericDate(now.Add(time.Hour))
				c.ID = time.Duration(i).String()
				tok, _ := ks.Sign(c)
				return tok
			}
			tokens := make([]string, 1000)
			for i := range tokens {
				tokens[i] = mint(i)
			}
			// The cached case reuses one request, so that it measures
			// Check alone.
			one := httptest.NewRequest("POST", "https://mcp.example.com/mcp", nil)
			one.TLS = tlsState()
			one.Header.Set("Authorization", "Bearer "+tokens[0])
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if cached {
					if _, f := rs.Check(one); f != nil {
						b.Fatal(f)
					}
					continue
				}
				tok := tokens[0]
				if !cached {
					tok = tokens[i%len(tokens)]
					if i%len(tokens) == 0 && i > 0 {
						b.StopTimer()
						rs, _ = bearer.NewResource(bearer.ResourceConfig{Resource: "/mcp", Keys: testkeys.Static{KS: ks},
							Active: func(context.Context, string) (bool, error) { return true, nil }})
						b.StartTimer()
					}
				}
				r := httptest.NewRequest("POST", "https://mcp.example.com/mcp", nil)
				r.TLS = tlsState()
				r.Header.Set("Authorization", "Bearer "+tok)
				if _, f := rs.Check(r); f != nil {
					b.Fatal(f)
				}
			}
		})
	}
}

// An expired token is accepted only within its issuer's leeway (security
// finding 2): 5 seconds for the local issuer, which shares the
// verifier's clock; the configured leeway (default 30 s) for an external
// one. The verified-token cache honours the same bound.
func TestExpiryLeeway(t *testing.T) {
	status := func(f *bearer.Failure) int {
		if f != nil {
			return f.Status
		}
		return 200
	}
	t.Run("local", func(t *testing.T) {
		ks := testkeys.NewKeySet(t)
		c := testkeys.ValidClaims()
		c.ExpiresAt = jwt.NewNumericDate(t0.Add(time.Minute)) // a 60 s token
		tok, err := ks.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		check := func(rs *bearer.Resource) int {
			r := httptest.NewRequest("POST", "https://mcp.example.com/mcp", nil)
			r.TLS = tlsState()
			r.Header.Set("Authorization", "Bearer "+tok)
			_, f := rs.Check(r)
			return status(f)
		}
		for _, tt := range []struct {
			after time.Duration // since exp
			want  int
		}{{4 * time.Second, 200}, {6 * time.Second, 401}, {3 * time.Second, 200}} {
			now := t0.Add(time.Minute + tt.after)
			rs, err := bearer.NewResource(bearer.ResourceConfig{Resource: "/mcp", Keys: testkeys.Static{KS: ks}, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			if got := check(rs); got != tt.want {
				t.Errorf("exp + %v, uncached: %d, want %d", tt.after, got, tt.want)
			}
		}
		// Cached before its expiry, refused past exp + 5 s all the same.
		now := t0.Add(30 * time.Second)
		rs, err := bearer.NewResource(bearer.ResourceConfig{Resource: "/mcp", Keys: testkeys.Static{KS: ks}, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		if got := check(rs); got != 200 {
			t.Fatalf("before exp: %d", got)
		}
		now = t0.Add(time.Minute + 3*time.Second) // 63 s after issue
		if got := check(rs); got != 200 {
			t.Fatalf("exp + 3 s, cached: %d", got)
		}
		now = t0.Add(time.Minute + 6*time.Second)
		if got := check(rs); got != 401 {
			t.Fatalf("exp + 6 s, cached: %d, want 401", got)
		}
		for _, bad := range []time.Duration{6 * time.Second, 30 * time.Second, -time.Second} {
			if _, err := bearer.NewResource(bearer.ResourceConfig{Resource: "/mcp", Leeway: bad}); err == nil {
				t.Errorf("local leeway %v accepted", bad)
			}
		}
	})
	t.Run("external", func(t *testing.T) {
		for _, tt := range []struct {
			name   string
			leeway time.Duration
			after  time.Duration
			want   int
		}{
			{"default, within", 0, 29 * time.Second, 200},
			{"default, past", 0, 31 * time.Second, 401},
			{"10 s, within", 10 * time.Second, 9 * time.Second, 200},
			{"10 s, past", 10 * time.Second, 11 * time.Second, 401},
		} {
			t.Run(tt.name, func(t *testing.T) {
				env := testkeys.NewRemoteEnv(t, "/realms/x", func(c *bearer.RemoteIssuerConfig) { c.Leeway = tt.leeway })
				env.IdP.AddKey(t, "k1", testkeys.SignerFor(t, "ES256"), "ES256")
				exp := t0.Add(2 * time.Minute)
				tok := env.IdP.Sign(t, "k1", "ES256", "at+jwt", env.Claims(func(c jwt.MapClaims) { c["exp"] = exp.Unix() }))
				env.Now = exp.Add(tt.after)
				if _, f := env.Check(t, tok); status(f) != tt.want {
					t.Errorf("uncached: %d, want %d", status(f), tt.want)
				}
				// The same, cached before the expiry.
				env2 := testkeys.NewRemoteEnv(t, "/realms/x", func(c *bearer.RemoteIssuerConfig) { c.Leeway = tt.leeway })
				env2.IdP.AddKey(t, "k1", testkeys.SignerFor(t, "ES256"), "ES256")
				tok = env2.IdP.Sign(t, "k1", "ES256", "at+jwt", env2.Claims(func(c jwt.MapClaims) { c["exp"] = exp.Unix() }))
				env2.Now = exp.Add(-time.Second)
				if _, f := env2.Check(t, tok); f != nil {
					t.Fatalf("before exp: %v", f)
				}
				env2.Now = exp.Add(tt.after)
				if _, f := env2.Check(t, tok); status(f) != tt.want {
					t.Errorf("cached: %d, want %d", status(f), tt.want)
				}
			})
		}
		for _, bad := range []time.Duration{-time.Second, 6 * time.Minute} {
			if _, err := bearer.NewRemoteIssuer(bearer.RemoteIssuerConfig{Issuer: "https://idp.example.com", Leeway: bad}); err == nil {
				t.Errorf("external leeway %v accepted", bad)
			}
		}
	})
}

// checkStatus sends tok to rs as a bearer token over TLS and returns the
// status of the answer: 200 when the token is accepted.
func checkStatus(rs *bearer.Resource, tok string) int {
	r := httptest.NewRequest("POST", "https://mcp.example.com/mcp", nil)
	r.TLS = tlsState()
	r.Header.Set("Authorization", "Bearer "+tok)
	if _, f := rs.Check(r); f != nil {
		return f.Status
	}
	return 200
}
