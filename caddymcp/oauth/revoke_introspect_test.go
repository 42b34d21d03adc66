package oauth_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testkeys"
	"github.com/caddymcp/caddymcp/caddymcp/oauth"
)

// introspect asks the introspection endpoint about token as client rs
// and returns the raw body of a 200 answer.
func (f *flow) introspect(rs testClient, token string) string {
	f.t.Helper()
	w := f.postForm(oauth.IntrospectPath, url.Values{"token": {token}}, &rs)
	if w.Code != http.StatusOK {
		f.t.Fatalf("introspection: status %d: %s", w.Code, w.Body)
	}
	wantNoStore(f.t, w)
	return w.Body.String()
}

// revoke revokes token as client c and checks the 200 answer.
func (f *flow) revoke(c testClient, token, hint string) {
	f.t.Helper()
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	w := f.postForm(oauth.RevokePath, form, &c)
	if w.Code != http.StatusOK {
		f.t.Fatalf("revocation: status %d: %s", w.Code, w.Body)
	}
}

// clientAuthError is a request to an endpoint that authenticates clients,
// and the error it gets.
type clientAuthError struct {
	name      string
	form      url.Values
	mutate    func(*http.Request) // credentials in headers
	status    int
	code      string
	challenge bool // WWW-Authenticate: Basic expected
}

// wantClientAuthErrors sends each case to path, each in a subtest, and
// checks its error and its challenge; check, when set, looks further at
// every response.
func (f *flow) wantClientAuthErrors(t *testing.T, path string, check func(*testing.T, *httptest.ResponseRecorder), cases []clientAuthError) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			w := f.formRequest(path, tt.form, tt.mutate)
			wantOAuthError(t, w, tt.status, tt.code)
			if check != nil {
				check(t, w)
			}
			if got := strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Basic"); got != tt.challenge {
				t.Errorf("WWW-Authenticate = %q", w.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	c := f.register("none", nil)
	conf := f.register("client_secret_basic", nil)
	other := f.register("client_secret_post", nil)

	t.Run("unknown tokens", func(t *testing.T) {
		for _, tok := range []string{"no-such-token", "a.b.c", strings.Repeat("x", 500), "with space"} {
			for _, hint := range []string{"", "access_token", "refresh_token", "bogus_hint"} {
				f.revoke(c, tok, hint)
			}
		}
	})
	for _, hint := range []string{"", "refresh_token", "access_token"} {
		t.Run("refresh token, hint "+hint, func(t *testing.T) {
			tb := f.tokens(c, nil)
			next := wantToken(t, f.refresh(c, tb.RefreshToken, nil))
			f.revoke(c, next.RefreshToken, hint)
			wantOAuthError(t, f.refresh(c, next.RefreshToken, nil), http.StatusBadRequest, "invalid_grant")
			// The whole family goes: both access tokens of the grant.
			if f.active(tb.AccessToken) || f.active(next.AccessToken) {
				t.Error("an access token of the revoked grant is still active")
			}
			// Revoking again is fine.
			f.revoke(c, next.RefreshToken, hint)
		})
	}
	for _, hint := range []string{"", "access_token", "refresh_token"} {
		t.Run("access token, hint "+hint, func(t *testing.T) {
			tb := f.tokens(c, nil)
			keep := f.tokens(c, nil)
			f.revoke(c, tb.AccessToken, hint)
			if f.active(tb.AccessToken) {
				t.Error("the revoked access token is still active")
			}
			if got := f.introspect(conf, tb.AccessToken); got != `{"active":false}` {
				t.Errorf("introspection = %s", got)
			}
			if !f.active(keep.AccessToken) {
				t.Error("revoking one access token revoked another grant's")
			}
			f.revoke(c, tb.AccessToken, hint)
		})
	}
	t.Run("confidential client", func(t *testing.T) {
		tb := f.tokens(conf, nil)
		f.revoke(conf, tb.AccessToken, "")
		f.revoke(conf, tb.RefreshToken, "")
		if f.active(tb.AccessToken) {
			t.Error("access token still active")
		}
		wantOAuthError(t, f.refresh(conf, tb.RefreshToken, nil), http.StatusBadRequest, "invalid_grant")
	})
	t.Run("another client's tokens", func(t *testing.T) {
		tb := f.tokens(c, nil)
		f.revoke(other, tb.AccessToken, "")
		f.revoke(other, tb.RefreshToken, "")
		f.revoke(other, tb.AccessToken, "access_token")
		f.revoke(other, tb.RefreshToken, "refresh_token")
		if !f.active(tb.AccessToken) {
			t.Error("another client revoked the access token")
		}
		wantToken(t, f.refresh(c, tb.RefreshToken, nil))
	})
	t.Run("expired access token", func(t *testing.T) {
		g := newFlow(t)
		gc := g.register("none", nil)
		tb := g.tokens(gc, nil)
		g.clock.Advance(oauth.DefaultAccessTokenLifetime + time.Second)
		g.revoke(gc, tb.AccessToken, "access_token")
	})

	f.wantClientAuthErrors(t, oauth.RevokePath, nil, []clientAuthError{
		{"missing token", url.Values{"client_id": {c.ID}}, nil, 400, "invalid_request", false},
		{"empty token", url.Values{"client_id": {c.ID}, "token": {""}}, nil, 400, "invalid_request", false},
		{"no client", url.Values{"token": {"x"}}, nil, 401, "invalid_client", false},
		{"unknown client", url.Values{"client_id": {"nobody"}, "token": {"x"}}, nil, 401, "invalid_client", false},
		{"wrong secret", url.Values{"client_id": {other.ID}, "client_secret": {"wrong"}, "token": {"x"}}, nil, 401, "invalid_client", false},
		{"missing secret", url.Values{"client_id": {conf.ID}, "token": {"x"}}, nil, 401, "invalid_client", false},
		{"wrong Basic secret", url.Values{"token": {"x"}}, func(r *http.Request) { setBasic(r, conf.ID, "wrong") }, 401, "invalid_client", true},
		{"public client with a secret", url.Values{"client_id": {c.ID}, "client_secret": {"x"}, "token": {"x"}}, nil, 401, "invalid_client", false},
		{"repeated token", url.Values{"client_id": {c.ID}, "token": {"x", "y"}}, nil, 400, "invalid_request", false},
	})
	t.Run("client authentication protects tokens", func(t *testing.T) {
		tb := f.tokens(conf, nil)
		r := postFormRequest(oauth.RevokePath, url.Values{"token": {tb.RefreshToken}}, nil)
		setBasic(r, conf.ID, "wrong")
		wantOAuthError(t, f.serve(r), http.StatusUnauthorized, "invalid_client")
		wantToken(t, f.refresh(conf, tb.RefreshToken, nil))
	})
	t.Run("wrong content type", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodPost, flowIssuer+oauth.RevokePath, strings.NewReader(`{"token":"x"}`))
		r.Header.Set("Content-Type", "application/json")
		wantOAuthError(t, f.serve(r), http.StatusBadRequest, "invalid_request")
	})
	t.Run("methods", func(t *testing.T) {
		wantOAuthError(t, f.get(oauth.RevokePath, nil), http.StatusMethodNotAllowed, "invalid_request")
		r := httptest.NewRequest(http.MethodOptions, flowIssuer+oauth.RevokePath, nil)
		r.Header.Set("Origin", "http://localhost:6274")
		w := f.serve(r)
		if w.Code != http.StatusNoContent || w.Header().Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("preflight: %d %v", w.Code, w.Header())
		}
	})
}

func TestIntrospect(t *testing.T) {
	t.Parallel()
	f := newFlow(t, withStaticSecretClient)
	c, basic, post := f.registerEachMethod()
	static := staticSecret
	inactive := `{"active":false}`

	t.Run("active access token", func(t *testing.T) {
		tb := f.tokens(c, nil)
		claims := f.verify(tb.AccessToken)
		for _, rs := range []testClient{static} {
			var got map[string]any
			if err := json.Unmarshal([]byte(f.introspect(rs, tb.AccessToken)), &got); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{
				"active": true, "scope": "booking:read booking:write", "client_id": c.ID, "sub": alice.ID,
				"aud": []any{flowResource}, "iss": flowIssuer, "exp": float64(claims.ExpiresAt.Unix()),
				"iat": float64(claims.IssuedAt.Unix()), "jti": claims.ID, "token_type": "Bearer",
			}
			if mustJSON(t, got) != mustJSON(t, want) {
				t.Errorf("introspection as %s:\n got %v\nwant %v", rs.ID, got, want)
			}
		}
		// A registered client learns nothing about another client's token,
		// but may introspect its own.
		for _, other := range []testClient{basic, post} {
			if got := f.introspect(other, tb.AccessToken); got != inactive {
				t.Errorf("%s introspecting another client's token: %s", other.ID, got)
			}
		}
		own := f.tokens(basic, nil)
		if got := f.introspect(basic, own.AccessToken); !strings.Contains(got, `"active":true`) {
			t.Errorf("a client introspecting its own token: %s", got)
		}
	})
	t.Run("refresh token", func(t *testing.T) {
		tb := f.tokens(c, nil)
		var got map[string]any
		if err := json.Unmarshal([]byte(f.introspect(static, tb.RefreshToken)), &got); err != nil {
			t.Fatal(err)
		}
		if got["active"] != true || got["token_type"] != "refresh_token" || got["client_id"] != c.ID ||
			got["sub"] != alice.ID || got["scope"] != "booking:read booking:write" || got["iss"] != flowIssuer {
			t.Errorf("introspection %v", got)
		}
		if exp, _ := got["exp"].(float64); exp <= float64(flowStart.Unix()) {
			t.Errorf("exp = %v", got["exp"])
		}
		// Once rotated it is no longer active.
		wantToken(t, f.refresh(c, tb.RefreshToken, nil))
		if got := f.introspect(static, tb.RefreshToken); got != inactive {
			t.Errorf("rotated refresh token: %s", got)
		}
	})
	t.Run("inactive tokens", func(t *testing.T) {
		revokedAT := f.tokens(c, nil)
		f.revoke(c, revokedAT.AccessToken, "")
		revokedRT := f.tokens(c, nil)
		f.revoke(c, revokedRT.RefreshToken, "")
		live := f.tokens(c, nil).AccessToken
		parts := strings.Split(live, ".")

		// A token signed by a key the server does not know.
		foreignKS := testkeys.NewKeySetAt(t, flowStart)
		claims := f.verify(live)
		foreign, err := foreignKS.Sign(claims)
		if err != nil {
			t.Fatal(err)
		}
		// A well-signed token of an unknown jti (never issued).
		forged := *claims
		forged.ID = "never-issued"
		unknownJTI, err := f.keys.Sign(&forged)
		if err != nil {
			t.Fatal(err)
		}
		// A token of another issuer.
		otherIss := *claims
		otherIss.Issuer = "https://evil.example"
		wrongIssuer, err := f.keys.Sign(&otherIss)
		if err != nil {
			t.Fatal(err)
		}
		// An unsigned token.
		none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + parts[1] + "."
		for name, tok := range map[string]string{
			"revoked access token":          revokedAT.AccessToken,
			"access token of revoked grant": revokedRT.AccessToken,
			"revoked refresh token":         revokedRT.RefreshToken,
			"garbage":                       "garbage",
			"three parts":                   "a.b.c",
			"tampered signature":            parts[0] + "." + parts[1] + ".AAAA",
			"tampered claims":               parts[0] + "." + parts[1] + "x." + parts[2],
			"foreign key":                   foreign,
			"unknown jti":                   unknownJTI,
			"wrong issuer":                  wrongIssuer,
			"alg none":                      none,
			"with whitespace":               "abc def",
		} {
			t.Run(name, func(t *testing.T) {
				if got := f.introspect(basic, tok); got != inactive {
					t.Errorf("introspection = %s, want exactly %s", got, inactive)
				}
			})
		}
	})
	t.Run("expired access token", func(t *testing.T) {
		g := newFlow(t, withStaticSecretClient)
		gc := g.register("none", nil)
		rs := static
		tb := g.tokens(gc, nil)
		g.clock.Advance(oauth.DefaultAccessTokenLifetime - time.Second)
		if got := g.introspect(rs, tb.AccessToken); !strings.Contains(got, `"active":true`) {
			t.Errorf("before expiry: %s", got)
		}
		g.clock.Advance(time.Second)
		if got := g.introspect(rs, tb.AccessToken); got != inactive {
			t.Errorf("at expiry: %s, want exactly %s", got, inactive)
		}
	})

	tb := f.tokens(c, nil)
	// An error reveals nothing of the token's state.
	revealsNothing := func(t *testing.T, w *httptest.ResponseRecorder) {
		t.Helper()
		if strings.Contains(w.Body.String(), `"active"`) {
			t.Errorf("an error reveals token state: %s", w.Body)
		}
	}
	f.wantClientAuthErrors(t, oauth.IntrospectPath, revealsNothing, []clientAuthError{
		{"public client", url.Values{"client_id": {c.ID}, "token": {tb.AccessToken}}, nil, 401, "invalid_client", false},
		{"public client by Basic", url.Values{"token": {tb.AccessToken}}, func(r *http.Request) { setBasic(r, c.ID, "") }, 401, "invalid_client", true},
		{"wrong secret", url.Values{"client_id": {post.ID}, "client_secret": {"wrong"}, "token": {tb.AccessToken}}, nil, 401, "invalid_client", false},
		{"wrong Basic secret", url.Values{"token": {tb.AccessToken}}, func(r *http.Request) { setBasic(r, basic.ID, "wrong") }, 401, "invalid_client", true},
		{"unknown client", url.Values{"client_id": {"nobody"}, "client_secret": {"x"}, "token": {tb.AccessToken}}, nil, 401, "invalid_client", false},
		{"no client", url.Values{"token": {tb.AccessToken}}, nil, 401, "invalid_client", false},
		{"missing token", url.Values{"client_id": {post.ID}, "client_secret": {post.Secret}}, nil, 400, "invalid_request", false},
	})
	t.Run("methods", func(t *testing.T) {
		wantOAuthError(t, f.get(oauth.IntrospectPath, nil), http.StatusMethodNotAllowed, "invalid_request")
	})
}
