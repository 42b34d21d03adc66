package login

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/store"
)

func TestMe(t *testing.T) {
	e := newEnv(t, envOptions{rules: []Rule{{Everyone: true, Scopes: []string{"form:read"}}}})
	r := e.me("")
	if r.status != http.StatusUnauthorized || strings.TrimSpace(r.body) != `{"error":"unauthorized"}` {
		t.Errorf("signed out: %d %s", r.status, r.body)
	}
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("signed out: headers %v", r.header)
	}
	if r := e.me(strings.Repeat("x", 43)); r.status != http.StatusUnauthorized {
		t.Errorf("unknown session: %d", r.status)
	}
	e.login(LoginPath)
	r = e.me(e.sessionCookie(e.client))
	var me Me
	if err := json.Unmarshal([]byte(r.body), &me); err != nil || r.status != http.StatusOK {
		t.Fatalf("signed in: %d %s", r.status, r.body)
	}
	want := Me{ID: me.ID, Email: "alice@example.com", Name: "Alice Example", Picture: "https://example.com/alice.png",
		Provider: "test", Scopes: []string{"form:read"}}
	if me.ID == "" || me.Email != want.Email || me.Name != want.Name || me.Picture != want.Picture ||
		me.Provider != want.Provider || !slices.Equal(me.Scopes, want.Scopes) {
		t.Errorf("me = %+v, want %+v", me, want)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", r.header.Get("Cache-Control"))
	}
	// A store failure is an error, not a signed-out user.
	e.store.Close()
	if r := e.me(e.sessionCookie(e.client)); r.status != http.StatusServiceUnavailable {
		t.Errorf("store down: /auth/me %d", r.status)
	}
	req := httptest.NewRequest(http.MethodGet, "/oauth/authorize", nil)
	req.AddCookie(&http.Cookie{Name: InsecureSessionCookie, Value: e.sessionCookie(e.client)})
	if u, err := e.srv.CurrentUser(req); err == nil || u != nil {
		t.Errorf("store down: CurrentUser = %v, %v; want an error", u, err)
	}
}

func TestSessionFixation(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.login(LoginPath)
	first := e.sessionCookie(e.client)
	e.login(LoginPath)
	second := e.sessionCookie(e.client)
	if first == "" || second == "" || first == second {
		t.Fatalf("sessions %q then %q: want two different ids", first, second)
	}
	if r := e.me(first); r.status != http.StatusUnauthorized {
		t.Errorf("the old session still works: %d", r.status)
	}
	if _, err := e.store.GetSession(context.Background(), first, e.clock.Now()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the old session is still stored: %v", err)
	}
	if r := e.me(second); r.status != http.StatusOK {
		t.Errorf("the new session: %d", r.status)
	}
	// Another browser's login is another session; both live.
	other := e.newBrowser()
	r := e.do(other, http.MethodGet, e.callbackURL(e.toProviderWith(other, LoginPath)), nil, nil)
	if r.status != http.StatusSeeOther {
		t.Fatalf("second browser: %d", r.status)
	}
	var me Me
	_ = json.Unmarshal([]byte(e.me(second).body), &me)
	list, err := e.srv.Sessions(context.Background(), me.ID)
	if err != nil || len(list) != 2 {
		t.Fatalf("Sessions = %d, %v; want 2", len(list), err)
	}
	for _, se := range list {
		if len(se.IDHash) != 32 || string(se.IDHash) == second {
			t.Errorf("session handle %x is not a hash", se.IDHash)
		}
	}
	n, err := e.srv.RevokeSessions(context.Background(), me.ID)
	if err != nil || n != 2 {
		t.Errorf("RevokeSessions = %d, %v; want 2", n, err)
	}
	if r := e.me(second); r.status != http.StatusUnauthorized {
		t.Errorf("after revocation: %d", r.status)
	}
}

// toProviderWith is toProvider with another browser.
func (e *env) toProviderWith(c *http.Client, path string) string {
	e.t.Helper()
	saved := e.client
	e.client = c
	defer func() { e.client = saved }()
	return e.toProvider(path)
}

func TestSessionTimeouts(t *testing.T) {
	tests := []struct {
		name  string
		steps []time.Duration // advance, then /auth/me; all but the last succeed
	}{
		{"idle", []time.Duration{23 * time.Hour, 23 * time.Hour, 24*time.Hour + time.Second}},
		{"absolute", []time.Duration{20 * time.Hour, 20 * time.Hour, 20 * time.Hour, 20 * time.Hour,
			20 * time.Hour, 20 * time.Hour, 20 * time.Hour, 20 * time.Hour, 8*time.Hour + time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			e.login(LoginPath)
			id := e.sessionCookie(e.client)
			for i, d := range tt.steps {
				e.clock.Advance(d)
				want := http.StatusOK
				if i == len(tt.steps)-1 {
					want = http.StatusUnauthorized
				}
				if r := e.me(id); r.status != want {
					t.Fatalf("step %d (+%v): %d, want %d", i, d, r.status, want)
				}
			}
		})
	}
}

func TestSessionTouch(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.login(LoginPath)
	id := e.sessionCookie(e.client)
	start := e.clock.Now()
	lastSeen := func() time.Time {
		t.Helper()
		se, err := e.store.GetSession(context.Background(), id, e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		return se.LastSeenAt
	}
	e.clock.Advance(30 * time.Second)
	e.me(id)
	if got := lastSeen(); !got.Equal(start) {
		t.Errorf("touched after 30s: last seen %v", got)
	}
	e.clock.Advance(31 * time.Second)
	e.me(id)
	if got := lastSeen(); !got.Equal(e.clock.Now()) {
		t.Errorf("not touched after 61s: last seen %v, now %v", got, e.clock.Now())
	}
}

func TestLogout(t *testing.T) {
	tests := []struct {
		name     string
		header   http.Header
		body     string
		status   int
		location string
	}{
		{"same origin", http.Header{"Origin": {"APP"}}, "", http.StatusNoContent, ""},
		{"fetch metadata", http.Header{"Sec-Fetch-Site": {"same-origin"}}, "", http.StatusNoContent, ""},
		{"return_to", http.Header{"Origin": {"APP"}, "Content-Type": {"application/x-www-form-urlencoded"}},
			"return_to=%2Fbye%3Fa%3D1", http.StatusSeeOther, "/bye?a=1"},
		{"foreign return_to", http.Header{"Origin": {"APP"}, "Content-Type": {"application/x-www-form-urlencoded"}},
			"return_to=%2F%2Fevil.com", http.StatusNoContent, ""},
		{"cross origin", http.Header{"Origin": {"https://evil.example"}}, "", http.StatusForbidden, ""},
		{"cross site", http.Header{"Sec-Fetch-Site": {"cross-site"}}, "", http.StatusForbidden, ""},
		{"null origin", http.Header{"Origin": {"null"}}, "", http.StatusForbidden, ""},
		{"no header", http.Header{}, "", http.StatusForbidden, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			e.login(LoginPath)
			id := e.sessionCookie(e.client)
			if o := tt.header.Get("Origin"); o == "APP" {
				tt.header.Set("Origin", e.app.URL)
			}
			r := e.do(e.client, http.MethodPost, LogoutPath, tt.header, strings.NewReader(tt.body))
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			gone := tt.status != http.StatusForbidden
			if got := e.me(id).status == http.StatusUnauthorized; got != gone {
				t.Errorf("session gone %v, want %v", got, gone)
			}
			if gone {
				if c := r.cookie(InsecureSessionCookie); c == nil || c.MaxAge >= 0 {
					t.Errorf("the cookie is not expired: %q", r.header.Values("Set-Cookie"))
				}
				if !strings.Contains(e.logs.String(), "msg=logout") {
					t.Errorf("no audit record:\n%s", e.logs.String())
				}
			}
			if tt.location != "" && r.loc != e.app.URL+tt.location {
				t.Errorf("location %q, want %s", r.loc, tt.location)
			}
		})
	}
}

func TestPolicyChangeTakesEffect(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.login(LoginPath)
	id := e.sessionCookie(e.client)
	cfg := e.srv.cfg
	cfg.Rules = []Rule{{Domains: []string{"other.example"}}}
	strict, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/oauth/authorize", nil)
	req.AddCookie(&http.Cookie{Name: InsecureSessionCookie, Value: id})
	if u, err := e.srv.CurrentUser(req); err != nil || u == nil {
		t.Fatalf("old policy: %v, %v", u, err)
	}
	if u, err := strict.CurrentUser(req); err != nil || u != nil {
		t.Errorf("new policy: %v, %v; want no user", u, err)
	}
}

func TestMethods(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, tt := range []struct{ method, path, allow string }{
		{http.MethodPost, MePath, "GET, HEAD"},
		{http.MethodGet, LogoutPath, "POST"},
		{http.MethodPost, LoginPath, "GET, HEAD"},
		{http.MethodDelete, CallbackPrefix + "test", "GET, HEAD"},
	} {
		r := e.do(e.client, tt.method, tt.path, nil, nil)
		if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != tt.allow {
			t.Errorf("%s %s: %d, Allow %q", tt.method, tt.path, r.status, r.header.Get("Allow"))
		}
	}
	u, _ := url.Parse(e.app.URL + "/auth/other")
	if r := e.get(u.String()); r.status != http.StatusNotFound {
		t.Errorf("/auth/other: %d", r.status)
	}
}
