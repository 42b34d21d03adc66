package caddymcp

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddymcp/caddymcp/caddymcp/bearer"
	"github.com/caddymcp/caddymcp/caddymcp/jose"
	"github.com/caddymcp/caddymcp/caddymcp/oauth"
	"github.com/caddymcp/caddymcp/caddymcp/signing"
)

// dpopClientKey is a client's ES256 DPoP key with its public JWK and
// RFC 7638 thumbprint.
type dpopClientKey struct {
	priv *ecdsa.PrivateKey
	jwk  map[string]string
	jkt  string
}

func newDPoPClientKey(t *testing.T) dpopClientKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := priv.PublicKey.Bytes()
	b64 := base64.RawURLEncoding.EncodeToString
	jwk := map[string]string{"kty": "EC", "crv": "P-256", "x": b64(raw[1:33]), "y": b64(raw[33:])}
	canon, _ := json.Marshal(jwk) // sorted members, no white space: RFC 7638
	sum := sha256.Sum256(canon)
	return dpopClientKey{priv: priv, jwk: jwk, jkt: b64(sum[:])}
}

// proof makes a DPoP proof of a request with token.
func (k dpopClientKey) proof(t *testing.T, method, htu, token string) string {
	t.Helper()
	sum := sha256.Sum256([]byte(token))
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"jti": rand.Text(), "htm": method, "htu": htu,
		"iat": time.Now().Unix(), "ath": base64.RawURLEncoding.EncodeToString(sum[:])})
	tok.Header["typ"] = "dpop+jwt"
	tok.Header["jwk"] = k.jwk
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestBearerAuthDPoP runs a DPoP-bound token through mcp_bearer behind
// a path rewrite (handle_path): the proof's htu is the URL the client
// addressed, neither the token nor the proof reaches the next handler,
// and the key's thumbprint is a placeholder. With `dpop required`, a
// bearer token is refused with a DPoP challenge.
func TestBearerAuthDPoP(t *testing.T) {
	ks := newKeySet(t)
	client := newDPoPClientKey(t)
	const aud = "https://h.example/github"
	bound, plain := signAccess(t, ks, aud, "j1", &jose.Confirmation{JKT: client.jkt}), signAccess(t, ks, aud, "j2", nil)
	newHandler := func(required bool) *BearerAuth {
		rs, err := bearer.NewResource(bearer.ResourceConfig{Resource: "/github", Keys: keysOf{ks}, RequireDPoP: required})
		if err != nil {
			t.Fatal(err)
		}
		return &BearerAuth{resource: rs, RequireDPoP: required}
	}
	// The request as handle_path /github/* leaves it: the prefix is gone
	// from the URL, the original is in the context.
	rewritten := func(scheme, token, proof string) (*http.Request, *caddy.Replacer) {
		r := httpsRequest("POST", "https://h.example/github/mcp", &caddyhttp.Server{})
		orig := *r
		u := *r.URL
		orig.URL = &u
		r.URL.Path = "/mcp"
		repl := caddy.NewReplacer()
		ctx := context.WithValue(r.Context(), caddyhttp.OriginalRequestCtxKey, orig)
		r = r.WithContext(context.WithValue(ctx, caddy.ReplacerCtxKey, repl))
		r.Header.Set("Authorization", scheme+" "+token)
		if proof != "" {
			r.Header.Set("DPoP", proof)
		}
		return r, repl
	}

	b := newHandler(false)
	r, repl := rewritten("DPoP", bound, client.proof(t, "POST", "https://h.example/github/mcp", bound))
	next := &requestRecorder{}
	w := httptest.NewRecorder()
	if err := b.ServeHTTP(w, r, next); err != nil || !next.called {
		t.Fatalf("DPoP request: err %v, status %d, %v", err, w.Code, w.Header())
	}
	if next.header.Get("Authorization") != "" || next.header.Get("DPoP") != "" {
		t.Errorf("the token or the proof reached the next handler: %v", next.header)
	}
	if got, _ := repl.GetString("http.auth.user.dpop_jkt"); got != client.jkt || next.p.DPoPKey != client.jkt {
		t.Errorf("{http.auth.user.dpop_jkt} = %q, principal %+v; want %s", got, next.p, client.jkt)
	}

	// A proof for the rewritten path is not one for the URL the client
	// addressed.
	r, _ = rewritten("DPoP", bound, client.proof(t, "POST", "https://h.example/mcp", bound))
	next = &requestRecorder{}
	w = httptest.NewRecorder()
	if err := b.ServeHTTP(w, r, next); err != nil || next.called || w.Code != 401 ||
		!strings.HasPrefix(w.Header().Get("WWW-Authenticate"), `DPoP resource_metadata=`) ||
		!strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_dpop_proof"`) {
		t.Fatalf("proof for the rewritten path: err %v, next %v, %d %v", err, next.called, w.Code, w.Header())
	}

	// A bound token sent as a bearer token is refused (RFC 9449 §7.2),
	// an unbound one taken.
	for _, tt := range []struct {
		token  string
		status int
	}{{bound, 401}, {plain, 0}} {
		r, _ = rewritten("Bearer", tt.token, "")
		next = &requestRecorder{}
		w = httptest.NewRecorder()
		_ = b.ServeHTTP(w, r, next)
		if next.called != (tt.status == 0) || (tt.status != 0 && w.Code != tt.status) {
			t.Errorf("bearer %s: next %v, status %d", tt.token[len(tt.token)-6:], next.called, w.Code)
		}
	}

	// dpop required: bearer tokens are refused, with handle_errors too.
	req := newHandler(true)
	r, _ = rewritten("Bearer", plain, "")
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.ServerCtxKey,
		&caddyhttp.Server{Errors: &caddyhttp.HTTPErrorConfig{Routes: caddyhttp.RouteList{{}}}}))
	w = httptest.NewRecorder()
	err := req.ServeHTTP(w, r, &requestRecorder{})
	var he caddyhttp.HandlerError
	if !errors.As(err, &he) || he.StatusCode != 401 || len(w.Header().Values("WWW-Authenticate")) != 1 ||
		!strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "DPoP ") {
		t.Fatalf("bearer token at a DPoP-only resource: %v, %v", err, w.Header())
	}
	r, _ = rewritten("DPoP", bound, client.proof(t, "POST", "https://h.example/github/mcp", bound))
	if next := (&requestRecorder{}); req.ServeHTTP(httptest.NewRecorder(), r, next) != nil || !next.called {
		t.Fatal("a DPoP request at a DPoP-only resource was refused")
	}
}

// TestBearerAuthChallengesWithoutToken checks the two challenges of a
// request without a token, Bearer first, as separate header values.
func TestBearerAuthChallengesWithoutToken(t *testing.T) {
	w := httptest.NewRecorder()
	if err := newBearer(t).ServeHTTP(w, httpsRequest("POST", "https://h.example/mcp", &caddyhttp.Server{}), &nextRecorder{}); err != nil {
		t.Fatal(err)
	}
	got := w.Header().Values("WWW-Authenticate")
	if w.Code != 401 || len(got) != 2 || !strings.HasPrefix(got[0], `Bearer resource_metadata="https://h.example/.well-known/oauth-protected-resource/mcp"`) ||
		!strings.HasPrefix(got[1], `DPoP resource_metadata="https://h.example/.well-known/oauth-protected-resource/mcp"`) ||
		!strings.Contains(got[1], `algs="ES256 `) {
		t.Fatalf("%d WWW-Authenticate %q", w.Code, got)
	}
}

// TestDPoPNonceSecret checks the secret DPoP nonces are derived from:
// created once in the database, the same for every instance on it,
// sealed there with the key-encryption key, and unreadable without it.
func TestDPoPNonceSecret(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nonce.db")
	const kek = "kek-for-the-nonce-secret-0123456789"
	one := &App{store: newPooled(t, path), keys: signing.Policy{KEK: kek}}
	two := &App{store: newPooled(t, path), keys: signing.Policy{KEK: kek}}
	s1, err := nonceSecret(one)(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := nonceSecret(two)(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(s1) != 32 || !bytes.Equal(s1, s2) {
		t.Fatalf("instances got %x and %x, want one 32-byte secret", s1, s2)
	}
	stored, err := one.Store().EnsureSecret(ctx, oauth.NonceSecretName, time.Now(), func() ([]byte, error) {
		return nil, errors.New("the secret should exist")
	})
	if err != nil {
		t.Fatal(err)
	}
	if !signing.IsSealedKey(stored) || bytes.Contains(stored, s1) {
		t.Error("the nonce secret is stored in clear")
	}
	noKEK := &App{store: newPooled(t, path)}
	if _, err := nonceSecret(noKEK)(ctx); err == nil {
		t.Error("the sealed secret was read without the key-encryption key")
	}
}

// TestOAuthServerDPoPConfig checks how mcp_oauth's dpop options reach
// the authorization server: nonces get the shared secret.
func TestOAuthServerDPoPConfig(t *testing.T) {
	app := &App{}
	if c := (&OAuthServer{}).dpopConfig(app); c.Disabled || c.RequireNonce || c.NonceSecret != nil {
		t.Errorf("default: %+v", c)
	}
	if c := (&OAuthServer{DPoP: &DPoPOptions{RequireNonce: true}}).dpopConfig(app); !c.RequireNonce || c.NonceSecret == nil {
		t.Errorf("nonce required: %+v", c)
	}
	if c := (&OAuthServer{DPoP: &DPoPOptions{Disabled: true, RequireNonce: true}}).dpopConfig(app); !c.Disabled || c.NonceSecret != nil {
		t.Errorf("off: %+v", c)
	}
}
