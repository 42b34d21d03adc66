package bearer_test

import (
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddymcp/caddymcp/caddymcp/bearer"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testkeys"
)

// TestRemoteIssuerTokens checks tokens of external authorization servers
// as Keycloak, Auth0, Entra ID and Okta issue them, and the ways they can
// be forged.
func tlsState() *tls.ConnectionState { return &tls.ConnectionState{} }

func TestRemoteIssuerTokens(t *testing.T) {
	ec := testkeys.ECKey(t, elliptic.P256())
	ec384 := testkeys.ECKey(t, elliptic.P384())
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	pemPub, _ := x509.MarshalPKIXPublicKey(&testkeys.RSAKey(t).PublicKey)
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pemPub})

	tests := []struct {
		name       string
		mod        func(*bearer.RemoteIssuerConfig)
		token      func(e *testkeys.RemoteEnv) string
		wantStatus int // 0: accepted
		wantSub    string
		wantClient string
		wantScope  string
	}{
		{"RFC 9068 token, RS256", nil, func(e *testkeys.RemoteEnv) string {
			return e.IdP.Sign(t, "rsa", "RS256", "at+jwt", e.Claims(nil))
		}, 0, "user-7", "cli", "product:read"},
		{"PS256 with an RSA key that names no alg", nil, func(e *testkeys.RemoteEnv) string {
			return e.IdP.Sign(t, "rsa", "PS256", "at+jwt", e.Claims(nil))
		}, 0, "user-7", "cli", "product:read"},
		{"ES256", nil, func(e *testkeys.RemoteEnv) string { return e.IdP.Sign(t, "ec", "ES256", "at+jwt", e.Claims(nil)) }, 0, "user-7", "cli", "product:read"},
		{"ES384 on P-384", nil, func(e *testkeys.RemoteEnv) string { return e.IdP.Sign(t, "ec384", "ES384", "at+jwt", e.Claims(nil)) }, 0, "user-7", "cli", "product:read"},
		{"EdDSA", nil, func(e *testkeys.RemoteEnv) string { return e.IdP.Sign(t, "ed", "EdDSA", "at+jwt", e.Claims(nil)) }, 0, "user-7", "cli", "product:read"},
		{"Keycloak-style typ JWT refused by default", nil, func(e *testkeys.RemoteEnv) string {
			return e.IdP.Sign(t, "rsa", "RS256", "JWT", e.Claims(nil))
		}, 401, "", "", ""},
		{"Keycloak-style typ JWT with accept_jwt_type, azp", func(c *bearer.RemoteIssuerConfig) { c.AcceptJWTType = true }, func(e *testkeys.RemoteEnv) string {
			return e.IdP.Sign(t, "rsa", "RS256", "JWT", e.Claims(func(c jwt.MapClaims) {
				delete(c, "client_id")
				c["azp"] = "kc-client"
				c["scope"] = "openid product:read"
			}))
		}, 0, "user-7", "kc-client", "openid product:read"},
		{"no typ with accept_jwt_type", func(c *bearer.RemoteIssuerConfig) { c.AcceptJWTType = true }, func(e *testkeys.RemoteEnv) string {
			return e.IdP.Sign(t, "rsa", "RS256", "", e.Claims(nil))
		}, 0, "user-7", "cli", "product:read"},
		{"Entra-style scp string, appid, audience by app id URI", func(c *bearer.RemoteIssuerConfig) {
			c.AcceptJWTType = true
			c.Audiences = []string{"api://mcp-app"}
		}, func(e *testkeys.RemoteEnv) string {
			return e.IdP.Sign(t, "rsa", "RS256", "JWT", e.Claims(func(c jwt.MapClaims) {
				delete(c, "client_id")
				delete(c, "scope")
				delete(c, "jti")
				c["aud"] = "api://mcp-app"
				c["appid"] = "entra-app"
				c["scp"] = "product:read booking:read"
			}))
		}, 0, "user-7", "entra-app", "product:read booking:read"},
		{"Okta-style scp array", nil, func(e *testkeys.RemoteEnv) string {
			return e.IdP.Sign(t, "rsa", "RS256", "at+jwt", e.Claims(func(c jwt.MapClaims) { delete(c, "scope"); c["scp"] = []string{"product:read", "order:read"} }))
		}, 0, "user-7", "cli", "product:read order:read"},
		{"audience not configured", nil, func(e *testkeys.RemoteEnv) string {
			return e.IdP.Sign(t, "rsa", "RS256", "at+jwt", e.Claims(func(c jwt.MapClaims) { c["aud"] = "api://mcp-app" }))
		}, 401, "", "", ""},
		{"wrong issuer", nil, func(e *testkeys.RemoteEnv) string {
			return e.IdP.Sign(t, "rsa", "RS256", "at+jwt", e.Claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }))
		}, 401, "", "", ""},
		{"issuer differs by a trailing slash", nil, func(e *testkeys.RemoteEnv) string {
			return e.IdP.Sign(t, "rsa", "RS256", "at+jwt", e.Claims(func(c jwt.MapClaims) { c["iss"] = e.IdP.Issuer + "/" }))
		}, 401, "", "", ""},
		{"expired", nil, func(e *testkeys.RemoteEnv) string {
			return e.IdP.Sign(t, "rsa", "RS256", "at+jwt", e.Claims(func(c jwt.MapClaims) { c["exp"] = t0.Unix() }))
		}, 401, "", "", ""},
		{"not yet valid", nil, func(e *testkeys.RemoteEnv) string {
			return e.IdP.Sign(t, "rsa", "RS256", "at+jwt", e.Claims(func(c jwt.MapClaims) { c["nbf"] = t0.Add(time.Hour).Unix() }))
		}, 401, "", "", ""},
		{"no sub", nil, func(e *testkeys.RemoteEnv) string {
			return e.IdP.Sign(t, "rsa", "RS256", "at+jwt", e.Claims(func(c jwt.MapClaims) { delete(c, "sub") }))
		}, 401, "", "", ""},
		{"scope of the wrong type", nil, func(e *testkeys.RemoteEnv) string {
			return e.IdP.Sign(t, "rsa", "RS256", "at+jwt", e.Claims(func(c jwt.MapClaims) { c["scope"] = 7 }))
		}, 401, "", "", ""},
		{"known kid, another key", nil, func(e *testkeys.RemoteEnv) string {
			return testkeys.SignToken(t, jwt.SigningMethodES256, "ec", e.Claims(nil), testkeys.ECKey(t, elliptic.P256()))
		}, 401, "", "", ""},
		{"ES256 token naming the RSA key", nil, func(e *testkeys.RemoteEnv) string {
			return testkeys.SignToken(t, jwt.SigningMethodES256, "rsa", e.Claims(nil), ec)
		}, 401, "", "", ""},
		{"HS256 with the RSA public key as secret", nil, func(e *testkeys.RemoteEnv) string {
			return testkeys.SignToken(t, jwt.SigningMethodHS256, "rsa", e.Claims(nil), rsaPEM)
		}, 401, "", "", ""},
		{"alg none", nil, func(e *testkeys.RemoteEnv) string {
			return testkeys.SignToken(t, jwt.SigningMethodNone, "rsa", e.Claims(nil), jwt.UnsafeAllowNoneSignatureType)
		}, 401, "", "", ""},
		{"RS256 with a key published for RS512 only", nil, func(e *testkeys.RemoteEnv) string {
			return e.IdP.Sign(t, "rsa512", "RS256", "at+jwt", e.Claims(nil))
		}, 401, "", "", ""},
		{"symmetric key in the JWKS is ignored", nil, func(e *testkeys.RemoteEnv) string {
			return testkeys.SignToken(t, jwt.SigningMethodHS256, "oct", e.Claims(nil), []byte("shared-secret-shared-secret-1234"))
		}, 401, "", "", ""},
		{"tampered payload", nil, func(e *testkeys.RemoteEnv) string {
			tok := e.IdP.Sign(t, "rsa", "RS256", "at+jwt", e.Claims(nil))
			parts := strings.Split(tok, ".")
			body, _ := json.Marshal(e.Claims(func(c jwt.MapClaims) { c["sub"] = "admin" }))
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(body) + "." + parts[2]
		}, 401, "", "", ""},
		{"truncated", nil, func(e *testkeys.RemoteEnv) string {
			tok := e.IdP.Sign(t, "rsa", "RS256", "at+jwt", e.Claims(nil))
			return tok[:len(tok)-10]
		}, 401, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := testkeys.NewRemoteEnv(t, "/realms/shop", tt.mod)
			e.IdP.AddKey(t, "rsa", testkeys.RSAKey(t), "")
			e.IdP.AddKey(t, "rsa512", testkeys.RSAKey(t), "RS512")
			e.IdP.AddKey(t, "ec", ec, "ES256")
			e.IdP.AddKey(t, "ec384", ec384, "")
			e.IdP.AddKey(t, "ed", ed, "EdDSA")
			e.IdP.ExtraJWKS = []map[string]string{{"kty": "oct", "kid": "oct", "k": base64.RawURLEncoding.EncodeToString([]byte("shared-secret-shared-secret-1234")), "alg": "HS256"}}
			p, f := e.Check(t, tt.token(e))
			if tt.wantStatus == 0 {
				if f != nil {
					t.Fatalf("refused: %d %s", f.Status, f.Error())
				}
				if p.Subject != tt.wantSub || p.ClientID != tt.wantClient || strings.Join(p.Scopes, " ") != tt.wantScope || p.Issuer != e.IdP.Issuer {
					t.Fatalf("principal = %+v", p)
				}
				return
			}
			if f == nil || f.Status != tt.wantStatus {
				t.Fatalf("got %+v, %+v; want status %d", p, f, tt.wantStatus)
			}
			if tt.wantStatus == 401 && !strings.Contains(f.Challenge, `error="invalid_token"`) {
				t.Fatalf("challenge %q", f.Challenge)
			}
		})
	}
}

// TestRemoteIssuerScopes checks that a route's scope requirement applies
// to external tokens as to local ones (MCP step-up).
func TestRemoteIssuerScopes(t *testing.T) {
	e := testkeys.NewRemoteEnv(t, "", nil, "order:write")
	e.IdP.AddKey(t, "ec", testkeys.ECKey(t, elliptic.P256()), "")
	_, f := e.Check(t, e.IdP.Sign(t, "ec", "ES256", "at+jwt", e.Claims(nil)))
	if f == nil || f.Status != 403 || !strings.Contains(f.Challenge, `scope="product:read order:write"`) {
		t.Fatalf("got %+v", f)
	}
}

// TestRemoteIssuerKeyRotation checks that a token signed with a key the
// issuer published after the last fetch is verified after a refetch, and
// that tokens naming unknown kids cannot make the resource fetch more than
// once per MinRefetch.
func TestRemoteIssuerKeyRotation(t *testing.T) {
	e := testkeys.NewRemoteEnv(t, "/tenant", nil)
	e.IdP.AddKey(t, "k1", testkeys.ECKey(t, elliptic.P256()), "ES256")
	if _, f := e.Check(t, e.IdP.Sign(t, "k1", "ES256", "at+jwt", e.Claims(nil))); f != nil {
		t.Fatal(f)
	}
	if n := e.IdP.JWKSFetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}
	// Unknown kids: the first one refetches at most once; the rest are
	// refused without a fetch.
	e.Now = e.Now.Add(time.Minute)
	for i := range 20 {
		tok := e.IdP.Sign(t, "k1", "ES256", "at+jwt", e.Claims(func(c jwt.MapClaims) { c["jti"] = "j" + string(rune('a'+i)) }))
		forged := strings.Replace(tok, strings.Split(tok, ".")[0], base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","kid":"x`+string(rune('a'+i))+`","typ":"at+jwt"}`)), 1)
		if _, f := e.Check(t, forged); f == nil || f.Status != 401 {
			t.Fatalf("forged kid accepted: %+v", f)
		}
	}
	if n := e.IdP.JWKSFetches.Load(); n != 2 {
		t.Fatalf("fetches after 20 unknown kids = %d, want 2", n)
	}
	// The issuer rotates; after MinRefetch the new kid is fetched.
	e.IdP.AddKey(t, "k2", testkeys.ECKey(t, elliptic.P256()), "ES256")
	e.Now = e.Now.Add(31 * time.Second)
	if _, f := e.Check(t, e.IdP.Sign(t, "k2", "ES256", "at+jwt", e.Claims(nil))); f != nil {
		t.Fatalf("rotated key refused: %+v", f)
	}
	if n := e.IdP.JWKSFetches.Load(); n != 3 {
		t.Fatalf("fetches = %d, want 3", n)
	}
}

// TestRemoteIssuerOutage checks that keys once fetched keep verifying
// while the issuer is down, and that without keys the answer is 503.
func TestRemoteIssuerOutage(t *testing.T) {
	e := testkeys.NewRemoteEnv(t, "", nil)
	e.IdP.AddKey(t, "k1", testkeys.ECKey(t, elliptic.P256()), "")
	e.IdP.Down.Store(true)
	_, f := e.Check(t, e.IdP.Sign(t, "k1", "ES256", "at+jwt", e.Claims(nil)))
	if f == nil || f.Status != 503 || f.Code != "temporarily_unavailable" {
		t.Fatalf("without keys: %+v", f)
	}
	e.IdP.Down.Store(false)
	e.Now = e.Now.Add(time.Minute)
	if _, f := e.Check(t, e.IdP.Sign(t, "k1", "ES256", "at+jwt", e.Claims(nil))); f != nil {
		t.Fatalf("after recovery: %+v", f)
	}
	e.IdP.Down.Store(true)
	e.Now = e.Now.Add(2 * time.Hour) // past the refresh interval
	tok := e.IdP.Sign(t, "k1", "ES256", "at+jwt", e.Claims(func(c jwt.MapClaims) {
		c["iat"], c["exp"], c["jti"] = e.Now.Unix(), e.Now.Add(time.Hour).Unix(), "later"
	}))
	if _, f := e.Check(t, tok); f != nil {
		t.Fatalf("stale keys must keep verifying while the issuer is down: %+v", f)
	}
}

// TestRemoteIssuerDiscovery checks where the keys are found and that the
// metadata must name the configured issuer exactly.
func TestRemoteIssuerDiscovery(t *testing.T) {
	sign := func(e *testkeys.RemoteEnv) string {
		e.IdP.AddKey(t, "k", testkeys.ECKey(t, elliptic.P256()), "")
		return e.IdP.Sign(t, "k", "ES256", "at+jwt", e.Claims(nil))
	}
	t.Run("RFC 8414 path insertion", func(t *testing.T) {
		e := testkeys.NewRemoteEnv(t, "/realms/a", nil)
		if _, f := e.Check(t, sign(e)); f != nil {
			t.Fatal(f)
		}
	})
	t.Run("OpenID Connect discovery", func(t *testing.T) {
		e := testkeys.NewRemoteEnv(t, "/realms/a", nil)
		e.IdP.OIDCOnly = true
		if _, f := e.Check(t, sign(e)); f != nil {
			t.Fatal(f)
		}
	})
	t.Run("issuer with a trailing slash", func(t *testing.T) {
		e := testkeys.NewRemoteEnv(t, "/", nil)
		if !strings.HasSuffix(e.IdP.Issuer, "/") {
			t.Fatal(e.IdP.Issuer)
		}
		if _, f := e.Check(t, sign(e)); f != nil {
			t.Fatal(f)
		}
	})
	t.Run("metadata naming another issuer", func(t *testing.T) {
		e := testkeys.NewRemoteEnv(t, "/realms/a", nil)
		e.IdP.MetaIssuer = "https://evil.example/realms/a"
		if _, f := e.Check(t, sign(e)); f == nil || f.Status != 503 {
			t.Fatalf("got %+v", f)
		}
		if n := e.IdP.JWKSFetches.Load(); n != 0 {
			t.Fatalf("keys fetched from an unverified metadata document: %d", n)
		}
	})
	t.Run("configured jwks_url", func(t *testing.T) {
		var idp *testkeys.IdP
		e := testkeys.NewRemoteEnv(t, "/nowhere", func(c *bearer.RemoteIssuerConfig) { c.JWKSURL = strings.Replace(c.Issuer, "/nowhere", "/keys", 1) })
		idp = e.IdP
		idp.MetaIssuer = "https://evil.example" // never read
		if _, f := e.Check(t, sign(e)); f != nil {
			t.Fatal(f)
		}
	})
	t.Run("oversized JWKS", func(t *testing.T) {
		e := testkeys.NewRemoteEnv(t, "", nil)
		e.IdP.HugeJWKS = true
		if _, f := e.Check(t, sign(e)); f == nil || f.Status != 503 {
			t.Fatalf("got %+v", f)
		}
	})
}

// TestLocalAndRemoteIssuers checks a resource that accepts its own
// authorization server's tokens and an external one's, and publishes both.
func TestLocalAndRemoteIssuers(t *testing.T) {
	idp := testkeys.NewIdP(t, "/realms/x")
	idp.AddKey(t, "k", testkeys.ECKey(t, elliptic.P256()), "")
	ri, err := bearer.NewRemoteIssuer(bearer.RemoteIssuerConfig{Issuer: idp.Issuer, Now: func() time.Time { return t0.Add(time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	ks := testkeys.NewKeySet(t)
	rs, err := bearer.NewResource(bearer.ResourceConfig{Resource: "/mcp", AuthorizationServers: []string{"https://mcp.example.com"},
		Remote: []*bearer.RemoteIssuer{ri}, Keys: testkeys.Static{KS: ks}, Now: func() time.Time { return t0.Add(time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "https://mcp.example.com/.well-known/oauth-protected-resource/mcp", nil)
	doc, err := rs.Metadata(r)
	if err != nil || strings.Join(doc.AuthorizationServers, " ") != "https://mcp.example.com "+idp.Issuer {
		t.Fatalf("authorization_servers = %v, %v", doc.AuthorizationServers, err)
	}
	local, err := ks.Sign(testkeys.ValidClaims())
	if err != nil {
		t.Fatal(err)
	}
	e := &testkeys.RemoteEnv{IdP: idp, RS: rs}
	remote := idp.Sign(t, "k", "ES256", "at+jwt", e.Claims(nil))
	for name, tok := range map[string]string{"local": local, "remote": remote} {
		if p, f := e.Check(t, tok); f != nil {
			t.Errorf("%s token refused: %+v", name, f)
		} else if name == "remote" && p.Issuer != idp.Issuer {
			t.Errorf("issuer %q", p.Issuer)
		}
	}
	// A token of the external issuer signed with the local key (same kid
	// space) is refused, and so is a local-issuer token signed by the
	// external issuer.
	forged := testkeys.ValidClaims()
	forged.Issuer = idp.Issuer
	if tok, _ := ks.Sign(forged); tok != "" {
		if _, f := e.Check(t, tok); f == nil {
			t.Error("external issuer's token signed with the local key accepted")
		}
	}
	tok := idp.Sign(t, "k", "ES256", "at+jwt", e.Claims(func(c jwt.MapClaims) { c["iss"] = "https://mcp.example.com" }))
	if _, f := e.Check(t, tok); f == nil {
		t.Error("local issuer's token signed by the external key accepted")
	}
}

func TestNewRemoteIssuerValidation(t *testing.T) {
	for _, cfg := range []bearer.RemoteIssuerConfig{
		{Issuer: "http://idp.example.com"},
		{Issuer: "https://idp.example.com?x=1"},
		{Issuer: "idp.example.com"},
		{Issuer: "https://idp.example.com", JWKSURL: "http://idp.example.com/keys"},
		{Issuer: "https://idp.example.com", Audiences: []string{"a b"}},
	} {
		if _, err := bearer.NewRemoteIssuer(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	if _, err := bearer.NewRemoteIssuer(bearer.RemoteIssuerConfig{Issuer: "https://tenant.auth0.com/", JWKSURL: "https://tenant.auth0.com/.well-known/jwks.json?v=1"}); err != nil {
		t.Error(err)
	}
}
