package oauth_test

// Shared helpers of the authorization-server tests: an authenticator whose signed-in user the test chooses,
// a real embedded store in a temporary folder, and helpers that walk the
// authorization code flow (register, authorize, consent, token).

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testclock"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testkeys"
	"github.com/caddymcp/caddymcp/caddymcp/internal/web"
	"github.com/caddymcp/caddymcp/caddymcp/jose"
	"github.com/caddymcp/caddymcp/caddymcp/oauth"
	"github.com/caddymcp/caddymcp/caddymcp/signing"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

const (
	flowIssuer   = "https://mcp.example.com"
	flowResource = "https://mcp.example.com/mcp"
	// flowRootResource is configured as an origin-only resource.
	flowRootResource = "https://api.example.org"
	flowRedirect     = "https://app.example.com/callback"
)

// flowStart is where every test clock starts.
var flowStart = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// alice and bob are the users of the tests.
var (
	alice = &oauth.User{ID: "user-alice", Name: "Alice", Email: "alice@example.com"}
	bob   = &oauth.User{ID: "user-bob", Name: "Bob", Email: "bob@example.com"}
)

// testUsers is an Authenticator whose signed-in user the test sets.
type testUsers struct {
	mu     sync.Mutex
	user   *oauth.User
	logins int
	// policy, when set, answers UserScopes; otherwise every user is
	// allowed without a limit.
	policy func(userID string) ([]string, bool)
}

func (u *testUsers) UserScopes(_ context.Context, userID string) ([]string, bool, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.policy == nil {
		return nil, true, nil
	}
	scopes, ok := u.policy(userID)
	return scopes, ok, nil
}

// SetPolicy replaces the access policy.
func (u *testUsers) SetPolicy(p func(userID string) ([]string, bool)) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.policy = p
}

func (u *testUsers) CurrentUser(*http.Request) (*oauth.User, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.user == nil {
		return nil, nil
	}
	c := *u.user
	return &c, nil
}

// loginURL is where Login sends the browser.
const loginURL = "/login"

func (u *testUsers) Login(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.logins++
	u.mu.Unlock()
	http.Redirect(w, r, loginURL+"?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusFound)
}

// SignIn makes user the signed-in user; nil signs out.
func (u *testUsers) SignIn(user *oauth.User) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.user = user
}

func (u *testUsers) Logins() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.logins
}

// flow is one authorization server with its store, clock and users.
type flow struct {
	t     *testing.T
	srv   *oauth.Server
	store *store.Embedded
	clock *testclock.Clock
	users *testUsers
	keys  *signing.KeySet
	cfg   oauth.Config
}

// newFlow starts a server on a fresh embedded store, with alice signed
// in. Options adjust the configuration before the server is made.
func newFlow(t *testing.T, opts ...func(*oauth.Config)) *flow {
	t.Helper()
	st := openEmbedded(t, "caddymcp.db")
	f := newFlowWith(t, st, opts...)
	f.store = st
	return f
}

// openEmbedded opens an embedded store in the test's temporary folder,
// closed when the test ends.
func openEmbedded(tb testing.TB, name string) *store.Embedded {
	tb.Helper()
	st, err := store.OpenEmbedded(filepath.Join(tb.TempDir(), name))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(st.Close)
	return st
}

// seedStore migrates st and adds users to it: users come from the store,
// as the login provider puts them there.
func seedStore(tb testing.TB, st store.Store, users ...*oauth.User) {
	tb.Helper()
	ctx := context.Background()
	if _, err := st.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	for _, u := range users {
		if _, err := st.UpsertUser(ctx, &store.User{ID: u.ID, Provider: "test", Subject: u.ID,
			Email: u.Email, Name: u.Name, CreatedAt: flowStart, UpdatedAt: flowStart}); err != nil {
			tb.Fatal(err)
		}
	}
}

// flowConfig is the configuration every test server starts from: the
// test issuer and resources, one key set, and the test clock.
func flowConfig(st oauth.Store, users oauth.Authenticator, ks *signing.KeySet, now func() time.Time) oauth.Config {
	return oauth.Config{
		Issuer:    flowIssuer,
		Keys:      testkeys.Static{KS: ks},
		Store:     st,
		Users:     users,
		Resources: func() []string { return []string{"/mcp", flowRootResource} },
		Now:       now,
	}
}

// newFlowWith starts a server on st (migrated and seeded here), with
// alice signed in; f.store is left for the caller to set.
func newFlowWith(t *testing.T, st store.Store, opts ...func(*oauth.Config)) *flow {
	t.Helper()
	seedStore(t, st, alice, bob)
	ks := testkeys.NewKeySetAt(t, flowStart)
	f := &flow{t: t, clock: testclock.New(flowStart), users: &testUsers{user: alice}, keys: ks}
	f.cfg = flowConfig(st, f.users, ks, f.clock.Now)
	f.cfg.Logger = slog.New(slog.NewTextHandler(testLog{t}, nil))
	f.srv = startServer(t, &f.cfg, opts)
	return f
}

// startServer applies opts to cfg and makes the server of it.
func startServer(tb testing.TB, cfg *oauth.Config, opts []func(*oauth.Config)) *oauth.Server {
	tb.Helper()
	for _, o := range opts {
		o(cfg)
	}
	srv, err := oauth.New(*cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return srv
}

// testLog writes the server's log to the test's log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Helper()
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// serve runs one request through the server.
func (f *flow) serve(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, r)
	return w
}

// get sends a GET to path (relative to the issuer) with query q.
func (f *flow) get(path string, q url.Values) *httptest.ResponseRecorder {
	target := flowIssuer + path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	return f.serve(httptest.NewRequest(http.MethodGet, target, nil))
}

// postFormRequest builds a form POST to path authenticated as c (nil:
// no client authentication).
func postFormRequest(path string, form url.Values, c *testClient) *http.Request {
	if form == nil {
		form = url.Values{}
	}
	var basic [2]string
	useBasic := false
	if c != nil {
		switch c.Method {
		case "client_secret_basic":
			basic, useBasic = [2]string{c.ID, c.Secret}, true
		case "client_secret_post":
			form.Set("client_id", c.ID)
			form.Set("client_secret", c.Secret)
		default:
			form.Set("client_id", c.ID)
		}
	}
	r := httptest.NewRequest(http.MethodPost, flowIssuer+path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if useBasic {
		setBasic(r, basic[0], basic[1])
	}
	return r
}

// setBasic sets client_secret_basic credentials, form-urlencoding both
// parts first (RFC 6749 §2.3.1).
func setBasic(r *http.Request, id, secret string) {
	r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
}

// postForm sends a form POST to path authenticated as c.
func (f *flow) postForm(path string, form url.Values, c *testClient) *httptest.ResponseRecorder {
	return f.serve(postFormRequest(path, form, c))
}

// testClient is a client the tests hold credentials of.
type testClient struct {
	ID, Secret  string
	RedirectURI string
	// Method is how it authenticates at the token endpoint: none,
	// client_secret_basic or client_secret_post.
	Method string
}

// registerRequest builds a registration request with a JSON body.
func registerRequest(body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, flowIssuer+oauth.RegisterPath, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}

// mustJSON encodes v.
func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// register registers a client with the given token endpoint auth method
// and metadata overrides (a nil value removes a member).
func (f *flow) register(method string, overrides map[string]any) testClient {
	f.t.Helper()
	md := map[string]any{
		"redirect_uris":              []string{flowRedirect},
		"token_endpoint_auth_method": method,
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"client_name":                "Test App",
	}
	w := f.serve(registerRequest(mustJSON(f.t, override(md, overrides))))
	if w.Code != http.StatusCreated {
		f.t.Fatalf("register: status %d: %s", w.Code, w.Body)
	}
	var resp struct {
		ClientID     string   `json:"client_id"`
		ClientSecret string   `json:"client_secret"`
		RedirectURIs []string `json:"redirect_uris"`
		Method       string   `json:"token_endpoint_auth_method"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		f.t.Fatal(err)
	}
	return testClient{ID: resp.ClientID, Secret: resp.ClientSecret, RedirectURI: resp.RedirectURIs[0], Method: resp.Method}
}

// override sets the members of overrides in m (a nil value removes a
// member) and returns m.
func override(m, overrides map[string]any) map[string]any {
	for k, v := range overrides {
		setMember(m, k, v)
	}
	return m
}

// setMember sets m[k] to v, or removes it when v is nil.
func setMember(m map[string]any, k string, v any) {
	if v == nil {
		delete(m, k)
	} else {
		m[k] = v
	}
}

// newPKCE returns a fresh verifier and its S256 challenge.
func newPKCE(t *testing.T) (verifier, challenge string) {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	verifier = base64.RawURLEncoding.EncodeToString(b)
	return verifier, s256(verifier)
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// authQuery is a valid authorization request of c with challenge; extra
// values replace or add parameters (an empty value list removes one).
func authQuery(c testClient, challenge string, extra url.Values) url.Values {
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {c.ID},
		"redirect_uri":          {c.RedirectURI},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
		"state":                 {"xyz-state"},
		"scope":                 {"booking:read booking:write"},
		"resource":              {flowResource},
	}
	return mergeValues(q, extra)
}

// mergeValues replaces or adds the parameters of extra in v (an empty
// value list removes one) and returns v.
func mergeValues(v, extra url.Values) url.Values {
	for k, vs := range extra {
		if len(vs) == 0 {
			v.Del(k)
		} else {
			v[k] = vs
		}
	}
	return v
}

var consentFieldRE = regexp.MustCompile(`name="(request_id|csrf_token)" value="([^"]*)"`)

// consentForm checks that w is the consent page and returns its hidden
// fields.
func consentForm(t *testing.T, w *httptest.ResponseRecorder) (requestID, csrf string) {
	t.Helper()
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("want the consent page, got status %d, Location %q: %s", w.Code, w.Header().Get("Location"), w.Body)
	}
	if loc := w.Header().Get("Location"); loc != "" {
		t.Fatalf("consent page with Location %q", loc)
	}
	for _, m := range consentFieldRE.FindAllStringSubmatch(w.Body.String(), -1) {
		switch m[1] {
		case "request_id":
			requestID = html.UnescapeString(m[2])
		case "csrf_token":
			csrf = html.UnescapeString(m[2])
		}
	}
	if requestID == "" || csrf == "" {
		t.Fatalf("consent page without request_id or csrf_token: %s", w.Body)
	}
	return requestID, csrf
}

// decide posts the consent form.
func (f *flow) decide(requestID, csrf, decision string) *httptest.ResponseRecorder {
	return f.postForm(oauth.ConsentPath, url.Values{
		"request_id": {requestID}, "csrf_token": {csrf}, "decision": {decision},
	}, nil)
}

// wantRedirect checks that w redirects with status to a URL starting with
// prefix, and returns the redirect's query.
func wantRedirect(t *testing.T, w *httptest.ResponseRecorder, status int, prefix string) url.Values {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d; Location %q; body %s", w.Code, status, w.Header().Get("Location"), w.Body)
	}
	loc := w.Header().Get("Location")
	if !strings.HasPrefix(loc, prefix) {
		t.Fatalf("Location %q, want it to start with %q", loc, prefix)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// wantAuthError checks an error redirect: status, error code, state and
// iss (RFC 6749 §4.1.2.1, RFC 9207).
func wantAuthError(t *testing.T, w *httptest.ResponseRecorder, status int, redirect, code, state string) {
	t.Helper()
	q := wantRedirect(t, w, status, redirect+"?")
	if q.Get("error") != code {
		t.Errorf("error = %q (%s), want %s", q.Get("error"), q.Get("error_description"), code)
	}
	if q.Get("state") != state {
		t.Errorf("state = %q, want %q", q.Get("state"), state)
	}
	if q.Get("iss") != flowIssuer {
		t.Errorf("iss = %q, want %s", q.Get("iss"), flowIssuer)
	}
	if q.Has("code") {
		t.Error("an error redirect carries a code")
	}
}

// wantPage checks that w is an HTML page with status and no redirect.
func wantPage(t *testing.T, w *httptest.ResponseRecorder, status int) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d: %s", w.Code, status, w.Body)
	}
	if loc := w.Header().Get("Location"); loc != "" {
		t.Fatalf("an error page redirects to %q", loc)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("Content-Type %q, want an HTML page", ct)
	}
}

// authorizeCode runs the authorization request of c (approving the
// consent page if it is shown) and returns the code and its verifier.
func (f *flow) authorizeCode(c testClient, extra url.Values) (code, verifier string) {
	f.t.Helper()
	verifier, challenge := newPKCE(f.t)
	w := f.get(oauth.AuthorizePath, authQuery(c, challenge, extra))
	if w.Code == http.StatusOK {
		id, csrf := consentForm(f.t, w)
		w = f.decide(id, csrf, "approve")
	}
	status := http.StatusFound
	if w.Code == http.StatusSeeOther {
		status = http.StatusSeeOther
	}
	q := wantRedirect(f.t, w, status, c.RedirectURI+"?")
	if q.Get("code") == "" {
		f.t.Fatalf("no code in the redirect: %v", q)
	}
	return q.Get("code"), verifier
}

// exchange redeems a code.
func (f *flow) exchange(c testClient, code, verifier string, extra url.Values) *httptest.ResponseRecorder {
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"code_verifier": {verifier},
		"redirect_uri":  {c.RedirectURI},
		"resource":      {flowResource},
	}
	return f.postForm(oauth.TokenPath, mergeValues(form, extra), &c)
}

// refresh uses a refresh token.
func (f *flow) refresh(c testClient, rt string, extra url.Values) *httptest.ResponseRecorder {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "resource": {flowResource}}
	return f.postForm(oauth.TokenPath, mergeValues(form, extra), &c)
}

// tokens runs the whole flow for c and returns the token response.
func (f *flow) tokens(c testClient, extra url.Values) tokenBody {
	f.t.Helper()
	code, verifier := f.authorizeCode(c, extra)
	return wantToken(f.t, f.exchange(c, code, verifier, nil))
}

// newGrant starts a flow (with opts) and runs it for a newly registered
// public client.
func newGrant(t *testing.T, opts ...func(*oauth.Config)) (*flow, testClient, tokenBody) {
	t.Helper()
	f := newFlow(t, opts...)
	c := f.register("none", nil)
	return f, c, f.tokens(c, nil)
}

// tokenBody is a successful token response.
type tokenBody struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
}

// wantNoStore checks the Cache-Control of a token-bearing or error
// response.
func wantNoStore(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
}

// wantJSONBody checks that w has status, Cache-Control: no-store and a
// JSON body, and decodes the body into v.
func wantJSONBody(t *testing.T, w *httptest.ResponseRecorder, status int, v any) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d: %s", w.Code, status, w.Body)
	}
	wantNoStore(t, w)
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
		t.Fatal(err)
	}
}

// wantToken checks a successful token response.
func wantToken(t *testing.T, w *httptest.ResponseRecorder) tokenBody {
	t.Helper()
	var tb tokenBody
	wantJSONBody(t, w, http.StatusOK, &tb)
	if tb.AccessToken == "" || tb.TokenType != "Bearer" {
		t.Fatalf("token response %s", w.Body)
	}
	return tb
}

// wantOAuthError checks a JSON error response (RFC 6749 §5.2).
func wantOAuthError(t *testing.T, w *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d (%s): %s", w.Code, status, code, w.Body)
	}
	wantNoStore(t, w)
	var e web.ErrorBody
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("error body %q: %v", w.Body, err)
	}
	if e.Error != code {
		t.Fatalf("error = %q (%s), want %s", e.Error, e.Description, code)
	}
}

// verify checks an access token with the key set, as a resource would.
func (f *flow) verify(at string) *jose.AccessClaims {
	f.t.Helper()
	c, err := f.keys.Verify(at, signing.VerifyOptions{Issuer: flowIssuer, Now: f.clock.Now})
	if err != nil {
		f.t.Fatalf("access token does not verify: %v", err)
	}
	return c
}

// active reports whether the store still honours an access token.
func (f *flow) active(at string) bool {
	f.t.Helper()
	ok, err := f.store.AccessTokenActive(context.Background(), f.verify(at).ID, f.clock.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	return ok
}

// strList reads a list of strings of a JSON object.
func strList(m map[string]any, key string) []string {
	var out []string
	items, _ := m[key].([]any)
	for _, v := range items {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}

// jwtPart decodes the header (0) or claims (1) of a compact JWS.
func jwtPart(t *testing.T, token string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("%q is not a compact JWS", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// errUnavailable is what a failing store returns.
var errUnavailable = fmt.Errorf("database is down: %w", store.ErrUnavailable)

// flakyStore is a Store whose every method fails with ErrUnavailable
// while down is set, and whose methods named in failing fail always.
type flakyStore struct {
	oauth.Store
	down    atomic.Bool
	mu      sync.Mutex
	failing map[string]bool
}

// failOnly makes the named methods fail (none: all work again).
func (s *flakyStore) failOnly(methods ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = map[string]bool{}
	for _, m := range methods {
		s.failing[m] = true
	}
}

func (s *flakyStore) fail(method string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down.Load() || s.failing[method] {
		return errUnavailable
	}
	return nil
}

// unless calls the real store unless method is to fail; every method of
// flakyStore goes through it or its method form.
func unless[T any](s *flakyStore, method string, call func() (T, error)) (T, error) {
	if err := s.fail(method); err != nil {
		var zero T
		return zero, err
	}
	return call()
}

// unless is the form of unless for methods that return only an error.
func (s *flakyStore) unless(method string, call func() error) error {
	if err := s.fail(method); err != nil {
		return err
	}
	return call()
}

func (s *flakyStore) CreateClient(ctx context.Context, c *store.Client) error {
	return s.unless("CreateClient", func() error { return s.Store.CreateClient(ctx, c) })
}

func (s *flakyStore) GetClient(ctx context.Context, id string) (*store.Client, error) {
	return unless(s, "GetClient", func() (*store.Client, error) { return s.Store.GetClient(ctx, id) })
}

func (s *flakyStore) TouchClient(ctx context.Context, id string, t time.Time) error {
	return s.unless("TouchClient", func() error { return s.Store.TouchClient(ctx, id, t) })
}

func (s *flakyStore) DeleteClient(ctx context.Context, id string) error {
	return s.unless("DeleteClient", func() error { return s.Store.DeleteClient(ctx, id) })
}

func (s *flakyStore) ListClients(ctx context.Context, afterID string, limit int) ([]store.Client, error) {
	return unless(s, "ListClients", func() ([]store.Client, error) { return s.Store.ListClients(ctx, afterID, limit) })
}

func (s *flakyStore) CountClients(ctx context.Context) (int, error) {
	return unless(s, "CountClients", func() (int, error) { return s.Store.CountClients(ctx) })
}

func (s *flakyStore) DeleteStaleClients(ctx context.Context, before time.Time) (int64, error) {
	return unless(s, "DeleteStaleClients", func() (int64, error) { return s.Store.DeleteStaleClients(ctx, before) })
}

func (s *flakyStore) CreateCode(ctx context.Context, code string, c *store.AuthCode) error {
	return s.unless("CreateCode", func() error { return s.Store.CreateCode(ctx, code, c) })
}

func (s *flakyStore) RedeemCode(ctx context.Context, code string, now time.Time, issue func(*store.AuthCode) (*store.Issue, error)) (*store.AuthCode, error) {
	return unless(s, "RedeemCode", func() (*store.AuthCode, error) { return s.Store.RedeemCode(ctx, code, now, issue) })
}

func (s *flakyStore) CreateAuthRequest(ctx context.Context, id string, r *store.AuthRequest) error {
	return s.unless("CreateAuthRequest", func() error { return s.Store.CreateAuthRequest(ctx, id, r) })
}

func (s *flakyStore) ConsumeAuthRequest(ctx context.Context, id string, now time.Time) (*store.AuthRequest, error) {
	return unless(s, "ConsumeAuthRequest", func() (*store.AuthRequest, error) { return s.Store.ConsumeAuthRequest(ctx, id, now) })
}

func (s *flakyStore) CreateGrant(ctx context.Context, g *store.Grant) error {
	return s.unless("CreateGrant", func() error { return s.Store.CreateGrant(ctx, g) })
}

func (s *flakyStore) GetGrant(ctx context.Context, id string) (*store.Grant, error) {
	return unless(s, "GetGrant", func() (*store.Grant, error) { return s.Store.GetGrant(ctx, id) })
}

func (s *flakyStore) ListGrantsByUser(ctx context.Context, userID string, now time.Time) ([]store.Grant, error) {
	return unless(s, "ListGrantsByUser", func() ([]store.Grant, error) { return s.Store.ListGrantsByUser(ctx, userID, now) })
}

func (s *flakyStore) RevokeGrant(ctx context.Context, id string, now time.Time) error {
	return s.unless("RevokeGrant", func() error { return s.Store.RevokeGrant(ctx, id, now) })
}

func (s *flakyStore) RecordAccessToken(ctx context.Context, t *store.AccessToken) error {
	return s.unless("RecordAccessToken", func() error { return s.Store.RecordAccessToken(ctx, t) })
}

func (s *flakyStore) AccessTokenActive(ctx context.Context, jti string, now time.Time) (bool, error) {
	return unless(s, "AccessTokenActive", func() (bool, error) { return s.Store.AccessTokenActive(ctx, jti, now) })
}

func (s *flakyStore) RevokeAccessToken(ctx context.Context, jti string, now time.Time) error {
	return s.unless("RevokeAccessToken", func() error { return s.Store.RevokeAccessToken(ctx, jti, now) })
}

func (s *flakyStore) CreateRefreshToken(ctx context.Context, token string, t *store.RefreshToken) error {
	return s.unless("CreateRefreshToken", func() error { return s.Store.CreateRefreshToken(ctx, token, t) })
}

func (s *flakyStore) GetRefreshToken(ctx context.Context, token string, now time.Time) (*store.RefreshToken, error) {
	return unless(s, "GetRefreshToken", func() (*store.RefreshToken, error) { return s.Store.GetRefreshToken(ctx, token, now) })
}

func (s *flakyStore) RefreshGrant(ctx context.Context, token string, now time.Time, issue func(*store.RefreshToken, *store.Grant) (*store.Issue, error)) (*store.RefreshToken, error) {
	return unless(s, "RefreshGrant", func() (*store.RefreshToken, error) { return s.Store.RefreshGrant(ctx, token, now, issue) })
}

func (s *flakyStore) RevokeRefreshToken(ctx context.Context, token string, now time.Time) error {
	return s.unless("RevokeRefreshToken", func() error { return s.Store.RevokeRefreshToken(ctx, token, now) })
}

func (s *flakyStore) SaveConsent(ctx context.Context, c *store.Consent) error {
	return s.unless("SaveConsent", func() error { return s.Store.SaveConsent(ctx, c) })
}

func (s *flakyStore) GetConsent(ctx context.Context, userID, clientID string) (*store.Consent, error) {
	return unless(s, "GetConsent", func() (*store.Consent, error) { return s.Store.GetConsent(ctx, userID, clientID) })
}

func (s *flakyStore) ListConsentsByUser(ctx context.Context, userID string) ([]store.Consent, error) {
	return unless(s, "ListConsentsByUser", func() ([]store.Consent, error) { return s.Store.ListConsentsByUser(ctx, userID) })
}

func (s *flakyStore) DeleteConsent(ctx context.Context, userID, clientID string) error {
	return s.unless("DeleteConsent", func() error { return s.Store.DeleteConsent(ctx, userID, clientID) })
}

// Interface guard: flakyStore must override every method, so that no
// call reaches the real store while it is down.
var _ oauth.Store = (*flakyStore)(nil)

// TestFlowHelpers checks the helpers themselves against a full flow.
func TestFlowHelpers(t *testing.T) {
	f, _, tb := newGrant(t)
	if claims := f.verify(tb.AccessToken); claims.Subject != alice.ID {
		t.Errorf("sub = %q", claims.Subject)
	}
	if !f.active(tb.AccessToken) {
		t.Error("a fresh access token is inactive")
	}
	f.clock.Advance(time.Minute)
	if got := f.clock.Now(); !got.Equal(flowStart.Add(time.Minute)) {
		t.Errorf("clock = %v", got)
	}
}
