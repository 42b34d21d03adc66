package oauth_test

// Native fuzz targets (go test -fuzz) of the authorization server's input
// surfaces: registration bodies, token requests, access-token
// verification and WWW-Authenticate challenges. Their seeds, and any
// input kept under testdata/fuzz/<FuzzName>/, run as ordinary tests.
//
//	go test -run '^$' -fuzz '^FuzzToken$' -fuzztime 2m ./caddymcp/oauth/

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"html"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testkeys"
	"github.com/caddymcp/caddymcp/caddymcp/internal/web"
	"github.com/caddymcp/caddymcp/caddymcp/jose"
	"github.com/caddymcp/caddymcp/caddymcp/oauth"
	"github.com/caddymcp/caddymcp/caddymcp/signing"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// fuzzAS is an authorization server on an embedded store, built once per
// fuzz target and shared by its inputs (one per input would be too slow).
type fuzzAS struct {
	srv  *oauth.Server
	cfg  oauth.Config
	st   *store.Embedded
	keys *signing.KeySet
	// now is the server's clock, which stands still at flowStart.
	now func() time.Time
}

func newFuzzAS(tb testing.TB, opts ...func(*oauth.Config)) *fuzzAS {
	tb.Helper()
	st := openEmbedded(tb, "fuzz.db")
	seedStore(tb, st, alice)
	ks := testkeys.NewKeySetAt(tb, flowStart)
	a := &fuzzAS{st: st, keys: ks, now: func() time.Time { return flowStart }}
	a.cfg = flowConfig(st, &testUsers{user: alice}, ks, a.now)
	a.srv = startServer(tb, &a.cfg, opts)
	return a
}

func (a *fuzzAS) serve(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	a.srv.ServeHTTP(w, r)
	return w
}

// register registers a client with the given token endpoint auth method.
func (a *fuzzAS) register(tb testing.TB, method string) testClient {
	tb.Helper()
	w := a.serve(registerRequest(`{"redirect_uris":["` + flowRedirect + `"],"token_endpoint_auth_method":"` + method +
		`","grant_types":["authorization_code","refresh_token"],"client_name":"Fuzz ` + method + `"}`))
	var resp struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if w.Code != http.StatusCreated || json.Unmarshal(w.Body.Bytes(), &resp) != nil {
		tb.Fatalf("registering a %s client: %d %s", method, w.Code, w.Body)
	}
	return testClient{ID: resp.ClientID, Secret: resp.ClientSecret, RedirectURI: flowRedirect, Method: method}
}

// mintCode runs an authorization request of c (approving the consent
// page the first time) and returns a pending code and its verifier.
func (a *fuzzAS) mintCode(tb testing.TB, c testClient) (code, verifier string) {
	tb.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	verifier = base64.RawURLEncoding.EncodeToString(b)
	q := authQuery(c, s256(verifier), nil)
	w := a.serve(httptest.NewRequest(http.MethodGet, flowIssuer+oauth.AuthorizePath+"?"+q.Encode(), nil))
	if w.Code == http.StatusOK {
		fields := map[string]string{}
		for _, m := range consentFieldRE.FindAllStringSubmatch(w.Body.String(), -1) {
			fields[m[1]] = html.UnescapeString(m[2])
		}
		w = a.serve(postFormRequest(oauth.ConsentPath, url.Values{"request_id": {fields["request_id"]},
			"csrf_token": {fields["csrf_token"]}, "decision": {"approve"}}, nil))
	}
	loc, err := url.Parse(w.Header().Get("Location"))
	if (w.Code != http.StatusFound && w.Code != http.StatusSeeOther) || err != nil || loc.Query().Get("code") == "" {
		tb.Fatalf("authorization of %s: %d, Location %q: %s", c.ID, w.Code, w.Header().Get("Location"), w.Body)
	}
	return loc.Query().Get("code"), verifier
}

// tokenAnswer decodes a successful token response.
func tokenAnswer(tb testing.TB, w *httptest.ResponseRecorder) tokenBody {
	tb.Helper()
	var body tokenBody
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &body) != nil || body.AccessToken == "" {
		tb.Fatalf("token request: %d %s", w.Code, w.Body)
	}
	return body
}

// rfc6749Text reports whether s holds only the characters RFC 6749 §5.2
// allows in error and error_description: %x20-21 / %x23-5B / %x5D-7E.
func rfc6749Text(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// checkJSONAnswer checks what every answer of the token and registration
// endpoints must be: an expected status (never 5xx), a JSON object,
// Cache-Control: no-store.
func checkJSONAnswer(t *testing.T, w *httptest.ResponseRecorder, statuses ...int) map[string]any {
	t.Helper()
	if w.Code >= 500 || !slices.Contains(statuses, w.Code) {
		t.Fatalf("status %d, want one of %v: %s", w.Code, statuses, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q: %s", ct, w.Body)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q, want no-store", cc)
	}
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil || m == nil {
		t.Fatalf("body is not a JSON object (%v): %q", err, w.Body)
	}
	return m
}

// printableASCII reports whether s is printable ASCII (RFC 7591 §3.2.2:
// "human-readable ASCII text").
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// checkOAuthError checks an error body (RFC 6749 §5.2): a code among
// codes, with a status codes gives it, and a description of characters
// allowed by text (rfc6749Text or printableASCII).
func checkOAuthError(t *testing.T, status int, m map[string]any, codes map[string][]int, text func(string) bool) string {
	t.Helper()
	code, ok1 := m["error"].(string)
	desc, ok2 := m["error_description"].(string)
	if !ok1 || (!ok2 && m["error_description"] != nil) {
		t.Fatalf("malformed error body %v", m)
	}
	if !slices.Contains(codes[code], status) {
		t.Fatalf("error %q (%s) with status %d", code, desc, status)
	}
	if !rfc6749Text(code) || !text(desc) {
		t.Fatalf("error_description %q has characters the RFC does not allow", desc)
	}
	return code
}

// ---- dynamic client registration ----

// fuzzInitialToken is the initial access token of the closed server of
// FuzzRegister.
const fuzzInitialToken = "fuzz-initial-access-token"

// FuzzRegister posts arbitrary bodies to POST /oauth/register of an open
// server and of one that needs an initial access token. A registration
// either fails with an RFC 7591 error, or registers exactly what the
// request asked for within the policy (redirect URIs, auth method, grant
// and response types, scope) and stores it.
func FuzzRegister(f *testing.F) {
	a := newFuzzAS(f, func(c *oauth.Config) { c.Registration.MaxClients = 1 << 30 })
	closedCfg := a.cfg
	closedCfg.Registration.InitialAccessToken = fuzzInitialToken
	closed, err := oauth.New(closedCfg)
	if err != nil {
		f.Fatal(err)
	}
	const ct = "application/json"
	auth := "Bearer " + fuzzInitialToken
	for _, body := range []string{
		`{"redirect_uris":["https://app.example.com/callback"]}`,
		`{"redirect_uris":["http://127.0.0.1:33418/cb","http://[::1]/cb","http://localhost/cb"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"],"response_types":["code"],"client_name":"Claude","scope":"booking:read booking:write"}`,
		`{"redirect_uris":["cursor://anysphere.cursor-retrieval/oauth/callback"],"token_endpoint_auth_method":"client_secret_post","client_name":"Cursor\u202e\u0000 App","client_uri":"https://cursor.com","logo_uri":"https://cursor.com/logo.png","tos_uri":"https://cursor.com/tos","policy_uri":"https://cursor.com/privacy","contacts":["ops@example.com"],"software_id":"cursor","software_version":"1.0","application_type":"native"}`,
		`{"redirect_uris":["javascript:alert(1)//"]}`,
		`{"redirect_uris":["JavaScript://%0aalert(1)"]}`,
		`{"redirect_uris":["https://app.example.com/cb#frag"]}`,
		`{"redirect_uris":["http://evil.example/cb"]}`,
		`{"redirect_uris":["https://user:pw@app.example.com/cb"]}`,
		`{"redirect_uris":["https:app.example.com"]}`,
		`{"redirect_uris":["data:text/html,<script>alert(1)</script>"]}`,
		`{"redirect_uris":["myapp:"]}`,
		`{"redirect_uris":[]}`,
		`{"redirect_uris":"https://app.example.com/cb"}`,
		`{"redirect_uris":["https://app.example.com/cb"],"token_endpoint_auth_method":"private_key_jwt"}`,
		`{"redirect_uris":["https://app.example.com/cb"],"token_endpoint_auth_method":"tls_client_auth","tls_client_auth_subject_dn":"CN=agent,O=Example\\, Inc.,C=DE"}`,
		`{"redirect_uris":["https://app.example.com/cb"],"token_endpoint_auth_method":"tls_client_auth","tls_client_auth_san_dns":"a.example","tls_client_auth_san_ip":"::1"}`,
		`{"redirect_uris":["https://app.example.com/cb"],"token_endpoint_auth_method":"tls_client_auth","tls_client_auth_subject_dn":"CN=#zz"}`,
		`{"redirect_uris":["https://app.example.com/cb"],"token_endpoint_auth_method":"self_signed_tls_client_auth","jwks":{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA","x5c":["AA=="]}]}}`,
		`{"redirect_uris":["https://app.example.com/cb"],"tls_client_certificate_bound_access_tokens":"yes"}`,
		`{"redirect_uris":["https://app.example.com/cb"],"grant_types":["client_credentials"]}`,
		`{"redirect_uris":["https://app.example.com/cb"],"grant_types":["refresh_token"]}`,
		`{"redirect_uris":["https://app.example.com/cb"],"grant_types":["authorization_code","authorization_code"]}`,
		`{"redirect_uris":["https://app.example.com/cb"],"response_types":["token"]}`,
		`{"redirect_uris":["https://app.example.com/cb"],"scope":"admin"}`,
		`{"redirect_uris":["https://app.example.com/cb"],"scope":"booking:read \"x"}`,
		`{"redirect_uris":["https://app.example.com/cb"],"client_uri":"http://app.example.com"}`,
		`{"redirect_uris":["https://app.example.com/cb"],"contacts":["a","b","c","d","e","f"]}`,
		`{"redirect_uris":["https://app.example.com/cb"],"application_type":"browser"}`,
		`{"REDIRECT_URIS":["https://app.example.com/cb"],"Token_Endpoint_Auth_Method":"none"}`,
		`{"redirect_uris":["https://evil.example/cb"],"redirect_uris":["https://app.example.com/cb"]}`,
		`{"redirect_uris":["https://app.example.com/cb"]} {"x":1}`,
		`[{"redirect_uris":["https://app.example.com/cb"]}]`,
		`null`,
		`{"redirect_uris":["https://app.example.com/cb"],"client_name":"` + strings.Repeat("é", 150) + `"}`,
		`{"redirect_uris":["https://app.example.com/` + strings.Repeat("a", 2000) + `"]}`,
		`{"redirect_uris":["https://app.example.com/cb"],"client_name":"\ud800"}`,
		"{\"redirect_uris\":[\"https://app.example.com/cb\"],\"client_name\":\"\xff\xfe\"}",
	} {
		f.Add(ct, auth, body)
	}
	f.Add("text/plain", auth, `{"redirect_uris":["https://app.example.com/callback"]}`)
	f.Add("application/json; charset=utf-8", "bearer  "+fuzzInitialToken, `{"redirect_uris":["https://app.example.com/callback"]}`)
	f.Add(ct, "Bearer wrong", `{"redirect_uris":["https://app.example.com/callback"]}`)
	f.Add(ct, "Basic Zm9vOmJhcg==", `{}`)
	f.Add(ct, auth, `{"redirect_uris":["https://app.example.com/cb"],"client_name":"`+strings.Repeat("a", 70<<10)+`"}`)

	f.Fuzz(func(t *testing.T, contentType, authz, body string) {
		for _, srv := range []*oauth.Server{a.srv, closed} {
			r := httptest.NewRequest(http.MethodPost, flowIssuer+oauth.RegisterPath, strings.NewReader(body))
			if contentType != "" {
				r.Header.Set("Content-Type", contentType)
			}
			if authz != "" {
				r.Header.Set("Authorization", authz)
			}
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, r)
			m := checkJSONAnswer(t, w, http.StatusCreated, http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge)
			if w.Code != http.StatusCreated {
				code := checkOAuthError(t, w.Code, m, map[string][]int{
					"invalid_redirect_uri":    {http.StatusBadRequest},
					"invalid_client_metadata": {http.StatusBadRequest, http.StatusRequestEntityTooLarge},
					"invalid_token":           {http.StatusUnauthorized},
				}, printableASCII)
				if code == "invalid_token" {
					if srv != closed || !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer ") {
						t.Fatalf("invalid_token from the open server, or without a Bearer challenge: %v", w.Header())
					}
				}
				continue
			}
			if srv == closed {
				scheme, tok, _ := strings.Cut(authz, " ")
				if !strings.EqualFold(scheme, "Bearer") || strings.TrimLeft(tok, " ") != fuzzInitialToken {
					t.Fatalf("registered without the initial access token (Authorization %q)", authz)
				}
			}
			checkRegistration(t, a, contentType, body, w.Body.Bytes())
		}
	})
}

// registeredMetadata is what the registration fuzzer reads back from a
// request body and a registration response.
type registeredMetadata struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            *string  `json:"client_secret"`
	ClientSecretExpiresAt   *int64   `json:"client_secret_expires_at"`
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              string   `json:"client_name"`
	ClientURI               string   `json:"client_uri"`
	LogoURI                 string   `json:"logo_uri"`
	TOSURI                  string   `json:"tos_uri"`
	PolicyURI               string   `json:"policy_uri"`
	Scope                   string   `json:"scope"`
	Contacts                []string `json:"contacts"`
}

// checkRegistration checks a 201 answer against the request and the store.
func checkRegistration(t *testing.T, a *fuzzAS, contentType, body string, answer []byte) {
	t.Helper()
	if mt, _, _ := strings.Cut(contentType, ";"); !strings.EqualFold(strings.TrimSpace(mt), "application/json") {
		t.Fatalf("registered a %q body", contentType)
	}
	// The body must be exactly one JSON object.
	if trimmed := bytes.TrimSpace([]byte(body)); !json.Valid(trimmed) || trimmed[0] != '{' {
		t.Fatalf("registered a body that is not one JSON object: %q", body)
	}
	var req, got registeredMetadata
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatalf("registered a body that does not decode as client metadata (%v): %q", err, body)
	}
	if err := json.Unmarshal(answer, &got); err != nil || got.ClientID == "" {
		t.Fatalf("registration answer %s: %v", answer, err)
	}
	if !slices.Equal(got.RedirectURIs, req.RedirectURIs) || len(got.RedirectURIs) == 0 {
		t.Fatalf("redirect_uris %q registered as %q", req.RedirectURIs, got.RedirectURIs)
	}
	for _, u := range got.RedirectURIs {
		if reason := unsafeRedirect(u); reason != "" {
			t.Fatalf("registered redirect URI %q: %s", u, reason)
		}
	}
	switch got.TokenEndpointAuthMethod {
	case "none":
		if got.ClientSecret != nil || got.ClientSecretExpiresAt != nil {
			t.Fatalf("a public client got a secret: %s", answer)
		}
	case "client_secret_basic", "client_secret_post":
		if got.ClientSecret == nil || len(*got.ClientSecret) < 32 || got.ClientSecretExpiresAt == nil {
			t.Fatalf("a confidential client got no usable secret: %s", answer)
		}
	case "tls_client_auth", "self_signed_tls_client_auth":
		// It authenticates with its certificate (RFC 8705 §2).
		if got.ClientSecret != nil || got.ClientSecretExpiresAt != nil {
			t.Fatalf("a mutual-TLS client got a secret: %s", answer)
		}
	default:
		t.Fatalf("token_endpoint_auth_method %q", got.TokenEndpointAuthMethod)
	}
	if req.TokenEndpointAuthMethod != "" && req.TokenEndpointAuthMethod != got.TokenEndpointAuthMethod {
		t.Fatalf("asked for %q, registered %q", req.TokenEndpointAuthMethod, got.TokenEndpointAuthMethod)
	}
	if !slices.Contains(got.GrantTypes, "authorization_code") {
		t.Fatalf("grant_types %q lack authorization_code", got.GrantTypes)
	}
	for _, g := range got.GrantTypes {
		if g != "authorization_code" && g != "refresh_token" {
			t.Fatalf("grant type %q registered", g)
		}
	}
	for _, g := range req.GrantTypes {
		if !slices.Contains(got.GrantTypes, g) {
			t.Fatalf("grant type %q asked for, but not registered", g)
		}
	}
	if !slices.Equal(got.ResponseTypes, []string{"code"}) {
		t.Fatalf("response_types %q", got.ResponseTypes)
	}
	if req.Scope != "" && got.Scope == "" {
		t.Fatalf("scope %q dropped entirely", req.Scope)
	}
	for _, sc := range strings.Fields(got.Scope) {
		if !slices.Contains(web.DefaultScopes, sc) || !slices.Contains(strings.Fields(req.Scope), sc) {
			t.Fatalf("scope %q registered from %q", sc, req.Scope)
		}
	}
	if len(got.ClientName) > 200 || strings.IndexFunc(got.ClientName, func(r rune) bool {
		return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == unicode.ReplacementChar
	}) >= 0 {
		t.Fatalf("client_name %q is too long or hides characters", got.ClientName)
	}
	for _, u := range []string{got.ClientURI, got.LogoURI, got.TOSURI, got.PolicyURI} {
		if p, err := url.Parse(u); u != "" && (err != nil || p.Scheme != "https" || p.Host == "") {
			t.Fatalf("informational URI %q is not an https URL", u)
		}
	}
	if len(got.Contacts) > 5 {
		t.Fatalf("%d contacts registered", len(got.Contacts))
	}
	// What was answered is what the store keeps.
	c, err := a.st.GetClient(context.Background(), got.ClientID)
	if err != nil {
		t.Fatalf("registered client %s not stored: %v", got.ClientID, err)
	}
	if !slices.Equal(c.RedirectURIs, got.RedirectURIs) || c.TokenEndpointAuthMethod != got.TokenEndpointAuthMethod {
		t.Fatalf("stored client %+v differs from the answer %s", c, answer)
	}
	if (got.ClientSecret != nil) != (c.SecretHash != nil) || (got.ClientSecret != nil && !store.SecretMatches(c.SecretHash, *got.ClientSecret)) {
		t.Fatalf("stored secret does not match the issued one")
	}
}

// unsafeRedirect says why a registered redirect URI breaks the policy
// (RFC 8252 §7, OAuth 2.1 §2.3.1), or "".
func unsafeRedirect(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "does not parse"
	case !u.IsAbs():
		return "is not absolute"
	case strings.Contains(raw, "#"):
		return "has a fragment"
	case u.User != nil:
		return "has user information"
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return "has no host"
		}
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); !strings.EqualFold(host, "localhost") && !(ip != nil && ip.IsLoopback()) {
			return "is http to a host other than loopback"
		}
	case "javascript", "data", "file", "vbscript", "blob", "about", "filesystem", "view-source":
		return "uses a scheme that runs or reads content in the browser"
	default:
		if u.Host == "" && u.Path == "" && u.Opaque == "" {
			return "is empty after its scheme"
		}
	}
	return ""
}

// ---- token requests ----

// fuzzClient is a client the token fuzzer holds the credentials, a
// pending code and a live refresh token of.
type fuzzClient struct {
	testClient
	code, verifier string
	refresh        string
}

// basicCredentials is the client_secret_basic header value of id and
// secret (RFC 6749 §2.3.1: both form-urlencoded first).
func basicCredentials(id, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret)))
}

// FuzzToken posts arbitrary form bodies (and Content-Type and
// Authorization headers) to POST /oauth/token. Placeholders in the body
// and header ({code}, {verifier}, {refresh}, {client_id},
// {client_secret}, {basic} and their {other_…} forms) are replaced with
// the real pending code, live refresh token and credentials of a public,
// a client_secret_basic and a client_secret_post client, so that inputs
// reach redemption and rotation. Invariants: never 5xx; a JSON answer
// with no-store; standard error codes with their statuses; tokens only
// for the real code with its verifier, or the live refresh token, of the
// authenticated client with its secret; a failed request never uses up
// the code or refresh token it presented.
func FuzzToken(f *testing.F) {
	a := newFuzzAS(f)
	var clients []*fuzzClient
	for _, method := range []string{"none", "client_secret_basic", "client_secret_post"} {
		c := &fuzzClient{testClient: a.register(f, method)}
		code, verifier := a.mintCode(f, c.testClient)
		c.refresh = tokenAnswer(f, a.serve(postFormRequest(oauth.TokenPath, codeForm(c.testClient, code, verifier), &c.testClient))).RefreshToken
		c.code, c.verifier = a.mintCode(f, c.testClient)
		clients = append(clients, c)
	}
	const form = "application/x-www-form-urlencoded"
	redirect, resource := url.QueryEscape(flowRedirect), url.QueryEscape(flowResource)
	codeBody := "grant_type=authorization_code&code={code}&code_verifier={verifier}&redirect_uri=" + redirect + "&resource=" + resource
	seeds := []struct {
		who          uint8
		ct, authz, b string
	}{
		{0, form, "", codeBody + "&client_id={client_id}"},
		{1, form, "Basic {basic}", codeBody},
		{2, form, "", codeBody + "&client_id={client_id}&client_secret={client_secret}"},
		{0, form, "", "grant_type=authorization_code&code={code}&code_verifier={verifier}&client_id={client_id}"},
		{0, form, "", "grant_type=refresh_token&refresh_token={refresh}&client_id={client_id}"},
		{1, form, "Basic {basic}", "grant_type=refresh_token&refresh_token={refresh}&scope=booking%3Aread&resource=" + resource},
		{2, form, "", "grant_type=refresh_token&refresh_token={refresh}&client_id={client_id}&client_secret={client_secret}&scope=booking:read+booking:write"},
		{0, form, "", "grant_type=refresh_token&refresh_token={refresh}&client_id={client_id}&scope=order:write"},
		{0, form, "", "grant_type=refresh_token&refresh_token={other_refresh}&client_id={client_id}"},
		{0, form, "", "grant_type=authorization_code&code={other_code}&code_verifier={other_verifier}&client_id={client_id}"},
		{1, form, "", "grant_type=authorization_code&code={code}&code_verifier={verifier}&client_id={client_id}"},
		{1, form, "Basic {basic}", codeBody + "&client_secret={client_secret}"},
		{1, form, "Basic {basic}", codeBody + "&client_id={other_id}"},
		{2, form, "", codeBody + "&client_id={client_id}&client_secret=wrong"},
		{0, form, "", codeBody + "&client_id={client_id}&client_secret=anything"},
		{0, form, "", "grant_type=authorization_code&code={code}&code_verifier={verifier}&code_verifier={verifier}&client_id={client_id}"},
		{0, form, "", "grant_type=authorization_code&code={code}&code_verifier=" + strings.Repeat("a", 43) + "&client_id={client_id}"},
		{0, form, "", "grant_type=authorization_code&code={code}&code_verifier={verifier}%00&client_id={client_id}"},
		{0, form, "", codeBody + "&client_id={client_id}&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback%2F"},
		{0, form, "", "grant_type=authorization_code&code={code}&code_verifier={verifier}&client_id={client_id}&resource=HTTPS%3A%2F%2FMCP.example.com%2Fmcp"},
		{0, form, "", "grant_type=authorization_code&code={code}&code_verifier={verifier}&client_id={client_id}&resource=https%3A%2F%2Fmcp.example.com%2Fmcp%23x"},
		{0, form, "", "grant_type=client_credentials&client_id={client_id}"},
		{0, form, "", "grant_type=password&username=alice&password=x&client_id={client_id}"},
		{0, form, "", "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=x&client_id={client_id}"},
		{0, form, "", "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token=x&client_id={client_id}"},
		{0, form, "", "grant_type=&client_id={client_id}"},
		{0, form, "", "client_id={client_id}"},
		{0, form, "", "grant_type=authorization_code;code={code}"},
		{0, form, "", "grant_type=authorization_code&code=%ZZ"},
		{0, "application/json", "", `{"grant_type":"authorization_code"}`},
		{0, "", "", codeBody},
		{0, "application/x-www-form-urlencoded; charset=UTF-8", "", codeBody + "&client_id={client_id}"},
		{1, form, "Basic !!!", codeBody},
		{1, form, "Basic " + base64.StdEncoding.EncodeToString([]byte("%zz:%zz")), codeBody},
		{1, form, "Basic " + base64.StdEncoding.EncodeToString([]byte("a:b:c")), codeBody},
		{1, form, "Bearer {code}", codeBody},
		{1, form, "basic {basic}", codeBody},
		{0, form, "", codeBody + "&client_id=" + strings.Repeat("x", 2000)},
		{0, form, "", codeBody + "&client_id={client_id}&pad=" + strings.Repeat("x", 70<<10)},
	}
	for _, s := range seeds {
		f.Add(s.who, s.ct, s.authz, s.b)
	}

	f.Fuzz(func(t *testing.T, who uint8, contentType, authz, body string) {
		c, other := clients[int(who)%len(clients)], clients[(int(who)+1)%len(clients)]
		rep := strings.NewReplacer(
			"{client_id}", c.ID, "{client_secret}", c.Secret, "{basic}", basicCredentials(c.ID, c.Secret),
			"{code}", c.code, "{verifier}", c.verifier, "{refresh}", c.refresh,
			"{other_id}", other.ID, "{other_code}", other.code, "{other_verifier}", other.verifier, "{other_refresh}", other.refresh)
		body, authz = rep.Replace(body), rep.Replace(authz)
		r := httptest.NewRequest(http.MethodPost, flowIssuer+oauth.TokenPath, strings.NewReader(body))
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		w := a.serve(r)
		m := checkJSONAnswer(t, w, http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge)
		sent, _ := url.ParseQuery(body)
		if w.Code != http.StatusOK {
			code := checkOAuthError(t, w.Code, m, map[string][]int{
				"invalid_request":        {http.StatusBadRequest, http.StatusRequestEntityTooLarge},
				"invalid_client":         {http.StatusUnauthorized},
				"invalid_grant":          {http.StatusBadRequest},
				"unauthorized_client":    {http.StatusBadRequest},
				"unsupported_grant_type": {http.StatusBadRequest},
				"invalid_scope":          {http.StatusBadRequest},
				"invalid_target":         {http.StatusBadRequest},
			}, rfc6749Text)
			if code == "invalid_client" && authz != "" && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Basic ") {
				t.Fatalf("invalid_client after Authorization %q without a Basic challenge", authz)
			}
			// A failed request leaves the code and refresh token it
			// presented usable by their client.
			for _, cl := range clients {
				if slices.Contains(sent["code"], cl.code) {
					cl.code, cl.verifier = a.redeemStill(t, cl)
				}
				if slices.Contains(sent["refresh_token"], cl.refresh) {
					cl.refresh = a.refreshStill(t, cl)
				}
			}
			return
		}
		checkIssued(t, a, clients, r, sent, w)
	})
}

// redeemStill checks that cl's pending code is still redeemable, and
// returns a new pending code.
func (a *fuzzAS) redeemStill(t *testing.T, cl *fuzzClient) (code, verifier string) {
	t.Helper()
	w := a.serve(postFormRequest(oauth.TokenPath, codeForm(cl.testClient, cl.code, cl.verifier), &cl.testClient))
	if w.Code != http.StatusOK {
		t.Fatalf("a failed request used up the code of %s: %d %s", cl.Method, w.Code, w.Body)
	}
	return a.mintCode(t, cl.testClient)
}

// refreshStill checks that cl's refresh token still works, and returns
// its successor.
func (a *fuzzAS) refreshStill(t *testing.T, cl *fuzzClient) string {
	t.Helper()
	w := a.serve(postFormRequest(oauth.TokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {cl.refresh}}, &cl.testClient))
	if w.Code != http.StatusOK {
		t.Fatalf("a failed request used up the refresh token of %s: %d %s", cl.Method, w.Code, w.Body)
	}
	return tokenAnswer(t, w).RefreshToken
}

// checkIssued checks a 200 token answer: a valid access token for the
// grant's user, resource and scope, issued only to a client that
// authenticated and presented its own live code (with the verifier) or
// refresh token.
func checkIssued(t *testing.T, a *fuzzAS, clients []*fuzzClient, r *http.Request, sent url.Values, w *httptest.ResponseRecorder) {
	t.Helper()
	tb := tokenAnswer(t, w)
	if tb.TokenType != "Bearer" || tb.ExpiresIn <= 0 || tb.RefreshToken == "" || w.Header().Get("Pragma") != "no-cache" {
		t.Fatalf("token answer %s", w.Body)
	}
	claims, err := a.keys.Verify(tb.AccessToken, signing.VerifyOptions{Issuer: flowIssuer, Audience: flowResource, Now: a.now})
	if err != nil {
		t.Fatalf("issued access token does not verify: %v", err)
	}
	if claims.Subject != alice.ID || claims.Scope != tb.Scope || !slices.Equal(claims.Audience, []string{flowResource}) {
		t.Fatalf("claims %+v for answer %s", claims, w.Body)
	}
	for _, sc := range strings.Fields(tb.Scope) {
		if sc != "booking:read" && sc != "booking:write" {
			t.Fatalf("scope %q beyond the grant's", tb.Scope)
		}
	}
	var cl *fuzzClient
	for _, c := range clients {
		if c.ID == claims.ClientID {
			cl = c
		}
	}
	if cl == nil {
		t.Fatalf("token for unknown client %q", claims.ClientID)
	}
	// The client authenticated: with its secret if it has one, and never
	// with a secret if it is public.
	id, secret := sent.Get("client_id"), sent.Get("client_secret")
	if r.Header.Get("Authorization") != "" {
		user, pass, ok := r.BasicAuth()
		u, err1 := url.QueryUnescape(user)
		p, err2 := url.QueryUnescape(pass)
		if !ok || err1 != nil || err2 != nil || len(sent["client_secret"]) > 0 {
			t.Fatalf("tokens after a malformed or doubled authentication %q", r.Header.Get("Authorization"))
		}
		id, secret = u, p
	}
	if id != cl.ID || secret != cl.Secret {
		t.Fatalf("tokens for %s (%s) authenticated as %q with secret %q", cl.ID, cl.Method, id, secret)
	}
	if len(sent["grant_type"]) != 1 {
		t.Fatalf("tokens for a request with grant_type %q", sent["grant_type"])
	}
	switch sent.Get("grant_type") {
	case "authorization_code":
		if sent["code"][0] != cl.code || sent["code_verifier"][0] != cl.verifier {
			t.Fatalf("tokens for code %q with verifier %q", sent.Get("code"), sent.Get("code_verifier"))
		}
		if tb.Scope != "booking:read booking:write" {
			t.Fatalf("a code for booking:read booking:write gave scope %q", tb.Scope)
		}
		// Codes are single-use: the same request again fails and revokes
		// what the first one issued.
		w2 := a.serve(postFormRequest(oauth.TokenPath, codeForm(cl.testClient, cl.code, cl.verifier), &cl.testClient))
		if w2.Code != http.StatusBadRequest {
			t.Fatalf("a code was redeemed twice: %d %s", w2.Code, w2.Body)
		}
		cl.code, cl.verifier = a.mintCode(t, cl.testClient)
	case "refresh_token":
		if sent["refresh_token"][0] != cl.refresh || tb.RefreshToken == cl.refresh {
			t.Fatalf("tokens for refresh token %q", sent.Get("refresh_token"))
		}
		cl.refresh = tb.RefreshToken
	default:
		t.Fatalf("tokens for grant_type %q", sent.Get("grant_type"))
	}
}

// ---- access-token verification ----

// fuzzKey is a signing key of the verification fuzzer.
type fuzzKey struct {
	kid  string
	alg  string
	priv crypto.Signer
}

// verifyNow is the verification fuzzer's clock.
var verifyNow = t0

// verifyLeeway is the clock skew its verifier tolerates.
const verifyLeeway = 30 * time.Second

// FuzzVerify checks KeySet.Verify against tokens derived from validly
// signed ES256, RS256 and EdDSA access tokens: the header and payload
// replaced (with {kid…}, {iss}, {aud}, {iat}, {exp} placeholders), the
// signature kept, dropped, forged (HS256 keyed with the public key, an
// attacker's key, the right key with another scheme) or made with the
// right key, then arbitrary byte edits. Verify must not panic, and what
// it accepts must pass an independent strict check (exact base64url,
// signature by the named key in its algorithm, typ, iss, aud, exp, nbf,
// iat) and, unless the test itself signed new content with the real key,
// carry byte for byte the header and payload of a token the key set
// signed.
func FuzzVerify(f *testing.F) {
	var stored []store.SigningKey
	keys := map[string]fuzzKey{}
	var order []fuzzKey
	for i, alg := range []string{signing.AlgES256, signing.AlgRS256, signing.AlgEdDSA} {
		k, err := signing.GenerateKey(alg, rand.Reader, t0.Add(time.Duration(i-3)*time.Minute))
		if err != nil {
			f.Fatal(err)
		}
		priv, err := x509.ParsePKCS8PrivateKey(k.PrivateKey)
		if err != nil {
			f.Fatal(err)
		}
		fk := fuzzKey{kid: k.ID, alg: alg, priv: priv.(crypto.Signer)}
		keys[k.ID], order = fk, append(order, fk)
		stored = append(stored, *k)
	}
	all, err := signing.NewKeySet(stored, t0, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	// An attacker's keys, one of each type, never published.
	var attacker []crypto.Signer
	for _, alg := range []string{signing.AlgES256, signing.AlgRS256, signing.AlgEdDSA} {
		k, err := signing.GenerateKey(alg, rand.Reader, t0)
		if err != nil {
			f.Fatal(err)
		}
		priv, _ := x509.ParsePKCS8PrivateKey(k.PrivateKey)
		attacker = append(attacker, priv.(crypto.Signer))
	}
	claims := func() *jose.AccessClaims {
		c := &jose.AccessClaims{ClientID: "client-1", Scope: "booking:read"}
		c.Issuer, c.Subject, c.ID = flowIssuer, alice.ID, "jti-1"
		c.Audience = []string{flowResource}
		c.IssuedAt = jwtDate(t0.Add(-time.Minute))
		c.ExpiresAt = jwtDate(t0.Add(time.Hour))
		return c
	}
	var bases []string
	for i, k := range order {
		ks, err := signing.NewKeySet(stored[i:i+1], t0, time.Hour)
		if err != nil {
			f.Fatal(err)
		}
		tok, err := ks.Sign(claims())
		if err != nil {
			f.Fatal(err)
		}
		if _, err := all.Verify(tok, signing.VerifyOptions{Issuer: flowIssuer, Audience: flowResource, Now: func() time.Time { return verifyNow }, Leeway: verifyLeeway}); err != nil {
			f.Fatalf("a valid %s token does not verify: %v", k.alg, err)
		}
		bases = append(bases, tok)
	}
	placeholders := func(base fuzzKey) *strings.Replacer {
		return strings.NewReplacer("{kid}", base.kid, "{kid_es}", order[0].kid, "{kid_rs}", order[1].kid, "{kid_ed}", order[2].kid,
			"{iss}", flowIssuer, "{aud}", flowResource,
			"{iat}", strconv.FormatInt(t0.Add(-time.Minute).Unix(), 10), "{exp}", strconv.FormatInt(t0.Add(time.Hour).Unix(), 10))
	}

	const (
		hdr     = `{"alg":"%s","kid":"{kid}","typ":"at+jwt"}`
		payload = `{"iss":"{iss}","sub":"user-alice","aud":["{aud}"],"exp":{exp},"iat":{iat},"jti":"j1","client_id":"c1","scope":"booking:read"}`
	)
	for base := range uint8(3) {
		alg := order[base].alg
		f.Add(base, uint8(0), "", "", []byte(nil))
		f.Add(base, uint8(0), "", "", []byte{4, 0x80, 0, 0})          // drop the last character
		f.Add(base, uint8(0), "", "", []byte{1, 0x80, 0, 0})          // the last character, unchanged
		f.Add(base, uint8(0), "", "", []byte{1, 0x80, 0, 48})         // its first two bits flipped
		f.Add(base, uint8(0), "", "", []byte{5, 0, 1, 2, 5, 0, 0, 1}) // swap segments
		f.Add(base, uint8(1), fmt.Sprintf(hdr, "none"), "", []byte(nil))
		f.Add(base, uint8(1), `{"alg":"none"}`, "", []byte(nil))
		f.Add(base, uint8(2), fmt.Sprintf(hdr, "HS256"), "", []byte(nil))
		f.Add(base, uint8(3), fmt.Sprintf(hdr, "HS256"), payload, []byte(nil))
		f.Add(base, uint8(4), fmt.Sprintf(hdr, alg), payload, []byte(nil))
		f.Add(base, uint8(5), fmt.Sprintf(hdr, alg), payload, []byte(nil))
		f.Add(base, uint8(6), fmt.Sprintf(hdr, alg), payload, []byte(nil))
		for _, p := range []string{
			`{"iss":"{iss}/","sub":"u","aud":["{aud}"],"exp":{exp},"jti":"j","client_id":"c"}`,
			`{"iss":"{iss}","sub":"u","aud":"{aud}","exp":{exp},"jti":"j","client_id":"c"}`,
			`{"iss":"{iss}","sub":"u","aud":["{aud}/"],"exp":{exp},"jti":"j","client_id":"c"}`,
			`{"iss":"{iss}","sub":"u","aud":["{aud}"],"jti":"j","client_id":"c"}`,
			`{"iss":"{iss}","sub":"u","aud":["{aud}"],"exp":1767322980,"jti":"j","client_id":"c"}`,
			`{"iss":"{iss}","sub":"u","aud":["{aud}"],"exp":{exp},"nbf":1867322980,"jti":"j","client_id":"c"}`,
			`{"iss":"{iss}","sub":"u","aud":["{aud}"],"exp":{exp},"iat":1867322980,"jti":"j","client_id":"c"}`,
			`{"iss":"{iss}","sub":"u","aud":["{aud}"],"exp":"{exp}","jti":"j","client_id":"c"}`,
			`{"iss":"{iss}","sub":"u","aud":["{aud}"],"exp":1e300,"jti":"j","client_id":"c"}`,
			`{"iss":"{iss}","sub":"u","aud":["{aud}"],"exp":{exp}.999,"jti":"j","client_id":"c"}`,
			`{"iss":"{iss}","sub":"","aud":["{aud}"],"exp":{exp},"jti":"j","client_id":"c"}`,
			`{"iss":"{iss}","sub":"u","aud":["{aud}"],"exp":{exp},"jti":"j"}`,
			`{"iss":"evil","ISS":"{iss}","sub":"u","aud":["{aud}"],"exp":{exp},"jti":"j","client_id":"c"}`,
			`{"iss":"{iss}","sub":"u","aud":[null,"{aud}"],"exp":{exp},"jti":"j","client_id":"c"}`,
			`[]`, `null`, `{"exp":{exp}`,
		} {
			f.Add(base, uint8(4), fmt.Sprintf(hdr, alg), p, []byte(nil))
		}
		for _, h := range []string{
			`{"alg":"` + alg + `","kid":"{kid}","typ":"JWT"}`,
			`{"alg":"` + alg + `","kid":"{kid}"}`,
			`{"alg":"` + alg + `","kid":"{kid}","typ":"application/at+jwt"}`,
			`{"alg":"` + alg + `","kid":"{kid}","typ":"AT+JWT"}`,
			`{"alg":"` + alg + `","kid":"nope","typ":"at+jwt"}`,
			`{"alg":"` + alg + `","kid":["{kid}"],"typ":"at+jwt"}`,
			`{"alg":"` + alg + `","kid":"{kid}","typ":"at+jwt","crit":["exp"]}`,
			`{"alg":"` + alg + `","kid":"{kid}","typ":"at+jwt","jwk":{"kty":"oct","k":"AA"}}`,
			`{"alg":"RS256","kid":"{kid_es}","typ":"at+jwt"}`,
			`{"alg":"ES256","kid":"{kid_ed}","typ":"at+jwt"}`,
			`{"alg":"PS256","kid":"{kid_rs}","typ":"at+jwt"}`,
			`{"alg":"ES384","kid":"{kid_es}","typ":"at+jwt"}`,
		} {
			f.Add(base, uint8(4), h, payload, []byte(nil))
			f.Add(base, uint8(5), h, payload, []byte(nil))
		}
	}
	f.Add(uint8(0), uint8(0), "a.b.c", "..", []byte("...."))
	f.Add(uint8(0), uint8(0), "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "e30.e30.e30.e30", []byte(nil))

	opts := func(aud string) signing.VerifyOptions {
		return signing.VerifyOptions{Issuer: flowIssuer, Audience: aud, Now: func() time.Time { return verifyNow }, Leeway: verifyLeeway}
	}
	f.Fuzz(func(t *testing.T, baseIdx, forge uint8, header, body string, edits []byte) {
		base := order[int(baseIdx)%len(order)]
		baseTok := bases[int(baseIdx)%len(bases)]
		parts := strings.Split(baseTok, ".")
		rep := placeholders(base)
		b64 := base64.RawURLEncoding.EncodeToString
		if header != "" {
			parts[0] = b64([]byte(rep.Replace(header)))
		}
		if body != "" {
			parts[1] = b64([]byte(rep.Replace(body)))
		}
		input := parts[0] + "." + parts[1]
		signedByTest := false
		switch forge % 7 {
		case 0: // the original signature
		case 1: // no signature, as alg "none" has
			parts[2] = ""
		case 2, 3: // HS256 keyed with the public key, as DER or as PEM
			der, err := x509.MarshalPKIXPublicKey(base.priv.Public())
			if err != nil {
				t.Fatal(err)
			}
			if forge%7 == 3 {
				der = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
			}
			m := hmac.New(sha256.New, der)
			m.Write([]byte(input))
			parts[2] = b64(m.Sum(nil))
		case 4: // the real key, in its own algorithm
			parts[2] = b64(signWith(t, base.priv, input, false))
			signedByTest = true
		case 5: // the real key, in another scheme
			parts[2] = b64(signWith(t, base.priv, input, true))
		case 6: // an attacker's key of the same type
			parts[2] = b64(signWith(t, attacker[int(baseIdx)%len(attacker)], input, false))
		}
		tok := applyEdits(strings.Join(parts, "."), edits)

		for _, aud := range []string{flowResource, ""} {
			got, err := all.Verify(tok, opts(aud))
			if err != nil {
				continue
			}
			if reason := strictlyValid(tok, keys, aud); reason != "" {
				t.Fatalf("Verify accepted %q (audience %q), but %s", tok, aud, reason)
			}
			if !signedByTest && !slices.ContainsFunc(bases, func(b string) bool { return signingInput(b) == signingInput(tok) }) {
				t.Fatalf("Verify accepted %q, whose header and payload no key-set token has", tok)
			}
			if got.Issuer != flowIssuer || got.Subject == "" || got.ClientID == "" || got.ID == "" {
				t.Fatalf("accepted claims %+v", got)
			}
		}
		// Arbitrary strings as tokens.
		for _, s := range []string{header, body, string(edits)} {
			if _, err := all.Verify(s, opts("")); err == nil {
				if reason := strictlyValid(s, keys, ""); reason != "" {
					t.Fatalf("Verify accepted the string %q, but %s", s, reason)
				}
			}
		}
	})
}

func jwtDate(t time.Time) *jwt.NumericDate { return jwt.NewNumericDate(t) }

// signWith signs input with priv: in the key's JWS algorithm (ES256 as
// r||s, RS256, EdDSA), or, with other, in another scheme the same key can
// make (ECDSA over SHA-384, RSA-PSS, Ed25519ph).
func signWith(t *testing.T, priv crypto.Signer, input string, other bool) []byte {
	t.Helper()
	var sig []byte
	var err error
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		var digest []byte
		if other {
			sum := sha512.Sum384([]byte(input))
			digest = sum[:]
		} else {
			sum := sha256.Sum256([]byte(input))
			digest = sum[:]
		}
		var r, s *big.Int
		if r, s, err = ecdsa.Sign(rand.Reader, k, digest); err == nil {
			sig = make([]byte, 64)
			r.FillBytes(sig[:32])
			s.FillBytes(sig[32:])
		}
	case *rsa.PrivateKey:
		sum := sha256.Sum256([]byte(input))
		if other {
			sig, err = rsa.SignPSS(rand.Reader, k, crypto.SHA256, sum[:], nil)
		} else {
			sig, err = rsa.SignPKCS1v15(nil, k, crypto.SHA256, sum[:])
		}
	case ed25519.PrivateKey:
		if other {
			sum := sha512.Sum512([]byte(input))
			sig, err = k.Sign(nil, sum[:], &ed25519.Options{Hash: crypto.SHA512})
		} else {
			sig = ed25519.Sign(k, []byte(input))
		}
	default:
		t.Fatalf("key type %T", priv)
	}
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// applyEdits applies byte edits to s. Each edit is four bytes: an
// operation, a position (big-endian; with the high bit set it counts
// from the end) and a value. Operations: set a byte, XOR a base64url
// letter's 6 bits with the value, insert, delete, truncate, swap two
// dot-separated segments.
func applyEdits(s string, edits []byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	b := []byte(s)
	for i := 0; i+4 <= len(edits) && i < 4*64; i += 4 {
		op, rawPos, val := edits[i]%6, int(edits[i+1])<<8|int(edits[i+2]), edits[i+3]
		pos := func(n int) int {
			if n == 0 {
				return 0
			}
			if rawPos&0x8000 != 0 {
				return n - 1 - (rawPos&0x7fff)%n
			}
			return rawPos % n
		}
		switch op {
		case 0:
			if len(b) > 0 {
				b[pos(len(b))] = val
			}
		case 1:
			if len(b) > 0 {
				p := pos(len(b))
				b[p] = alphabet[max(strings.IndexByte(alphabet, b[p]), 0)^int(val%64)]
			}
		case 2:
			p := pos(len(b) + 1)
			b = append(b[:p], append([]byte{val}, b[p:]...)...)
		case 3:
			if len(b) > 0 {
				p := pos(len(b))
				b = append(b[:p], b[p+1:]...)
			}
		case 4:
			b = b[:pos(len(b)+1)]
		case 5:
			segs := bytes.Split(b, []byte("."))
			x, y := rawPos%len(segs), int(val)%len(segs)
			segs[x], segs[y] = segs[y], segs[x]
			b = bytes.Join(segs, []byte("."))
		}
	}
	return string(b)
}

// signingInput is a compact JWS without its signature.
func signingInput(tok string) string {
	i := strings.LastIndexByte(tok, '.')
	if i < 0 {
		return tok
	}
	return tok[:i]
}

// strictlyValid checks a token independently of golang-jwt: three
// segments of canonical unpadded base64url (RFC 7515 §2), a header whose
// kid names a key, whose alg is that key's and whose typ is at+jwt
// (RFC 9068 §2.1), a signature by that key, and claims valid at
// verifyNow (iss exact; exp present and not past; nbf and iat not in the
// future, all with the leeway; aud naming aud when set; sub, client_id
// and jti present). It returns why the token is invalid, or "".
func strictlyValid(tok string, keys map[string]fuzzKey, aud string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "it does not have three segments"
	}
	dec := base64.RawURLEncoding.Strict()
	var raw [3][]byte
	for i, p := range parts {
		b, err := dec.DecodeString(p)
		if err != nil {
			return fmt.Sprintf("segment %d is not canonical base64url (%v)", i, err)
		}
		if base64.RawURLEncoding.EncodeToString(b) != p {
			return fmt.Sprintf("segment %d is not canonical base64url", i)
		}
		raw[i] = b
	}
	var hdr map[string]any
	if err := json.Unmarshal(raw[0], &hdr); err != nil {
		return "the header is not a JSON object"
	}
	alg, _ := hdr["alg"].(string)
	kid, _ := hdr["kid"].(string)
	typ, _ := hdr["typ"].(string)
	k, ok := keys[kid]
	switch {
	case !ok:
		return "its kid names no key"
	case alg != k.alg:
		return fmt.Sprintf("its alg %q is not its key's %s", alg, k.alg)
	case !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt"): // media types ignore case (RFC 7515 §4.1.9)
		return fmt.Sprintf("its typ is %q", typ)
	}
	input := []byte(parts[0] + "." + parts[1])
	switch pub := k.priv.Public().(type) {
	case *ecdsa.PublicKey:
		sum := sha256.Sum256(input)
		if len(raw[2]) != 64 || !ecdsa.Verify(pub, sum[:], new(big.Int).SetBytes(raw[2][:32]), new(big.Int).SetBytes(raw[2][32:])) {
			return "its ES256 signature is invalid"
		}
	case *rsa.PublicKey:
		sum := sha256.Sum256(input)
		if rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], raw[2]) != nil {
			return "its RS256 signature is invalid"
		}
	case ed25519.PublicKey:
		if !ed25519.Verify(pub, input, raw[2]) {
			return "its EdDSA signature is invalid"
		}
	}
	var c jose.AccessClaims
	if err := json.Unmarshal(raw[1], &c); err != nil {
		return "its claims do not decode"
	}
	switch {
	case c.Issuer != flowIssuer:
		return fmt.Sprintf("its iss is %q", c.Issuer)
	case c.ExpiresAt == nil || !verifyNow.Before(c.ExpiresAt.Add(verifyLeeway)):
		return "it has no exp or has expired"
	case c.NotBefore != nil && verifyNow.Before(c.NotBefore.Add(-verifyLeeway)):
		return "its nbf is in the future"
	case c.IssuedAt != nil && verifyNow.Before(c.IssuedAt.Add(-verifyLeeway)):
		return "its iat is in the future"
	case aud != "" && !slices.Contains(c.Audience, aud):
		return fmt.Sprintf("its aud %q does not name %s", c.Audience, aud)
	case c.Subject == "" || c.ClientID == "" || c.ID == "":
		return "it lacks sub, client_id or jti"
	}
	return ""
}

// ---- WWW-Authenticate ----

// FuzzChallenge builds Bearer challenges from arbitrary parameter values.
// The result must be one valid header line, parse with a strict RFC 9110
// §11.3 parser, and give back every non-empty parameter, in order, with
// exactly the characters a quoted-string can carry (controls and
// non-ASCII dropped).
func FuzzChallenge(f *testing.F) {
	f.Add("https://mcp.example.com/.well-known/oauth-protected-resource/mcp", "booking:read booking:write", "insufficient_scope",
		"the access token lacks the scope this request needs")
	f.Add("", "", "invalid_token", `say "hi" \ bye`)
	f.Add("https://h/x?a=\"b\"", "a\\b", "e\r\nSet-Cookie: x=1", "tab\there, bell\a, DEL\x7f, é, \xff")
	f.Add("", "", "", "")
	f.Add("\"", "\\", "\\\"", "\",error=\"forged")
	f.Add(", scope=\"admin\"", " ", "\t", "\x00")
	f.Fuzz(func(t *testing.T, rm, scope, code, desc string) {
		p := web.ChallengeParams{ResourceMetadata: rm, Scope: scope, Error: code, Description: desc}
		out := web.Challenge("Bearer", p)
		for i := 0; i < len(out); i++ {
			if c := out[i]; (c < 0x20 && c != '\t') || c >= 0x7f {
				t.Fatalf("challenge %q has byte %#x: not a single clean header line", out, c)
			}
		}
		var buf bytes.Buffer
		if err := (http.Header{"Www-Authenticate": {out}}).Write(&buf); err != nil || strings.Count(buf.String(), "\r\n") != 1 {
			t.Fatalf("challenge %q does not write as one header line: %q", out, buf.String())
		}
		scheme, params, err := parseChallenge(out)
		if err != nil {
			t.Fatalf("challenge %q: %v", out, err)
		}
		if scheme != "Bearer" {
			t.Fatalf("scheme %q", scheme)
		}
		var want [][2]string
		for _, kv := range [][2]string{{"resource_metadata", rm}, {"scope", scope}, {"error", code}, {"error_description", desc}} {
			if kv[1] != "" {
				want = append(want, [2]string{kv[0], quotable(kv[1])})
			}
		}
		if !slices.Equal(params, want) {
			t.Fatalf("challenge %q parses as %q, want %q", out, params, want)
		}
		// Values made only of the characters RFC 6750 §3 allows come out
		// as they are, without quoted-pairs.
		if rfc6749Text(rm+scope+code+desc) && strings.ContainsRune(out, '\\') {
			t.Fatalf("challenge %q escapes a plain value", out)
		}
	})
}

// quotable keeps the bytes a quoted-string holds as they are: HTAB and
// printable ASCII.
func quotable(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\t' || (c >= 0x20 && c < 0x7f) {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// parseChallenge parses one challenge strictly (RFC 9110 §11.3, §5.6):
//
//	challenge  = auth-scheme [ 1*SP #auth-param ]
//	auth-param = token BWS "=" BWS ( token / quoted-string )
//
// with no empty list elements and each parameter name once. It returns
// the scheme and the parameters in order, quoted-strings unescaped.
func parseChallenge(s string) (string, [][2]string, error) {
	i := 0
	token := func() string {
		start := i
		for i < len(s) && isTChar(s[i]) {
			i++
		}
		return s[start:i]
	}
	ws := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
	}
	scheme := token()
	if scheme == "" {
		return "", nil, fmt.Errorf("no auth-scheme at %d", i)
	}
	if i == len(s) {
		return scheme, nil, nil
	}
	if s[i] != ' ' {
		return "", nil, fmt.Errorf("byte %q after the scheme", s[i])
	}
	for i < len(s) && s[i] == ' ' {
		i++
	}
	var params [][2]string
	seen := map[string]bool{}
	for {
		name := token()
		if name == "" {
			return "", nil, fmt.Errorf("no parameter name at %d", i)
		}
		if seen[strings.ToLower(name)] {
			return "", nil, fmt.Errorf("parameter %s repeated", name)
		}
		seen[strings.ToLower(name)] = true
		ws()
		if i == len(s) || s[i] != '=' {
			return "", nil, fmt.Errorf("no '=' after %s", name)
		}
		i++
		ws()
		var value string
		if i < len(s) && s[i] == '"' {
			i++
			var b strings.Builder
			for {
				if i == len(s) {
					return "", nil, fmt.Errorf("unterminated quoted-string for %s", name)
				}
				c := s[i]
				i++
				if c == '"' {
					break
				}
				if c == '\\' {
					if i == len(s) || !(s[i] == '\t' || s[i] == ' ' || (s[i] > 0x20 && s[i] != 0x7f)) {
						return "", nil, fmt.Errorf("bad quoted-pair in %s", name)
					}
					c = s[i]
					i++
				} else if !(c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) || c >= 0x80) {
					return "", nil, fmt.Errorf("byte %#x in the quoted-string of %s", c, name)
				}
				b.WriteByte(c)
			}
			value = b.String()
		} else if value = token(); value == "" {
			return "", nil, fmt.Errorf("no value for %s", name)
		}
		params = append(params, [2]string{name, value})
		ws()
		if i == len(s) {
			return scheme, params, nil
		}
		if s[i] != ',' {
			return "", nil, fmt.Errorf("byte %q after the value of %s", s[i], name)
		}
		i++
		ws()
	}
}

// isTChar reports whether c is a tchar (RFC 9110 §5.6.2).
func isTChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
