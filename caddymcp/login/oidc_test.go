package login

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestIDTokenAlgorithms: ID tokens are verified by the same policy as
// access tokens, so every asymmetric algorithm the resource server
// accepts signs a valid ID token, with the key the provider publishes
// for it (the key's parsing itself is tested in package jose).
func TestIDTokenAlgorithms(t *testing.T) {
	for _, alg := range []string{"ES256", "ES384", "ES512", "RS256", "RS512", "PS256", "PS384", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			key := newKeyFor(t, "k-"+alg, alg)
			e.op().set(func(op *fakeOP) {
				op.key = key
				op.published = []map[string]string{key.jwk(t)}
			})
			r := e.login(LoginPath)
			if r.status != http.StatusSeeOther || e.me(e.sessionCookie(e.client)).status != http.StatusOK {
				t.Fatalf("login with an %s ID token failed: %d %s\n%s", alg, r.status, r.body, e.logs.String())
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
