package login

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// callbackRequestTo returns the provider's answer to a login started at
// path, as a request with the cookies of the browser that started it.
func (e *env) callbackRequestTo(path string) *http.Request {
	e.t.Helper()
	back := e.callbackURL(e.toProvider(path))
	r := httptest.NewRequest(http.MethodGet, back, nil)
	u, _ := url.Parse(e.app.URL)
	for _, c := range e.client.Jar.Cookies(u) {
		r.AddCookie(c)
	}
	return r
}

// withQuery returns a copy of r with its query changed by f.
func withQuery(r *http.Request, f func(q url.Values)) *http.Request {
	r = r.Clone(r.Context())
	q := r.URL.Query()
	f(q)
	r.URL.RawQuery = q.Encode()
	return r
}

// wantFailure checks that err is a *callbackError of kind and reason.
func wantFailure(t *testing.T, err error, kind failureKind, reason string) *callbackError {
	t.Helper()
	var ce *callbackError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *callbackError", err)
	}
	if ce.kind != kind || ce.reason != reason {
		t.Fatalf("failure %d %q, want %d %q (%v)", ce.kind, ce.reason, kind, reason, err)
	}
	return ce
}

func TestParseCallback(t *testing.T) {
	const start = ProviderLoginPrefix + "alpha?return_to=%2Fhome"
	tests := []struct {
		name     string
		provider string
		change   func(t *testing.T, e *env, r *http.Request) *http.Request
		reason   string // "" for success
		status   int
		text     string
	}{
		{name: "accepted", provider: "alpha"},
		{name: "access denied by the provider", provider: "alpha",
			change: func(_ *testing.T, _ *env, r *http.Request) *http.Request {
				return withQuery(r, func(q url.Values) { q.Del("code"); q.Set("error", "access_denied") })
			}, reason: "provider_error", status: http.StatusForbidden, text: "(error: access_denied)"},
		{name: "another provider error", provider: "alpha",
			change: func(_ *testing.T, _ *env, r *http.Request) *http.Request {
				return withQuery(r, func(q url.Values) { q.Set("error", "x y") })
			}, reason: "provider_error", status: http.StatusBadRequest, text: "(error: unknown_error)"},
		{name: "no state", provider: "alpha",
			change: func(_ *testing.T, _ *env, r *http.Request) *http.Request {
				return withQuery(r, func(q url.Values) { q.Del("state") })
			}, reason: "missing_state", status: http.StatusBadRequest, text: "login expired"},
		{name: "unknown state", provider: "alpha",
			change: func(_ *testing.T, _ *env, r *http.Request) *http.Request {
				return withQuery(r, func(q url.Values) { q.Set("state", strings.Repeat("A", 43)) })
			}, reason: "unknown_state", status: http.StatusBadRequest, text: "login expired"},
		{name: "replayed state", provider: "alpha",
			change: func(t *testing.T, e *env, r *http.Request) *http.Request {
				if _, err := e.srv.parseCallback(r, e.srv.providers["alpha"]); err != nil {
					t.Fatalf("first use: %v", err)
				}
				return r
			}, reason: "replayed_state", status: http.StatusBadRequest, text: "login expired"},
		{name: "state of another provider", provider: "beta",
			reason: "provider_mismatch", status: http.StatusBadRequest, text: "sign-in with Beta"},
		{name: "another browser", provider: "alpha",
			change: func(_ *testing.T, _ *env, r *http.Request) *http.Request {
				r = r.Clone(r.Context())
				r.Header.Del("Cookie")
				r.AddCookie(&http.Cookie{Name: insecureBindingCookie, Value: strings.Repeat("B", 43)})
				return r
			}, reason: "browser_mismatch", status: http.StatusBadRequest, text: "another browser"},
		{name: "no binding cookie", provider: "alpha",
			change: func(_ *testing.T, _ *env, r *http.Request) *http.Request {
				r = r.Clone(r.Context())
				r.Header.Del("Cookie")
				return r
			}, reason: "browser_mismatch", status: http.StatusBadRequest, text: "another browser"},
		{name: "no code", provider: "alpha",
			change: func(_ *testing.T, _ *env, r *http.Request) *http.Request {
				return withQuery(r, func(q url.Values) { q.Del("code") })
			}, reason: "missing_code", status: http.StatusBadRequest, text: "no authorization code"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{providers: []string{"alpha", "beta"}})
			r := e.callbackRequestTo(start)
			if tc.change != nil {
				r = tc.change(t, e, r)
			}
			cb, err := e.srv.parseCallback(r, e.srv.providers[tc.provider])
			if tc.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				if cb.code == "" || cb.pending.Provider != "alpha" || cb.pending.ReturnTo != "/home" || cb.pending.Verifier == "" {
					t.Errorf("callback %+v", cb)
				}
				return
			}
			if cb != nil {
				t.Errorf("a refused callback gave %+v", cb)
			}
			ce := wantFailure(t, err, refused, tc.reason)
			if ce.status != tc.status || !strings.Contains(ce.message, tc.text) {
				t.Errorf("page %d %q, want %d with %q", ce.status, ce.message, tc.status, tc.text)
			}
		})
	}
}

// TestParseCallbackBurnsState checks that a provider's error uses up the
// state, so that the login cannot be finished with a guessed code.
func TestParseCallbackBurnsState(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.callbackRequestTo(ProviderLoginPrefix + "test")
	p := e.srv.providers["test"]
	_, err := e.srv.parseCallback(withQuery(r, func(q url.Values) { q.Set("error", "access_denied") }), p)
	wantFailure(t, err, refused, "provider_error")
	_, err = e.srv.parseCallback(r, p)
	wantFailure(t, err, refused, "replayed_state")
}

func TestDecideLogin(t *testing.T) {
	t.Run("signed in", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		cb, err := e.srv.parseCallback(e.callbackRequestTo(ProviderLoginPrefix+"test"), e.srv.providers["test"])
		if err != nil {
			t.Fatal(err)
		}
		u, err := e.srv.decideLogin(context.Background(), e.srv.providers["test"], cb)
		if err != nil {
			t.Fatal(err)
		}
		if u.Provider != "test" || u.Subject != "1234567890" || u.Email != "alice@example.com" || !u.EmailVerified {
			t.Errorf("user %+v", u)
		}
	})
	t.Run("refused by the policy", func(t *testing.T) {
		e := newEnv(t, envOptions{rules: []Rule{{Emails: []string{"bob@example.com"}}}})
		cb, err := e.srv.parseCallback(e.callbackRequestTo(ProviderLoginPrefix+"test"), e.srv.providers["test"])
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.srv.decideLogin(context.Background(), e.srv.providers["test"], cb)
		ce := wantFailure(t, err, refused, "policy")
		if ce.status != http.StatusForbidden || ce.message != "Access denied: alice@example.com is not allowed to use this server." {
			t.Errorf("page %d %q", ce.status, ce.message)
		}
		if len(ce.audit) != 4 || ce.audit[0] != "user_id" || ce.audit[2] != "email" {
			t.Errorf("audit attributes %v", ce.audit)
		}
	})
	t.Run("code refused by the provider", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		cb, err := e.srv.parseCallback(e.callbackRequestTo(ProviderLoginPrefix+"test"), e.srv.providers["test"])
		if err != nil {
			t.Fatal(err)
		}
		cb.code = "guessed"
		_, err = e.srv.decideLogin(context.Background(), e.srv.providers["test"], cb)
		ce := wantFailure(t, err, upstream, "invalid_response")
		if ce.during != "redeeming the code" || !strings.Contains(ce.err.Error(), "invalid_grant") {
			t.Errorf("failure %v", ce)
		}
	})
	t.Run("provider unreachable", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		e.op().srv.Close()
		_, err := e.srv.decideLogin(context.Background(), e.srv.providers["test"], &callbackRequest{code: "c"})
		if ce := wantFailure(t, err, upstream, reasonUnreachable); ce.during != "discovery" || ce.retry != LoginPath {
			t.Errorf("failure %v, retry %q", ce, ce.retry)
		}
	})
}

func TestNewUser(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	u := newUser("google", profile{
		Subject: "sub-1", Email: strings.Repeat("e", 400), EmailVerified: true, Name: strings.Repeat("é", 200),
		Picture: "http://example.com/p.png", HostedDomain: "example.com",
	}, "user-1", now)
	if u.ID != "user-1" || u.Provider != "google" || u.Subject != "sub-1" || !u.EmailVerified || u.HostedDomain != "example.com" {
		t.Errorf("user %+v", u)
	}
	if len(u.Email) != 320 || len(u.Name) != 256 {
		t.Errorf("email %d bytes, name %d bytes: not clipped", len(u.Email), len(u.Name))
	}
	if u.Picture != "" {
		t.Errorf("a plain-http picture was kept: %q", u.Picture)
	}
	if !u.CreatedAt.Equal(now) || !u.UpdatedAt.Equal(now) || !u.LastLoginAt.Equal(now) {
		t.Errorf("times %v %v %v", u.CreatedAt, u.UpdatedAt, u.LastLoginAt)
	}
	if u := newUser("p", profile{Picture: "https://example.com/p.png"}, "id", now); u.Picture != "https://example.com/p.png" {
		t.Errorf("an https picture was dropped")
	}
}

func TestRefuseCallback(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		text   string
		logs   []string
	}{
		{"refused", refusal(http.StatusForbidden, "policy", "Access denied", "Not you.", "user_id", "u1"),
			http.StatusForbidden, "Not you.", []string{"msg=login_denied", "reason=policy", "provider=test", "user_id=u1"}},
		{"expired", expiredLogin("unknown_state"), http.StatusBadRequest, "login expired, start again",
			[]string{"msg=login_denied", "reason=unknown_state"}},
		{"provider failed", upstreamFailure("redeeming the code", errors.New("answered 400"), "/oauth/authorize?a=1"),
			http.StatusBadGateway, "Signing in with Test failed",
			[]string{"reason=invalid_response", `during="redeeming the code"`, `error="answered 400"`}},
		{"store down", internalFailure("recording the user", store.ErrUnavailable),
			http.StatusServiceUnavailable, "temporarily unavailable", []string{"msg=\"store unavailable\""}},
		{"another error", errors.New("boom"), http.StatusInternalServerError, "could not complete",
			[]string{`during="answering a callback"`, "error=boom"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			rec := httptest.NewRecorder()
			e.srv.refuseCallback(rec, e.srv.providers["test"], tc.err)
			wantPage(t, result{status: rec.Code, header: rec.Header(), body: rec.Body.String()}, tc.status, tc.text)
			for _, s := range tc.logs {
				if !strings.Contains(e.logs.String(), s) {
					t.Errorf("log lacks %q:\n%s", s, e.logs)
				}
			}
			if c := rec.Result().Cookies(); len(c) != 0 {
				t.Errorf("cookies set: %v", c)
			}
		})
	}
}

func TestCompleteLogin(t *testing.T) {
	for _, tc := range []struct{ name, returnTo, want string }{
		{"local path", "/oauth/authorize?a=1", "/oauth/authorize?a=1"},
		{"another host", "//evil.example/x", MePath},
		{"none", "", MePath},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			user, err := e.store.UpsertUser(context.Background(),
				newUser("test", profile{Subject: "s", Email: "a@example.com"}, "user-1", e.clock.Now()))
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			e.srv.completeLogin(rec, httptest.NewRequest(http.MethodGet, CallbackPrefix+"test", nil), e.srv.providers["test"], user, tc.returnTo)
			if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != tc.want {
				t.Errorf("%d to %q, want 303 to %q", rec.Code, rec.Header().Get("Location"), tc.want)
			}
			if rec.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", rec.Header().Get("Cache-Control"))
			}
			var session string
			for _, c := range rec.Result().Cookies() {
				if c.Name == InsecureSessionCookie && c.HttpOnly {
					session = c.Value
				}
			}
			if _, err := e.store.GetSession(context.Background(), session, e.clock.Now()); err != nil {
				t.Errorf("no session for the cookie %q: %v", session, err)
			}
			if !strings.Contains(e.logs.String(), "msg=login_succeeded") {
				t.Errorf("no login_succeeded event:\n%s", e.logs)
			}
		})
	}
}
