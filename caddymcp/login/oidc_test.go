package login

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func TestParseKey(t *testing.T) {
	b64 := base64.RawURLEncoding.EncodeToString
	ec := newECKey(t, "ec").jwk(t)
	rs := newRSAKey(t, "rs").jwk(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw384, _ := p384.PublicKey.Bytes()
	// with returns base as a jwk with the given members replaced.
	with := func(base map[string]string, kv ...string) jwk {
		m := map[string]string{}
		for a, b := range base {
			m[a] = b
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return jwk{Kty: m["kty"], Kid: m["kid"], Use: m["use"], Alg: m["alg"], N: m["n"], E: m["e"], Crv: m["crv"], X: m["x"], Y: m["y"]}
	}
	tests := []struct {
		name string
		key  jwk
		alg  string // "" when refused
	}{
		{"EC P-256", with(ec, "kid", "ec"), "ES256"},
		{"EC without alg or use", with(ec, "alg", "", "use", ""), "ES256"},
		{"RSA", with(rs, "kid", "rs"), "RS256"},
		{"encryption key", with(ec, "use", "enc"), ""},
		{"EC with RS256", with(ec, "alg", "RS256"), ""},
		{"RSA with PS256", with(rs, "alg", "PS256"), ""},
		{"RSA 1024", with(rs, "n", b64(small.N.Bytes()), "e", b64(big.NewInt(int64(small.E)).Bytes())), ""},
		{"RSA even exponent", with(rs, "e", b64([]byte{2})), ""},
		{"EC P-384", jwk{Kty: "EC", Crv: "P-384", X: b64(raw384[1:49]), Y: b64(raw384[49:])}, ""},
		{"EC point off the curve", with(ec, "y", b64(make([]byte, 32))), ""},
		{"symmetric", jwk{Kty: "oct"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := parseKey(tt.key)
			if tt.alg == "" {
				if err == nil {
					t.Errorf("accepted as %s", k.alg)
				}
				return
			}
			if err != nil || k.alg != tt.alg {
				t.Errorf("parseKey = %v, %v; want %s", k.alg, err, tt.alg)
			}
		})
	}
}

func TestOversizedDiscovery(t *testing.T) {
	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"issuer":"` + strings.Repeat("x", 2<<20) + `"}`))
	}))
	t.Cleanup(huge.Close)
	e := newEnv(t, envOptions{config: func(c *Config) { c.Providers[0].Issuer = huge.URL }})
	wantPage(t, e.get(LoginPath), http.StatusBadGateway, "Signing in with Test failed")
	if !strings.Contains(e.logs.String(), "larger than 1048576 bytes") {
		t.Errorf("log:\n%s", e.logs.String())
	}
}

func TestConcurrentFirstLogins(t *testing.T) {
	e := newEnv(t, envOptions{})
	const n = 8
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e.newBrowser()
			resp, err := c.Get(e.app.URL + LoginPath)
			if err != nil {
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusFound {
			t.Errorf("login %d: status %d", i, s)
		}
	}
	if d, _ := e.op().hits(); d != 1 {
		t.Errorf("discovery fetched %d times, want once", d)
	}
}
