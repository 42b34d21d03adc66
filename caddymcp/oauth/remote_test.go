package oauth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddymcp/caddymcp/caddymcp/oauth"
)

// testIdP is an external authorization server on loopback: it publishes
// metadata and a JWKS, and signs tokens with its keys.
type testIdP struct {
	srv        *httptest.Server
	issuer     string
	mu         sync.Mutex
	keys       map[string]crypto.Signer // by kid
	algs       map[string]string        // alg published per kid ("" = none)
	extraJWKS  []map[string]string      // raw extra entries
	jwksFetch  atomic.Int32
	metaIssuer string // issuer its metadata claims; default: issuer
	down       atomic.Bool
	oidcOnly   bool // serve only /.well-known/openid-configuration
	hugeJWKS   bool
}

func newTestIdP(t *testing.T, issuerPath string) *testIdP {
	t.Helper()
	idp := &testIdP{keys: map[string]crypto.Signer{}, algs: map[string]string{}}
	mux := http.NewServeMux()
	meta := func(w http.ResponseWriter, r *http.Request) {
		iss := idp.metaIssuer
		if iss == "" {
			iss = idp.issuer
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": iss, "jwks_uri": idp.srv.URL + "/keys"})
	}
	p := strings.TrimSuffix(issuerPath, "/")
	mux.HandleFunc("/.well-known/oauth-authorization-server"+p, func(w http.ResponseWriter, r *http.Request) {
		if idp.oidcOnly {
			http.NotFound(w, r)
			return
		}
		meta(w, r)
	})
	mux.HandleFunc(p+"/.well-known/openid-configuration", meta)
	mux.HandleFunc("/keys", func(w http.ResponseWriter, r *http.Request) {
		idp.jwksFetch.Add(1)
		if idp.down.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		if idp.hugeJWKS {
			_, _ = w.Write([]byte(`{"keys":[],"pad":"` + strings.Repeat("x", 2<<20) + `"}`))
			return
		}
		idp.mu.Lock()
		defer idp.mu.Unlock()
		var keys []any
		for kid, k := range idp.keys {
			keys = append(keys, jwkOf(t, k.Public(), kid, idp.algs[kid]))
		}
		for _, e := range idp.extraJWKS {
			keys = append(keys, e)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	})
	idp.srv = httptest.NewServer(mux)
	t.Cleanup(idp.srv.Close)
	idp.issuer = idp.srv.URL + issuerPath
	return idp
}

func (idp *testIdP) addKey(t *testing.T, kid string, k crypto.Signer, publishedAlg string) {
	t.Helper()
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.keys[kid] = k
	idp.algs[kid] = publishedAlg
}

// sign signs claims with the key kid under alg and header typ.
func (idp *testIdP) sign(t *testing.T, kid, alg, typ string, claims jwt.MapClaims) string {
	t.Helper()
	idp.mu.Lock()
	k := idp.keys[kid]
	idp.mu.Unlock()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(alg), claims)
	if typ == "" {
		delete(tok.Header, "typ")
	} else {
		tok.Header["typ"] = typ
	}
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func jwkOf(t *testing.T, pub crypto.PublicKey, kid, alg string) map[string]string {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	m := map[string]string{"kid": kid, "use": "sig"}
	if alg != "" {
		m["alg"] = alg
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", b64(k.N.Bytes()), b64(big.NewInt(int64(k.E)).Bytes())
	case *ecdsa.PublicKey:
		raw, _ := k.Bytes()
		size := (len(raw) - 1) / 2
		m["kty"], m["crv"], m["x"], m["y"] = "EC", k.Curve.Params().Name, b64(raw[1:1+size]), b64(raw[1+size:])
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", b64(k)
	default:
		t.Fatalf("unsupported key %T", pub)
	}
	if kid == "" {
		delete(m, "kid")
	}
	return m
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

// testRSAKey is generated once: RSA generation is slow under -race.
func testRSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	rsaOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return rsaKey
}

func testECKey(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type remoteEnv struct {
	idp   *testIdP
	rs    *oauth.Resource
	now   time.Time
	clock func() time.Time
}

const remoteResource = "https://mcp.example.com/mcp"

func newRemoteEnv(t *testing.T, issuerPath string, mod func(*oauth.RemoteIssuerConfig), required ...string) *remoteEnv {
	t.Helper()
	e := &remoteEnv{idp: newTestIdP(t, issuerPath), now: t0.Add(time.Minute)}
	var mu sync.Mutex
	e.clock = func() time.Time { mu.Lock(); defer mu.Unlock(); return e.now }
	cfg := oauth.RemoteIssuerConfig{Issuer: e.idp.issuer, Now: e.clock}
	if mod != nil {
		mod(&cfg)
	}
	ri, err := oauth.NewRemoteIssuer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.rs, err = oauth.NewResource(oauth.ResourceConfig{Resource: "/mcp", Remote: []*oauth.RemoteIssuer{ri},
		Required: required, Now: e.clock, Keys: staticKeys{ks: newKeySet(t)}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *remoteEnv) claims(mod func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{"iss": e.idp.issuer, "sub": "user-7", "aud": []string{remoteResource},
		"iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix(), "jti": "remote-1", "client_id": "cli", "scope": "product:read"}
	if mod != nil {
		mod(c)
	}
	return c
}

func (e *remoteEnv) check(t *testing.T, token string) (*oauth.Principal, *oauth.Failure) {
	t.Helper()
	r := httptest.NewRequest("POST", "https://mcp.example.com/mcp", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return e.rs.Check(r)
}

// TestRemoteIssuerTokens checks tokens of external authorization servers
// as Keycloak, Auth0, Entra ID and Okta issue them, and the ways they can
// be forged.
func TestRemoteIssuerTokens(t *testing.T) {
	ec := testECKey(t, elliptic.P256())
	ec384 := testECKey(t, elliptic.P384())
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	pemPub, _ := x509.MarshalPKIXPublicKey(&testRSAKey(t).PublicKey)
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pemPub})

	tests := []struct {
		name       string
		mod        func(*oauth.RemoteIssuerConfig)
		token      func(e *remoteEnv) string
		wantStatus int // 0: accepted
		wantSub    string
		wantClient string
		wantScope  string
	}{
		{"RFC 9068 token, RS256", nil, func(e *remoteEnv) string {
			return e.idp.sign(t, "rsa", "RS256", "at+jwt", e.claims(nil))
		}, 0, "user-7", "cli", "product:read"},
		{"PS256 with an RSA key that names no alg", nil, func(e *remoteEnv) string {
			return e.idp.sign(t, "rsa", "PS256", "at+jwt", e.claims(nil))
		}, 0, "user-7", "cli", "product:read"},
		{"ES256", nil, func(e *remoteEnv) string { return e.idp.sign(t, "ec", "ES256", "at+jwt", e.claims(nil)) }, 0, "user-7", "cli", "product:read"},
		{"ES384 on P-384", nil, func(e *remoteEnv) string { return e.idp.sign(t, "ec384", "ES384", "at+jwt", e.claims(nil)) }, 0, "user-7", "cli", "product:read"},
		{"EdDSA", nil, func(e *remoteEnv) string { return e.idp.sign(t, "ed", "EdDSA", "at+jwt", e.claims(nil)) }, 0, "user-7", "cli", "product:read"},
		{"Keycloak-style typ JWT refused by default", nil, func(e *remoteEnv) string {
			return e.idp.sign(t, "rsa", "RS256", "JWT", e.claims(nil))
		}, 401, "", "", ""},
		{"Keycloak-style typ JWT with accept_jwt_type, azp", func(c *oauth.RemoteIssuerConfig) { c.AcceptJWTType = true }, func(e *remoteEnv) string {
			return e.idp.sign(t, "rsa", "RS256", "JWT", e.claims(func(c jwt.MapClaims) {
				delete(c, "client_id")
				c["azp"] = "kc-client"
				c["scope"] = "openid product:read"
			}))
		}, 0, "user-7", "kc-client", "openid product:read"},
		{"no typ with accept_jwt_type", func(c *oauth.RemoteIssuerConfig) { c.AcceptJWTType = true }, func(e *remoteEnv) string {
			return e.idp.sign(t, "rsa", "RS256", "", e.claims(nil))
		}, 0, "user-7", "cli", "product:read"},
		{"Entra-style scp string, appid, audience by app id URI", func(c *oauth.RemoteIssuerConfig) {
			c.AcceptJWTType = true
			c.Audiences = []string{"api://mcp-app"}
		}, func(e *remoteEnv) string {
			return e.idp.sign(t, "rsa", "RS256", "JWT", e.claims(func(c jwt.MapClaims) {
				delete(c, "client_id")
				delete(c, "scope")
				delete(c, "jti")
				c["aud"] = "api://mcp-app"
				c["appid"] = "entra-app"
				c["scp"] = "product:read booking:read"
			}))
		}, 0, "user-7", "entra-app", "product:read booking:read"},
		{"Okta-style scp array", nil, func(e *remoteEnv) string {
			return e.idp.sign(t, "rsa", "RS256", "at+jwt", e.claims(func(c jwt.MapClaims) { delete(c, "scope"); c["scp"] = []string{"product:read", "order:read"} }))
		}, 0, "user-7", "cli", "product:read order:read"},
		{"audience not configured", nil, func(e *remoteEnv) string {
			return e.idp.sign(t, "rsa", "RS256", "at+jwt", e.claims(func(c jwt.MapClaims) { c["aud"] = "api://mcp-app" }))
		}, 401, "", "", ""},
		{"wrong issuer", nil, func(e *remoteEnv) string {
			return e.idp.sign(t, "rsa", "RS256", "at+jwt", e.claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }))
		}, 401, "", "", ""},
		{"issuer differs by a trailing slash", nil, func(e *remoteEnv) string {
			return e.idp.sign(t, "rsa", "RS256", "at+jwt", e.claims(func(c jwt.MapClaims) { c["iss"] = e.idp.issuer + "/" }))
		}, 401, "", "", ""},
		{"expired", nil, func(e *remoteEnv) string {
			return e.idp.sign(t, "rsa", "RS256", "at+jwt", e.claims(func(c jwt.MapClaims) { c["exp"] = t0.Unix() }))
		}, 401, "", "", ""},
		{"not yet valid", nil, func(e *remoteEnv) string {
			return e.idp.sign(t, "rsa", "RS256", "at+jwt", e.claims(func(c jwt.MapClaims) { c["nbf"] = t0.Add(time.Hour).Unix() }))
		}, 401, "", "", ""},
		{"no sub", nil, func(e *remoteEnv) string {
			return e.idp.sign(t, "rsa", "RS256", "at+jwt", e.claims(func(c jwt.MapClaims) { delete(c, "sub") }))
		}, 401, "", "", ""},
		{"scope of the wrong type", nil, func(e *remoteEnv) string {
			return e.idp.sign(t, "rsa", "RS256", "at+jwt", e.claims(func(c jwt.MapClaims) { c["scope"] = 7 }))
		}, 401, "", "", ""},
		{"known kid, another key", nil, func(e *remoteEnv) string {
			other := testECKey(t, elliptic.P256())
			tok := jwt.NewWithClaims(jwt.SigningMethodES256, e.claims(nil))
			tok.Header["typ"], tok.Header["kid"] = "at+jwt", "ec"
			s, _ := tok.SignedString(other)
			return s
		}, 401, "", "", ""},
		{"ES256 token naming the RSA key", nil, func(e *remoteEnv) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodES256, e.claims(nil))
			tok.Header["typ"], tok.Header["kid"] = "at+jwt", "rsa"
			s, _ := tok.SignedString(ec)
			return s
		}, 401, "", "", ""},
		{"HS256 with the RSA public key as secret", nil, func(e *remoteEnv) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, e.claims(nil))
			tok.Header["typ"], tok.Header["kid"] = "at+jwt", "rsa"
			s, _ := tok.SignedString(rsaPEM)
			return s
		}, 401, "", "", ""},
		{"alg none", nil, func(e *remoteEnv) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodNone, e.claims(nil))
			tok.Header["typ"], tok.Header["kid"] = "at+jwt", "rsa"
			s, _ := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
			return s
		}, 401, "", "", ""},
		{"RS256 with a key published for RS512 only", nil, func(e *remoteEnv) string {
			return e.idp.sign(t, "rsa512", "RS256", "at+jwt", e.claims(nil))
		}, 401, "", "", ""},
		{"symmetric key in the JWKS is ignored", nil, func(e *remoteEnv) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, e.claims(nil))
			tok.Header["typ"], tok.Header["kid"] = "at+jwt", "oct"
			s, _ := tok.SignedString([]byte("shared-secret-shared-secret-1234"))
			return s
		}, 401, "", "", ""},
		{"tampered payload", nil, func(e *remoteEnv) string {
			tok := e.idp.sign(t, "rsa", "RS256", "at+jwt", e.claims(nil))
			parts := strings.Split(tok, ".")
			body, _ := json.Marshal(e.claims(func(c jwt.MapClaims) { c["sub"] = "admin" }))
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(body) + "." + parts[2]
		}, 401, "", "", ""},
		{"truncated", nil, func(e *remoteEnv) string {
			tok := e.idp.sign(t, "rsa", "RS256", "at+jwt", e.claims(nil))
			return tok[:len(tok)-10]
		}, 401, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newRemoteEnv(t, "/realms/shop", tt.mod)
			e.idp.addKey(t, "rsa", testRSAKey(t), "")
			e.idp.addKey(t, "rsa512", testRSAKey(t), "RS512")
			e.idp.addKey(t, "ec", ec, "ES256")
			e.idp.addKey(t, "ec384", ec384, "")
			e.idp.addKey(t, "ed", ed, "EdDSA")
			e.idp.extraJWKS = []map[string]string{{"kty": "oct", "kid": "oct", "k": base64.RawURLEncoding.EncodeToString([]byte("shared-secret-shared-secret-1234")), "alg": "HS256"}}
			p, f := e.check(t, tt.token(e))
			if tt.wantStatus == 0 {
				if f != nil {
					t.Fatalf("refused: %d %s", f.Status, f.Error())
				}
				if p.Subject != tt.wantSub || p.ClientID != tt.wantClient || strings.Join(p.Scopes, " ") != tt.wantScope || p.Issuer != e.idp.issuer {
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
	e := newRemoteEnv(t, "", nil, "order:write")
	e.idp.addKey(t, "ec", testECKey(t, elliptic.P256()), "")
	_, f := e.check(t, e.idp.sign(t, "ec", "ES256", "at+jwt", e.claims(nil)))
	if f == nil || f.Status != 403 || !strings.Contains(f.Challenge, `scope="product:read order:write"`) {
		t.Fatalf("got %+v", f)
	}
}

// TestRemoteIssuerKeyRotation checks that a token signed with a key the
// issuer published after the last fetch is verified after a refetch, and
// that tokens naming unknown kids cannot make the resource fetch more than
// once per MinRefetch.
func TestRemoteIssuerKeyRotation(t *testing.T) {
	e := newRemoteEnv(t, "/tenant", nil)
	e.idp.addKey(t, "k1", testECKey(t, elliptic.P256()), "ES256")
	if _, f := e.check(t, e.idp.sign(t, "k1", "ES256", "at+jwt", e.claims(nil))); f != nil {
		t.Fatal(f)
	}
	if n := e.idp.jwksFetch.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}
	// Unknown kids: the first one refetches at most once; the rest are
	// refused without a fetch.
	e.now = e.now.Add(time.Minute)
	for i := range 20 {
		tok := e.idp.sign(t, "k1", "ES256", "at+jwt", e.claims(func(c jwt.MapClaims) { c["jti"] = "j" + string(rune('a'+i)) }))
		forged := strings.Replace(tok, strings.Split(tok, ".")[0], base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","kid":"x`+string(rune('a'+i))+`","typ":"at+jwt"}`)), 1)
		if _, f := e.check(t, forged); f == nil || f.Status != 401 {
			t.Fatalf("forged kid accepted: %+v", f)
		}
	}
	if n := e.idp.jwksFetch.Load(); n != 2 {
		t.Fatalf("fetches after 20 unknown kids = %d, want 2", n)
	}
	// The issuer rotates; after MinRefetch the new kid is fetched.
	e.idp.addKey(t, "k2", testECKey(t, elliptic.P256()), "ES256")
	e.now = e.now.Add(31 * time.Second)
	if _, f := e.check(t, e.idp.sign(t, "k2", "ES256", "at+jwt", e.claims(nil))); f != nil {
		t.Fatalf("rotated key refused: %+v", f)
	}
	if n := e.idp.jwksFetch.Load(); n != 3 {
		t.Fatalf("fetches = %d, want 3", n)
	}
}

// TestRemoteIssuerOutage checks that keys once fetched keep verifying
// while the issuer is down, and that without keys the answer is 503.
func TestRemoteIssuerOutage(t *testing.T) {
	e := newRemoteEnv(t, "", nil)
	e.idp.addKey(t, "k1", testECKey(t, elliptic.P256()), "")
	e.idp.down.Store(true)
	_, f := e.check(t, e.idp.sign(t, "k1", "ES256", "at+jwt", e.claims(nil)))
	if f == nil || f.Status != 503 || f.Code != "temporarily_unavailable" {
		t.Fatalf("without keys: %+v", f)
	}
	e.idp.down.Store(false)
	e.now = e.now.Add(time.Minute)
	if _, f := e.check(t, e.idp.sign(t, "k1", "ES256", "at+jwt", e.claims(nil))); f != nil {
		t.Fatalf("after recovery: %+v", f)
	}
	e.idp.down.Store(true)
	e.now = e.now.Add(2 * time.Hour) // past the refresh interval
	tok := e.idp.sign(t, "k1", "ES256", "at+jwt", e.claims(func(c jwt.MapClaims) {
		c["iat"], c["exp"], c["jti"] = e.now.Unix(), e.now.Add(time.Hour).Unix(), "later"
	}))
	if _, f := e.check(t, tok); f != nil {
		t.Fatalf("stale keys must keep verifying while the issuer is down: %+v", f)
	}
}

// TestRemoteIssuerDiscovery checks where the keys are found and that the
// metadata must name the configured issuer exactly.
func TestRemoteIssuerDiscovery(t *testing.T) {
	sign := func(e *remoteEnv) string {
		e.idp.addKey(t, "k", testECKey(t, elliptic.P256()), "")
		return e.idp.sign(t, "k", "ES256", "at+jwt", e.claims(nil))
	}
	t.Run("RFC 8414 path insertion", func(t *testing.T) {
		e := newRemoteEnv(t, "/realms/a", nil)
		if _, f := e.check(t, sign(e)); f != nil {
			t.Fatal(f)
		}
	})
	t.Run("OpenID Connect discovery", func(t *testing.T) {
		e := newRemoteEnv(t, "/realms/a", nil)
		e.idp.oidcOnly = true
		if _, f := e.check(t, sign(e)); f != nil {
			t.Fatal(f)
		}
	})
	t.Run("issuer with a trailing slash", func(t *testing.T) {
		e := newRemoteEnv(t, "/", nil)
		if !strings.HasSuffix(e.idp.issuer, "/") {
			t.Fatal(e.idp.issuer)
		}
		if _, f := e.check(t, sign(e)); f != nil {
			t.Fatal(f)
		}
	})
	t.Run("metadata naming another issuer", func(t *testing.T) {
		e := newRemoteEnv(t, "/realms/a", nil)
		e.idp.metaIssuer = "https://evil.example/realms/a"
		if _, f := e.check(t, sign(e)); f == nil || f.Status != 503 {
			t.Fatalf("got %+v", f)
		}
		if n := e.idp.jwksFetch.Load(); n != 0 {
			t.Fatalf("keys fetched from an unverified metadata document: %d", n)
		}
	})
	t.Run("configured jwks_url", func(t *testing.T) {
		var idp *testIdP
		e := newRemoteEnv(t, "/nowhere", func(c *oauth.RemoteIssuerConfig) { c.JWKSURL = strings.Replace(c.Issuer, "/nowhere", "/keys", 1) })
		idp = e.idp
		idp.metaIssuer = "https://evil.example" // never read
		if _, f := e.check(t, sign(e)); f != nil {
			t.Fatal(f)
		}
	})
	t.Run("oversized JWKS", func(t *testing.T) {
		e := newRemoteEnv(t, "", nil)
		e.idp.hugeJWKS = true
		if _, f := e.check(t, sign(e)); f == nil || f.Status != 503 {
			t.Fatalf("got %+v", f)
		}
	})
}

// TestLocalAndRemoteIssuers checks a resource that accepts its own
// authorization server's tokens and an external one's, and publishes both.
func TestLocalAndRemoteIssuers(t *testing.T) {
	idp := newTestIdP(t, "/realms/x")
	idp.addKey(t, "k", testECKey(t, elliptic.P256()), "")
	ri, err := oauth.NewRemoteIssuer(oauth.RemoteIssuerConfig{Issuer: idp.issuer, Now: func() time.Time { return t0.Add(time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	ks := newKeySet(t)
	rs, err := oauth.NewResource(oauth.ResourceConfig{Resource: "/mcp", AuthorizationServers: []string{"https://mcp.example.com"},
		Remote: []*oauth.RemoteIssuer{ri}, Keys: staticKeys{ks: ks}, Now: func() time.Time { return t0.Add(time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "https://mcp.example.com/.well-known/oauth-protected-resource/mcp", nil)
	doc, err := rs.Metadata(r)
	if err != nil || strings.Join(doc.AuthorizationServers, " ") != "https://mcp.example.com "+idp.issuer {
		t.Fatalf("authorization_servers = %v, %v", doc.AuthorizationServers, err)
	}
	local, err := ks.Sign(validClaims())
	if err != nil {
		t.Fatal(err)
	}
	e := &remoteEnv{idp: idp, rs: rs}
	remote := idp.sign(t, "k", "ES256", "at+jwt", e.claims(nil))
	for name, tok := range map[string]string{"local": local, "remote": remote} {
		if p, f := e.check(t, tok); f != nil {
			t.Errorf("%s token refused: %+v", name, f)
		} else if name == "remote" && p.Issuer != idp.issuer {
			t.Errorf("issuer %q", p.Issuer)
		}
	}
	// A token of the external issuer signed with the local key (same kid
	// space) is refused, and so is a local-issuer token signed by the
	// external issuer.
	forged := validClaims()
	forged.Issuer = idp.issuer
	if tok, _ := ks.Sign(forged); tok != "" {
		if _, f := e.check(t, tok); f == nil {
			t.Error("external issuer's token signed with the local key accepted")
		}
	}
	tok := idp.sign(t, "k", "ES256", "at+jwt", e.claims(func(c jwt.MapClaims) { c["iss"] = "https://mcp.example.com" }))
	if _, f := e.check(t, tok); f == nil {
		t.Error("local issuer's token signed by the external key accepted")
	}
}

func TestNewRemoteIssuerValidation(t *testing.T) {
	for _, cfg := range []oauth.RemoteIssuerConfig{
		{Issuer: "http://idp.example.com"},
		{Issuer: "https://idp.example.com?x=1"},
		{Issuer: "idp.example.com"},
		{Issuer: "https://idp.example.com", JWKSURL: "http://idp.example.com/keys"},
		{Issuer: "https://idp.example.com", Audiences: []string{"a b"}},
	} {
		if _, err := oauth.NewRemoteIssuer(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	if _, err := oauth.NewRemoteIssuer(oauth.RemoteIssuerConfig{Issuer: "https://tenant.auth0.com/", JWKSURL: "https://tenant.auth0.com/.well-known/jwks.json?v=1"}); err != nil {
		t.Error(err)
	}
}
