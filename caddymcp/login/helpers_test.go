package login

import (
	"bytes"
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testclock"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testkeys"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testoidc"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// testStart is where the clock shared by the server and the providers
// starts.
var testStart = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// syncBuffer collects log output written from handler goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// signingKey is a provider key with its kid.
type signingKey struct {
	kid  string
	priv crypto.Signer
	alg  string // "": RS256 for RSA keys, ES256 for EC keys
}

// newKeyFor makes a key that signs in alg (any JWS algorithm the
// resource server accepts).
func newKeyFor(t *testing.T, kid, alg string) signingKey {
	t.Helper()
	return signingKey{kid: kid, priv: testkeys.SignerFor(t, alg), alg: alg}
}

func newECKey(t *testing.T, kid string) signingKey {
	t.Helper()
	return signingKey{kid: kid, priv: testkeys.ECKey(t, elliptic.P256())}
}

func newRSAKey(t *testing.T, kid string) signingKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, priv: k}
}

func (k signingKey) method() jwt.SigningMethod {
	if k.alg != "" {
		return jwt.GetSigningMethod(k.alg)
	}
	if _, ok := k.priv.(*rsa.PrivateKey); ok {
		return jwt.SigningMethodRS256
	}
	return jwt.SigningMethodES256
}

// jwk returns the public JWK of k.
func (k signingKey) jwk(t *testing.T) map[string]string {
	t.Helper()
	return testkeys.JWKOf(t, k.priv.Public(), k.kid, k.method().Alg())
}

// publicPEM is the PEM encoding of k's public key, the secret of the
// classic HS256 key-confusion attack.
func (k signingKey) publicPEM(t *testing.T) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func (k signingKey) sign(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(k.method(), claims)
	tok.Header["kid"] = k.kid
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// codeGrant is an authorization code the fake provider issued.
type codeGrant struct {
	challenge, nonce, redirectURI string
}

// fakeOP is a small OpenID provider: discovery, JWKS, an authorization
// endpoint that approves at once, and a token endpoint that checks the
// client, the code, the redirect URI and the PKCE verifier.
type fakeOP struct {
	t        *testing.T
	srv      *httptest.Server
	clock    *testclock.Clock
	clientID string
	secret   string

	mu            sync.Mutex
	issuer        string              // what discovery names; default the server URL
	key           signingKey          // signs ID tokens
	published     []map[string]string // the JWKS
	user          jwt.MapClaims       // profile claims of the ID token
	mutate        func(jwt.MapClaims) // changes the claims of the next ID tokens
	sign          func(jwt.MapClaims) string
	deny          string   // error the authorization endpoint answers with
	failToken     bool     // the token endpoint refuses
	failDetail    string   // the error_description of its refusals
	issued        []string // the ID and access tokens the token endpoint issued
	authorizeReqs []url.Values
	tokenAuth     string
	codes         map[string]codeGrant
	discoveryHits int
	jwksHits      int
}

func newOP(t *testing.T, clock *testclock.Clock, key signingKey) *fakeOP {
	t.Helper()
	op := &fakeOP{
		t: t, clock: clock, clientID: "client-" + key.kid, secret: "s3cret/with+chars",
		key: key, published: []map[string]string{key.jwk(t)}, codes: map[string]codeGrant{},
		user: jwt.MapClaims{"sub": "1234567890", "email": "alice@example.com", "email_verified": true,
			"name": "Alice Example", "picture": "https://example.com/alice.png"},
	}
	op.srv = testoidc.Serve(t, testoidc.Endpoints{Discovery: op.serveDiscovery, JWKS: op.serveJWKS,
		Authorize: op.serveAuthorize, Token: op.serveToken})
	op.issuer = op.srv.URL
	return op
}

func (op *fakeOP) set(f func(op *fakeOP)) {
	op.mu.Lock()
	defer op.mu.Unlock()
	f(op)
}

func (op *fakeOP) hits() (discovery, jwks int) {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.discoveryHits, op.jwksHits
}

func (op *fakeOP) lastAuthorize() url.Values {
	op.mu.Lock()
	defer op.mu.Unlock()
	if len(op.authorizeReqs) == 0 {
		return nil
	}
	return op.authorizeReqs[len(op.authorizeReqs)-1]
}

func (op *fakeOP) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	op.mu.Lock()
	op.discoveryHits++
	doc := map[string]any{
		"issuer":                                op.issuer,
		"authorization_endpoint":                op.srv.URL + "/authorize",
		"token_endpoint":                        op.srv.URL + "/token",
		"jwks_uri":                              op.srv.URL + "/jwks",
		"response_types_supported":              []string{"code"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic"},
		"code_challenge_methods_supported":      []string{"S256"},
	}
	op.mu.Unlock()
	_ = json.NewEncoder(w).Encode(doc)
}

func (op *fakeOP) serveJWKS(w http.ResponseWriter, r *http.Request) {
	op.mu.Lock()
	op.jwksHits++
	keys := op.published
	op.mu.Unlock()
	_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
}

func (op *fakeOP) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	op.mu.Lock()
	defer op.mu.Unlock()
	op.authorizeReqs = append(op.authorizeReqs, q)
	back, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || q.Get("client_id") != op.clientID || q.Get("response_type") != "code" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	v := url.Values{"state": {q.Get("state")}}
	if op.deny != "" {
		v.Set("error", op.deny)
	} else {
		code := rand.Text()
		op.codes[code] = codeGrant{q.Get("code_challenge"), q.Get("nonce"), q.Get("redirect_uri")}
		v.Set("code", code)
	}
	back.RawQuery = v.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (op *fakeOP) serveToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	fail := func(code string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": op.failDetail})
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		op.tokenAuth = "basic"
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		op.tokenAuth = "post"
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != op.clientID || secret != op.secret {
		fail("invalid_client")
		return
	}
	g, ok := op.codes[r.PostForm.Get("code")]
	delete(op.codes, r.PostForm.Get("code"))
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	switch {
	case op.failToken, r.PostForm.Get("grant_type") != "authorization_code", !ok,
		r.PostForm.Get("redirect_uri") != g.redirectURI,
		base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
		fail("invalid_grant")
		return
	}
	now := op.clock.Now()
	claims := jwt.MapClaims{
		"iss":   op.srv.URL,
		"aud":   op.clientID,
		"exp":   now.Add(time.Hour).Unix(),
		"iat":   now.Unix(),
		"nonce": g.nonce,
	}
	for k, v := range op.user {
		claims[k] = v
	}
	if op.mutate != nil {
		op.mutate(claims)
	}
	var idToken string
	if op.sign != nil {
		idToken = op.sign(claims)
	} else {
		idToken = op.key.sign(op.t, claims)
	}
	accessToken := "upstream-access-" + rand.Text()
	op.issued = append(op.issued, idToken, accessToken)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": accessToken, "token_type": "Bearer", "expires_in": 3600, "id_token": idToken,
	})
}

// env is a login server in front of a test application, with fake
// providers, a real embedded store and a browser-like client.
type env struct {
	t      *testing.T
	clock  *testclock.Clock
	ops    map[string]*fakeOP
	store  *store.Embedded
	srv    *Server
	app    *httptest.Server
	client *http.Client
	logs   *syncBuffer
	// pages holds every response the browsers got (status, headers and
	// body), the provider's included.
	pages *syncBuffer
}

// envOptions shape an env.
type envOptions struct {
	providers []string          // provider names; default "test"
	keys      map[string]string // provider → "rsa" for an RSA key; default EC
	rules     []Rule            // default: Everyone
	tls       bool              // serve the application over HTTPS
	config    func(*Config)     // last changes to the config
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	e := &env{t: t, clock: testclock.New(testStart), ops: map[string]*fakeOP{}, logs: &syncBuffer{}, pages: &syncBuffer{}}
	st, err := store.OpenEmbedded(filepath.Join(t.TempDir(), "login.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	e.store = st
	if o.providers == nil {
		o.providers = []string{"test"}
	}
	if o.rules == nil {
		o.rules = []Rule{{Everyone: true}}
	}
	cfg := Config{
		Rules:  o.rules,
		Store:  st,
		Now:    e.clock.Now,
		Random: rand.Reader,
		Logger: slog.New(slog.NewTextHandler(e.logs, nil)),
	}
	for _, name := range o.providers {
		key := newECKey(t, name+"-1")
		if o.keys[name] == "rsa" {
			key = newRSAKey(t, name+"-1")
		}
		op := newOP(t, e.clock, key)
		e.ops[name] = op
		cfg.Providers = append(cfg.Providers, Provider{
			Name: name, Issuer: op.srv.URL, ClientID: op.clientID, ClientSecret: op.secret,
			Label: strings.ToUpper(name[:1]) + name[1:],
		})
	}
	if o.config != nil {
		o.config(&cfg)
	}
	e.srv, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e.srv.Handles(r.URL.Path) {
			e.srv.ServeHTTP(w, r)
			return
		}
		if r.URL.Path != "/oauth/authorize" {
			http.NotFound(w, r)
			return
		}
		u, err := e.srv.CurrentUser(r)
		if err != nil {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		if u == nil {
			e.srv.Login(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"id": u.ID, "email": u.Email, "scopes": u.Scopes, "uri": r.URL.RequestURI()})
	})
	if o.tls {
		e.app = httptest.NewTLSServer(app)
	} else {
		e.app = httptest.NewServer(app)
	}
	t.Cleanup(e.app.Close)
	e.client = e.newBrowser()
	return e
}

// op returns the only provider's fake.
func (e *env) op() *fakeOP {
	e.t.Helper()
	if len(e.ops) != 1 {
		e.t.Fatal("several providers")
	}
	for _, op := range e.ops {
		return op
	}
	return nil
}

// newBrowser returns a client with a cookie jar that does not follow
// redirects.
func (e *env) newBrowser() *http.Client {
	jar, _ := cookiejar.New(nil)
	c := e.app.Client()
	return &http.Client{
		Transport:     c.Transport,
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// result is a response, read.
type result struct {
	status int
	header http.Header
	body   string
	loc    string // Location resolved against the request URL
}

func (r result) cookie(name string) *http.Cookie {
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (r result) setCookieHeader(name string) string {
	for _, v := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(v, name+"=") {
			return v
		}
	}
	return ""
}

// do sends a request with the client.
func (e *env) do(c *http.Client, method, u string, hdr http.Header, body io.Reader) result {
	e.t.Helper()
	if strings.HasPrefix(u, "/") {
		u = e.app.URL + u
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Header.Write(e.pages)
	_, _ = e.pages.Write(append(b, '\n'))
	res := result{status: resp.StatusCode, header: resp.Header, body: string(b)}
	if loc, err := resp.Location(); err == nil {
		res.loc = loc.String()
	}
	return res
}

func (e *env) get(u string) result {
	e.t.Helper()
	return e.do(e.client, http.MethodGet, u, nil, nil)
}

// toProvider starts at path and returns the provider URL the browser is
// sent to.
func (e *env) toProvider(path string) string {
	e.t.Helper()
	r := e.get(path)
	for i := 0; i < 3 && r.status == http.StatusFound && strings.HasPrefix(r.loc, e.app.URL); i++ {
		r = e.get(r.loc)
	}
	if r.status != http.StatusFound {
		e.t.Fatalf("GET %s: status %d, want a redirect to the provider; body %s", path, r.status, r.body)
	}
	return r.loc
}

// callbackURL goes through the provider and returns the callback URL it
// sends the browser back to.
func (e *env) callbackURL(providerURL string) string {
	e.t.Helper()
	r := e.get(providerURL)
	if r.status != http.StatusFound || !strings.HasPrefix(r.loc, e.app.URL+CallbackPrefix) {
		e.t.Fatalf("provider: status %d, location %q, body %s", r.status, r.loc, r.body)
	}
	return r.loc
}

// login runs a whole login from path and returns the callback's answer.
func (e *env) login(path string) result {
	e.t.Helper()
	return e.get(e.callbackURL(e.toProvider(path)))
}

// sessionCookie returns the session cookie the client holds, or "".
func (e *env) sessionCookie(c *http.Client) string {
	e.t.Helper()
	u, _ := url.Parse(e.app.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == SessionCookie || ck.Name == InsecureSessionCookie {
			return ck.Value
		}
	}
	return ""
}

// me asks /auth/me with a given session cookie value ("" for none).
func (e *env) me(session string) result {
	e.t.Helper()
	hdr := http.Header{}
	if session != "" {
		name := InsecureSessionCookie
		if strings.HasPrefix(e.app.URL, "https:") {
			name = SessionCookie
		}
		hdr.Set("Cookie", name+"="+session)
	}
	plain := &http.Client{Transport: e.app.Client().Transport}
	return e.do(plain, http.MethodGet, MePath, hdr, nil)
}

// wantNoUpstreamSecret checks that neither the log nor any page the
// browsers got holds a provider's client secret or one of the ID and
// access tokens it issued, and returns how many ID tokens were issued.
func (e *env) wantNoUpstreamSecret() int {
	e.t.Helper()
	var secrets []string
	n := 0
	for _, op := range e.ops {
		op.set(func(op *fakeOP) {
			secrets = append(secrets, op.secret, url.QueryEscape(op.secret))
			secrets = append(secrets, op.issued...)
			n += len(op.issued) / 2
		})
	}
	logs, pages := e.logs.String(), e.pages.String()
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			e.t.Errorf("the log holds the upstream secret or token %q:\n%s", s, logs)
		}
		if strings.Contains(pages, s) {
			e.t.Errorf("a page holds the upstream secret or token %q:\n%s", s, pages)
		}
	}
	return n
}

// wantPage checks an HTML page's status, text and security headers.
func wantPage(t *testing.T, r result, status int, text string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if !strings.Contains(r.body, text) {
		t.Errorf("page does not say %q:\n%s", text, r.body)
	}
	for k, want := range map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"Cache-Control":          "no-store",
		"X-Frame-Options":        "DENY",
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	csp := r.header.Get("Content-Security-Policy")
	for _, part := range []string{"default-src 'none'", "style-src 'nonce-", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, part) {
			t.Errorf("CSP %q lacks %q", csp, part)
		}
	}
}
