package bearer_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddymcp/caddymcp/caddymcp/bearer"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testkeys"
	"github.com/caddymcp/caddymcp/caddymcp/signing"
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
	check := func() int {
		r := httptest.NewRequest("POST", "https://mcp.example.com/mcp", nil)
		r.TLS = tlsState()
		r.Header.Set("Authorization", "Bearer "+tok)
		if _, f := rs.Check(r); f != nil {
			return f.Status
		}
		return 200
	}
	if got := check(); got != 200 {
		t.Fatalf("first check: %d", got)
	}
	keys.off = true // a cached token needs no key
	if got := check(); got != 200 {
		t.Fatalf("cached check: %d", got)
	}
	revoked["jti-1"] = true // revocation still applies
	if got := check(); got != 401 {
		t.Fatalf("revoked cached token: %d", got)
	}
	revoked["jti-1"] = false
	now = t0.Add(time.Hour + 2*time.Second) // past exp + leeway: verified again
	if got := check(); got != 503 {
		t.Fatalf("expired cached token: %d, want a fresh verification (keys are off: 503)", got)
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
