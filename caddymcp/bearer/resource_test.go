package bearer_test

import (
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddymcp/caddymcp/caddymcp/bearer"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testkeys"
	"github.com/caddymcp/caddymcp/caddymcp/internal/web"
	"github.com/caddymcp/caddymcp/caddymcp/jose"
	"github.com/caddymcp/caddymcp/caddymcp/signing"
)

func TestProtectedResourceMetadata(t *testing.T) {
	tests := []struct {
		name         string
		cfg          bearer.ResourceConfig
		host         string
		wantResource string
		wantPaths    []string
		wantAS       string
	}{
		{"path resource", bearer.ResourceConfig{Resource: "/mcp"}, "mcp.example.com",
			"https://mcp.example.com/mcp", []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"}, "https://mcp.example.com"},
		{"origin resource", bearer.ResourceConfig{}, "mcp.example.com",
			"https://mcp.example.com", []string{"/.well-known/oauth-protected-resource"}, "https://mcp.example.com"},
		{"path resource behind a TLS proxy", bearer.ResourceConfig{Resource: "/mcp", BaseOrigin: "https://mcp.example.com",
			AuthorizationServers: []string{"https://mcp.example.com"}}, "internal:8080",
			"https://mcp.example.com/mcp", []string{"/.well-known/oauth-protected-resource/mcp"}, "https://mcp.example.com"},
		{"absolute resource, external issuer",
			bearer.ResourceConfig{Resource: "https://api.example.com/mcp", AuthorizationServers: []string{"https://login.example.com/realms/x"}, ResourceName: "Shop"},
			"api.example.com", "https://api.example.com/mcp", []string{"/.well-known/oauth-protected-resource/mcp"}, "https://login.example.com/realms/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := bearer.NewResource(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range tt.wantPaths {
				if !rs.IsMetadataPath(p) {
					t.Fatalf("IsMetadataPath(%q) = false", p)
				}
				r := httptest.NewRequest("GET", "https://"+tt.host+p, nil)
				r.TLS = tlsState()
				w := httptest.NewRecorder()
				rs.ServeMetadata(w, r)
				if w.Code != 200 {
					t.Fatalf("%s: %d", p, w.Code)
				}
				m := testkeys.DecodeJSON(t, w)
				if m["resource"] != tt.wantResource {
					t.Errorf("%s: resource = %v, want %s", p, m["resource"], tt.wantResource)
				}
				as := m["authorization_servers"].([]any)
				if len(as) != 1 || as[0] != tt.wantAS {
					t.Errorf("authorization_servers = %v", as)
				}
				if bm := m["bearer_methods_supported"].([]any); len(bm) != 1 || bm[0] != "header" {
					t.Errorf("bearer_methods_supported = %v", bm)
				}
				if tt.cfg.ResourceName != "" && m["resource_name"] != tt.cfg.ResourceName {
					t.Errorf("resource_name = %v", m["resource_name"])
				}
			}
		})
	}
	if rs, _ := bearer.NewResource(bearer.ResourceConfig{Resource: "/mcp"}); rs.IsMetadataPath("/.well-known/oauth-protected-resource/other") {
		t.Error("a foreign path-suffixed URL is claimed")
	}
	for _, bad := range []bearer.ResourceConfig{
		{Resource: "mcp"}, {Resource: "http://example.com/mcp"}, {Resource: "https://h/mcp#x"}, {Resource: "/mcp?x=1"},
		{Resource: "//evil/mcp"}, {AuthorizationServers: []string{"https://as.example/"}}, {ResourceDocumentation: "docs"},
	} {
		if _, err := bearer.NewResource(bad); err == nil {
			t.Errorf("config %+v accepted", bad)
		}
	}
}

func TestCheckChallenges(t *testing.T) {
	rs, err := bearer.NewResource(bearer.ResourceConfig{Resource: "/mcp", Scopes: []string{"booking:read", "product:read"}})
	if err != nil {
		t.Fatal(err)
	}
	const meta = `resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`
	tests := []struct {
		name       string
		method     string
		headers    map[string][]string
		wantStatus int
		wantCode   string
		wantChal   []string
	}{
		{"no token", "POST", nil, 401, "unauthorized", []string{"Bearer " + meta, `scope="booking:read product:read"`}},
		{"other scheme", "POST", map[string][]string{"Authorization": {"Basic YTpi"}}, 401, "unauthorized", []string{"Bearer " + meta}},
		{"empty bearer", "POST", map[string][]string{"Authorization": {"Bearer "}}, 400, "invalid_request", []string{`error="invalid_request"`}},
		{"bad characters", "POST", map[string][]string{"Authorization": {"Bearer a\"b"}}, 400, "invalid_request", []string{`error="invalid_request"`}},
		{"two headers", "POST", map[string][]string{"Authorization": {"Bearer a", "Bearer b"}}, 400, "invalid_request", nil},
		{"oversized", "POST", map[string][]string{"Authorization": {"Bearer " + strings.Repeat("a", 9000)}}, 400, "invalid_request", nil},
		{"token without keys", "POST", map[string][]string{"Authorization": {"Bearer abc.def.ghi"}}, 401, "invalid_token", []string{`error="invalid_token"`, meta}},
		{"lowercase scheme", "GET", map[string][]string{"Authorization": {"bearer abc"}}, 401, "invalid_token", nil},
		{"plain OPTIONS is challenged", "OPTIONS", nil, 401, "unauthorized", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "https://mcp.example.com/mcp", nil)
			r.TLS = tlsState()
			for k, vs := range tt.headers {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			_, f := rs.Check(r)
			if f == nil {
				t.Fatal("request passed")
			}
			w := httptest.NewRecorder()
			f.Write(w)
			if w.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", w.Code, tt.wantStatus)
			}
			body := testkeys.DecodeJSON(t, w)
			if body["error"] != tt.wantCode {
				t.Errorf("error = %v, want %s", body["error"], tt.wantCode)
			}
			ch := w.Header().Get("WWW-Authenticate")
			if !strings.HasPrefix(ch, "Bearer ") {
				t.Errorf("challenge %q does not start with Bearer", ch)
			}
			for _, want := range tt.wantChal {
				if !strings.Contains(ch, want) {
					t.Errorf("challenge %q lacks %q", ch, want)
				}
			}
			if !strings.Contains(w.Header().Get("Access-Control-Expose-Headers"), "WWW-Authenticate") {
				t.Error("WWW-Authenticate is not exposed to browsers")
			}
			if w.Header().Get("Cache-Control") != "no-store" {
				t.Error("error is cacheable")
			}
		})
	}
	t.Run("missing-token body is the documented one", func(t *testing.T) {
		r := httptest.NewRequest("GET", "https://mcp.example.com/mcp", nil)
		r.TLS = tlsState()
		w := httptest.NewRecorder()
		_, f := rs.Check(r)
		f.Write(w)
		want := `{"error":"unauthorized","error_description":"Bearer token required. See WWW-Authenticate header for authentication details."}`
		if w.Body.String() != want {
			t.Errorf("body = %s", w.Body)
		}
	})
	// Security finding 8: Check never lets a preflight through (it has
	// no token); ServePreflight answers it.
	t.Run("preflight is answered, not passed", func(t *testing.T) {
		r := httptest.NewRequest("OPTIONS", "https://mcp.example.com/mcp", nil)
		r.TLS = tlsState()
		r.Header.Set("Origin", "http://localhost:6274")
		r.Header.Set("Access-Control-Request-Method", "POST")
		if !bearer.IsPreflight(r) {
			t.Fatal("not seen as a preflight")
		}
		if p, f := rs.Check(r); f == nil || f.Status != 401 || p != nil {
			t.Fatalf("Check(preflight) = %v, %v; want a 401 refusal", p, f)
		}
		w := httptest.NewRecorder()
		rs.ServePreflight(w, r)
		h := w.Header()
		if w.Code != 204 || h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Access-Control-Allow-Methods") != bearer.PreflightMethods ||
			h.Get("Access-Control-Allow-Headers") != web.CORSAllowHeaders || !strings.Contains(h.Get("Access-Control-Expose-Headers"), "WWW-Authenticate") {
			t.Fatalf("preflight answer: %d %v", w.Code, h)
		}
	})
}

func TestChallengeQuoting(t *testing.T) {
	got := web.Challenge("Bearer", web.ChallengeParams{Error: "invalid_token", Description: "bad \"x\" \\ y\r\nInjected: 1\x00é"})
	want := `Bearer error="invalid_token", error_description="bad \"x\" \\ yInjected: 1"`
	if got != want {
		t.Errorf("Challenge = %s, want %s", got, want)
	}
	if got := web.Challenge("Bearer", web.ChallengeParams{}); got != "Bearer" {
		t.Errorf("empty challenge = %q", got)
	}
}

func TestRequestOrigin(t *testing.T) {
	tests := []struct {
		host  string
		tls   bool
		want  string
		isErr bool
	}{
		{"example.com", true, "https://example.com", false},
		{"Example.COM:443", true, "https://example.com", false},
		{"example.com:80", false, "http://example.com", false},
		{"localhost:8443", true, "https://localhost:8443", false},
		{"[::1]:8443", true, "https://[::1]:8443", false},
		{"[::1]", true, "https://[::1]", false},
		{"127.0.0.1", false, "http://127.0.0.1", false},
		{"", true, "", true},
		{"exa mple.com", true, "", true},
		{"example.com:0", true, "", true},
		{"example.com:99999", true, "", true},
		{"example.com:x", true, "", true},
		{"a/b", true, "", true},
		{"evil.com@good.com", true, "", true},
		{"[::1", true, "", true},
		{"::1", true, "", true},
		{strings.Repeat("a", 300), true, "", true},
	}
	for _, tt := range tests {
		r := &http.Request{Host: tt.host}
		if tt.tls {
			r.TLS = tlsState()
		}
		got, err := web.RequestOrigin(r)
		if (err != nil) != tt.isErr || got != tt.want {
			t.Errorf("RequestOrigin(%q) = %q, %v; want %q", tt.host, got, err, tt.want)
		}
	}
}

func TestCheckVerifiesTokens(t *testing.T) {
	ks := testkeys.NewKeySet(t)
	now := t0.Add(time.Minute)
	const resource = "https://mcp.example.com/mcp"
	mint := func(mod func(c *jose.AccessClaims)) string {
		c := &jose.AccessClaims{
			RegisteredClaims: jwt.RegisteredClaims{Issuer: "https://mcp.example.com", Subject: "u1",
				Audience: jwt.ClaimStrings{resource}, IssuedAt: jwt.NewNumericDate(t0), ExpiresAt: jwt.NewNumericDate(t0.Add(time.Hour)), ID: "jti-1"},
			ClientID: "c1", Scope: "booking:read product:read",
		}
		if mod != nil {
			mod(c)
		}
		tok, err := ks.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	other := testkeys.NewKeySet(t)
	foreign, _ := other.Sign(&jose.AccessClaims{RegisteredClaims: jwt.RegisteredClaims{Issuer: "https://mcp.example.com", Subject: "u1",
		Audience: jwt.ClaimStrings{resource}, IssuedAt: jwt.NewNumericDate(t0), ExpiresAt: jwt.NewNumericDate(t0.Add(time.Hour)), ID: "j"}, ClientID: "c1"})
	revoked := map[string]bool{"jti-revoked": true}
	tests := []struct {
		name       string
		token      string
		required   []string
		all        bool
		activeErr  error
		wantStatus int
		wantChal   string
	}{
		{"valid", mint(nil), nil, false, nil, 0, ""},
		{"valid with one of the scopes", mint(nil), []string{"order:write", "product:read"}, false, nil, 0, ""},
		{"missing scope", mint(nil), []string{"booking:write"}, false, nil, 403, `error="insufficient_scope"`},
		{"step-up names held and needed scopes", mint(nil), []string{"booking:write"}, false, nil, 403, `scope="booking:read product:read booking:write"`},
		{"all of", mint(nil), []string{"booking:read", "order:read"}, true, nil, 403, `order:read`},
		{"all of held", mint(nil), []string{"booking:read", "product:read"}, true, nil, 0, ""},
		{"wrong audience", mint(func(c *jose.AccessClaims) { c.Audience = jwt.ClaimStrings{"https://mcp.example.com/other"} }), nil, false, nil, 401, `error="invalid_token"`},
		{"trailing slash is another resource", mint(func(c *jose.AccessClaims) { c.Audience = jwt.ClaimStrings{resource + "/"} }), nil, false, nil, 401, "invalid_token"},
		{"wrong issuer", mint(func(c *jose.AccessClaims) { c.Issuer = "https://evil.example" }), nil, false, nil, 401, "invalid_token"},
		{"expired", mint(func(c *jose.AccessClaims) { c.ExpiresAt = jwt.NewNumericDate(t0) }), nil, false, nil, 401, "invalid_token"},
		{"foreign key", foreign, nil, false, nil, 401, "invalid_token"},
		{"revoked", mint(func(c *jose.AccessClaims) { c.ID = "jti-revoked" }), nil, false, nil, 401, "revoked"},
		{"revocation check down: accepted", mint(nil), nil, false, errors.New("db down"), 0, ""},
		{"garbage", "a.b.c", nil, false, nil, 401, "invalid_token"},
		{"not yet valid", mint(func(c *jose.AccessClaims) { c.NotBefore = jwt.NewNumericDate(now.Add(time.Hour)) }), nil, false, nil, 401, "invalid_token"},
		{"helper control: valid", withHeader(t, ks, "", "typ", "at+jwt"), nil, false, nil, 0, ""},
		{"typ application/at+jwt", withHeader(t, ks, "", "typ", "application/at+jwt"), nil, false, nil, 0, ""},
		{"unknown kid", withHeader(t, ks, mint(nil), "kid", "nope"), nil, false, nil, 401, "invalid_token"},
		{"missing typ", withHeader(t, ks, mint(nil), "typ", nil), nil, false, nil, 401, "invalid_token"},
		{"wrong typ", withHeader(t, ks, mint(nil), "typ", "JWT"), nil, false, nil, 401, "invalid_token"},
		{"alg none", algNone(t, ks), nil, false, nil, 401, "invalid_token"},
		{"HS256 with the public key", hmacWithPublicKey(t, ks), nil, false, nil, 401, "invalid_token"},
		{"tampered payload", testkeys.Tamper(mint(nil)), nil, false, nil, 401, "invalid_token"},
		{"truncated", mint(nil)[:60], nil, false, nil, 401, "invalid_token"},
		{"8 KB of garbage", strings.Repeat("A", 8192), nil, false, nil, 401, "invalid_token"},
		{"another issuer's key with the same kid", sameKidOtherKey(t, ks), nil, false, nil, 401, "invalid_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := bearer.NewResource(bearer.ResourceConfig{Resource: "/mcp", Keys: testkeys.Static{KS: ks}, Required: tt.required,
				RequireAll: tt.all, Now: func() time.Time { return now },
				Active: func(_ context.Context, jti string) (bool, error) { return !revoked[jti], tt.activeErr }})
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("POST", resource, nil)
			r.TLS = tlsState()
			r.Header.Set("Authorization", "Bearer "+tt.token)
			p, f := rs.Check(r)
			if tt.wantStatus == 0 {
				if f != nil || p == nil || p.Subject != "u1" || p.ClientID != "c1" || !p.HasScope("booking:read") {
					t.Fatalf("refused: %+v %+v", p, f)
				}
				return
			}
			if f == nil || f.Status != tt.wantStatus || !strings.Contains(f.Challenge, tt.wantChal) || !strings.HasPrefix(f.Challenge, "Bearer ") {
				t.Fatalf("failure = %+v, want status %d and challenge containing %q", f, tt.wantStatus, tt.wantChal)
			}
		})
	}
	t.Run("keys unavailable: 503", func(t *testing.T) {
		rs, _ := bearer.NewResource(bearer.ResourceConfig{Resource: "/mcp", Keys: testkeys.Static{Err: errors.New("down")}})
		r := httptest.NewRequest("POST", resource, nil)
		r.TLS = tlsState()
		r.Header.Set("Authorization", "Bearer "+mint(nil))
		if _, f := rs.Check(r); f == nil || f.Status != 503 {
			t.Fatalf("failure = %+v", f)
		}
	})
	ctx := bearer.WithPrincipal(context.Background(), &bearer.Principal{Subject: "x"})
	if p, ok := bearer.PrincipalFrom(ctx); !ok || p.Subject != "x" {
		t.Error("principal lost on the context")
	}
	if _, ok := bearer.PrincipalFrom(context.Background()); ok {
		t.Error("principal found on an empty context")
	}
}

// withHeader signs valid claims with the key set's key and one header
// value changed (nil removes it).
func withHeader(t *testing.T, ks *signing.KeySet, _ string, name string, value any) string {
	t.Helper()
	return testkeys.SignToken(t, jwt.SigningMethodES256, ks.SigningKeyID(), testkeys.ValidClaims(), ks.Signer(),
		func(h map[string]any) {
			if value == nil {
				delete(h, name)
			} else {
				h[name] = value
			}
		})
}

func algNone(t *testing.T, ks *signing.KeySet) string {
	t.Helper()
	return testkeys.SignToken(t, jwt.SigningMethodNone, ks.SigningKeyID(), testkeys.ValidClaims(), jwt.UnsafeAllowNoneSignatureType)
}

func hmacWithPublicKey(t *testing.T, ks *signing.KeySet) string {
	t.Helper()
	pub, _ := ks.PublicKey(ks.SigningKeyID())
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return testkeys.SignToken(t, jwt.SigningMethodHS256, ks.SigningKeyID(), testkeys.ValidClaims(), der)
}

func sameKidOtherKey(t *testing.T, ks *signing.KeySet) string {
	t.Helper()
	c := testkeys.ValidClaims()
	c.Issuer = "https://other-issuer.example"
	return testkeys.SignToken(t, jwt.SigningMethodES256, ks.SigningKeyID(), c, testkeys.ECKey(t, elliptic.P256()))
}
