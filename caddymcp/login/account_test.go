package login

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/oauth"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// accountEnv is a login server whose signed-in user (alice) has
// authorized applications and has two sessions, next to another user
// (mallory) with an application and a session of her own.
type accountEnv struct {
	*env
	revokes atomic.Int32 // calls of OnRevoke

	alice, mallory string // user ids
	// grants of alice: a registered client, a configured one, a client
	// known by its metadata document; and mallory's.
	registered, configured, document, mallorys string
	// access-token ids of alice's registered grant and of mallory's
	registeredJTI, mallorysJTI string
	// other is a browser where alice is signed in too; otherSession its
	// session id.
	other        *http.Client
	otherSession string
	// mallorySession is the id of mallory's session.
	mallorySession string
}

const firefoxUA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

func newAccountEnv(t *testing.T) *accountEnv {
	t.Helper()
	a := &accountEnv{}
	a.env = newEnv(t, envOptions{config: func(c *Config) {
		c.ScopeTools = map[string][]oauth.ScopeTool{"booking:read": {{Name: "bookings_list", Title: "List bookings"}}}
		c.ClientNames = map[string]string{"configured-app": "Configured App"}
		c.OnRevoke = func(context.Context) { a.revokes.Add(1) }
	}})
	e, ctx, now := a.env, context.Background(), a.env.clock.Now()
	e.login(LoginPath)
	var me Me
	if err := json.Unmarshal([]byte(e.me(e.sessionCookie(e.client)).body), &me); err != nil {
		t.Fatal(err)
	}
	a.alice = me.ID

	// Alice signs in on a second browser, a Firefox.
	a.other = e.newBrowser()
	cb := e.callbackURL(e.toProviderWith(a.other, LoginPath))
	if r := e.do(a.other, http.MethodGet, cb, http.Header{"User-Agent": {firefoxUA}}, nil); r.status != http.StatusSeeOther {
		t.Fatalf("second browser: %d", r.status)
	}
	a.otherSession = e.sessionCookie(a.other)

	m, err := e.store.UpsertUser(ctx, &store.User{ID: "mallory", Provider: "test", Subject: "m", Email: "mallory@example.com",
		CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	a.mallory = m.ID
	a.mallorySession = "mallory-session-" + strings.Repeat("m", 27)
	must(t, e.store.CreateSession(ctx, a.mallorySession, &store.Session{UserID: a.mallory, UserAgent: firefoxUA,
		CreatedAt: now, LastSeenAt: now, IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(time.Hour)}))

	must(t, e.store.CreateClient(ctx, &store.Client{ID: "registered-app", Name: "Claude Code",
		RedirectURIs: []string{"http://127.0.0.1:33418/callback"}, TokenEndpointAuthMethod: "none", CreatedAt: now, UpdatedAt: now}))
	grant := func(id, client, user, redirect string, at time.Time) string {
		must(t, e.store.CreateGrant(ctx, &store.Grant{ID: id, ClientID: client, UserID: user, Scope: "booking:read form:write",
			Resource: "https://mcp.example.com/mcp", RedirectURI: redirect, CreatedAt: at, UpdatedAt: at, ExpiresAt: at.Add(24 * time.Hour)}))
		must(t, e.store.SaveConsent(ctx, &store.Consent{UserID: user, ClientID: client, Scope: "booking:read form:write",
			RedirectURI: redirect, CreatedAt: at, UpdatedAt: at}))
		return id
	}
	a.registered = grant("grant-registered", "registered-app", a.alice, "http://127.0.0.1:33418/callback", now.Add(-2*time.Hour))
	a.configured = grant("grant-configured", "configured-app", a.alice, "https://app.example.com/cb", now.Add(-time.Hour))
	a.document = grant("grant-document", "https://tools.example.org/client.json", a.alice, "https://tools.example.org/cb", now)
	a.mallorys = grant("grant-mallory", "registered-app", a.mallory, "http://127.0.0.1:1/cb", now)
	a.registeredJTI, a.mallorysJTI = "jti-registered", "jti-mallory"
	for jti, g := range map[string]string{a.registeredJTI: a.registered, a.mallorysJTI: a.mallorys} {
		must(t, e.store.RecordAccessToken(ctx, &store.AccessToken{JTI: jti, GrantID: g, ClientID: "registered-app",
			UserID: a.alice, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))
	}
	return a
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// page fetches the account page with browser c and returns it with the
// token of its forms.
func (a *accountEnv) page(c *http.Client) (result, string) {
	a.t.Helper()
	r := a.do(c, http.MethodGet, AccountPath, nil, nil)
	wantPage(a.t, r, http.StatusOK, "Your account")
	m := csrfField.FindStringSubmatch(r.body)
	if m == nil {
		a.t.Fatalf("no csrf_token in the account page:\n%s", r.body)
	}
	return r, m[1]
}

// post posts form to the account page with browser c.
func (a *accountEnv) post(c *http.Client, form url.Values) result {
	a.t.Helper()
	return a.do(c, http.MethodPost, AccountPath, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
		strings.NewReader(form.Encode()))
}

// grantLive reports whether a grant is unrevoked.
func (a *accountEnv) grantLive(id string) bool {
	a.t.Helper()
	g, err := a.store.GetGrant(context.Background(), id)
	if err != nil {
		a.t.Fatal(err)
	}
	return g.RevokedAt.IsZero()
}

// consentKept reports whether a user still has a consent to a client.
func (a *accountEnv) consentKept(user, client string) bool {
	a.t.Helper()
	_, err := a.store.GetConsent(context.Background(), user, client)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		a.t.Fatal(err)
	}
	return err == nil
}

// sessionLive reports whether a session id still signs in.
func (a *accountEnv) sessionLive(id string) bool {
	a.t.Helper()
	_, err := a.store.GetSession(context.Background(), id, a.clock.Now())
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		a.t.Fatal(err)
	}
	return err == nil
}

// handle is the account page's handle of a session id.
func handle(id string) string { return base64.RawURLEncoding.EncodeToString(store.Hash(id)) }

func TestAccountSignedOut(t *testing.T) {
	e := newEnv(t, envOptions{})
	// Without a session the page sends the browser to sign in, and the
	// sign-in comes back to the page.
	r := e.login(AccountPath + "?done=application")
	if r.status != http.StatusSeeOther || r.loc != e.app.URL+AccountPath {
		t.Fatalf("after signing in: %d to %q, want 303 to %s", r.status, r.loc, AccountPath)
	}
	r = e.get(AccountPath)
	wantPage(t, r, http.StatusOK, "You have not authorized any application.")
	if !strings.Contains(r.body, "This session") || !strings.Contains(r.body, "Signed in as <strong>Alice Example (alice@example.com)</strong>") {
		t.Errorf("the page lacks the session or the user:\n%s", r.body)
	}
}

func TestAccountPage(t *testing.T) {
	a := newAccountEnv(t)
	r, token := a.page(a.client)
	for _, want := range []string{
		// The applications, newest first, named as well as each can be.
		`<h3 class="wrap">tools.example.org</h3>`, "Application ID: https://tools.example.org/client.json",
		`<h3 class="wrap">Configured App</h3>`, "Sent back to <strong>app.example.com</strong>",
		`<h3 class="wrap">Claude Code</h3>`, "Sent back to <strong>127.0.0.1:33418</strong>", "http://127.0.0.1:33418/callback",
		"Access to https://mcp.example.com/mcp",
		// Scopes with the tools they unlock, as the consent page says.
		"<strong>View your bookings</strong>: See your bookings and their details.", "Unlocks: List bookings (bookings_list)",
		"<strong>Manage your forms</strong>", "Unlocks: forms_create, forms_submit",
		`Authorized <time datetime="2026-03-04T03:06:07Z">4 Mar 2026, 03:06 UTC</time>`,
		`name="grant" value="` + a.registered + `"`, `name="grant" value="` + a.configured + `"`,
		// Both sessions, this one marked; the Firefox one described.
		`An unknown browser <span class="badge">This session</span>`, "Firefox on Linux", "from 127.0.0.1",
		`name="session" value="` + handle(a.sessionCookie(a.client)) + `"`, `name="session" value="` + handle(a.otherSession) + `"`,
		`name="action" value="sign_out"`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Index(r.body, "tools.example.org</h3>") > strings.Index(r.body, "Claude Code</h3>") {
		t.Error("applications are not listed newest first")
	}
	// Nothing of the other user.
	for _, leak := range []string{a.mallorys, handle(a.mallorySession), "127.0.0.1:1/"} {
		if strings.Contains(r.body, leak) {
			t.Errorf("the page shows %q of another user", leak)
		}
	}
	// Every form carries the token, which is the session's.
	if n, forms := strings.Count(r.body, `name="csrf_token" value="`+token+`"`), strings.Count(r.body, "<form "); n != forms || forms != 6 {
		t.Errorf("%d of %d forms carry the token; want all of 6", n, forms)
	}
	_, otherToken := a.page(a.other)
	if otherToken == token {
		t.Error("two sessions have the same form token")
	}
	if strings.Contains(r.body, a.sessionCookie(a.client)) {
		t.Error("the page shows the session id")
	}
	// HEAD answers as GET, without a body.
	if h := a.do(a.client, http.MethodHead, AccountPath, nil, nil); h.status != http.StatusOK || h.body != "" {
		t.Errorf("HEAD: %d %q", h.status, h.body)
	}
}

func TestAccountRevokeApplication(t *testing.T) {
	a := newAccountEnv(t)
	_, token := a.page(a.client)
	form := url.Values{"csrf_token": {token}, "action": {"revoke_application"}, "grant": {a.registered}}
	r := a.post(a.client, form)
	if r.status != http.StatusSeeOther || r.loc != a.app.URL+AccountPath+"?done=application" {
		t.Fatalf("revoke: %d to %q; body %s", r.status, r.loc, r.body)
	}
	if a.grantLive(a.registered) {
		t.Error("the grant is not revoked")
	}
	if ok, _ := a.store.AccessTokenActive(context.Background(), a.registeredJTI, a.clock.Now()); ok {
		t.Error("the grant's access token is still active")
	}
	revoked, err := a.store.RevokedAccessTokens(context.Background(), a.clock.Now().Add(-time.Minute), a.clock.Now())
	if err != nil || len(revoked) != 1 || revoked[0].JTI != a.registeredJTI {
		t.Errorf("deny-list source = %+v, %v", revoked, err)
	}
	if a.revokes.Load() != 1 {
		t.Errorf("OnRevoke called %d times, want 1", a.revokes.Load())
	}
	if a.consentKept(a.alice, "registered-app") {
		t.Error("the consent to the client is remembered: its next authorization would not ask")
	}
	// Mallory's grant and consent to the same client, and alice's other
	// applications, are untouched.
	if !a.grantLive(a.mallorys) || !a.consentKept(a.mallory, "registered-app") || !a.grantLive(a.configured) ||
		!a.consentKept(a.alice, "configured-app") {
		t.Error("revoking one application changed another")
	}
	if !strings.Contains(a.logs.String(), "grant_revoked") {
		t.Errorf("no audit record:\n%s", a.logs.String())
	}
	page := a.do(a.client, http.MethodGet, r.loc, nil, nil)
	wantPage(t, page, http.StatusOK, "Your account")
	if !strings.Contains(page.body, `role="status">The application&#39;s access was revoked.`) ||
		strings.Contains(page.body, "Claude Code") {
		t.Errorf("after revoking, the page:\n%s", page.body)
	}

	// A second revocation (a replayed form) is harmless.
	r = a.post(a.client, form)
	if r.status != http.StatusSeeOther {
		t.Errorf("second revoke: %d", r.status)
	}
	if a.revokes.Load() != 1 {
		t.Errorf("a second revoke called OnRevoke again")
	}
}

func TestAccountEndSession(t *testing.T) {
	a := newAccountEnv(t)
	_, token := a.page(a.client)
	r := a.post(a.client, url.Values{"csrf_token": {token}, "action": {"end_session"}, "session": {handle(a.otherSession)}})
	if r.status != http.StatusSeeOther || r.loc != a.app.URL+AccountPath+"?done=session" {
		t.Fatalf("end session: %d to %q; body %s", r.status, r.loc, r.body)
	}
	if a.sessionLive(a.otherSession) {
		t.Error("the other session still works")
	}
	if !a.sessionLive(a.sessionCookie(a.client)) || !a.sessionLive(a.mallorySession) {
		t.Error("ending one session ended another")
	}
	if a.revokes.Load() != 0 {
		t.Error("ending a session revoked tokens")
	}
	page := a.do(a.client, http.MethodGet, r.loc, nil, nil)
	wantPage(t, page, http.StatusOK, "Your account")
	if strings.Contains(page.body, "Firefox") || !strings.Contains(page.body, "The session was ended.") {
		t.Errorf("after ending the session, the page:\n%s", page.body)
	}
	// Ending it again is harmless: it is not found.
	r = a.post(a.client, url.Values{"csrf_token": {token}, "action": {"end_session"}, "session": {handle(a.otherSession)}})
	wantPage(t, r, http.StatusNotFound, "Session not found")
}

func TestAccountSignOut(t *testing.T) {
	for _, tc := range []struct {
		name string
		form func(a *accountEnv, token string) url.Values
	}{
		{"sign-out form", func(_ *accountEnv, token string) url.Values {
			return url.Values{"csrf_token": {token}, "action": {"sign_out"}}
		}},
		{"ending this session", func(a *accountEnv, token string) url.Values {
			return url.Values{"csrf_token": {token}, "action": {"end_session"}, "session": {handle(a.sessionCookie(a.client))}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAccountEnv(t)
			_, token := a.page(a.client)
			id := a.sessionCookie(a.client)
			r := a.post(a.client, tc.form(a, token))
			wantPage(t, r, http.StatusOK, "Signed out")
			if c := r.cookie(InsecureSessionCookie); c == nil || c.MaxAge >= 0 {
				t.Errorf("the session cookie is not deleted: %v", r.header.Values("Set-Cookie"))
			}
			if !strings.Contains(r.body, `href="/auth/login?return_to=%2Fauth%2Faccount"`) {
				t.Errorf("no way to sign in again:\n%s", r.body)
			}
			if a.sessionLive(id) {
				t.Error("the session still works")
			}
			if !a.sessionLive(a.otherSession) || !a.grantLive(a.registered) {
				t.Error("signing out ended another session or revoked an application")
			}
			// Replaying the form after signing out changes nothing.
			hdr := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Cookie": {InsecureSessionCookie + "=" + id}}
			r = a.do(a.newBrowser(), http.MethodPost, AccountPath, hdr, strings.NewReader(tc.form(a, token).Encode()))
			wantPage(t, r, http.StatusUnauthorized, "Signed out")
		})
	}
}

// TestAccountBadForms checks that a forged, replayed or malformed form
// changes nothing and gets a clear error page, never a 500.
func TestAccountBadForms(t *testing.T) {
	a := newAccountEnv(t)
	_, token := a.page(a.client)
	_, otherToken := a.page(a.other)
	revoke := func(tok, grant string) url.Values {
		return url.Values{"csrf_token": {tok}, "action": {"revoke_application"}, "grant": {grant}}
	}
	end := func(tok, session string) url.Values {
		return url.Values{"csrf_token": {tok}, "action": {"end_session"}, "session": {session}}
	}
	tests := []struct {
		name   string
		form   url.Values
		raw    string // body, instead of form
		ctype  string // default: a form
		query  string
		status int
		text   string
	}{
		{name: "no token", form: url.Values{"action": {"revoke_application"}, "grant": {a.registered}},
			status: http.StatusForbidden, text: "This form was not issued to this session"},
		{name: "wrong token", form: revoke(strings.Repeat("A", 43), a.registered), status: http.StatusForbidden, text: "Request refused"},
		{name: "the token of another session", form: revoke(otherToken, a.registered), status: http.StatusForbidden, text: "Request refused"},
		{name: "the token in the query", form: url.Values{"action": {"revoke_application"}, "grant": {a.registered}},
			query: "csrf_token=" + token, status: http.StatusForbidden, text: "Request refused"},
		{name: "a JSON body", raw: `{"csrf_token":"` + token + `","action":"sign_out"}`, ctype: "application/json",
			status: http.StatusForbidden, text: "Request refused"},
		{name: "another user's grant", form: revoke(token, a.mallorys), status: http.StatusNotFound, text: "Application not found"},
		{name: "a grant that does not exist", form: revoke(token, "no-such-grant"), status: http.StatusNotFound, text: "Application not found"},
		{name: "no grant", form: revoke(token, ""), status: http.StatusNotFound, text: "Application not found"},
		{name: "an overlong grant id", form: revoke(token, strings.Repeat("g", 1000)), status: http.StatusNotFound, text: "Application not found"},
		{name: "another user's session", form: end(token, handle(a.mallorySession)), status: http.StatusNotFound, text: "Session not found"},
		{name: "a session id instead of its handle", form: end(token, a.otherSession), status: http.StatusNotFound, text: "Session not found"},
		{name: "a malformed session handle", form: end(token, "%%%"), status: http.StatusNotFound, text: "Session not found"},
		{name: "an unknown action", form: url.Values{"csrf_token": {token}, "action": {"delete_everything"}},
			status: http.StatusBadRequest, text: "nothing was changed"},
		{name: "no action", form: url.Values{"csrf_token": {token}}, status: http.StatusBadRequest, text: "Invalid request"},
		{name: "a body over the limit", raw: "csrf_token=" + token + "&action=sign_out&pad=" + strings.Repeat("x", 8<<10),
			status: http.StatusRequestEntityTooLarge, text: "too large"},
		{name: "a malformed body", raw: "csrf_token=%zz", status: http.StatusBadRequest, text: "could not be read"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.raw
			if tc.form != nil {
				body = tc.form.Encode()
			}
			ctype := tc.ctype
			if ctype == "" {
				ctype = "application/x-www-form-urlencoded"
			}
			u := AccountPath
			if tc.query != "" {
				u += "?" + tc.query
			}
			r := a.do(a.client, http.MethodPost, u, http.Header{"Content-Type": {ctype}}, strings.NewReader(body))
			wantPage(t, r, tc.status, tc.text)
			if !strings.Contains(r.body, `href="/auth/account"`) {
				t.Errorf("no way back to the account page:\n%s", r.body)
			}
		})
	}
	// Nothing changed.
	for _, g := range []string{a.registered, a.configured, a.document, a.mallorys} {
		if !a.grantLive(g) {
			t.Errorf("grant %s was revoked", g)
		}
	}
	for _, c := range []struct{ user, client string }{{a.alice, "registered-app"}, {a.mallory, "registered-app"}} {
		if !a.consentKept(c.user, c.client) {
			t.Errorf("the consent of %s to %s was forgotten", c.user, c.client)
		}
	}
	for _, id := range []string{a.sessionCookie(a.client), a.otherSession, a.mallorySession} {
		if !a.sessionLive(id) {
			t.Error("a session was ended")
		}
	}
	if a.revokes.Load() != 0 {
		t.Errorf("OnRevoke called %d times", a.revokes.Load())
	}
	if !strings.Contains(a.logs.String(), "account_form_refused") {
		t.Errorf("no audit record of the refused forms:\n%s", a.logs.String())
	}

	// Without a session a form changes nothing, and says so.
	r := a.do(a.newBrowser(), http.MethodPost, AccountPath, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
		strings.NewReader(revoke(token, a.registered).Encode()))
	wantPage(t, r, http.StatusUnauthorized, "nothing was changed")
	if !a.grantLive(a.registered) {
		t.Error("a form without a session revoked a grant")
	}
}

func TestAccountMethods(t *testing.T) {
	a := newAccountEnv(t)
	for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions, "PROPFIND"} {
		r := a.do(a.client, m, AccountPath, nil, strings.NewReader("x"))
		wantPage(t, r, http.StatusMethodNotAllowed, "Method not allowed")
		if got := r.header.Get("Allow"); got != "GET, HEAD, POST" {
			t.Errorf("%s: Allow = %q", m, got)
		}
	}
	if !a.grantLive(a.registered) || !a.sessionLive(a.sessionCookie(a.client)) {
		t.Error("a refused method changed something")
	}
	if a.srv.Endpoint(AccountPath) != AccountPath || !a.srv.Handles(AccountPath) {
		t.Error("the server does not claim the account page")
	}
}

// unavailableStore is a store whose account methods fail as an
// unreachable database does.
type unavailableStore struct {
	Store
	down atomic.Bool
}

func (u *unavailableStore) ListUserGrants(ctx context.Context, userID string, now time.Time) ([]store.UserGrant, error) {
	if u.down.Load() {
		return nil, fmt.Errorf("listing: %w", store.ErrUnavailable)
	}
	return u.Store.ListUserGrants(ctx, userID, now)
}

func (u *unavailableStore) RevokeUserGrant(ctx context.Context, userID, grantID string, now time.Time) (*store.Grant, error) {
	if u.down.Load() {
		return nil, fmt.Errorf("revoking: %w", store.ErrUnavailable)
	}
	return u.Store.RevokeUserGrant(ctx, userID, grantID, now)
}

// TestAccountStoreDown checks that an unreachable database gets the
// retry page (503), and any other store failure the generic error page
// that names no cause.
func TestAccountStoreDown(t *testing.T) {
	var flaky *unavailableStore
	e := newEnv(t, envOptions{config: func(c *Config) {
		flaky = &unavailableStore{Store: c.Store}
		c.Store = flaky
	}})
	e.login(AccountPath)
	r := e.get(AccountPath)
	wantPage(t, r, http.StatusOK, "Your account")
	token := csrfField.FindStringSubmatch(r.body)[1]
	var me Me
	_ = json.Unmarshal([]byte(e.me(e.sessionCookie(e.client)).body), &me)
	now := e.clock.Now()
	must(t, e.store.CreateGrant(context.Background(), &store.Grant{ID: "g", ClientID: "c", UserID: me.ID,
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)}))

	flaky.down.Store(true)
	r = e.get(AccountPath)
	wantPage(t, r, http.StatusServiceUnavailable, "temporarily unavailable")
	if r.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	r = e.do(e.client, http.MethodPost, AccountPath, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
		strings.NewReader(url.Values{"csrf_token": {token}, "action": {"revoke_application"}, "grant": {"g"}}.Encode()))
	wantPage(t, r, http.StatusServiceUnavailable, "temporarily unavailable")
	if g, err := e.store.GetGrant(context.Background(), "g"); err != nil || !g.RevokedAt.IsZero() {
		t.Errorf("grant after a failed revocation: %+v, %v", g, err)
	}

	e.store.Close()
	r = e.get(AccountPath)
	wantPage(t, r, http.StatusInternalServerError, "The server could not complete the request.")
	if strings.Contains(r.body, "closed") || strings.Contains(r.body, "sql") {
		t.Errorf("the page names the cause:\n%s", r.body)
	}
}

func TestDescribeUserAgent(t *testing.T) {
	for ua, want := range map[string]string{
		firefoxUA: "Firefox on Linux",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0":           "Edge on Windows",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36":                   "Chrome on macOS",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15":                      "Safari on macOS",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1": "Safari on iPhone",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0 Mobile/15E148 Safari/604.1":  "Chrome on iPhone",
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36":                   "Chrome on Android",
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 OPR/111.0.0.0":                     "Opera on Linux",
		"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36":                          "Chrome on ChromeOS",
		"curl/8.5.0":                    "curl",
		"Mozilla/5.0 (Windows NT 10.0)": "A browser on Windows",
		"":                              "An unknown browser",
		"<script>alert(1)</script>":     "An unknown browser",
	} {
		if got := describeUserAgent(ua); got != want {
			t.Errorf("describeUserAgent(%q) = %q, want %q", ua, got, want)
		}
	}
}
