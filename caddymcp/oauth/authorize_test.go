package oauth_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testkeys"
	"github.com/caddymcp/caddymcp/caddymcp/internal/web"
	"github.com/caddymcp/caddymcp/caddymcp/oauth"
)

func TestMetadataEndpoints(t *testing.T) {
	t.Parallel()
	fetch := func(t *testing.T, f *flow) map[string]any {
		t.Helper()
		w := f.get(oauth.ASMetadataPath, nil)
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		var m map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	t.Run("fields", func(t *testing.T) {
		t.Parallel()
		m := fetch(t, newFlow(t))
		for key, want := range map[string]string{
			"issuer":                 flowIssuer,
			"authorization_endpoint": flowIssuer + "/oauth/authorize",
			"token_endpoint":         flowIssuer + "/oauth/token",
			"registration_endpoint":  flowIssuer + "/oauth/register",
			"revocation_endpoint":    flowIssuer + "/oauth/revoke",
			"introspection_endpoint": flowIssuer + "/oauth/introspect",
			"jwks_uri":               flowIssuer + "/oauth/jwks",
		} {
			if m[key] != want {
				t.Errorf("%s = %v, want %s", key, m[key], want)
			}
		}
		for key, want := range map[string][]string{
			"grant_types_supported":            {"authorization_code", "refresh_token"},
			"response_types_supported":         {"code"},
			"code_challenge_methods_supported": {"S256"},
			"scopes_supported":                 web.DefaultScopes,
		} {
			if got := strList(m, key); !slices.Equal(got, want) {
				t.Errorf("%s = %v, want %v", key, got, want)
			}
		}
		for _, key := range []string{"token_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported"} {
			got := strList(m, key)
			for _, want := range []string{"none", "client_secret_basic", "client_secret_post"} {
				if !slices.Contains(got, want) {
					t.Errorf("%s = %v, lacks %s", key, got, want)
				}
			}
		}
		if got := strList(m, "introspection_endpoint_auth_methods_supported"); slices.Contains(got, "none") || len(got) == 0 {
			t.Errorf("introspection_endpoint_auth_methods_supported = %v", got)
		}
		if m["authorization_response_iss_parameter_supported"] != true {
			t.Errorf("authorization_response_iss_parameter_supported = %v", m["authorization_response_iss_parameter_supported"])
		}
		for _, key := range []string{"implicit", "password"} {
			if slices.Contains(strList(m, "grant_types_supported"), key) {
				t.Errorf("grant_types_supported lists %s", key)
			}
		}
	})
	t.Run("registration disabled", func(t *testing.T) {
		t.Parallel()
		m := fetch(t, newFlow(t, func(c *oauth.Config) { c.Registration.Disabled = true }))
		if v, ok := m["registration_endpoint"]; ok {
			t.Errorf("registration_endpoint = %v while registration is disabled", v)
		}
		if m["token_endpoint"] != flowIssuer+"/oauth/token" {
			t.Errorf("token_endpoint = %v", m["token_endpoint"])
		}
	})
}

// TestIssuerIdentical checks that the metadata issuer, the iss of access
// tokens and the iss of authorization responses are byte-identical, with
// a configured issuer and with one derived from the request.
func TestIssuerIdentical(t *testing.T) {
	t.Parallel()
	for name, configured := range map[string]string{"configured": flowIssuer, "derived": ""} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFlow(t, func(c *oauth.Config) { c.Issuer = configured })
			w := f.get(oauth.ASMetadataPath, nil)
			var md oauth.ASMetadata
			if err := json.Unmarshal(w.Body.Bytes(), &md); err != nil {
				t.Fatal(err)
			}
			c := f.register("none", nil)
			verifier, challenge := newPKCE(t)
			id, csrf := consentForm(t, f.get(oauth.AuthorizePath, authQuery(c, challenge, nil)))
			q := wantRedirect(t, f.decide(id, csrf, "approve"), http.StatusSeeOther, c.RedirectURI+"?")
			tb := wantToken(t, f.exchange(c, q.Get("code"), verifier, nil))
			iss := jwtPart(t, tb.AccessToken, 1)["iss"]
			errQ := wantRedirect(t, f.get(oauth.AuthorizePath, authQuery(c, challenge, url.Values{"response_type": {"token"}})),
				http.StatusFound, c.RedirectURI+"?")
			if md.Issuer != flowIssuer || q.Get("iss") != md.Issuer || iss != md.Issuer || errQ.Get("iss") != md.Issuer {
				t.Errorf("issuers differ: metadata %q, success redirect %q, error redirect %q, token %q",
					md.Issuer, q.Get("iss"), errQ.Get("iss"), iss)
			}
		})
	}
}

func TestAuthorizeBadClientNeverRedirects(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	c := f.register("none", nil)
	two := f.register("none", map[string]any{"redirect_uris": []string{flowRedirect, flowRedirect + "2"}})
	_, challenge := newPKCE(t)
	tests := []struct {
		name   string
		client testClient
		extra  url.Values
	}{
		{"missing client_id", c, url.Values{"client_id": nil}},
		{"empty client_id", c, url.Values{"client_id": {""}}},
		{"unknown client_id", c, url.Values{"client_id": {"no-such-client"}}},
		{"repeated client_id", c, url.Values{"client_id": {c.ID, c.ID}}},
		{"unregistered redirect_uri", c, url.Values{"redirect_uri": {"https://evil.example/callback"}}},
		{"redirect_uri with another path", c, url.Values{"redirect_uri": {flowRedirect + "/x"}}},
		{"redirect_uri with a query", c, url.Values{"redirect_uri": {flowRedirect + "?x=1"}}},
		{"redirect_uri with a trailing slash", c, url.Values{"redirect_uri": {flowRedirect + "/"}}},
		{"redirect_uri with another case", c, url.Values{"redirect_uri": {"https://APP.example.com/callback"}}},
		{"redirect_uri of another client", c, url.Values{"redirect_uri": {flowRedirect + "2"}}},
		{"repeated redirect_uri", c, url.Values{"redirect_uri": {flowRedirect, flowRedirect}}},
		{"no redirect_uri, several registered", two, url.Values{"redirect_uri": nil}},
		{"unknown client and a bad response_type", c, url.Values{"client_id": {"nope"}, "response_type": {"token"}}},
		{"bad redirect_uri and no PKCE", c, url.Values{"redirect_uri": {"https://evil.example/cb"}, "code_challenge": nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.get(oauth.AuthorizePath, authQuery(tt.client, challenge, tt.extra))
			wantPage(t, w, http.StatusBadRequest)
			if strings.Contains(w.Body.String(), "evil.example") {
				t.Error("the error page links to the unregistered redirect URI")
			}
		})
	}
	t.Run("POST", func(t *testing.T) {
		form := authQuery(c, challenge, url.Values{"redirect_uri": {"https://evil.example/callback"}})
		r := httptest.NewRequest(http.MethodPost, flowIssuer+oauth.AuthorizePath, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		wantPage(t, f.serve(r), http.StatusBadRequest)
	})
	t.Run("omitted redirect_uri with one registered", func(t *testing.T) {
		id, csrf := consentForm(t, f.get(oauth.AuthorizePath, authQuery(c, challenge, url.Values{"redirect_uri": nil})))
		wantRedirect(t, f.decide(id, csrf, "approve"), http.StatusSeeOther, flowRedirect+"?")
	})
}

func TestAuthorizeRedirectURIMatching(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	c := f.register("none", map[string]any{"redirect_uris": []string{
		"http://127.0.0.1:1234/cb", "http://localhost/cb", "http://[::1]:9/cb",
		"https://app.example.com:8443/cb", "cursor://anysphere.cursor-mcp/oauth/callback",
	}})
	only127 := f.register("none", map[string]any{"redirect_uris": []string{"http://127.0.0.1:1234/cb"}})
	_, challenge := newPKCE(t)
	tests := []struct {
		name     string
		client   testClient
		redirect string
		ok       bool
	}{
		{"registered loopback", c, "http://127.0.0.1:1234/cb", true},
		{"loopback, other port", c, "http://127.0.0.1:5555/cb", true},
		{"loopback, no port", c, "http://127.0.0.1/cb", true},
		{"localhost, any port", c, "http://localhost:6274/cb", true},
		{"IPv6 loopback, other port", c, "http://[::1]:7777/cb", true},
		{"https, registered port", c, "https://app.example.com:8443/cb", true},
		{"private-use scheme", c, "cursor://anysphere.cursor-mcp/oauth/callback", true},
		{"localhost is not 127.0.0.1", only127, "http://localhost:1234/cb", false},
		{"[::1] is not 127.0.0.1", only127, "http://[::1]:1234/cb", false},
		{"127.0.0.2 is not 127.0.0.1", only127, "http://127.0.0.2:1234/cb", false},
		{"loopback, other path", c, "http://127.0.0.1:5555/cb/x", false},
		{"loopback, path case", c, "http://127.0.0.1:5555/CB", false},
		{"loopback, added query", c, "http://127.0.0.1:5555/cb?x=1", false},
		{"loopback over https", c, "https://127.0.0.1:1234/cb", false},
		{"loopback with userinfo", c, "http://127.0.0.1:5555@evil.example/cb", false},
		{"https, default port", c, "https://app.example.com/cb", false},
		{"https, other port", c, "https://app.example.com:9443/cb", false},
		{"private-use scheme, other path", c, "cursor://anysphere.cursor-mcp/oauth/other", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.get(oauth.AuthorizePath, authQuery(tt.client, challenge, url.Values{"redirect_uri": {tt.redirect}}))
			if !tt.ok {
				wantPage(t, w, http.StatusBadRequest)
				return
			}
			consentForm(t, w)
		})
	}
	t.Run("code goes to the requested port and is bound to it", func(t *testing.T) {
		lc := c
		lc.RedirectURI = "http://127.0.0.1:5555/cb"
		code, verifier := f.authorizeCode(lc, nil)
		wantOAuthError(t, f.exchange(lc, code, verifier, url.Values{"redirect_uri": {"http://127.0.0.1:1234/cb"}}),
			http.StatusBadRequest, "invalid_grant")
		wantToken(t, f.exchange(lc, code, verifier, nil))
	})
}

func TestAuthorizeErrorRedirects(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	c := f.register("none", nil)
	f.authorizeCode(c, nil) // the user approves the client once: its redirect URI is trusted
	_, challenge := newPKCE(t)
	tests := []struct {
		name    string
		extra   url.Values
		code    string
		state   string
		getOnly bool // a POST body may not repeat parameters
	}{
		{"no response_type", url.Values{"response_type": nil}, "invalid_request", "xyz-state", false},
		{"response_type token", url.Values{"response_type": {"token"}}, "unsupported_response_type", "xyz-state", false},
		{"response_type code token", url.Values{"response_type": {"code token"}}, "unsupported_response_type", "xyz-state", false},
		{"response_type id_token", url.Values{"response_type": {"id_token"}}, "unsupported_response_type", "xyz-state", false},
		{"no code_challenge", url.Values{"code_challenge": nil, "code_challenge_method": nil}, "invalid_request", "xyz-state", false},
		{"empty code_challenge", url.Values{"code_challenge": {""}}, "invalid_request", "xyz-state", false},
		{"method plain", url.Values{"code_challenge_method": {"plain"}}, "invalid_request", "xyz-state", false},
		{"method missing", url.Values{"code_challenge_method": nil}, "invalid_request", "xyz-state", false},
		{"method lowercase", url.Values{"code_challenge_method": {"s256"}}, "invalid_request", "xyz-state", false},
		{"challenge too short", url.Values{"code_challenge": {challenge[:42]}}, "invalid_request", "xyz-state", false},
		{"challenge too long", url.Values{"code_challenge": {challenge + "A"}}, "invalid_request", "xyz-state", false},
		{"challenge padded", url.Values{"code_challenge": {challenge[:42] + "="}}, "invalid_request", "xyz-state", false},
		{"challenge not base64url", url.Values{"code_challenge": {challenge[:42] + "+"}}, "invalid_request", "xyz-state", false},
		{"repeated code_challenge", url.Values{"code_challenge": {challenge, challenge}}, "invalid_request", "xyz-state", true},
		{"unknown resource", url.Values{"resource": {"https://evil.example/mcp"}}, "invalid_target", "xyz-state", false},
		{"two resources", url.Values{"resource": {flowResource, flowRootResource}}, "invalid_target", "xyz-state", true},
		{"resource with a trailing slash", url.Values{"resource": {flowResource + "/"}}, "invalid_target", "xyz-state", false},
		{"resource below the root one", url.Values{"resource": {flowRootResource + "/x"}}, "invalid_target", "xyz-state", false},
		{"resource with a fragment", url.Values{"resource": {flowResource + "#f"}}, "invalid_target", "xyz-state", false},
		{"relative resource", url.Values{"resource": {"/mcp"}}, "invalid_target", "xyz-state", false},
		{"resource with another scheme", url.Values{"resource": {"http://mcp.example.com/mcp"}}, "invalid_target", "xyz-state", false},
		{"only unknown scopes", url.Values{"scope": {"admin root"}}, "invalid_scope", "xyz-state", false},
		{"repeated scope", url.Values{"scope": {"booking:read", "order:read"}}, "invalid_scope", "xyz-state", true},
		{"no state", url.Values{"state": nil, "response_type": {"token"}}, "unsupported_response_type", "", false},
		{"state too long", url.Values{"state": {strings.Repeat("s", 2049)}}, "invalid_request", "", false},
		{"repeated state", url.Values{"state": {"a", "b"}}, "invalid_request", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := authQuery(c, challenge, tt.extra)
			w := f.get(oauth.AuthorizePath, q)
			wantAuthError(t, w, http.StatusFound, c.RedirectURI, tt.code, tt.state)
			if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q", cc)
			}
			if tt.getOnly {
				return
			}
			r := httptest.NewRequest(http.MethodPost, flowIssuer+oauth.AuthorizePath, strings.NewReader(q.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			wantAuthError(t, f.serve(r), http.StatusSeeOther, c.RedirectURI, tt.code, tt.state)
		})
	}
}

func TestAuthorizeResources(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	c := f.register("none", nil)
	tests := []struct {
		name, resource, tokenResource, wantAud string
	}{
		{"default", "", "", flowResource},
		{"path resource", flowResource, flowResource, flowResource},
		{"uppercase scheme and host", "HTTPS://MCP.EXAMPLE.COM/mcp", flowResource, flowResource},
		{"root without slash", flowRootResource, flowRootResource, flowRootResource},
		{"root with slash", flowRootResource + "/", flowRootResource + "/", flowRootResource},
		{"root with slash, token without", flowRootResource + "/", flowRootResource, flowRootResource},
		{"root without slash, token with", flowRootResource, flowRootResource + "/", flowRootResource},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			extra := url.Values{"resource": nil}
			if tt.resource != "" {
				extra["resource"] = []string{tt.resource}
			}
			code, verifier := f.authorizeCode(c, extra)
			tokExtra := url.Values{"resource": nil}
			if tt.tokenResource != "" {
				tokExtra["resource"] = []string{tt.tokenResource}
			}
			tb := wantToken(t, f.exchange(c, code, verifier, tokExtra))
			if aud := f.verify(tb.AccessToken).Audience; !slices.Equal(aud, []string{tt.wantAud}) {
				t.Errorf("aud = %v, want [%s]", aud, tt.wantAud)
			}
		})
	}
}

func TestAuthorizeIgnoresUnknownParameters(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	c := f.register("none", nil)
	code, verifier := f.authorizeCode(c, url.Values{
		"nonce": {"n-0S6_WzA2Mj"}, "display": {"page"}, "foo": {"bar", "baz"}, "ui_locales": {"de"}, "max_age": {"0"},
	})
	wantToken(t, f.exchange(c, code, verifier, nil))
}

func TestAuthorizeScope(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	tests := []struct {
		name        string
		clientScope string   // registered scope; "" = any
		userScopes  []string // nil = no user limit
		requested   *string  // nil = not sent
		want        string   // granted scope, or an error code
		wantErr     bool
	}{
		{"as requested", "", nil, ptr("booking:read booking:write"), "booking:read booking:write", false},
		{"unknown scopes dropped", "", nil, ptr("booking:read admin order:read"), "booking:read order:read", false},
		{"duplicates dropped", "", nil, ptr("booking:read booking:read"), "booking:read", false},
		{"none requested: everything", "", nil, nil, strings.Join(web.DefaultScopes, " "), false},
		{"none requested: the client's", "order:read booking:read", nil, nil, "order:read booking:read", false},
		{"registered scope is no cap", "booking:read order:read", nil, ptr("booking:read booking:write"), "booking:read booking:write", false},
		{"cut to the user's", "", []string{"booking:read", "form:read"}, ptr("booking:read booking:write form:read"), "booking:read form:read", false},
		{"requested and the user's", "booking:read booking:write order:read", []string{"booking:write", "order:read", "form:read"},
			ptr("booking:read booking:write order:read form:read"), "booking:write order:read form:read", false},
		{"step-up beyond the registered scope", "order:read", nil, ptr("booking:read"), "booking:read", false},
		{"only unknown", "", nil, ptr("admin"), "invalid_scope", true},
		{"nothing left for the user", "", []string{"product:read"}, ptr("booking:read"), "access_denied", true},
		{"user may grant nothing", "", []string{}, ptr("booking:read"), "access_denied", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md := map[string]any{}
			if tt.clientScope != "" {
				md["scope"] = tt.clientScope
			}
			c := f.register("none", md)
			if tt.wantErr {
				f.authorizeCode(c, nil) // trusted, so that errors are redirected
			}
			u := *alice
			u.Scopes = tt.userScopes
			f.users.SignIn(&u)
			defer f.users.SignIn(alice)
			extra := url.Values{"scope": nil}
			if tt.requested != nil {
				extra["scope"] = []string{*tt.requested}
			}
			_, challenge := newPKCE(t)
			w := f.get(oauth.AuthorizePath, authQuery(c, challenge, extra))
			if tt.wantErr {
				wantAuthError(t, w, http.StatusFound, c.RedirectURI, tt.want, "xyz-state")
				return
			}
			code, verifier := f.authorizeCode(c, extra)
			tb := wantToken(t, f.exchange(c, code, verifier, nil))
			if tb.Scope != tt.want {
				t.Errorf("scope = %q, want %q", tb.Scope, tt.want)
			}
			if got := f.verify(tb.AccessToken).Scope; got != tt.want {
				t.Errorf("token scope claim = %q, want %q", got, tt.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestAuthorizeLogin(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	c := f.register("none", nil)
	_, challenge := newPKCE(t)
	q := authQuery(c, challenge, nil)

	t.Run("GET without a user logs in", func(t *testing.T) {
		f.users.SignIn(nil)
		defer f.users.SignIn(alice)
		before := f.users.Logins()
		w := f.get(oauth.AuthorizePath, q)
		if f.users.Logins() != before+1 {
			t.Fatalf("Login was not called: %d %s", w.Code, w.Body)
		}
		if loc := w.Header().Get("Location"); !strings.HasPrefix(loc, loginURL+"?") {
			t.Errorf("Location = %q, want the login page", loc)
		}
	})
	t.Run("POST without a user goes to the GET URL", func(t *testing.T) {
		f.users.SignIn(nil)
		defer f.users.SignIn(alice)
		before := f.users.Logins()
		r := httptest.NewRequest(http.MethodPost, flowIssuer+oauth.AuthorizePath, strings.NewReader(q.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := f.serve(r)
		if w.Code != http.StatusSeeOther {
			t.Fatalf("status %d, want 303: %s", w.Code, w.Body)
		}
		loc, err := url.Parse(w.Header().Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		if got := loc.Scheme + "://" + loc.Host + loc.Path; got != flowIssuer+oauth.AuthorizePath {
			t.Errorf("Location %s, want the authorization endpoint", loc)
		}
		for k := range q {
			if !slices.Equal(loc.Query()[k], q[k]) {
				t.Errorf("parameter %s = %v, want %v", k, loc.Query()[k], q[k])
			}
		}
		if f.users.Logins() != before {
			t.Error("Login was called for a POST")
		}
		// Once signed in, the GET URL continues the request.
		f.users.SignIn(alice)
		consentForm(t, f.get(oauth.AuthorizePath, loc.Query()))
	})
	t.Run("prompt=none without a user", func(t *testing.T) {
		f.users.SignIn(nil)
		defer f.users.SignIn(alice)
		before := f.users.Logins()
		// Nobody is signed in, so nothing vouches for the dynamically
		// registered client's redirect URI: the error is shown, not sent.
		w := f.get(oauth.AuthorizePath, authQuery(c, challenge, url.Values{"prompt": {"none"}}))
		wantPage(t, w, http.StatusBadRequest)
		if w.Header().Get("Location") != "" || !strings.Contains(w.Body.String(), "login_required") {
			t.Errorf("prompt=none without a user: Location %q", w.Header().Get("Location"))
		}
		if f.users.Logins() != before {
			t.Error("Login was called despite prompt=none")
		}
	})
	t.Run("prompt=none without consent", func(t *testing.T) {
		w := f.get(oauth.AuthorizePath, authQuery(c, challenge, url.Values{"prompt": {"none"}}))
		wantPage(t, w, http.StatusBadRequest)
		if w.Header().Get("Location") != "" || !strings.Contains(w.Body.String(), "consent_required") {
			t.Errorf("prompt=none without consent: Location %q", w.Header().Get("Location"))
		}
	})
	t.Run("prompt=none with consent", func(t *testing.T) {
		f.authorizeCode(c, nil) // approves
		code, verifier := f.authorizeCode(c, url.Values{"prompt": {"none"}})
		wantToken(t, f.exchange(c, code, verifier, nil))
	})
	t.Run("no authenticator", func(t *testing.T) {
		g := newFlow(t, func(cfg *oauth.Config) { cfg.Users = nil })
		gc := g.register("none", nil)
		w := g.get(oauth.AuthorizePath, authQuery(gc, challenge, nil))
		wantPage(t, w, http.StatusServiceUnavailable)
		w = g.decide("x", "y", "approve")
		wantPage(t, w, http.StatusServiceUnavailable)
	})
}

func TestAuthorizePOST(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	c := f.register("none", nil)
	verifier, challenge := newPKCE(t)
	post := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, flowIssuer+oauth.AuthorizePath, strings.NewReader(authQuery(c, challenge, nil).Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return f.serve(r)
	}
	id, csrf := consentForm(t, post())
	q := wantRedirect(t, f.decide(id, csrf, "approve"), http.StatusSeeOther, c.RedirectURI+"?")
	wantToken(t, f.exchange(c, q.Get("code"), verifier, nil))
	// With consent remembered the POST itself answers 303 with a code.
	q = wantRedirect(t, post(), http.StatusSeeOther, c.RedirectURI+"?")
	if q.Get("code") == "" || q.Get("state") != "xyz-state" || q.Get("iss") != flowIssuer {
		t.Errorf("redirect %v", q)
	}
	wantToken(t, f.exchange(c, q.Get("code"), verifier, nil))

	t.Run("wrong content type", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodPost, flowIssuer+oauth.AuthorizePath, strings.NewReader(authQuery(c, challenge, nil).Encode()))
		r.Header.Set("Content-Type", "text/plain")
		wantPage(t, f.serve(r), http.StatusBadRequest)
	})
	t.Run("other methods", func(t *testing.T) {
		for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
			w := f.serve(httptest.NewRequest(m, flowIssuer+oauth.AuthorizePath+"?"+authQuery(c, challenge, nil).Encode(), nil))
			wantPage(t, w, http.StatusMethodNotAllowed)
		}
	})
}

func TestConsent(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	begin := func(t *testing.T, c testClient, extra url.Values) (requestID, csrf, verifier string) {
		t.Helper()
		verifier, challenge := newPKCE(t)
		requestID, csrf = consentForm(t, f.get(oauth.AuthorizePath, authQuery(c, challenge, extra)))
		return requestID, csrf, verifier
	}

	t.Run("page before any code", func(t *testing.T) {
		c := f.register("none", nil)
		_, challenge := newPKCE(t)
		w := f.get(oauth.AuthorizePath, authQuery(c, challenge, nil))
		consentForm(t, w)
		body := w.Body.String()
		for _, want := range []string{"Test App", "app.example.com", flowRedirect, flowResource, `action="` + flowIssuer + oauth.ConsentPath + `"`} {
			if !strings.Contains(body, want) {
				t.Errorf("consent page lacks %q", want)
			}
		}
		if strings.Contains(body, "code=") {
			t.Error("the consent page carries a code")
		}
	})
	t.Run("approve", func(t *testing.T) {
		c := f.register("none", nil)
		id, csrf, verifier := begin(t, c, nil)
		q := wantRedirect(t, f.decide(id, csrf, "approve"), http.StatusSeeOther, c.RedirectURI+"?")
		if q.Get("code") == "" || q.Get("state") != "xyz-state" || q.Get("iss") != flowIssuer || q.Has("error") {
			t.Errorf("redirect %v", q)
		}
		wantToken(t, f.exchange(c, q.Get("code"), verifier, nil))
	})
	t.Run("deny", func(t *testing.T) {
		c := f.register("none", nil)
		id, csrf, _ := begin(t, c, nil)
		wantAuthError(t, f.decide(id, csrf, "deny"), http.StatusSeeOther, c.RedirectURI, "access_denied", "xyz-state")
		// Denying remembers nothing.
		begin(t, c, nil)
	})
	t.Run("wrong csrf token", func(t *testing.T) {
		for name, bad := range map[string]string{"forged": "forged", "empty": "", "truncated": "", "other request's": ""} {
			t.Run(name, func(t *testing.T) {
				c := f.register("none", nil)
				id, csrf, _ := begin(t, c, nil)
				switch name {
				case "truncated":
					bad = csrf[:len(csrf)-1]
				case "other request's":
					_, bad, _ = begin(t, c, nil)
				}
				wantPage(t, f.decide(id, bad, "approve"), http.StatusForbidden)
				// The refused request gives no code, even with the right token.
				wantPage(t, f.decide(id, csrf, "approve"), http.StatusBadRequest)
			})
		}
	})
	// Only the user who was asked may decide.
	for _, tt := range []struct {
		name   string
		user   *oauth.User // signed in when the form is posted
		status int
	}{
		{"another user's session", bob, http.StatusForbidden},
		{"signed out before deciding", nil, http.StatusUnauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := f.register("none", nil)
			id, csrf, _ := begin(t, c, nil)
			f.users.SignIn(tt.user)
			defer f.users.SignIn(alice)
			wantPage(t, f.decide(id, csrf, "approve"), tt.status)
		})
	}
	t.Run("replayed request", func(t *testing.T) {
		c := f.register("none", nil)
		id, csrf, _ := begin(t, c, nil)
		wantRedirect(t, f.decide(id, csrf, "approve"), http.StatusSeeOther, c.RedirectURI+"?")
		wantPage(t, f.decide(id, csrf, "approve"), http.StatusBadRequest)
		wantPage(t, f.decide(id, csrf, "deny"), http.StatusBadRequest)
	})
	t.Run("unknown request", func(t *testing.T) {
		wantPage(t, f.decide("no-such-request", "x", "approve"), http.StatusBadRequest)
		wantPage(t, f.decide("", "", "approve"), http.StatusBadRequest)
	})
	t.Run("no decision", func(t *testing.T) {
		c := f.register("none", nil)
		id, csrf, _ := begin(t, c, nil)
		for _, d := range []string{"", "maybe", "APPROVE"} {
			wantPage(t, f.decide(id, csrf, d), http.StatusBadRequest)
		}
		// The request was not used up by an invalid form.
		wantRedirect(t, f.decide(id, csrf, "approve"), http.StatusSeeOther, c.RedirectURI+"?")
	})
	t.Run("not a POST", func(t *testing.T) {
		for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodHead} {
			w := f.serve(httptest.NewRequest(m, flowIssuer+oauth.ConsentPath+"?decision=approve", nil))
			if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Location") != "" {
				t.Errorf("%s: status %d", m, w.Code)
			}
		}
	})
	t.Run("remembered", func(t *testing.T) {
		c := f.register("none", nil)
		f.authorizeCode(c, url.Values{"scope": {"booking:read booking:write"}})
		_, challenge := newPKCE(t)
		for _, scope := range []string{"booking:read booking:write", "booking:read", "booking:write booking:read"} {
			q := wantRedirect(t, f.get(oauth.AuthorizePath, authQuery(c, challenge, url.Values{"scope": {scope}})),
				http.StatusFound, c.RedirectURI+"?")
			if q.Get("code") == "" || q.Get("iss") != flowIssuer || q.Get("state") != "xyz-state" {
				t.Errorf("scope %q: redirect %v", scope, q)
			}
		}
		// More scopes ask again; approving adds them to what is remembered.
		id, csrf := consentForm(t, f.get(oauth.AuthorizePath, authQuery(c, challenge, url.Values{"scope": {"booking:read order:read"}})))
		wantRedirect(t, f.decide(id, csrf, "approve"), http.StatusSeeOther, c.RedirectURI+"?")
		wantRedirect(t, f.get(oauth.AuthorizePath, authQuery(c, challenge, url.Values{"scope": {"booking:write order:read"}})),
			http.StatusFound, c.RedirectURI+"?")
		// prompt=consent always asks.
		consentForm(t, f.get(oauth.AuthorizePath, authQuery(c, challenge, url.Values{"prompt": {"consent"}, "scope": {"booking:read"}})))
		// Consent is per user.
		f.users.SignIn(bob)
		defer f.users.SignIn(alice)
		consentForm(t, f.get(oauth.AuthorizePath, authQuery(c, challenge, url.Values{"scope": {"booking:read"}})))
	})
	t.Run("remembered per client", func(t *testing.T) {
		c1 := f.register("none", nil)
		c2 := f.register("none", nil)
		f.authorizeCode(c1, nil)
		begin(t, c2, nil)
	})
	t.Run("expired", func(t *testing.T) {
		g := newFlow(t)
		c := g.register("none", nil)
		_, challenge := newPKCE(t)
		id, csrf := consentForm(t, g.get(oauth.AuthorizePath, authQuery(c, challenge, nil)))
		g.clock.Advance(10*time.Minute + time.Second)
		wantPage(t, g.decide(id, csrf, "approve"), http.StatusBadRequest)
		// Just before the end it still works.
		id, csrf = consentForm(t, g.get(oauth.AuthorizePath, authQuery(c, challenge, nil)))
		g.clock.Advance(10*time.Minute - time.Second)
		wantRedirect(t, g.decide(id, csrf, "approve"), http.StatusSeeOther, c.RedirectURI+"?")
	})
}

// TestServerWithoutStore checks a server that has no store: it serves
// metadata, refuses static clients at construction, and fails closed
// (never panics) on the endpoints that need a store.
func TestServerWithoutStore(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	if _, err := oauth.New(oauth.Config{Issuer: flowIssuer, Keys: testkeys.Static{KS: f.keys}, Users: f.users,
		StaticClients: []oauth.StaticClient{{ID: "static", RedirectURIs: []string{flowRedirect}}}}); err == nil {
		t.Fatal("static clients without a store were accepted")
	}
	s, err := oauth.New(oauth.Config{Issuer: flowIssuer, Keys: testkeys.Static{KS: f.keys}, Users: f.users, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = s
	if w := f.get(oauth.ASMetadataPath, nil); w.Code != http.StatusOK {
		t.Errorf("metadata: status %d", w.Code)
	}
	wantPage(t, f.decide("request", "csrf", "approve"), http.StatusServiceUnavailable)
	_, challenge := newPKCE(t)
	wantPage(t, f.get(oauth.AuthorizePath, authQuery(testClient{ID: "someone", RedirectURI: flowRedirect}, challenge, nil)),
		http.StatusBadRequest)
	anyone := testClient{ID: "someone", Method: "none"}
	wantOAuthError(t, f.postForm(oauth.TokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, &anyone),
		http.StatusUnauthorized, "invalid_client")
	wantOAuthError(t, f.postForm(oauth.RevokePath, url.Values{"token": {"x"}}, &anyone), http.StatusUnauthorized, "invalid_client")
	wantOAuthError(t, f.postForm(oauth.IntrospectPath, url.Values{"token": {"x"}}, &anyone), http.StatusUnauthorized, "invalid_client")
	wantOAuthError(t, f.serve(registerRequest(`{"redirect_uris":["`+flowRedirect+`"]}`)), http.StatusForbidden, "access_denied")
}

func TestAuthorizeKeepsRegisteredQuery(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	c := f.register("none", map[string]any{"redirect_uris": []string{"https://app.example.com/cb?tenant=x&flag"}})
	_, challenge := newPKCE(t)
	// The user approves the client once, which makes it trusted.
	id, csrf := consentForm(t, f.get(oauth.AuthorizePath, authQuery(c, challenge, nil)))
	if w := f.decide(id, csrf, "approve"); w.Code != http.StatusSeeOther ||
		!strings.HasPrefix(w.Header().Get("Location"), "https://app.example.com/cb?tenant=x&flag&code=") {
		t.Fatalf("approval: %d %q", w.Code, w.Header().Get("Location"))
	}
	w := f.get(oauth.AuthorizePath, authQuery(c, challenge, url.Values{"response_type": {"token"}}))
	loc := w.Header().Get("Location")
	if w.Code != http.StatusFound || !strings.HasPrefix(loc, "https://app.example.com/cb?tenant=x&flag&") ||
		!strings.Contains(loc, "error=unsupported_response_type") {
		t.Fatalf("redirect = %d %q, want the registered query kept as it is", w.Code, loc)
	}
}

// TestStaticClientScopeIsACap: a configured client's scopes bound what it
// may receive, unlike a dynamically registered client's.
func TestStaticClientScopeIsACap(t *testing.T) {
	t.Parallel()
	capped := oauth.StaticClient{ID: "capped", RedirectURIs: []string{flowRedirect}, Scopes: []string{"booking:read", "order:read"}}
	f := newFlow(t, func(c *oauth.Config) { c.StaticClients = []oauth.StaticClient{capped} })
	sc := testClient{ID: capped.ID, RedirectURI: flowRedirect, Method: "none"}
	code, verifier := f.authorizeCode(sc, url.Values{"scope": {"booking:read booking:write"}})
	if tb := wantToken(t, f.exchange(sc, code, verifier, nil)); tb.Scope != "booking:read" {
		t.Errorf("scope = %q, want booking:read", tb.Scope)
	}
	_, challenge := newPKCE(t)
	w := f.get(oauth.AuthorizePath, authQuery(sc, challenge, url.Values{"scope": {"form:write"}}))
	wantAuthError(t, w, http.StatusFound, flowRedirect, "invalid_scope", "xyz-state")
}

// TestRememberedConsentIsBound: a remembered consent issues codes
// silently only to the exact redirect URI and resource approved; another
// loopback port or resource asks the user again.
func TestRememberedConsentIsBound(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	c := f.register("none", map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"}})
	at := func(port string, resource string) url.Values {
		v := url.Values{"redirect_uri": {"http://127.0.0.1:" + port + "/cb"}}
		if resource != "" {
			v.Set("resource", resource)
		}
		return v
	}
	_, challenge := newPKCE(t)
	id, csrf := consentForm(t, f.get(oauth.AuthorizePath, authQuery(c, challenge, at("5000", ""))))
	wantRedirect(t, f.decide(id, csrf, "approve"), http.StatusSeeOther, "http://127.0.0.1:5000/cb")
	// Same port: remembered.
	wantRedirect(t, f.get(oauth.AuthorizePath, authQuery(c, challenge, at("5000", ""))), http.StatusFound, "http://127.0.0.1:5000/cb")
	// Another port or resource: the consent page again, no code.
	for name, q := range map[string]url.Values{"other port": at("6000", ""), "other resource": at("5000", flowRootResource)} {
		w := f.get(oauth.AuthorizePath, authQuery(c, challenge, q))
		if w.Code != http.StatusOK || w.Header().Get("Location") != "" {
			t.Errorf("%s: %d %q, want the consent page", name, w.Code, w.Header().Get("Location"))
		}
	}
}

// TestUntrustedClientErrorsAreShown: errors for a dynamically registered
// client nobody has approved are shown to the user instead of being
// redirected, so open registration cannot make this host an open
// redirector (RFC 9700 §4.11.2); a configured client's errors redirect.
func TestUntrustedClientErrorsAreShown(t *testing.T) {
	t.Parallel()
	static := oauth.StaticClient{ID: "configured", RedirectURIs: []string{flowRedirect}}
	f := newFlow(t, func(c *oauth.Config) { c.StaticClients = []oauth.StaticClient{static} })
	evil := f.register("none", map[string]any{"redirect_uris": []string{"https://evil.example/phish"}})
	_, challenge := newPKCE(t)
	for _, user := range []*oauth.User{nil, alice} {
		f.users.SignIn(user)
		w := f.get(oauth.AuthorizePath, authQuery(evil, challenge, url.Values{"response_type": {"token"}}))
		if w.Code != http.StatusBadRequest || w.Header().Get("Location") != "" {
			t.Errorf("signed in %v: %d, Location %q", user != nil, w.Code, w.Header().Get("Location"))
		}
	}
	sc := testClient{ID: static.ID, RedirectURI: flowRedirect, Method: "none"}
	w := f.get(oauth.AuthorizePath, authQuery(sc, challenge, url.Values{"response_type": {"token"}}))
	wantAuthError(t, w, http.StatusFound, flowRedirect, "unsupported_response_type", "xyz-state")
}
