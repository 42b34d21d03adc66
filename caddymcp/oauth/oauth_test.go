package oauth_test

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testkeys"
	"github.com/caddymcp/caddymcp/caddymcp/jose"
	"github.com/caddymcp/caddymcp/caddymcp/oauth"
	"github.com/caddymcp/caddymcp/caddymcp/signing"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

var t0 = testkeys.T0

func get(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	if strings.HasPrefix(target, "https://") {
		r.TLS = &tls.ConnectionState{}
	}
	for k, v := range hdr {
		if k == "Host" {
			r.Host = v
			continue
		}
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestMetadata(t *testing.T) {
	ks := testkeys.NewKeySet(t)
	tests := []struct {
		name, issuer, target, wantIssuer string
	}{
		{"configured issuer", "https://mcp.example.com", "https://other.example/.well-known/oauth-authorization-server", "https://mcp.example.com"},
		{"issuer with a path", "https://mcp.example.com/tenant1", "https://mcp.example.com/.well-known/oauth-authorization-server/tenant1", "https://mcp.example.com/tenant1"},
		{"derived from the request", "", "https://MCP.Example.com:443/.well-known/oauth-authorization-server", "https://mcp.example.com"},
		{"derived, with port", "", "https://localhost:8443/.well-known/oauth-authorization-server", "https://localhost:8443"},
		{"derived, plain http", "", "http://127.0.0.1:8080/.well-known/oauth-authorization-server", "http://127.0.0.1:8080"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := oauth.New(oauth.Config{Issuer: tt.issuer, Keys: testkeys.Static{KS: ks}})
			if err != nil {
				t.Fatal(err)
			}
			w := get(t, s, "GET", tt.target, nil)
			if w.Code != 200 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			m := testkeys.DecodeJSON(t, w)
			if m["issuer"] != tt.wantIssuer {
				t.Errorf("issuer = %v, want %s", m["issuer"], tt.wantIssuer)
			}
			if m["jwks_uri"] != tt.wantIssuer+"/oauth/jwks" {
				t.Errorf("jwks_uri = %v", m["jwks_uri"])
			}
			if got := m["code_challenge_methods_supported"]; len(got.([]any)) != 1 || got.([]any)[0] != "S256" {
				t.Errorf("code_challenge_methods_supported = %v", got)
			}
			if got := m["response_types_supported"].([]any); len(got) != 1 || got[0] != "code" {
				t.Errorf("response_types_supported = %v", got)
			}
			if got := m["scopes_supported"].([]any); len(got) != 8 {
				t.Errorf("scopes_supported = %v", got)
			}
			if w.Header().Get("Access-Control-Allow-Origin") != "*" {
				t.Error("metadata is not readable cross-origin")
			}
		})
	}
}

func TestServerRoutingAndMethods(t *testing.T) {
	s, err := oauth.New(oauth.Config{Keys: testkeys.Static{KS: testkeys.NewKeySet(t)}})
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		"/.well-known/oauth-authorization-server": true,
		"/oauth/jwks":                              true,
		"/.well-known/openid-configuration":        false, // not an OpenID provider
		"/.well-known/oauth-authorization-server/": false,
		"/oauth/jwks/x":                            false,
		"/":                                        false,
	} {
		if s.Handles(path) != want {
			t.Errorf("Handles(%q) = %v", path, !want)
		}
	}
	w := get(t, s, "POST", "https://h/.well-known/oauth-authorization-server", nil)
	if w.Code != 405 || w.Header().Get("Allow") == "" || testkeys.DecodeJSON(t, w)["error"] != "invalid_request" {
		t.Errorf("POST metadata: %d %s", w.Code, w.Body)
	}
	w = get(t, s, "OPTIONS", "https://h/oauth/jwks", map[string]string{"Origin": "http://localhost:6274", "Access-Control-Request-Method": "GET"})
	if w.Code != 204 || w.Header().Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("preflight: %d %v", w.Code, w.Header())
	}
	w = get(t, s, "GET", "https://h/.well-known/oauth-authorization-server", map[string]string{"Host": "evil\"host"})
	if w.Code != 400 {
		t.Errorf("malformed Host: %d", w.Code)
	}
}

func TestNewRejectsBadIssuers(t *testing.T) {
	for _, issuer := range []string{
		"mcp.example.com", "http://mcp.example.com", "https://mcp.example.com/", "https://mcp.example.com?x=1",
		"https://mcp.example.com#f", "https://user@mcp.example.com", "HTTPS://mcp.example.com", "https://MCP.example.com",
	} {
		if _, err := oauth.New(oauth.Config{Issuer: issuer, Keys: testkeys.Static{}}); err == nil {
			t.Errorf("issuer %q accepted", issuer)
		}
	}
	for _, issuer := range []string{"https://mcp.example.com", "http://localhost:8080", "http://127.0.0.1:9", "https://h/tenant"} {
		if _, err := oauth.New(oauth.Config{Issuer: issuer, Keys: testkeys.Static{}}); err != nil {
			t.Errorf("issuer %q refused: %v", issuer, err)
		}
	}
	if _, err := oauth.New(oauth.Config{}); err == nil {
		t.Error("a server without keys was accepted")
	}
}

func TestJWKS(t *testing.T) {
	k1, err := signing.GenerateSigningKey(rand.Reader, t0.Add(-2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	k2, err := signing.GenerateSigningKey(rand.Reader, t0.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	old, err := signing.GenerateSigningKey(rand.Reader, t0.Add(-48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	old.RetiredAt = t0.Add(-2 * time.Hour) // retired longer than the 1h kept
	ks := testkeys.NewKeySet(t, *k1, *k2, *old)
	if ks.SigningKeyID() != k2.ID {
		t.Fatalf("signing key = %s, want the newest %s", ks.SigningKeyID(), k2.ID)
	}
	s, err := oauth.New(oauth.Config{Keys: testkeys.Static{KS: ks}})
	if err != nil {
		t.Fatal(err)
	}
	w := get(t, s, "GET", "https://h/oauth/jwks", nil)
	if w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	var doc jose.JWKS
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Keys) != 2 {
		t.Fatalf("%d keys published, want 2", len(doc.Keys))
	}
	for _, k := range doc.Keys {
		if k.Kty != "EC" || k.Crv != "P-256" || k.Alg != "ES256" || k.Use != "sig" {
			t.Errorf("key %+v", k)
		}
		// The kid is the RFC 7638 thumbprint of the key.
		canon, _ := json.Marshal(map[string]string{"crv": k.Crv, "kty": k.Kty, "x": k.X, "y": k.Y})
		sum := sha256.Sum256(canon)
		if k.Kid != base64.RawURLEncoding.EncodeToString(sum[:]) {
			t.Errorf("kid %s is not the thumbprint", k.Kid)
		}
		if _, ok := ks.PublicKey(k.Kid); !ok {
			t.Errorf("PublicKey(%s) missing", k.Kid)
		}
		if strings.Contains(w.Body.String(), `"d"`) {
			t.Error("JWKS leaks a private key")
		}
	}
	if _, ok := ks.PublicKey(old.ID); ok {
		t.Error("a long-retired key still verifies")
	}
	if pub, _ := ks.PublicKey(k1.ID); pub == nil {
		t.Error("older active key is not published")
	}

	// Keys not available: 503 with Retry-After, never 500.
	s2, _ := oauth.New(oauth.Config{Keys: testkeys.Static{Err: errors.New("db down")}})
	w = get(t, s2, "GET", "https://h/oauth/jwks", nil)
	if w.Code != 503 || w.Header().Get("Retry-After") == "" || testkeys.DecodeJSON(t, w)["error"] != "temporarily_unavailable" {
		t.Errorf("keys unavailable: %d %s", w.Code, w.Body)
	}
}

func TestNewKeySetErrors(t *testing.T) {
	k, _ := signing.GenerateSigningKey(rand.Reader, t0)
	retired := *k
	retired.RetiredAt = t0
	bad := *k
	bad.PrivateKey = []byte("garbage")
	alg := *k
	alg.Algorithm = "HS256"
	for name, keys := range map[string][]store.SigningKey{
		"none":        nil,
		"all retired": {retired},
		"garbage":     {bad},
		"algorithm":   {alg},
	} {
		if _, err := signing.NewKeySet(keys, t0, time.Hour); err == nil {
			t.Errorf("%s: NewKeySet succeeded", name)
		}
	}
}

func tlsState() *tls.ConnectionState { return &tls.ConnectionState{} }

func TestKeyRotationSchedule(t *testing.T) {
	oldKey, _ := signing.GenerateSigningKey(rand.Reader, t0.Add(-30*24*time.Hour))
	newKey, _ := signing.GenerateSigningKey(rand.Reader, t0.Add(15*time.Minute)) // starts signing later
	oldKey.RetiredAt = newKey.CreatedAt
	for _, tt := range []struct {
		name       string
		now        time.Time
		wantSigner string
		wantKeys   int
	}{
		{"before the new key starts", t0, oldKey.ID, 2},
		{"after it starts", t0.Add(20 * time.Minute), newKey.ID, 2},
		{"a day later the old key is gone", t0.Add(15*time.Minute + 25*time.Hour), newKey.ID, 1},
	} {
		ks, err := signing.NewKeySet([]store.SigningKey{*oldKey, *newKey}, tt.now, 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if ks.SigningKeyID() != tt.wantSigner || len(ks.PublicKeys()) != tt.wantKeys {
			t.Errorf("%s: signer %s with %d keys, want %s with %d", tt.name, ks.SigningKeyID(), len(ks.PublicKeys()), tt.wantSigner, tt.wantKeys)
		}
	}
}

func TestSealKey(t *testing.T) {
	der := []byte("private key bytes")
	sealed, err := signing.SealKey("kek-1", der, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed), string(der)) {
		t.Fatal("sealed key contains the plaintext")
	}
	if got, err := signing.OpenKey("kek-1", sealed); err != nil || string(got) != string(der) {
		t.Fatalf("OpenKey = %q, %v", got, err)
	}
	for name, secret := range map[string]string{"no secret": "", "wrong secret": "kek-2"} {
		if _, err := signing.OpenKey(secret, sealed); err == nil {
			t.Errorf("%s: sealed key opened", name)
		}
	}
	if got, err := signing.OpenKey("kek-1", der); err != nil || string(got) != string(der) {
		t.Errorf("an unsealed key: %q, %v", got, err)
	}
	if _, err := signing.OpenKey("kek-1", sealed[:25]); err == nil {
		t.Error("a truncated key opened")
	}
}
