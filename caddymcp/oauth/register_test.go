package oauth_test

import (
	"bytes"
	"context"
	"errors"
	"html"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/oauth"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// registration is a decoded registration response.
type registration map[string]any

func decodeRegistration(t *testing.T, w *httptest.ResponseRecorder) registration {
	t.Helper()
	var m registration
	wantJSONBody(t, w, http.StatusCreated, &m)
	if id, _ := m["client_id"].(string); id == "" {
		t.Fatalf("no client_id: %s", w.Body)
	}
	return m
}

func TestRegisterAuthMethods(t *testing.T) {
	t.Parallel()
	const lifetime = 90 * 24 * time.Hour
	tests := []struct {
		name       string
		method     any // nil: not sent
		lifetime   time.Duration
		wantMethod string
		wantSecret bool
		wantExpiry int64 // client_secret_expires_at when a secret is issued
	}{
		{"none", "none", 0, "none", false, 0},
		{"default", nil, 0, "client_secret_basic", true, 0},
		{"client_secret_basic", "client_secret_basic", 0, "client_secret_basic", true, 0},
		{"client_secret_post", "client_secret_post", 0, "client_secret_post", true, 0},
		{"secret lifetime", "client_secret_post", lifetime, "client_secret_post", true, flowStart.Add(lifetime).Unix()},
		{"none with a secret lifetime", "none", lifetime, "none", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFlow(t, func(c *oauth.Config) { c.Registration.SecretLifetime = tt.lifetime })
			md := map[string]any{"redirect_uris": []string{flowRedirect}}
			if tt.method != nil {
				md["token_endpoint_auth_method"] = tt.method
			}
			m := decodeRegistration(t, f.serve(registerRequest(mustJSON(t, md))))
			if m["token_endpoint_auth_method"] != tt.wantMethod {
				t.Errorf("token_endpoint_auth_method = %v, want %s", m["token_endpoint_auth_method"], tt.wantMethod)
			}
			if got := m["client_id_issued_at"]; got != float64(flowStart.Unix()) {
				t.Errorf("client_id_issued_at = %v, want %d", got, flowStart.Unix())
			}
			secret, hasSecret := m["client_secret"].(string)
			exp, hasExp := m["client_secret_expires_at"]
			stored, err := f.store.GetClient(context.Background(), m["client_id"].(string))
			if err != nil {
				t.Fatal(err)
			}
			if !tt.wantSecret {
				if hasSecret || hasExp {
					t.Errorf("a public client got client_secret %v / client_secret_expires_at %v", m["client_secret"], exp)
				}
				if stored.SecretHash != nil {
					t.Error("a public client has a stored secret hash")
				}
				return
			}
			if !hasSecret || len(secret) < 32 {
				t.Fatalf("client_secret = %v", m["client_secret"])
			}
			if !hasExp || exp != float64(tt.wantExpiry) {
				t.Errorf("client_secret_expires_at = %v (present %v), want %d", exp, hasExp, tt.wantExpiry)
			}
			// The store keeps the SHA-256 of the secret, never the secret.
			if !bytes.Equal(stored.SecretHash, store.Hash(secret)) {
				t.Errorf("stored secret hash %x is not sha256 of the secret", stored.SecretHash)
			}
			if bytes.Contains(stored.Metadata, []byte(secret)) || bytes.Contains(stored.SecretHash, []byte(secret)) {
				t.Error("the client secret is stored in clear")
			}
			if tt.lifetime > 0 && !stored.SecretExpiresAt.Equal(flowStart.Add(tt.lifetime)) {
				t.Errorf("stored secret expiry %v", stored.SecretExpiresAt)
			}
		})
	}
}

func TestRegisterEchoesMetadata(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	md := map[string]any{
		"redirect_uris":              []string{flowRedirect, "http://127.0.0.1:33418/", "cursor://anysphere.cursor-mcp/oauth/callback"},
		"token_endpoint_auth_method": "none",
		"grant_types":                []string{"refresh_token", "authorization_code"},
		"response_types":             []string{"code"},
		"client_name":                "Echo App",
		"client_uri":                 "https://app.example.com",
		"logo_uri":                   "https://app.example.com/logo.png",
		"tos_uri":                    "https://app.example.com/tos",
		"policy_uri":                 "https://app.example.com/privacy",
		"scope":                      "booking:read order:read",
		"contacts":                   []string{"ops@example.com"},
		"software_id":                "echo",
		"software_version":           "1.2.3",
		"application_type":           "native",
		"unknown_member":             "ignored",
	}
	m := decodeRegistration(t, f.serve(registerRequest(mustJSON(t, md))))
	for _, key := range []string{"client_name", "client_uri", "logo_uri", "tos_uri", "policy_uri", "scope",
		"software_id", "software_version", "application_type", "token_endpoint_auth_method"} {
		if m[key] != md[key] {
			t.Errorf("%s = %v, want %v", key, m[key], md[key])
		}
	}
	for _, key := range []string{"redirect_uris", "contacts", "response_types"} {
		if got, want := strList(m, key), md[key].([]string); !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", key, got, want)
		}
	}
	if got := strList(m, "grant_types"); !slices.Equal(got, []string{"authorization_code", "refresh_token"}) {
		t.Errorf("grant_types = %v", got)
	}
	if _, ok := m["unknown_member"]; ok {
		t.Error("an unknown member is echoed as if registered")
	}
	// The stored record matches what was echoed.
	stored, err := f.store.GetClient(context.Background(), m["client_id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if stored.Name != "Echo App" || !slices.Equal(stored.RedirectURIs, md["redirect_uris"].([]string)) ||
		stored.Scope != "booking:read order:read" || stored.TokenEndpointAuthMethod != "none" {
		t.Errorf("stored client %+v", stored)
	}

	// Defaults are filled in and echoed (RFC 7591 §2).
	m = decodeRegistration(t, f.serve(registerRequest(`{"redirect_uris":["`+flowRedirect+`"],"token_endpoint_auth_method":"none"}`)))
	if got := strList(m, "grant_types"); !slices.Equal(got, []string{"authorization_code", "refresh_token"}) {
		t.Errorf("default grant_types = %v", got)
	}
	if got := strList(m, "response_types"); !slices.Equal(got, []string{"code"}) {
		t.Errorf("default response_types = %v", got)
	}
	if got := strList(m, "redirect_uris"); !slices.Equal(got, []string{flowRedirect}) {
		t.Errorf("redirect_uris = %v", got)
	}
}

func TestRegisterRedirectURIPolicy(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	tests := []struct {
		uri string
		ok  bool
	}{
		{"https://app.example.com/callback", true},
		{"https://app.example.com:8443/cb?x=1", true},
		{"http://127.0.0.1/callback", true},
		{"http://127.0.0.1:33418/", true},
		{"http://[::1]:8080/cb", true},
		{"http://localhost:6274/oauth/callback", true},
		{"cursor://anysphere.cursor-mcp/oauth/callback", true},
		{"com.example.app:/oauth2redirect", true},
		{"http://app.example.com/callback", false},
		{"http://localhost.evil.example/cb", false},
		{"http://127.0.0.1.evil.example/cb", false},
		{"javascript:alert(1)", false},
		{"JavaScript:alert(document.cookie)", false},
		{"data:text/html,<script>alert(1)</script>", false},
		{"file:///etc/passwd", false},
		{"vbscript:msgbox(1)", false},
		{"https://app.example.com/cb#fragment", false},
		{"https://app.example.com/cb#", false},
		{"http://127.0.0.1:8080/cb#x", false},
		{"https://user:pass@app.example.com/cb", false},
		{"/relative/callback", false},
		{"https:///nohost", false},
		{"", false},
		{"https://app.example.com/" + strings.Repeat("a", 2100), false},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			w := f.serve(registerRequest(mustJSON(t, map[string]any{
				"redirect_uris": []string{tt.uri}, "token_endpoint_auth_method": "none",
			})))
			if tt.ok {
				m := decodeRegistration(t, w)
				if got := strList(m, "redirect_uris"); !slices.Equal(got, []string{tt.uri}) {
					t.Errorf("redirect_uris = %v", got)
				}
				return
			}
			wantOAuthError(t, w, http.StatusBadRequest, "invalid_redirect_uri")
		})
	}
	t.Run("one bad URI among good ones", func(t *testing.T) {
		w := f.serve(registerRequest(mustJSON(t, map[string]any{
			"redirect_uris": []string{flowRedirect, "javascript:alert(1)"}, "token_endpoint_auth_method": "none",
		})))
		wantOAuthError(t, w, http.StatusBadRequest, "invalid_redirect_uri")
	})
	t.Run("none", func(t *testing.T) {
		for _, body := range []string{`{"token_endpoint_auth_method":"none"}`, `{"redirect_uris":[]}`, `{"redirect_uris":null}`} {
			wantOAuthError(t, f.serve(registerRequest(body)), http.StatusBadRequest, "invalid_redirect_uri")
		}
	})
	t.Run("too many", func(t *testing.T) {
		uris := make([]string, oauth.DefaultMaxRedirectURIs+1)
		for i := range uris {
			uris[i] = flowRedirect + "/" + string(rune('a'+i))
		}
		w := f.serve(registerRequest(mustJSON(t, map[string]any{"redirect_uris": uris})))
		wantOAuthError(t, w, http.StatusBadRequest, "invalid_redirect_uri")
		decodeRegistration(t, f.serve(registerRequest(mustJSON(t, map[string]any{"redirect_uris": uris[1:]}))))
	})
	t.Run("configured maximum", func(t *testing.T) {
		g := newFlow(t, func(c *oauth.Config) { c.Registration.MaxRedirectURIs = 2 })
		uris := []string{flowRedirect + "/1", flowRedirect + "/2", flowRedirect + "/3"}
		wantOAuthError(t, g.serve(registerRequest(mustJSON(t, map[string]any{"redirect_uris": uris}))),
			http.StatusBadRequest, "invalid_redirect_uri")
		decodeRegistration(t, g.serve(registerRequest(mustJSON(t, map[string]any{"redirect_uris": uris[:2]}))))
	})
}

func TestRegisterInvalidMetadata(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	tests := []struct {
		name string
		md   map[string]any
	}{
		{"implicit grant", map[string]any{"grant_types": []string{"implicit"}}},
		{"password grant", map[string]any{"grant_types": []string{"authorization_code", "password"}}},
		{"client credentials", map[string]any{"grant_types": []string{"client_credentials"}}},
		{"device code", map[string]any{"grant_types": []string{"urn:ietf:params:oauth:grant-type:device_code"}}},
		{"refresh without code", map[string]any{"grant_types": []string{"refresh_token"}}},
		{"token response", map[string]any{"response_types": []string{"token"}}},
		{"code and token", map[string]any{"response_types": []string{"code", "token"}}},
		{"id_token", map[string]any{"response_types": []string{"code id_token"}}},
		{"private_key_jwt", map[string]any{"token_endpoint_auth_method": "private_key_jwt"}},
		{"client_secret_jwt", map[string]any{"token_endpoint_auth_method": "client_secret_jwt"}},
		{"tls_client_auth", map[string]any{"token_endpoint_auth_method": "tls_client_auth"}},
		{"http logo", map[string]any{"logo_uri": "http://app.example.com/logo.png"}},
		{"javascript logo", map[string]any{"logo_uri": "javascript:alert(1)"}},
		{"http client_uri", map[string]any{"client_uri": "http://app.example.com"}},
		{"relative client_uri", map[string]any{"client_uri": "/about"}},
		{"data tos_uri", map[string]any{"tos_uri": "data:text/html,x"}},
		{"http policy_uri", map[string]any{"policy_uri": "http://app.example.com/p"}},
		{"invalid scope token", map[string]any{"scope": `booking:read bad"scope`}},
		{"only unknown scopes", map[string]any{"scope": "admin root"}},
		{"long client_name", map[string]any{"client_name": strings.Repeat("n", 201)}},
		{"too many contacts", map[string]any{"contacts": []string{"a", "b", "c", "d", "e", "f"}}},
		{"bad application_type", map[string]any{"application_type": "browser"}},
		{"wrong JSON type", map[string]any{"grant_types": "authorization_code"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md := map[string]any{"redirect_uris": []string{flowRedirect}}
			for k, v := range tt.md {
				md[k] = v
			}
			wantOAuthError(t, f.serve(registerRequest(mustJSON(t, md))), http.StatusBadRequest, "invalid_client_metadata")
		})
	}
	if n, err := f.store.CountClients(context.Background()); err != nil || n != 0 {
		t.Errorf("refused registrations stored %d clients (%v)", n, err)
	}
}

func TestRegisterBody(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	valid := `{"redirect_uris":["` + flowRedirect + `"],"token_endpoint_auth_method":"none"}`
	tests := []struct {
		name, contentType, body string
		status                  int
		code                    string
	}{
		{"no content type", "", valid, 400, "invalid_client_metadata"},
		{"form", "application/x-www-form-urlencoded", "redirect_uris=" + flowRedirect, 400, "invalid_client_metadata"},
		{"text", "text/plain", valid, 400, "invalid_client_metadata"},
		{"json with charset", "application/json; charset=utf-8", valid, 201, ""},
		{"invalid JSON", "application/json", `{"redirect_uris":[`, 400, "invalid_client_metadata"},
		{"not an object", "application/json", `["` + flowRedirect + `"]`, 400, "invalid_client_metadata"},
		{"trailing garbage", "application/json", valid + `garbage`, 400, "invalid_client_metadata"},
		{"two objects", "application/json", valid + valid, 400, "invalid_client_metadata"},
		{"empty body", "application/json", ``, 400, "invalid_client_metadata"},
		{"too large", "application/json", `{"client_name":"` + strings.Repeat("x", 65<<10) + `","redirect_uris":["` + flowRedirect + `"]}`, 413, "invalid_client_metadata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, flowIssuer+oauth.RegisterPath, strings.NewReader(tt.body))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			w := f.serve(r)
			if tt.status == http.StatusCreated {
				decodeRegistration(t, w)
				return
			}
			wantOAuthError(t, w, tt.status, tt.code)
		})
	}
	t.Run("GET", func(t *testing.T) {
		w := f.get(oauth.RegisterPath, nil)
		wantOAuthError(t, w, http.StatusMethodNotAllowed, "invalid_request")
		if w.Header().Get("Allow") == "" {
			t.Error("405 without Allow")
		}
	})
}

func TestRegisterAccessControl(t *testing.T) {
	t.Parallel()
	body := `{"redirect_uris":["` + flowRedirect + `"],"token_endpoint_auth_method":"none"}`
	t.Run("disabled", func(t *testing.T) {
		t.Parallel()
		f := newFlow(t, func(c *oauth.Config) { c.Registration.Disabled = true })
		wantOAuthError(t, f.serve(registerRequest(body)), http.StatusForbidden, "access_denied")
	})
	t.Run("max clients", func(t *testing.T) {
		t.Parallel()
		// A registry full of clients in use refuses; one with a client
		// that never completed an authorization makes way
		// (TestRegisterFullRegistryEvictsUnused).
		f := newFlow(t, func(c *oauth.Config) { c.Registration.MaxClients = 2 })
		for range 2 {
			f.authorizeCode(f.register("none", nil), nil)
		}
		w := f.serve(registerRequest(body))
		wantOAuthError(t, w, http.StatusBadRequest, "invalid_client_metadata")
		if w.Header().Get("Retry-After") == "" {
			t.Error("no Retry-After on a full registry")
		}
		if n, _ := f.store.CountClients(context.Background()); n != 2 {
			t.Errorf("%d clients stored, want 2", n)
		}
	})
	t.Run("initial access token", func(t *testing.T) {
		t.Parallel()
		const iat = "s3cr3t-initial-access-token"
		f := newFlow(t, func(c *oauth.Config) { c.Registration.InitialAccessToken = iat })
		for name, auth := range map[string]string{
			"missing":      "",
			"wrong":        "Bearer wrong-token",
			"prefix":       "Bearer " + iat[:10],
			"longer":       "Bearer " + iat + "x",
			"basic scheme": "Basic " + iat,
		} {
			t.Run(name, func(t *testing.T) {
				r := registerRequest(body)
				if auth != "" {
					r.Header.Set("Authorization", auth)
				}
				w := f.serve(r)
				wantOAuthError(t, w, http.StatusUnauthorized, "invalid_token")
				if ch := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer") || !strings.Contains(ch, `error="invalid_token"`) {
					t.Errorf("WWW-Authenticate = %q", ch)
				}
			})
		}
		r := registerRequest(body)
		r.Header.Set("Authorization", "Bearer "+iat)
		decodeRegistration(t, f.serve(r))
		if n, _ := f.store.CountClients(context.Background()); n != 1 {
			t.Errorf("%d clients stored, want 1", n)
		}
	})
}

func TestRegisterScopeAndName(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	tests := []struct {
		name, scope, wantScope string
		clientName, wantName   string
	}{
		{"unknown scopes dropped", "booking:read admin order:read booking:read root", "booking:read order:read", "Plain", "Plain"},
		{"control characters", "booking:read", "booking:read", "Evil\x00App\x1b[31m\u202e\u200b\r\n", "EvilApp[31m"},
		{"trimmed", "", "", "  Spaced  ", "Spaced"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md := map[string]any{"redirect_uris": []string{flowRedirect}, "client_name": tt.clientName}
			if tt.scope != "" {
				md["scope"] = tt.scope
			}
			m := decodeRegistration(t, f.serve(registerRequest(mustJSON(t, md))))
			if got, _ := m["scope"].(string); got != tt.wantScope {
				t.Errorf("scope = %q, want %q", got, tt.wantScope)
			}
			if m["client_name"] != tt.wantName {
				t.Errorf("client_name = %q, want %q", m["client_name"], tt.wantName)
			}
			stored, err := f.store.GetClient(context.Background(), m["client_id"].(string))
			if err != nil {
				t.Fatal(err)
			}
			if stored.Name != tt.wantName || stored.Scope != tt.wantScope {
				t.Errorf("stored name %q scope %q", stored.Name, stored.Scope)
			}
		})
	}
}

func TestRegisterCORS(t *testing.T) {
	t.Parallel()
	preflight := func(f *flow, origin string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodOptions, flowIssuer+oauth.RegisterPath, nil)
		r.Header.Set("Origin", origin)
		r.Header.Set("Access-Control-Request-Method", "POST")
		r.Header.Set("Access-Control-Request-Headers", "content-type")
		return f.serve(r)
	}
	t.Run("any origin", func(t *testing.T) {
		t.Parallel()
		f := newFlow(t)
		w := preflight(f, "http://localhost:6274")
		if w.Code != http.StatusNoContent {
			t.Fatalf("preflight status %d", w.Code)
		}
		if got := w.Header().Get("Access-Control-Allow-Origin"); got != "*" {
			t.Errorf("Access-Control-Allow-Origin = %q", got)
		}
		if got := w.Header().Get("Access-Control-Allow-Methods"); !strings.Contains(got, "POST") {
			t.Errorf("Access-Control-Allow-Methods = %q", got)
		}
		if got := w.Header().Get("Access-Control-Allow-Headers"); !strings.Contains(got, "Content-Type") || !strings.Contains(got, "Authorization") {
			t.Errorf("Access-Control-Allow-Headers = %q", got)
		}
		if n, _ := f.store.CountClients(context.Background()); n != 0 {
			t.Error("a preflight registered a client")
		}
		// The actual request is readable cross-origin too.
		r := registerRequest(`{"redirect_uris":["` + flowRedirect + `"]}`)
		r.Header.Set("Origin", "http://localhost:6274")
		w = f.serve(r)
		decodeRegistration(t, w)
		if got := w.Header().Get("Access-Control-Allow-Origin"); got != "*" {
			t.Errorf("Access-Control-Allow-Origin on POST = %q", got)
		}
	})
	t.Run("allowed origins", func(t *testing.T) {
		t.Parallel()
		f := newFlow(t, func(c *oauth.Config) {
			c.AllowedOrigins = []string{"http://localhost:6274", "https://inspector.example.com"}
		})
		w := preflight(f, "https://inspector.example.com")
		if w.Code != http.StatusNoContent || w.Header().Get("Access-Control-Allow-Origin") != "https://inspector.example.com" {
			t.Errorf("listed origin: %d, ACAO %q", w.Code, w.Header().Get("Access-Control-Allow-Origin"))
		}
		if !slices.Contains(w.Header().Values("Vary"), "Origin") {
			t.Errorf("Vary = %v, want Origin", w.Header().Values("Vary"))
		}
		for _, origin := range []string{"https://evil.example", "null", "http://localhost:6275", "https://inspector.example.com.evil.example"} {
			w = preflight(f, origin)
			if got := w.Header().Get("Access-Control-Allow-Origin"); got != "" {
				t.Errorf("origin %s: Access-Control-Allow-Origin = %q", origin, got)
			}
		}
		r := registerRequest(`{"redirect_uris":["` + flowRedirect + `"]}`)
		r.Header.Set("Origin", "https://evil.example")
		if w = f.serve(r); w.Header().Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("POST from an unlisted origin: ACAO %q", w.Header().Get("Access-Control-Allow-Origin"))
		}
	})
}

// Security finding 14: a client that registers without grant_types gets
// authorization_code and refresh_token, is told so, and can refresh.
func TestRegisterWithoutGrantTypesCanRefresh(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	m := decodeRegistration(t, f.serve(registerRequest(`{"redirect_uris":["`+flowRedirect+`"],"token_endpoint_auth_method":"none"}`)))
	if got := strList(m, "grant_types"); !slices.Equal(got, []string{"authorization_code", "refresh_token"}) {
		t.Fatalf("grant_types in the registration response = %v", got)
	}
	c := testClient{ID: m["client_id"].(string), RedirectURI: flowRedirect, Method: "none"}
	tb := f.tokens(c, nil)
	if tb.RefreshToken == "" {
		t.Fatal("no refresh token issued")
	}
	wantToken(t, f.refresh(c, tb.RefreshToken, nil))
}

// Security finding 11: the RFC 8414 metadata and the JWKS are public and
// readable from any origin even when allowed_origins restricts the
// credentialed endpoints.
func TestPublicDocumentsAnyOrigin(t *testing.T) {
	t.Parallel()
	f := newFlow(t, func(c *oauth.Config) { c.AllowedOrigins = []string{"https://inspector.example.com"} })
	for _, path := range []string{oauth.ASMetadataPath, oauth.JWKSPath} {
		for _, method := range []string{http.MethodGet, http.MethodOptions} {
			t.Run(method+" "+path, func(t *testing.T) {
				r := httptest.NewRequest(method, flowIssuer+path, nil)
				r.Header.Set("Origin", "https://elsewhere.example")
				if method == http.MethodOptions {
					r.Header.Set("Access-Control-Request-Method", "GET")
				}
				w := f.serve(r)
				if w.Code != http.StatusOK && w.Code != http.StatusNoContent {
					t.Fatalf("status %d: %s", w.Code, w.Body)
				}
				if got := w.Header().Get("Access-Control-Allow-Origin"); got != "*" {
					t.Errorf("Access-Control-Allow-Origin = %q, want *", got)
				}
			})
		}
	}
}

// TestRegisterFullRegistryEvictsUnused (security finding 5): when
// max_clients is reached, the oldest client that never completed an
// authorization is deleted for the new one; clients in use stay.
func TestRegisterFullRegistryEvictsUnused(t *testing.T) {
	t.Parallel()
	f := newFlow(t, func(c *oauth.Config) { c.Registration.MaxClients = 2 })
	unused := f.register("none", nil)
	used := f.register("none", nil)
	f.authorizeCode(used, nil)
	f.clock.Advance(time.Minute)
	fresh := f.register("none", nil)
	ctx := context.Background()
	if _, err := f.store.GetClient(ctx, unused.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the unused client is still registered: %v", err)
	}
	for _, c := range []testClient{used, fresh} {
		if _, err := f.store.GetClient(ctx, c.ID); err != nil {
			t.Errorf("client %s: %v", c.ID, err)
		}
	}
	if n, _ := f.store.CountClients(ctx); n != 2 {
		t.Errorf("%d clients stored, want 2", n)
	}
}

// TestLookalikeHosts (security finding 4): a look-alike redirect host is
// shown in its ASCII form with a warning, and URIs with bidirectional or
// other control characters are refused at registration and at the
// authorization endpoint.
func TestLookalikeHosts(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	t.Run("mixed-script host on the consent page", func(t *testing.T) {
		c := f.register("none", map[string]any{"redirect_uris": []string{"https://cl\u0430ude.ai/cb"}})
		_, challenge := newPKCE(t)
		w := f.get(oauth.AuthorizePath, authQuery(c, challenge, nil))
		body := html.UnescapeString(w.Body.String())
		if w.Code != http.StatusOK || !strings.Contains(body, "xn--clude-5ve.ai") || !strings.Contains(body, "mixes letters of different alphabets") {
			t.Fatalf("status %d; the page lacks the ASCII host or the warning:\n%s", w.Code, body)
		}
		if strings.Contains(body, "cl\u0430ude.ai") {
			t.Errorf("the page shows the look-alike host in Unicode:\n%s", body)
		}
	})
	t.Run("single-script host: ASCII with Unicode beside", func(t *testing.T) {
		c := f.register("none", map[string]any{"redirect_uris": []string{"https://\u0430\u0440\u0440\u04cf\u0435.com/cb"}})
		_, challenge := newPKCE(t)
		body := html.UnescapeString(f.get(oauth.AuthorizePath, authQuery(c, challenge, nil)).Body.String())
		if !strings.Contains(body, "xn--80ak6aa92e.com</strong> <span class=\"small\">(\u0430\u0440\u0440\u04cf\u0435.com)") {
			t.Errorf("the page lacks the ASCII host with its Unicode form beside:\n%s", body)
		}
		if strings.Contains(body, "mixes letters") {
			t.Errorf("a single-script host is flagged:\n%s", body)
		}
	})
	t.Run("bidi override refused at registration", func(t *testing.T) {
		for _, uri := range []string{"https://app.example.com/\u202ecb", "https://app.example.com/cb%E2%80%AE"} {
			wantOAuthError(t, f.serve(registerRequest(`{"redirect_uris":["`+uri+`"]}`)), http.StatusBadRequest, "invalid_redirect_uri")
		}
		wantOAuthError(t, f.serve(registerRequest(`{"redirect_uris":["`+flowRedirect+`"],"client_uri":"https://app.example.com/\u202e"}`)),
			http.StatusBadRequest, "invalid_client_metadata")
	})
}
