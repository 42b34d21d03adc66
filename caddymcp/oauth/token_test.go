package oauth_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testkeys"
	"github.com/caddymcp/caddymcp/caddymcp/oauth"
	"github.com/caddymcp/caddymcp/caddymcp/signing"
)

// tokenRequest posts form to the token endpoint; mutate adjusts the
// request (headers) before it is sent.
func (f *flow) tokenRequest(form url.Values, mutate func(r *http.Request)) *httptest.ResponseRecorder {
	return f.formRequest(oauth.TokenPath, form, mutate)
}

// formRequest posts form to path without client authentication; mutate,
// when set, adjusts the request (headers) before it is sent.
func (f *flow) formRequest(path string, form url.Values, mutate func(r *http.Request)) *httptest.ResponseRecorder {
	r := postFormRequest(path, form, nil)
	if mutate != nil {
		mutate(r)
	}
	return f.serve(r)
}

// codeForm is the form of a code exchange, without client credentials.
func codeForm(c testClient, code, verifier string) url.Values {
	return url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
		"redirect_uri": {c.RedirectURI}, "resource": {flowResource},
	}
}

// codeFormWith is codeForm of c with the parameters of extra replaced,
// added or (an empty value list) removed.
func codeFormWith(c testClient, extra url.Values) func(code, verifier string) url.Values {
	return func(code, v string) url.Values { return mergeValues(codeForm(c, code, v), extra) }
}

func TestTokenAccessToken(t *testing.T) {
	t.Parallel()
	for _, lifetime := range []time.Duration{0, 5 * time.Minute} {
		t.Run(lifetime.String(), func(t *testing.T) {
			t.Parallel()
			f := newFlow(t, func(c *oauth.Config) { c.AccessTokenLifetime = lifetime })
			want := lifetime
			if want == 0 {
				want = oauth.DefaultAccessTokenLifetime
			}
			c := f.register("none", nil)
			tb := f.tokens(c, nil)
			if tb.ExpiresIn != int64(want/time.Second) {
				t.Errorf("expires_in = %d, want %d", tb.ExpiresIn, int64(want/time.Second))
			}
			if tb.Scope != "booking:read booking:write" || tb.RefreshToken == "" {
				t.Errorf("response %+v", tb)
			}

			hdr := jwtPart(t, tb.AccessToken, 0)
			if hdr["typ"] != "at+jwt" || hdr["alg"] != "ES256" || hdr["kid"] != f.keys.SigningKeyID() {
				t.Errorf("header %v, want typ at+jwt, alg ES256, kid %s", hdr, f.keys.SigningKeyID())
			}
			raw := jwtPart(t, tb.AccessToken, 1)
			if aud, ok := raw["aud"].([]any); !ok || len(aud) != 1 || aud[0] != flowResource {
				t.Errorf("aud = %#v, want [%s]", raw["aud"], flowResource)
			}
			for _, k := range []string{"iss", "sub", "aud", "client_id", "scope", "iat", "exp", "jti"} {
				if _, ok := raw[k]; !ok {
					t.Errorf("claim %s is missing", k)
				}
			}

			claims := f.verify(tb.AccessToken)
			if claims.Issuer != flowIssuer || claims.Subject != alice.ID || claims.ClientID != c.ID ||
				claims.Scope != "booking:read booking:write" || claims.ID == "" {
				t.Errorf("claims %+v", claims)
			}
			if !slices.Equal(claims.Audience, []string{flowResource}) {
				t.Errorf("aud = %v", claims.Audience)
			}
			if !claims.IssuedAt.Time.Equal(flowStart) {
				t.Errorf("iat = %v, want %v", claims.IssuedAt.Time, flowStart)
			}
			if got := claims.ExpiresAt.Time.Sub(claims.IssuedAt.Time); got != want {
				t.Errorf("exp - iat = %v, want %v", got, want)
			}
			if tb.ExpiresIn != claims.ExpiresAt.Unix()-claims.IssuedAt.Unix() {
				t.Errorf("expires_in %d does not match exp - iat", tb.ExpiresIn)
			}
			// A resource with another audience refuses the token.
			if _, err := f.keys.Verify(tb.AccessToken, signing.VerifyOptions{Issuer: flowIssuer, Audience: flowRootResource, Now: f.clock.Now}); err == nil {
				t.Error("the token verifies for another audience")
			}
			if !f.active(tb.AccessToken) {
				t.Error("the token is not recorded as active")
			}
			// Each token has its own jti.
			if other := f.verify(f.tokens(c, nil).AccessToken); other.ID == claims.ID {
				t.Error("two tokens share a jti")
			}
		})
	}
}

func TestTokenCodeErrors(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	c := f.register("none", nil)
	other := f.register("none", nil)
	tests := []struct {
		name   string
		as     testClient // who redeems
		form   func(code, verifier string) url.Values
		status int
		code   string
	}{
		{"wrong verifier", c, func(code, _ string) url.Values {
			v, _ := newPKCE(t)
			return codeForm(c, code, v)
		}, 400, "invalid_grant"},
		{"verifier too short", c, func(code, v string) url.Values { return codeForm(c, code, v[:42]) }, 400, "invalid_request"},
		{"verifier too long", c, func(code, v string) url.Values { return codeForm(c, code, strings.Repeat("a", 129)) }, 400, "invalid_request"},
		{"verifier with bad characters", c, func(code, v string) url.Values { return codeForm(c, code, v[:42]+"+") }, 400, "invalid_request"},
		{"verifier is the challenge", c, func(code, v string) url.Values { return codeForm(c, code, s256(v)) }, 400, "invalid_grant"},
		{"no verifier", c, codeFormWith(c, url.Values{"code_verifier": nil}), 400, "invalid_request"},
		{"no code", c, codeFormWith(c, url.Values{"code": nil}), 400, "invalid_request"},
		{"unknown code", c, func(code, v string) url.Values { return codeForm(c, code+"x", v) }, 400, "invalid_grant"},
		{"another client's code", other, func(code, v string) url.Values { return codeForm(other, code, v) }, 400, "invalid_grant"},
		{"redirect_uri mismatch", c, codeFormWith(c, url.Values{"redirect_uri": {flowRedirect + "/other"}}), 400, "invalid_grant"},
		{"empty redirect_uri", c, codeFormWith(c, url.Values{"redirect_uri": {""}}), 400, "invalid_grant"},
		{"resource mismatch", c, codeFormWith(c, url.Values{"resource": {flowRootResource}}), 400, "invalid_target"},
		{"resource with a trailing slash", c, codeFormWith(c, url.Values{"resource": {flowResource + "/"}}), 400, "invalid_target"},
		{"malformed resource", c, codeFormWith(c, url.Values{"resource": {"not a uri"}}), 400, "invalid_target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, verifier := f.authorizeCode(c, nil)
			as := tt.as
			wantOAuthError(t, f.postForm(oauth.TokenPath, tt.form(code, verifier), &as), tt.status, tt.code)
			// A failed attempt does not use the code up.
			tb := wantToken(t, f.exchange(c, code, verifier, nil))
			if !f.active(tb.AccessToken) {
				t.Error("the token is inactive: the failed attempt revoked the grant")
			}
		})
	}
	t.Run("redirect_uri and resource may be omitted", func(t *testing.T) {
		code, verifier := f.authorizeCode(c, nil)
		tb := wantToken(t, f.exchange(c, code, verifier, url.Values{"redirect_uri": nil, "resource": nil}))
		if aud := f.verify(tb.AccessToken).Audience; !slices.Equal(aud, []string{flowResource}) {
			t.Errorf("aud = %v", aud)
		}
	})
}

func TestTokenCodeReplay(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	c := f.register("none", nil)
	other := f.register("none", nil)
	rs := f.register("client_secret_basic", nil) // introspects

	t.Run("second valid redemption revokes the first", func(t *testing.T) {
		code, verifier := f.authorizeCode(c, nil)
		first := wantToken(t, f.exchange(c, code, verifier, nil))
		if !f.active(first.AccessToken) {
			t.Fatal("first token inactive")
		}
		wantOAuthError(t, f.exchange(c, code, verifier, nil), http.StatusBadRequest, "invalid_grant")
		if f.active(first.AccessToken) {
			t.Error("the access token of the first redemption is still active")
		}
		if got := f.introspect(rs, first.AccessToken); got != `{"active":false}` {
			t.Errorf("introspection = %s", got)
		}
		wantOAuthError(t, f.refresh(c, first.RefreshToken, nil), http.StatusBadRequest, "invalid_grant")
		// And it stays used.
		wantOAuthError(t, f.exchange(c, code, verifier, nil), http.StatusBadRequest, "invalid_grant")
	})
	for _, tt := range []struct {
		name   string
		replay func(code, verifier string) *httptest.ResponseRecorder
	}{
		{"wrong verifier", func(code, _ string) *httptest.ResponseRecorder {
			v, _ := newPKCE(t)
			return f.exchange(c, code, v, nil)
		}},
		{"another client", func(code, verifier string) *httptest.ResponseRecorder {
			return f.postForm(oauth.TokenPath, codeForm(other, code, verifier), &other)
		}},
		{"wrong redirect_uri", func(code, verifier string) *httptest.ResponseRecorder {
			return f.exchange(c, code, verifier, url.Values{"redirect_uri": {flowRedirect + "/x"}})
		}},
		{"wrong resource", func(code, verifier string) *httptest.ResponseRecorder {
			return f.exchange(c, code, verifier, url.Values{"resource": {flowRootResource}})
		}},
	} {
		t.Run("replay with "+tt.name+" revokes nothing", func(t *testing.T) {
			code, verifier := f.authorizeCode(c, nil)
			first := wantToken(t, f.exchange(c, code, verifier, nil))
			w := tt.replay(code, verifier)
			if w.Code != http.StatusBadRequest {
				t.Fatalf("replay: status %d: %s", w.Code, w.Body)
			}
			if !f.active(first.AccessToken) {
				t.Error("a failed replay revoked the access token")
			}
			wantToken(t, f.refresh(c, first.RefreshToken, nil))
		})
	}
}

func TestTokenCodeExpiry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		lifetime time.Duration
		wait     time.Duration
		ok       bool
	}{
		{"default, in time", 0, oauth.DefaultCodeLifetime - time.Second, true},
		{"default, expired", 0, oauth.DefaultCodeLifetime + time.Second, false},
		{"default, at the end", 0, oauth.DefaultCodeLifetime, false},
		{"configured, in time", 5 * time.Minute, 4 * time.Minute, true},
		{"configured, expired", 5 * time.Minute, 5*time.Minute + time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFlow(t, func(c *oauth.Config) { c.CodeLifetime = tt.lifetime })
			c := f.register("none", nil)
			code, verifier := f.authorizeCode(c, nil)
			f.clock.Advance(tt.wait)
			w := f.exchange(c, code, verifier, nil)
			if tt.ok {
				wantToken(t, w)
			} else {
				wantOAuthError(t, w, http.StatusBadRequest, "invalid_grant")
			}
		})
	}
	t.Run("more than 10 minutes is refused", func(t *testing.T) {
		t.Parallel()
		if _, err := oauth.New(oauth.Config{Keys: testkeys.Static{}, CodeLifetime: 11 * time.Minute}); err == nil {
			t.Error("a code lifetime of 11 minutes was accepted")
		}
	})
}

func TestTokenGrantTypes(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	c := f.register("none", nil)
	tests := []struct {
		grantType *string
		code      string
	}{
		{ptr("password"), "unsupported_grant_type"},
		{ptr("implicit"), "unsupported_grant_type"},
		{ptr("client_credentials"), "unsupported_grant_type"},
		{ptr("token"), "unsupported_grant_type"},
		{ptr("urn:ietf:params:oauth:grant-type:device_code"), "unsupported_grant_type"},
		{ptr("urn:ietf:params:oauth:grant-type:jwt-bearer"), "unsupported_grant_type"},
		{ptr("Authorization_Code"), "unsupported_grant_type"},
		{ptr(""), "invalid_request"},
		{nil, "invalid_request"},
	}
	for _, tt := range tests {
		name := "missing"
		if tt.grantType != nil {
			name = "grant_type=" + *tt.grantType
		}
		t.Run(name, func(t *testing.T) {
			form := url.Values{"username": {"alice"}, "password": {"secret"}, "scope": {"booking:read"}}
			if tt.grantType != nil {
				form.Set("grant_type", *tt.grantType)
			}
			wantOAuthError(t, f.postForm(oauth.TokenPath, form, &c), http.StatusBadRequest, tt.code)
		})
	}
}

func TestTokenRequestFormat(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	c := f.register("none", nil)
	code, verifier := f.authorizeCode(c, nil)
	body := codeForm(c, code, verifier)
	body.Set("client_id", c.ID)
	tests := []struct {
		name   string
		method string
		ct     string
		body   string
		status int
		code   string
	}{
		{"repeated code", "POST", "application/x-www-form-urlencoded", body.Encode() + "&code=" + code, 400, "invalid_request"},
		{"repeated grant_type", "POST", "application/x-www-form-urlencoded", body.Encode() + "&grant_type=authorization_code", 400, "invalid_request"},
		{"repeated client_id", "POST", "application/x-www-form-urlencoded", body.Encode() + "&client_id=" + c.ID, 400, "invalid_request"},
		{"repeated resource", "POST", "application/x-www-form-urlencoded", body.Encode() + "&resource=" + url.QueryEscape(flowResource), 400, "invalid_request"},
		{"JSON body", "POST", "application/json", `{"grant_type":"authorization_code"}`, 400, "invalid_request"},
		{"no content type", "POST", "", body.Encode(), 400, "invalid_request"},
		{"multipart", "POST", "multipart/form-data; boundary=x", body.Encode(), 400, "invalid_request"},
		{"malformed form", "POST", "application/x-www-form-urlencoded", "grant_type=%zz", 400, "invalid_request"},
		{"too large", "POST", "application/x-www-form-urlencoded", body.Encode() + "&pad=" + strings.Repeat("x", 65<<10), 413, "invalid_request"},
		{"GET", "GET", "", "", 405, "invalid_request"},
		{"PUT", "PUT", "application/x-www-form-urlencoded", body.Encode(), 405, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, flowIssuer+oauth.TokenPath, strings.NewReader(tt.body))
			if tt.ct != "" {
				r.Header.Set("Content-Type", tt.ct)
			}
			wantOAuthError(t, f.serve(r), tt.status, tt.code)
		})
	}
	t.Run("parameters in the query are not read", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodPost, flowIssuer+oauth.TokenPath+"?"+body.Encode(), strings.NewReader(""))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		wantOAuthError(t, f.serve(r), http.StatusBadRequest, "invalid_request")
	})
	t.Run("charset parameter", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodPost, flowIssuer+oauth.TokenPath, strings.NewReader(body.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
		wantToken(t, f.serve(r))
	})
	t.Run("CORS preflight", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodOptions, flowIssuer+oauth.TokenPath, nil)
		r.Header.Set("Origin", "http://localhost:6274")
		r.Header.Set("Access-Control-Request-Method", "POST")
		w := f.serve(r)
		if w.Code != http.StatusNoContent || w.Header().Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("preflight: %d %v", w.Code, w.Header())
		}
	})
}

// staticSecretClient is declared in the configuration, with an id and a
// secret that need form-urlencoding in a Basic header.
var staticSecretClient = oauth.StaticClient{
	ID: "static app:1", Secret: "p@ss:w/rd+%x ü", Name: "Static", RedirectURIs: []string{flowRedirect},
}

// staticSecret is staticSecretClient as the tests hold it.
var staticSecret = testClient{ID: staticSecretClient.ID, Secret: staticSecretClient.Secret, RedirectURI: flowRedirect,
	Method: "client_secret_basic"}

// withStaticSecretClient configures staticSecretClient.
func withStaticSecretClient(c *oauth.Config) {
	c.StaticClients = []oauth.StaticClient{staticSecretClient}
}

// registerEachMethod registers a client of each token endpoint auth
// method: none, client_secret_basic and client_secret_post.
func (f *flow) registerEachMethod() (public, basic, post testClient) {
	f.t.Helper()
	return f.register("none", nil), f.register("client_secret_basic", nil), f.register("client_secret_post", nil)
}

func TestTokenClientAuth(t *testing.T) {
	t.Parallel()
	f := newFlow(t, withStaticSecretClient)
	public, basic, post := f.registerEachMethod()
	static := staticSecret
	deleted := f.register("none", nil)
	deletedSecret := f.register("client_secret_basic", nil)
	for _, id := range []string{deleted.ID, deletedSecret.ID} {
		if err := f.store.DeleteClient(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	rawBasic := func(user, pass string) func(*http.Request) {
		return func(r *http.Request) { r.SetBasicAuth(user, pass) }
	}
	header := func(v string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", v) }
	}
	tests := []struct {
		name      string
		client    testClient          // whose code is redeemed
		form      url.Values          // credentials in the body
		mutate    func(*http.Request) // credentials in headers
		status    int                 // 0: success
		code      string
		challenge bool // WWW-Authenticate: Basic expected
	}{
		{"none", public, url.Values{"client_id": {public.ID}}, nil, 0, "", false},
		{"client_secret_basic", basic, nil, func(r *http.Request) { setBasic(r, basic.ID, basic.Secret) }, 0, "", false},
		{"client_secret_basic with client_id in the body", basic, url.Values{"client_id": {basic.ID}},
			func(r *http.Request) { setBasic(r, basic.ID, basic.Secret) }, 0, "", false},
		{"client_secret_post", post, url.Values{"client_id": {post.ID}, "client_secret": {post.Secret}}, nil, 0, "", false},
		{"form-urlencoded Basic credentials", static, nil, func(r *http.Request) { setBasic(r, static.ID, static.Secret) }, 0, "", false},
		{"static client by client_secret_post", static, url.Values{"client_id": {static.ID}, "client_secret": {static.Secret}}, nil, 0, "", false},
		{"public client by Basic without password", public, nil, rawBasic(public.ID, ""), 0, "", false},

		{"wrong secret (post)", post, url.Values{"client_id": {post.ID}, "client_secret": {"wrong"}}, nil, 401, "invalid_client", false},
		{"wrong secret (Basic)", basic, nil, rawBasic(basic.ID, "wrong"), 401, "invalid_client", true},
		{"another client's secret", basic, nil, rawBasic(basic.ID, post.Secret), 401, "invalid_client", true},
		{"Basic credentials not form-urlencoded", static, nil, rawBasic(static.ID, static.Secret), 401, "invalid_client", true},
		{"no secret", basic, url.Values{"client_id": {basic.ID}}, nil, 401, "invalid_client", false},
		{"empty secret", post, url.Values{"client_id": {post.ID}, "client_secret": {""}}, nil, 401, "invalid_client", false},
		{"deleted public client", public, url.Values{"client_id": {deleted.ID}}, nil, 401, "invalid_client", false},
		{"deleted client (Basic)", basic, nil, rawBasic(deletedSecret.ID, deletedSecret.Secret), 401, "invalid_client", true},
		{"unknown client", public, url.Values{"client_id": {"nobody"}}, nil, 401, "invalid_client", false},
		{"public client with a secret", public, url.Values{"client_id": {public.ID}, "client_secret": {"made-up"}}, nil, 401, "invalid_client", false},
		{"public client with a Basic password", public, nil, rawBasic(public.ID, "made-up"), 401, "invalid_client", true},
		{"malformed Basic", basic, nil, header("Basic !!!"), 401, "invalid_client", true},
		{"Bearer instead of Basic", basic, nil, header("Bearer " + basic.Secret), 401, "invalid_client", true},
		{"Basic and client_secret", basic, url.Values{"client_secret": {basic.Secret}},
			func(r *http.Request) { setBasic(r, basic.ID, basic.Secret) }, 400, "invalid_request", false},
		{"Basic and another client_id", basic, url.Values{"client_id": {post.ID}},
			func(r *http.Request) { setBasic(r, basic.ID, basic.Secret) }, 400, "invalid_request", false},
		{"no client at all", public, nil, nil, 401, "invalid_client", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, verifier := f.authorizeCode(tt.client, nil)
			form := codeForm(tt.client, code, verifier)
			for k, v := range tt.form {
				form[k] = v
			}
			w := f.tokenRequest(form, tt.mutate)
			if tt.status == 0 {
				tb := wantToken(t, w)
				if got := f.verify(tb.AccessToken).ClientID; got != tt.client.ID {
					t.Errorf("client_id = %q, want %q", got, tt.client.ID)
				}
				return
			}
			wantOAuthError(t, w, tt.status, tt.code)
			ch := w.Header().Get("WWW-Authenticate")
			if tt.challenge && !strings.HasPrefix(ch, "Basic") {
				t.Errorf("WWW-Authenticate = %q, want a Basic challenge", ch)
			}
			if !tt.challenge && ch != "" {
				t.Errorf("WWW-Authenticate = %q without Basic credentials", ch)
			}
			// Failed client authentication does not use the code up.
			c := tt.client
			wantToken(t, f.exchange(c, code, verifier, nil))
		})
	}
	t.Run("expired client secret", func(t *testing.T) {
		g := newFlow(t, func(c *oauth.Config) { c.Registration.SecretLifetime = time.Hour })
		c := g.register("client_secret_basic", nil)
		tb := g.tokens(c, nil)
		g.clock.Advance(time.Hour)
		w := g.refresh(c, tb.RefreshToken, nil)
		wantOAuthError(t, w, http.StatusUnauthorized, "invalid_client")
		if !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Basic") {
			t.Errorf("WWW-Authenticate = %q", w.Header().Get("WWW-Authenticate"))
		}
	})
}

func TestTokenClientWithoutRefresh(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	c := f.register("none", map[string]any{"grant_types": []string{"authorization_code"}})
	tb := f.tokens(c, nil)
	if tb.RefreshToken != "" {
		t.Errorf("a client not registered for refresh_token got one")
	}
	// Even a valid refresh token of another grant is refused.
	full := f.register("none", nil)
	rt := f.tokens(full, nil).RefreshToken
	wantOAuthError(t, f.refresh(c, rt, nil), http.StatusBadRequest, "unauthorized_client")
	wantOAuthError(t, f.refresh(c, "anything", nil), http.StatusBadRequest, "unauthorized_client")
	// The refresh token stays usable by its own client.
	wantToken(t, f.refresh(full, rt, nil))
}

func TestRefreshRotation(t *testing.T) {
	t.Parallel()
	f, c, tb := newGrant(t)
	seen := map[string]bool{tb.RefreshToken: true}
	jtis := map[string]bool{f.verify(tb.AccessToken).ID: true}
	old := tb.RefreshToken
	for i := range 3 {
		f.clock.Advance(time.Minute)
		next := wantToken(t, f.refresh(c, tb.RefreshToken, nil))
		if next.RefreshToken == "" || seen[next.RefreshToken] {
			t.Fatalf("refresh %d: refresh token %q is not new", i, next.RefreshToken)
		}
		seen[next.RefreshToken] = true
		claims := f.verify(next.AccessToken)
		if jtis[claims.ID] {
			t.Errorf("refresh %d: jti reused", i)
		}
		jtis[claims.ID] = true
		if claims.Subject != alice.ID || claims.ClientID != c.ID || claims.Scope != "booking:read booking:write" ||
			!slices.Equal(claims.Audience, []string{flowResource}) || next.Scope != claims.Scope {
			t.Errorf("refresh %d: claims %+v, scope %q", i, claims, next.Scope)
		}
		if !claims.IssuedAt.Time.Equal(f.clock.Now()) {
			t.Errorf("refresh %d: iat %v", i, claims.IssuedAt.Time)
		}
		if !f.active(next.AccessToken) {
			t.Errorf("refresh %d: access token inactive", i)
		}
		tb = next
	}
	// The first refresh token, rotated long ago, is refused.
	wantOAuthError(t, f.refresh(c, old, nil), http.StatusBadRequest, "invalid_grant")
	t.Run("missing refresh_token", func(t *testing.T) {
		wantOAuthError(t, f.refresh(c, "", nil), http.StatusBadRequest, "invalid_request")
	})
	t.Run("unknown refresh_token", func(t *testing.T) {
		wantOAuthError(t, f.refresh(c, "no-such-token", nil), http.StatusBadRequest, "invalid_grant")
	})
	t.Run("access token as refresh token", func(t *testing.T) {
		fresh := f.tokens(c, nil)
		wantOAuthError(t, f.refresh(c, fresh.AccessToken, nil), http.StatusBadRequest, "invalid_grant")
	})
}

func TestRefreshScopeAndResource(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	c := f.register("none", nil)
	full := "booking:read booking:write"

	t.Run("narrower scope", func(t *testing.T) {
		tb := f.tokens(c, nil)
		narrow := wantToken(t, f.refresh(c, tb.RefreshToken, url.Values{"scope": {"booking:read"}}))
		if narrow.Scope != "booking:read" || f.verify(narrow.AccessToken).Scope != "booking:read" {
			t.Errorf("scope %q, claim %q", narrow.Scope, f.verify(narrow.AccessToken).Scope)
		}
		// The new refresh token keeps the scope of the old one (OAuth 2.1
		// §4.3.1): the grant is not narrowed by one request.
		again := wantToken(t, f.refresh(c, narrow.RefreshToken, nil))
		if again.Scope != full {
			t.Errorf("scope after a narrowed refresh = %q, want %q", again.Scope, full)
		}
		other := wantToken(t, f.refresh(c, again.RefreshToken, url.Values{"scope": {"booking:write"}}))
		if other.Scope != "booking:write" {
			t.Errorf("scope = %q", other.Scope)
		}
	})
	t.Run("same scope", func(t *testing.T) {
		tb := f.tokens(c, nil)
		same := wantToken(t, f.refresh(c, tb.RefreshToken, url.Values{"scope": {"booking:write booking:read"}}))
		if !slices.Equal(strings.Fields(same.Scope), []string{"booking:write", "booking:read"}) {
			t.Errorf("scope = %q", same.Scope)
		}
	})
	for _, wider := range []string{"booking:read order:read", "order:read", "admin", full + " form:read"} {
		t.Run("wider scope "+wider, func(t *testing.T) {
			tb := f.tokens(c, nil)
			wantOAuthError(t, f.refresh(c, tb.RefreshToken, url.Values{"scope": {wider}}), http.StatusBadRequest, "invalid_scope")
			next := wantToken(t, f.refresh(c, tb.RefreshToken, nil))
			if next.Scope != full {
				t.Errorf("scope = %q", next.Scope)
			}
		})
	}
	for _, res := range []string{flowRootResource, flowResource + "/", "https://evil.example/mcp", "not a uri"} {
		t.Run("resource "+res, func(t *testing.T) {
			tb := f.tokens(c, nil)
			wantOAuthError(t, f.refresh(c, tb.RefreshToken, url.Values{"resource": {res}}), http.StatusBadRequest, "invalid_target")
			wantToken(t, f.refresh(c, tb.RefreshToken, nil))
		})
	}
	t.Run("resource may be omitted", func(t *testing.T) {
		tb := f.tokens(c, nil)
		next := wantToken(t, f.refresh(c, tb.RefreshToken, url.Values{"resource": nil}))
		if aud := f.verify(next.AccessToken).Audience; !slices.Equal(aud, []string{flowResource}) {
			t.Errorf("aud = %v", aud)
		}
	})
}

func TestRefreshGrace(t *testing.T) {
	t.Parallel()
	t.Run("reuse within the grace window", func(t *testing.T) {
		t.Parallel()
		f, c, tb := newGrant(t)
		first := f.refresh(c, tb.RefreshToken, nil)
		wantToken(t, first)
		for _, wait := range []time.Duration{0, 5 * time.Second, 5 * time.Second} { // up to exactly 10s
			f.clock.Advance(wait)
			again := f.refresh(c, tb.RefreshToken, nil)
			wantToken(t, again)
			if !bytes.Equal(again.Body.Bytes(), first.Body.Bytes()) {
				t.Errorf("after %v: body %s differs from the first %s", wait, again.Body, first.Body)
			}
		}
		// The successor is the one live token.
		next := wantToken(t, first)
		wantToken(t, f.refresh(c, next.RefreshToken, nil))
	})
	t.Run("concurrent refreshes", func(t *testing.T) {
		t.Parallel()
		f, c, tb := newGrant(t)
		const n = 20
		ws := make([]*httptest.ResponseRecorder, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			r := postFormRequest(oauth.TokenPath, url.Values{
				"grant_type": {"refresh_token"}, "refresh_token": {tb.RefreshToken}, "resource": {flowResource},
			}, &c)
			wg.Go(func() {
				<-start
				ws[i] = f.serve(r)
			})
		}
		close(start)
		wg.Wait()
		for i, w := range ws {
			wantToken(t, w)
			if !bytes.Equal(w.Body.Bytes(), ws[0].Body.Bytes()) {
				t.Errorf("response %d differs: %s vs %s", i, w.Body, ws[0].Body)
			}
		}
		next := wantToken(t, ws[0])
		if !f.active(next.AccessToken) {
			t.Error("the shared access token is inactive")
		}
		wantToken(t, f.refresh(c, next.RefreshToken, nil))
	})
	t.Run("reuse after the grace window revokes the family", func(t *testing.T) {
		t.Parallel()
		f, c, tb := newGrant(t)
		rs := f.register("client_secret_post", nil)
		gen1 := wantToken(t, f.refresh(c, tb.RefreshToken, nil))
		f.clock.Advance(time.Minute)
		gen2 := wantToken(t, f.refresh(c, gen1.RefreshToken, nil))
		f.clock.Advance(oauth.DefaultRefreshGrace + time.Second)
		wantOAuthError(t, f.refresh(c, tb.RefreshToken, nil), http.StatusBadRequest, "invalid_grant")
		wantOAuthError(t, f.refresh(c, gen2.RefreshToken, nil), http.StatusBadRequest, "invalid_grant")
		for i, at := range []string{tb.AccessToken, gen1.AccessToken, gen2.AccessToken} {
			if f.active(at) {
				t.Errorf("access token %d is still active", i)
			}
			if got := f.introspect(rs, at); got != `{"active":false}` {
				t.Errorf("access token %d: introspection %s", i, got)
			}
		}
		// Other grants of the same user and client live on.
		wantToken(t, f.refresh(c, f.tokens(c, nil).RefreshToken, nil))
	})
	t.Run("another client", func(t *testing.T) {
		t.Parallel()
		f, c, tb := newGrant(t)
		thief := f.register("none", nil)
		wantOAuthError(t, f.refresh(thief, tb.RefreshToken, nil), http.StatusBadRequest, "invalid_grant")
		next := wantToken(t, f.refresh(c, tb.RefreshToken, nil))
		// A rotated token replayed by another client, even after the
		// grace window, revokes nothing.
		f.clock.Advance(time.Minute)
		wantOAuthError(t, f.refresh(thief, tb.RefreshToken, nil), http.StatusBadRequest, "invalid_grant")
		if !f.active(next.AccessToken) {
			t.Error("another client's replay revoked the grant")
		}
		wantToken(t, f.refresh(c, next.RefreshToken, nil))
	})
}

func TestRefreshExpiry(t *testing.T) {
	t.Parallel()
	idleHourOfThree := func(c *oauth.Config) {
		c.RefreshIdle = time.Hour
		c.RefreshLifetime = 3 * time.Hour
	}
	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		f, c, tb := newGrant(t, func(c *oauth.Config) { c.RefreshIdle = time.Hour })
		f.clock.Advance(time.Hour - time.Second)
		tb = wantToken(t, f.refresh(c, tb.RefreshToken, nil)) // use resets the idle timer
		f.clock.Advance(time.Hour - time.Second)
		tb = wantToken(t, f.refresh(c, tb.RefreshToken, nil))
		f.clock.Advance(time.Hour + time.Second)
		wantOAuthError(t, f.refresh(c, tb.RefreshToken, nil), http.StatusBadRequest, "invalid_grant")
	})
	t.Run("default idle", func(t *testing.T) {
		t.Parallel()
		f, c, tb := newGrant(t)
		f.clock.Advance(oauth.DefaultRefreshIdle + time.Second)
		wantOAuthError(t, f.refresh(c, tb.RefreshToken, nil), http.StatusBadRequest, "invalid_grant")
	})
	t.Run("absolute", func(t *testing.T) {
		t.Parallel()
		f, c, tb := newGrant(t, idleHourOfThree)
		end := flowStart.Add(3 * time.Hour)
		refreshes := 0
		for {
			f.clock.Advance(50 * time.Minute)
			w := f.refresh(c, tb.RefreshToken, nil)
			if !f.clock.Now().Before(end) {
				wantOAuthError(t, w, http.StatusBadRequest, "invalid_grant")
				break
			}
			tb = wantToken(t, w)
			refreshes++
		}
		if refreshes != 3 {
			t.Errorf("%d refreshes before the end, want 3", refreshes)
		}
	})
	t.Run("absolute, just before the end", func(t *testing.T) {
		t.Parallel()
		f, c, tb := newGrant(t, idleHourOfThree)
		for _, step := range []time.Duration{55 * time.Minute, 55 * time.Minute, 55 * time.Minute, 14 * time.Minute} { // 2h59m
			f.clock.Advance(step)
			tb = wantToken(t, f.refresh(c, tb.RefreshToken, nil))
		}
		f.clock.Advance(2 * time.Minute) // 3h01m: inside the idle hour, past the lifetime
		wantOAuthError(t, f.refresh(c, tb.RefreshToken, nil), http.StatusBadRequest, "invalid_grant")
	})
}

func TestTokenConcurrentCodeRedemption(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	c := f.register("none", nil)
	code, verifier := f.authorizeCode(c, nil)
	const n = 50
	ws := make([]*httptest.ResponseRecorder, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		r := postFormRequest(oauth.TokenPath, codeForm(c, code, verifier), &c)
		wg.Go(func() {
			<-start
			ws[i] = f.serve(r)
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, w := range ws {
		if w.Code == http.StatusOK {
			ok++
			wantToken(t, w)
			continue
		}
		wantOAuthError(t, w, http.StatusBadRequest, "invalid_grant")
	}
	if ok != 1 {
		t.Errorf("%d redemptions succeeded, want exactly 1", ok)
	}
}

func TestStoreUnavailable(t *testing.T) {
	t.Parallel()
	publicStatic := oauth.StaticClient{ID: "static-public", RedirectURIs: []string{flowRedirect}}
	var flaky *flakyStore
	f := newFlow(t, func(c *oauth.Config) {
		flaky = &flakyStore{Store: c.Store}
		c.Store = flaky
		c.StaticClients = []oauth.StaticClient{publicStatic, staticSecretClient}
	})
	c := f.register("none", nil)
	conf := f.register("client_secret_basic", nil)
	sc := testClient{ID: publicStatic.ID, RedirectURI: flowRedirect, Method: "none"}
	ss := staticSecret

	tb := f.tokens(c, nil)
	stb := f.tokens(sc, nil)
	code, verifier := f.authorizeCode(c, nil)
	scode, sverifier := f.authorizeCode(sc, nil)
	_, challenge := newPKCE(t)
	pendingID, pendingCSRF := consentForm(t, f.get(oauth.AuthorizePath, authQuery(sc, challenge, url.Values{"prompt": {"consent"}})))

	flaky.down.Store(true)
	wantUnavailable := func(t *testing.T, w *httptest.ResponseRecorder) {
		t.Helper()
		wantOAuthError(t, w, http.StatusServiceUnavailable, "temporarily_unavailable")
		if w.Header().Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
	}
	wantUnavailablePage := func(t *testing.T, w *httptest.ResponseRecorder) {
		t.Helper()
		wantPage(t, w, http.StatusServiceUnavailable)
		if w.Header().Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
	}
	t.Run("token: code, registered client", func(t *testing.T) { wantUnavailable(t, f.exchange(c, code, verifier, nil)) })
	t.Run("token: code, static client", func(t *testing.T) { wantUnavailable(t, f.exchange(sc, scode, sverifier, nil)) })
	t.Run("token: refresh, registered client", func(t *testing.T) { wantUnavailable(t, f.refresh(c, tb.RefreshToken, nil)) })
	t.Run("token: refresh, static client", func(t *testing.T) { wantUnavailable(t, f.refresh(sc, stb.RefreshToken, nil)) })
	t.Run("token: confidential static client", func(t *testing.T) { wantUnavailable(t, f.refresh(ss, "x", nil)) })
	t.Run("authorize: registered client", func(t *testing.T) {
		wantUnavailablePage(t, f.get(oauth.AuthorizePath, authQuery(c, challenge, nil)))
	})
	t.Run("authorize: static client", func(t *testing.T) {
		wantUnavailablePage(t, f.get(oauth.AuthorizePath, authQuery(sc, challenge, nil)))
	})
	t.Run("authorize: static client, prompt=consent", func(t *testing.T) {
		wantUnavailablePage(t, f.get(oauth.AuthorizePath, authQuery(sc, challenge, url.Values{"prompt": {"consent"}})))
	})
	t.Run("consent", func(t *testing.T) { wantUnavailablePage(t, f.decide(pendingID, pendingCSRF, "approve")) })
	t.Run("register", func(t *testing.T) {
		wantUnavailable(t, f.serve(registerRequest(`{"redirect_uris":["`+flowRedirect+`"]}`)))
	})
	t.Run("revoke", func(t *testing.T) {
		wantUnavailable(t, f.postForm(oauth.RevokePath, url.Values{"token": {tb.RefreshToken}}, &c))
		wantUnavailable(t, f.postForm(oauth.RevokePath, url.Values{"token": {stb.AccessToken}}, &sc))
		wantUnavailable(t, f.postForm(oauth.RevokePath, url.Values{"token": {stb.RefreshToken}}, &sc))
	})
	t.Run("introspect", func(t *testing.T) {
		wantUnavailable(t, f.postForm(oauth.IntrospectPath, url.Values{"token": {tb.AccessToken}}, &conf))
		wantUnavailable(t, f.postForm(oauth.IntrospectPath, url.Values{"token": {tb.AccessToken}}, &ss))
		wantUnavailable(t, f.postForm(oauth.IntrospectPath, url.Values{"token": {tb.RefreshToken}}, &ss))
	})

	// Back up: nothing was lost or used up.
	flaky.down.Store(false)
	wantToken(t, f.exchange(c, code, verifier, nil))
	wantToken(t, f.exchange(sc, scode, sverifier, nil))
	wantToken(t, f.refresh(c, tb.RefreshToken, nil))
	wantRedirect(t, f.decide(pendingID, pendingCSRF, "approve"), http.StatusSeeOther, flowRedirect+"?")
}

// TestStoreMethodUnavailable makes one store method fail at a time, at
// the step of a flow where it is used: the answer is a 503, never a 500.
func TestStoreMethodUnavailable(t *testing.T) {
	t.Parallel()
	var flaky *flakyStore
	f := newFlow(t, func(c *oauth.Config) {
		flaky = &flakyStore{Store: c.Store}
		c.Store = flaky
	})
	c := f.register("none", nil)
	rs := f.register("client_secret_basic", nil)
	type action func() *httptest.ResponseRecorder
	// The setups of more than one method.
	register := func(*testing.T) action {
		return func() *httptest.ResponseRecorder {
			return f.serve(registerRequest(`{"redirect_uris":["` + flowRedirect + `"]}`))
		}
	}
	approveNewClient := func(t *testing.T) action {
		fresh := f.register("none", nil)
		_, challenge := newPKCE(t)
		id, csrf := consentForm(t, f.get(oauth.AuthorizePath, authQuery(fresh, challenge, nil)))
		return func() *httptest.ResponseRecorder { return f.decide(id, csrf, "approve") }
	}
	// postToken runs a flow of c and posts the token pick chooses of it
	// to path as client as.
	postToken := func(path string, as testClient, pick func(tokenBody) string) func(*testing.T) action {
		return func(*testing.T) action {
			tok := pick(f.tokens(c, nil))
			return func() *httptest.ResponseRecorder { return f.postForm(path, url.Values{"token": {tok}}, &as) }
		}
	}
	refreshToken := func(tb tokenBody) string { return tb.RefreshToken }
	accessToken := func(tb tokenBody) string { return tb.AccessToken }
	tests := []struct {
		method string
		page   bool
		setup  func(t *testing.T) action
	}{
		{"CountClients", false, register},
		{"CreateClient", false, register},
		{"GetConsent", true, func(t *testing.T) action {
			_, challenge := newPKCE(t)
			return func() *httptest.ResponseRecorder { return f.get(oauth.AuthorizePath, authQuery(c, challenge, nil)) }
		}},
		{"CreateAuthRequest", true, func(t *testing.T) action {
			fresh := f.register("none", nil)
			_, challenge := newPKCE(t)
			return func() *httptest.ResponseRecorder { return f.get(oauth.AuthorizePath, authQuery(fresh, challenge, nil)) }
		}},
		{"ConsumeAuthRequest", true, approveNewClient},
		{"SaveConsent", true, approveNewClient},
		{"CreateCode", true, func(t *testing.T) action {
			f.authorizeCode(c, nil) // consent is remembered from now on
			_, challenge := newPKCE(t)
			return func() *httptest.ResponseRecorder { return f.get(oauth.AuthorizePath, authQuery(c, challenge, nil)) }
		}},
		{"RedeemCode", false, func(t *testing.T) action {
			code, verifier := f.authorizeCode(c, nil)
			return func() *httptest.ResponseRecorder { return f.exchange(c, code, verifier, nil) }
		}},
		{"RevokeGrant", false, func(t *testing.T) action { // a replayed code
			code, verifier := f.authorizeCode(c, nil)
			wantToken(t, f.exchange(c, code, verifier, nil))
			return func() *httptest.ResponseRecorder { return f.exchange(c, code, verifier, nil) }
		}},
		{"RefreshGrant", false, func(t *testing.T) action {
			tb := f.tokens(c, nil)
			return func() *httptest.ResponseRecorder { return f.refresh(c, tb.RefreshToken, nil) }
		}},
		{"GetRefreshToken", false, postToken(oauth.RevokePath, c, refreshToken)},
		{"RevokeRefreshToken", false, postToken(oauth.RevokePath, c, refreshToken)},
		{"RevokeAccessToken", false, postToken(oauth.RevokePath, c, accessToken)},
		{"AccessTokenActive", false, postToken(oauth.IntrospectPath, rs, accessToken)},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			act := tt.setup(t)
			flaky.failOnly(tt.method)
			w := act()
			flaky.failOnly()
			if tt.page {
				wantPage(t, w, http.StatusServiceUnavailable)
			} else {
				wantOAuthError(t, w, http.StatusServiceUnavailable, "temporarily_unavailable")
			}
			if w.Header().Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
		})
	}
	t.Run("RevokeGrant after refresh reuse", func(t *testing.T) {
		tb := f.tokens(c, nil)
		next := wantToken(t, f.refresh(c, tb.RefreshToken, nil))
		f.clock.Advance(oauth.DefaultRefreshGrace + time.Second)
		flaky.failOnly("RevokeGrant")
		w := f.refresh(c, tb.RefreshToken, nil)
		flaky.failOnly()
		wantOAuthError(t, w, http.StatusServiceUnavailable, "temporarily_unavailable")
		// Once the store is back the reuse is still detected.
		wantOAuthError(t, f.refresh(c, tb.RefreshToken, nil), http.StatusBadRequest, "invalid_grant")
		wantOAuthError(t, f.refresh(c, next.RefreshToken, nil), http.StatusBadRequest, "invalid_grant")
	})
}

// TestRefreshFollowsThePolicy: a refresh applies the access policy as it
// is now — narrowed scopes shrink the new tokens, and a user no longer
// allowed loses the grant with all its tokens.
func TestRefreshFollowsThePolicy(t *testing.T) {
	t.Parallel()
	f, c, tb := newGrant(t)
	if tb.Scope != "booking:read booking:write" {
		t.Fatalf("initial scope %q", tb.Scope)
	}
	f.users.SetPolicy(func(string) ([]string, bool) { return []string{"booking:read"}, true })
	next := wantToken(t, f.refresh(c, tb.RefreshToken, nil))
	if next.Scope != "booking:read" || f.verify(next.AccessToken).Scope != "booking:read" {
		t.Fatalf("narrowed policy: scope %q", next.Scope)
	}
	// The narrowed scope sticks: widening the policy again does not
	// widen this grant.
	f.users.SetPolicy(nil)
	again := wantToken(t, f.refresh(c, next.RefreshToken, nil))
	if again.Scope != "booking:read" {
		t.Fatalf("after widening the policy: scope %q", again.Scope)
	}
	f.users.SetPolicy(func(string) ([]string, bool) { return nil, false })
	wantOAuthError(t, f.refresh(c, again.RefreshToken, nil), http.StatusBadRequest, "invalid_grant")
	if f.active(again.AccessToken) {
		t.Error("the access token of a user no longer allowed is still active")
	}
	f.users.SetPolicy(nil)
	wantOAuthError(t, f.refresh(c, again.RefreshToken, nil), http.StatusBadRequest, "invalid_grant")
}

// TestPolicyRecheckedAtApprovalAndExchange (security finding 12): a user
// the access policy drops while the consent page is open, or between the
// code and its exchange, gets no tokens; the refused code is spent.
func TestPolicyRecheckedAtApprovalAndExchange(t *testing.T) {
	t.Parallel()
	denyAll := func(string) ([]string, bool) { return nil, false }
	t.Run("at consent approval", func(t *testing.T) {
		t.Parallel()
		f := newFlow(t)
		c := f.register("none", nil)
		_, challenge := newPKCE(t)
		id, csrf := consentForm(t, f.get(oauth.AuthorizePath, authQuery(c, challenge, nil)))
		f.users.SetPolicy(denyAll)
		w := f.decide(id, csrf, "approve")
		q := wantRedirect(t, w, w.Code, c.RedirectURI+"?")
		if q.Get("error") != "access_denied" || q.Has("code") {
			t.Fatalf("approval by a user no longer allowed: %v", q)
		}
	})
	t.Run("at the code exchange", func(t *testing.T) {
		t.Parallel()
		f := newFlow(t)
		c := f.register("none", nil)
		code, verifier := f.authorizeCode(c, nil)
		f.users.SetPolicy(denyAll)
		wantOAuthError(t, f.exchange(c, code, verifier, nil), http.StatusBadRequest, "invalid_grant")
		f.users.SetPolicy(nil)
		wantOAuthError(t, f.exchange(c, code, verifier, nil), http.StatusBadRequest, "invalid_grant")
	})
	// A policy that narrowed the user's scopes since the consent: the
	// code's scope is no longer the user's to grant, so no token carries
	// it; the client authorizes again and the consent shows what is left.
	t.Run("narrowed at the code exchange", func(t *testing.T) {
		t.Parallel()
		f := newFlow(t)
		c := f.register("none", nil)
		code, verifier := f.authorizeCode(c, nil) // booking:read booking:write
		f.users.SetPolicy(func(string) ([]string, bool) { return []string{"booking:read"}, true })
		wantOAuthError(t, f.exchange(c, code, verifier, nil), http.StatusBadRequest, "invalid_grant")
		f.users.SetPolicy(nil)
		wantOAuthError(t, f.exchange(c, code, verifier, nil), http.StatusBadRequest, "invalid_grant")
		code, verifier = f.authorizeCode(c, nil)
		if w := f.exchange(c, code, verifier, nil); w.Code != http.StatusOK {
			t.Fatalf("a new authorization under the restored policy: %d %s", w.Code, w.Body)
		}
	})
}
