// Package testoidc is a minimal OpenID Connect provider for tests that
// need an upstream login (in place of Google): discovery, a JWKS, an
// authorization endpoint that signs in a scripted user at once, and a
// token endpoint that checks PKCE and returns an ES256 ID token.
package testoidc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// User is the person the provider signs in.
type User struct {
	Subject, Email, Name, HostedDomain string
	EmailVerified                      bool
}

// Provider is a running test provider.
type Provider struct {
	// Issuer is the provider's issuer URL (http on 127.0.0.1).
	Issuer string
	// ClientID and ClientSecret are the only credentials it accepts.
	ClientID, ClientSecret string

	srv   *httptest.Server
	key   *ecdsa.PrivateKey
	mu    sync.Mutex
	user  User
	codes map[string]pending
}

type pending struct {
	nonce, challenge, redirectURI string
	user                          User
}

// Start runs a provider until the test ends.
func Start(t testing.TB, clientID, clientSecret string, user User) *Provider {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{ClientID: clientID, ClientSecret: clientSecret, key: key, user: user, codes: map[string]pending{}}
	p.srv = Serve(t, Endpoints{Discovery: p.discovery, JWKS: p.jwks, Authorize: p.authorize, Token: p.token})
	p.Issuer = p.srv.URL
	return p
}

// Endpoints are the handlers of a provider: its discovery document, its
// JWKS, and its authorization and token endpoints.
type Endpoints struct {
	Discovery, JWKS, Authorize, Token http.HandlerFunc
}

// Serve runs e on loopback until the test ends, at the paths a
// provider's discovery document names: /.well-known/openid-configuration,
// /jwks, /authorize and /token. Start uses it; tests that need a provider
// with other behaviour bring their own handlers.
func Serve(t testing.TB, e Endpoints) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", e.Discovery)
	mux.HandleFunc("GET /jwks", e.JWKS)
	mux.HandleFunc("GET /authorize", e.Authorize)
	mux.HandleFunc("POST /token", e.Token)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// SetUser changes who signs in next.
func (p *Provider) SetUser(u User) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.user = u
}

func (p *Provider) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{
		"issuer": p.Issuer, "authorization_endpoint": p.Issuer + "/authorize", "token_endpoint": p.Issuer + "/token",
		"jwks_uri": p.Issuer + "/jwks", "response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"}, "code_challenge_methods_supported": []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
	})
}

func (p *Provider) jwks(w http.ResponseWriter, _ *http.Request) {
	raw, _ := p.key.PublicKey.Bytes()
	enc := base64.RawURLEncoding.EncodeToString
	writeJSON(w, map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "kid": "test", "alg": "ES256", "use": "sig", "x": enc(raw[1:33]), "y": enc(raw[33:65]),
	}}})
}

func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != p.ClientID || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	code := rand.Text()
	p.mu.Lock()
	p.codes[code] = pending{nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redirectURI: q.Get("redirect_uri"), user: p.user}
	p.mu.Unlock()
	back, err := url.Parse(q.Get("redirect_uri"))
	if err != nil {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	v := back.Query()
	v.Set("code", code)
	v.Set("state", q.Get("state"))
	back.RawQuery = v.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	} else {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	}
	if id != p.ClientID || secret != p.ClientSecret {
		w.WriteHeader(http.StatusUnauthorized)
		writeJSON(w, map[string]string{"error": "invalid_client"})
		return
	}
	p.mu.Lock()
	pc, found := p.codes[r.PostForm.Get("code")]
	delete(p.codes, r.PostForm.Get("code"))
	p.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if !found || base64.RawURLEncoding.EncodeToString(sum[:]) != pc.challenge || r.PostForm.Get("redirect_uri") != pc.redirectURI {
		w.WriteHeader(http.StatusBadRequest)
		writeJSON(w, map[string]string{"error": "invalid_grant"})
		return
	}
	now := time.Now()
	claims := jwt.MapClaims{"iss": p.Issuer, "aud": p.ClientID, "sub": pc.user.Subject, "email": pc.user.Email,
		"email_verified": pc.user.EmailVerified, "name": pc.user.Name, "nonce": pc.nonce,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	if pc.user.HostedDomain != "" {
		claims["hd"] = pc.user.HostedDomain
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	tok.Header["kid"] = "test"
	idToken, err := tok.SignedString(p.key)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, map[string]any{"access_token": rand.Text(), "token_type": "Bearer", "expires_in": 300, "id_token": idToken})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
