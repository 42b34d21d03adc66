package login

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestLoginRoundTrip(t *testing.T) {
	e := newEnv(t, envOptions{rules: []Rule{{Emails: []string{"alice@example.com"}, Scopes: []string{"booking:read", "order:read"}}}})
	op := e.op()
	authorize := "/oauth/authorize?client_id=abc&redirect_uri=http%3A%2F%2Flocalhost%3A9%2Fcb&state=client-state&scope=booking%3Aread+order%3Aread&code_challenge=x%2By"

	upstream := e.toProvider(authorize)
	if !strings.HasPrefix(upstream, op.srv.URL+"/authorize?") {
		t.Fatalf("sent to %s, want the provider's authorization endpoint", upstream)
	}
	if strings.Contains(upstream, "oauth") || strings.Contains(upstream, "client-state") {
		t.Errorf("the upstream URL leaks the pending request: %s", upstream)
	}
	back := e.callbackURL(upstream)
	q := op.lastAuthorize()
	for k, want := range map[string]string{
		"response_type":         "code",
		"client_id":             op.clientID,
		"redirect_uri":          e.app.URL + "/auth/callback/test",
		"scope":                 "openid email profile",
		"code_challenge_method": "S256",
	} {
		if got := q.Get(k); got != want {
			t.Errorf("upstream %s = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if len(q.Get(k)) < 22 { // ≥ 128 bits, base64url
			t.Errorf("upstream %s = %q: too short", k, q.Get(k))
		}
	}

	r := e.get(back)
	if r.status != http.StatusSeeOther || r.loc != e.app.URL+authorize {
		t.Fatalf("callback: status %d, location %q; want 303 to %s", r.status, r.loc, authorize)
	}
	if got := op.tokenAuth; got != "basic" {
		t.Errorf("client authentication %q, want basic (listed by discovery)", got)
	}
	r = e.get(r.loc)
	var got struct {
		ID, Email, URI string
		Scopes         []string
	}
	if err := json.Unmarshal([]byte(r.body), &got); err != nil || r.status != http.StatusOK {
		t.Fatalf("back at the application: status %d, body %s", r.status, r.body)
	}
	if got.URI != authorize {
		t.Errorf("came back to %q, want %q", got.URI, authorize)
	}
	if got.Email != "alice@example.com" || got.ID == "" || !slices.Equal(got.Scopes, []string{"booking:read", "order:read"}) {
		t.Errorf("current user %+v", got)
	}

	// The same person signing in again is the same user.
	first := got.ID
	e.login(LoginPath + "?" + url.Values{"return_to": {authorize}}.Encode())
	r = e.get(authorize)
	_ = json.Unmarshal([]byte(r.body), &got)
	if got.ID != first {
		t.Errorf("second login: user %q, want %q", got.ID, first)
	}

	// A failed exchange, whose error echoes the client secret, and an ID
	// token that does not verify.
	op.set(func(op *fakeOP) { op.failToken, op.failDetail = true, "client "+op.clientID+" secret "+op.secret })
	if r := e.login(LoginPath); r.status != http.StatusBadGateway {
		t.Errorf("failed exchange: status %d, want 502", r.status)
	}
	op.set(func(op *fakeOP) {
		op.failToken, op.failDetail = false, ""
		op.mutate = func(c jwt.MapClaims) { c["nonce"] = "another nonce" }
	})
	if r := e.login(LoginPath); r.status != http.StatusBadGateway {
		t.Errorf("ID token that does not verify: status %d, want 502", r.status)
	}

	// The audit log names the events and no secret.
	logs := e.logs.String()
	if !strings.Contains(logs, "login_succeeded") || !strings.Contains(logs, "audit=true") ||
		!strings.Contains(logs, "reason=invalid_response") {
		t.Errorf("no audit record of the logins:\n%s", logs)
	}
	secrets := []string{q.Get("state"), q.Get("nonce"), q.Get("code_challenge"), e.sessionCookie(e.client)}
	bq, _ := url.Parse(back)
	secrets = append(secrets, bq.Query().Get("code"))
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("the log holds a secret %q:\n%s", s, logs)
		}
	}
	// Neither the log nor any page holds the client secret or one of the
	// ID and access tokens the provider issued (the last ones with the
	// ID token that did not verify).
	if n := e.wantNoUpstreamSecret(); n != 3 {
		t.Errorf("the provider issued %d ID tokens, want 3", n)
	}
}

func TestLoginTLSCookies(t *testing.T) {
	tests := []struct {
		name       string
		tls        bool
		cookie     string
		want, deny []string
	}{
		{"https", true, SessionCookie, []string{"Path=/", "HttpOnly", "Secure", "SameSite=Lax", "Max-Age=604800"}, []string{"Domain="}},
		{"http", false, InsecureSessionCookie, []string{"Path=/", "HttpOnly", "SameSite=Lax"}, []string{"Domain=", "Secure"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{tls: tt.tls})
			r := e.login("/oauth/authorize?x=1")
			if r.status != http.StatusSeeOther {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			h := r.setCookieHeader(tt.cookie)
			if h == "" {
				t.Fatalf("no %s cookie in %q", tt.cookie, r.header.Values("Set-Cookie"))
			}
			for _, w := range tt.want {
				if !strings.Contains(h, w) {
					t.Errorf("cookie %q lacks %s", h, w)
				}
			}
			for _, d := range tt.deny {
				if strings.Contains(h, d) {
					t.Errorf("cookie %q has %s", h, d)
				}
			}
			if m := e.get(MePath); m.status != http.StatusOK {
				t.Errorf("/auth/me: %d", m.status)
			}
		})
	}
}

func TestDiscoveryIssuerMismatch(t *testing.T) {
	e := newEnv(t, envOptions{})
	op := e.op()
	op.set(func(op *fakeOP) { op.issuer = "https://evil.example" })
	r := e.get("/oauth/authorize?a=b")
	wantPage(t, r, http.StatusBadGateway, "Signing in with Test failed")
	if !strings.Contains(e.logs.String(), "evil.example") {
		t.Errorf("the log does not explain the mismatch:\n%s", e.logs.String())
	}
	// A failure is not cached: once the provider is fixed, login works,
	// and the document is then cached.
	op.set(func(op *fakeOP) { op.issuer = op.srv.URL })
	if r := e.login(LoginPath); r.status != http.StatusSeeOther {
		t.Fatalf("after the fix: %d %s", r.status, r.body)
	}
	e.login(LoginPath)
	if d, _ := op.hits(); d != 2 {
		t.Errorf("discovery fetched %d times, want 2", d)
	}
}

func TestIDTokenValidation(t *testing.T) {
	tests := []struct {
		name string
		rsa  bool
		op   func(t *testing.T, op *fakeOP)
		ok   bool
		why  string // in the log when !ok
	}{
		{name: "valid ES256", ok: true, op: func(*testing.T, *fakeOP) {}},
		{name: "valid RS256", rsa: true, ok: true, op: func(*testing.T, *fakeOP) {}},
		{name: "expired within leeway", ok: true, op: func(_ *testing.T, op *fakeOP) {
			op.mutate = func(c jwt.MapClaims) { c["exp"] = op.clock.Now().Add(-30 * time.Second).Unix() }
		}},
		{name: "several audiences with azp", ok: true, op: func(_ *testing.T, op *fakeOP) {
			op.mutate = func(c jwt.MapClaims) { c["aud"] = []string{op.clientID, "other"}; c["azp"] = op.clientID }
		}},
		{name: "bad signature", why: `verification error`, op: func(t *testing.T, op *fakeOP) {
			other := newECKey(t, op.key.kid)
			op.sign = func(c jwt.MapClaims) string { return other.sign(t, c) }
		}},
		{name: "wrong iss", why: `issuer`, op: func(_ *testing.T, op *fakeOP) {
			op.mutate = func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }
		}},
		{name: "wrong aud", why: `invalid audience`, op: func(_ *testing.T, op *fakeOP) {
			op.mutate = func(c jwt.MapClaims) { c["aud"] = "another-client" }
		}},
		{name: "several audiences, azp another", why: `azp`, op: func(_ *testing.T, op *fakeOP) {
			op.mutate = func(c jwt.MapClaims) { c["aud"] = []string{op.clientID, "other"}; c["azp"] = "other" }
		}},
		{name: "expired", why: `token is expired`, op: func(_ *testing.T, op *fakeOP) {
			op.mutate = func(c jwt.MapClaims) { c["exp"] = op.clock.Now().Add(-2 * time.Minute).Unix() }
		}},
		{name: "no exp", why: `exp claim is required`, op: func(_ *testing.T, op *fakeOP) {
			op.mutate = func(c jwt.MapClaims) { delete(c, "exp") }
		}},
		{name: "no iat", why: `no iat`, op: func(_ *testing.T, op *fakeOP) {
			op.mutate = func(c jwt.MapClaims) { delete(c, "iat") }
		}},
		{name: "iat in the future", why: `used before issued`, op: func(_ *testing.T, op *fakeOP) {
			op.mutate = func(c jwt.MapClaims) { c["iat"] = op.clock.Now().Add(time.Hour).Unix() }
		}},
		{name: "no nonce", why: `nonce mismatch`, op: func(_ *testing.T, op *fakeOP) {
			op.mutate = func(c jwt.MapClaims) { delete(c, "nonce") }
		}},
		{name: "wrong nonce", why: `nonce mismatch`, op: func(_ *testing.T, op *fakeOP) {
			op.mutate = func(c jwt.MapClaims) { c["nonce"] = "not-the-nonce" }
		}},
		{name: "no sub", why: `bad sub`, op: func(_ *testing.T, op *fakeOP) {
			op.mutate = func(c jwt.MapClaims) { delete(c, "sub") }
		}},
		{name: "alg none", why: `signing method none is invalid`, op: func(t *testing.T, op *fakeOP) {
			op.sign = func(c jwt.MapClaims) string {
				tok := jwt.NewWithClaims(jwt.SigningMethodNone, c)
				tok.Header["kid"] = op.key.kid
				s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
				if err != nil {
					t.Error(err)
				}
				return s
			}
		}},
		{name: "HS256 with the public key", why: `signing method HS256 is invalid`, rsa: true, op: func(t *testing.T, op *fakeOP) {
			secret := op.key.publicPEM(t)
			op.sign = func(c jwt.MapClaims) string {
				tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
				tok.Header["kid"] = op.key.kid
				s, err := tok.SignedString(secret)
				if err != nil {
					t.Error(err)
				}
				return s
			}
		}},
		{name: "RS256 header on an EC key", why: `is for ES256, not RS256`, op: func(t *testing.T, op *fakeOP) {
			rk := newRSAKey(t, op.key.kid)
			op.sign = func(c jwt.MapClaims) string { return rk.sign(t, c) }
		}},
		{name: "unknown kid", why: `no key \"unpublished\"`, op: func(t *testing.T, op *fakeOP) {
			other := newECKey(t, "unpublished")
			op.sign = func(c jwt.MapClaims) string { return other.sign(t, c) }
		}},
		{name: "token endpoint refuses", why: `invalid_grant`, op: func(_ *testing.T, op *fakeOP) { op.failToken = true }},
		{name: "no id_token", why: `no id_token`, op: func(_ *testing.T, op *fakeOP) {
			op.sign = func(jwt.MapClaims) string { return "" }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := envOptions{}
			if tt.rsa {
				o.keys = map[string]string{"test": "rsa"}
			}
			e := newEnv(t, o)
			op := e.op()
			op.set(func(op *fakeOP) { tt.op(t, op) })
			r := e.login("/oauth/authorize?a=1")
			if tt.ok {
				if r.status != http.StatusSeeOther || e.me(e.sessionCookie(e.client)).status != http.StatusOK {
					t.Fatalf("login failed: %d %s\n%s", r.status, r.body, e.logs.String())
				}
				return
			}
			wantPage(t, r, http.StatusBadGateway, "Signing in with Test failed")
			if !strings.Contains(e.logs.String(), tt.why) {
				t.Errorf("the log does not say %q:\n%s", tt.why, e.logs.String())
			}
			if r.cookie(InsecureSessionCookie) != nil || e.sessionCookie(e.client) != "" {
				t.Error("a session was opened")
			}
			if !strings.Contains(e.logs.String(), "login_denied") {
				t.Errorf("no audit record:\n%s", e.logs.String())
			}
		})
	}
}

func TestJWKSRotation(t *testing.T) {
	e := newEnv(t, envOptions{})
	op := e.op()
	if r := e.login(LoginPath); r.status != http.StatusSeeOther {
		t.Fatalf("first login: %d", r.status)
	}
	steps := []struct {
		name    string
		advance time.Duration
		change  func(op *fakeOP)
		ok      bool
		jwks    int // JWKS fetches so far
	}{
		{"rotated key: one refetch", 2 * time.Minute, func(op *fakeOP) {
			op.key = newECKey(t, "test-2")
			op.published = []map[string]string{op.key.jwk(t)}
		}, true, 2},
		{"known key: no fetch", 0, func(*fakeOP) {}, true, 2},
		{"unknown kid within a minute: no refetch", 10 * time.Second, func(op *fakeOP) {
			op.key = newECKey(t, "test-3")
		}, false, 2},
		{"unknown kid a minute later: refetch", time.Minute, func(*fakeOP) {}, false, 3},
		{"published at last", time.Minute, func(op *fakeOP) {
			op.published = append(op.published, op.key.jwk(t))
		}, true, 4},
	}
	for _, s := range steps {
		e.clock.Advance(s.advance)
		op.set(s.change)
		r := e.login(LoginPath)
		if ok := r.status == http.StatusSeeOther; ok != s.ok {
			t.Errorf("%s: status %d, want success %v", s.name, r.status, s.ok)
		}
		if _, j := op.hits(); j != s.jwks {
			t.Errorf("%s: %d JWKS fetches, want %d", s.name, j, s.jwks)
		}
	}
}

func TestCallbackState(t *testing.T) {
	const alpha = ProviderLoginPrefix + "alpha?return_to=%2Fhome"
	tests := []struct {
		name   string
		run    func(t *testing.T, e *env) result
		status int
		text   string
	}{
		{"replayed state", func(t *testing.T, e *env) result {
			back := e.callbackURL(e.toProvider(alpha))
			if r := e.get(back); r.status != http.StatusSeeOther {
				t.Fatalf("first use: %d", r.status)
			}
			return e.get(back)
		}, http.StatusBadRequest, "login expired, start again"},
		{"expired state", func(t *testing.T, e *env) result {
			back := e.callbackURL(e.toProvider(alpha))
			e.clock.Advance(10*time.Minute + time.Second)
			return e.get(back)
		}, http.StatusBadRequest, "login expired, start again"},
		{"unknown state", func(t *testing.T, e *env) result {
			back, _ := url.Parse(e.callbackURL(e.toProvider(alpha)))
			q := back.Query()
			q.Set("state", strings.Repeat("A", 43))
			back.RawQuery = q.Encode()
			return e.get(back.String())
		}, http.StatusBadRequest, "login expired, start again"},
		{"missing state", func(t *testing.T, e *env) result {
			return e.get(CallbackPrefix + "alpha?code=abc")
		}, http.StatusBadRequest, "login expired, start again"},
		{"state of another provider", func(t *testing.T, e *env) result {
			back := e.callbackURL(e.toProvider(ProviderLoginPrefix + "alpha"))
			return e.get(strings.Replace(back, CallbackPrefix+"alpha", CallbackPrefix+"beta", 1))
		}, http.StatusBadRequest, "does not belong to a sign-in with Beta"},
		{"callback in another browser", func(t *testing.T, e *env) result {
			back := e.callbackURL(e.toProvider(alpha))
			return e.do(e.newBrowser(), http.MethodGet, back, nil, nil)
		}, http.StatusBadRequest, "started in another browser"},
		{"no code", func(t *testing.T, e *env) result {
			back, _ := url.Parse(e.callbackURL(e.toProvider(alpha)))
			q := back.Query()
			q.Del("code")
			back.RawQuery = q.Encode()
			return e.get(back.String())
		}, http.StatusBadRequest, "no authorization code"},
		{"access denied upstream", func(t *testing.T, e *env) result {
			e.ops["alpha"].set(func(op *fakeOP) { op.deny = "access_denied" })
			r := e.get(e.callbackURL(e.toProvider(alpha)))
			e.ops["alpha"].set(func(op *fakeOP) { op.deny = "" })
			return r
		}, http.StatusForbidden, "error: access_denied"},
		{"other upstream error", func(t *testing.T, e *env) result {
			e.ops["alpha"].set(func(op *fakeOP) { op.deny = "<script>" })
			return e.get(e.callbackURL(e.toProvider(alpha)))
		}, http.StatusBadRequest, "error: unknown_error"},
		{"unknown provider", func(t *testing.T, e *env) result {
			return e.get(CallbackPrefix + "gamma?code=a&state=b")
		}, http.StatusNotFound, "no sign-in provider by that name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{providers: []string{"alpha", "beta"}})
			r := tt.run(t, e)
			wantPage(t, r, tt.status, tt.text)
			if r.cookie(InsecureSessionCookie) != nil {
				t.Error("a session cookie was set")
			}
		})
	}
}

func TestUpstreamErrorBurnsState(t *testing.T) {
	e := newEnv(t, envOptions{})
	op := e.op()
	op.set(func(op *fakeOP) { op.deny = "access_denied" })
	back, _ := url.Parse(e.callbackURL(e.toProvider("/oauth/authorize?a=1")))
	wantPage(t, e.get(back.String()), http.StatusForbidden, "access_denied")
	q := back.Query()
	q.Del("error")
	q.Set("code", "guessed")
	back.RawQuery = q.Encode()
	wantPage(t, e.get(back.String()), http.StatusBadRequest, "login expired")
}

func TestProviderPicker(t *testing.T) {
	e := newEnv(t, envOptions{providers: []string{"alpha", "beta"}})
	authorize := "/oauth/authorize?client_id=abc&state=s%20t&scope=a"
	r := e.get(authorize)
	if r.status != http.StatusFound || !strings.HasPrefix(r.loc, e.app.URL+LoginPath+"?return_to=") {
		t.Fatalf("Login: %d to %q, want the picker", r.status, r.loc)
	}
	if strings.Contains(r.loc, "authorize") {
		t.Errorf("the pending URL is in the picker URL: %s", r.loc)
	}
	id := strings.TrimPrefix(r.loc, e.app.URL+LoginPath+"?return_to=")
	page := e.get(r.loc)
	wantPage(t, page, http.StatusOK, "Sign in with Alpha")
	for _, name := range []string{"alpha", "beta"} {
		link := `href="/auth/login/` + name + `?return_to=` + id + `"`
		if !strings.Contains(page.body, link) {
			t.Errorf("the picker lacks %s:\n%s", link, page.body)
		}
	}
	if !strings.Contains(page.body, "Sign in with Beta") {
		t.Errorf("the picker lacks Beta")
	}
	// Choosing Beta, coming back and choosing Alpha still works.
	if up := e.toProvider(ProviderLoginPrefix + "beta?return_to=" + id); !strings.HasPrefix(up, e.ops["beta"].srv.URL) {
		t.Errorf("beta: sent to %s", up)
	}
	r = e.login(ProviderLoginPrefix + "alpha?return_to=" + id)
	if r.status != http.StatusSeeOther || r.loc != e.app.URL+authorize {
		t.Fatalf("callback: %d to %q, want %s", r.status, r.loc, authorize)
	}
	// After ten minutes the pending URL is gone: land on /auth/me.
	e.clock.Advance(11 * time.Minute)
	if r := e.login(ProviderLoginPrefix + "alpha?return_to=" + id); r.loc != e.app.URL+MePath {
		t.Errorf("expired return: to %q, want /auth/me", r.loc)
	}
}

func TestOpenRedirect(t *testing.T) {
	tests := []struct {
		name, returnTo, want string
	}{
		{"protocol-relative", "//evil.com", MePath},
		{"absolute", "https://evil.com", MePath},
		{"backslash", `/\evil.com`, MePath},
		{"tab", "/\t/evil.com", MePath},
		{"javascript", "javascript:alert(1)", MePath},
		{"empty", "", MePath},
		{"local", "/dashboard?tab=1&x=%2F", "/dashboard?tab=1&x=%2F"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			r := e.login(LoginPath + "?" + url.Values{"return_to": {tt.returnTo}}.Encode())
			if r.status != http.StatusSeeOther || r.loc != e.app.URL+tt.want {
				t.Errorf("status %d to %q, want %s", r.status, r.loc, tt.want)
			}
		})
	}
}

func TestBaseURL(t *testing.T) {
	e := newEnv(t, envOptions{config: func(c *Config) { c.BaseURL = "http://127.0.0.1:1/" }})
	// A login started on another host goes to the base URL first.
	r := e.get("/oauth/authorize?a=1")
	if r.status != http.StatusFound || !strings.HasPrefix(r.loc, "http://127.0.0.1:1"+LoginPath+"?return_to=") {
		t.Errorf("Login: %d to %q", r.status, r.loc)
	}
	r = e.get(ProviderLoginPrefix + "test?return_to=%2Fx")
	if r.status != http.StatusFound || r.loc != "http://127.0.0.1:1"+ProviderLoginPrefix+"test?return_to=%2Fx" {
		t.Errorf("start: %d to %q", r.status, r.loc)
	}
}

func TestRandomFailure(t *testing.T) {
	e := newEnv(t, envOptions{config: func(c *Config) { c.Random = failingReader{} }})
	wantPage(t, e.get("/oauth/authorize?a=1"), http.StatusInternalServerError, "could not complete")
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

// TestOnBaseBehindTLSProxy checks that a request arriving over plain HTTP
// from a proxy that terminated TLS for the base's host is on the base,
// while another host or an http base is not confused with it.
func TestOnBaseBehindTLSProxy(t *testing.T) {
	s := &Server{base: "https://mcp.example.com"}
	for target, want := range map[string]bool{
		"http://mcp.example.com/auth/login":      true,
		"https://mcp.example.com/auth/login":     true,
		"http://mcp.example.com:8080/auth/login": false,
		"http://other.example.com/auth/login":    false,
		"https://other.example.com/auth/login":   false,
		"http://mcp.example.com.evil/auth/login": false,
	} {
		r := httptest.NewRequest("GET", target, nil)
		if got := s.onBase(r); got != want {
			t.Errorf("onBase(%s) = %v, want %v", target, got, want)
		}
	}
}
