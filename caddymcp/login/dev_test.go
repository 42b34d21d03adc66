package login

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// newDevEnv is an env whose only provider is the development sign-in,
// unless others are named.
func newDevEnv(t *testing.T, rules []Rule, others ...string) *env {
	t.Helper()
	return newEnv(t, envOptions{providers: append([]string{}, others...), rules: rules, config: func(c *Config) {
		c.Providers = append(c.Providers, Dev())
	}})
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)

// devForm opens the form from path (following the redirects on this
// host) and returns its page and csrf_token.
func (e *env) devForm(path string) (result, string) {
	e.t.Helper()
	r := e.get(path)
	for i := 0; i < 3 && r.status == http.StatusFound && strings.HasPrefix(r.loc, e.app.URL); i++ {
		r = e.get(r.loc)
	}
	wantPage(e.t, r, http.StatusOK, "Email address")
	m := csrfField.FindStringSubmatch(r.body)
	if m == nil || !validToken(m[1]) {
		e.t.Fatalf("the form has no csrf_token:\n%s", r.body)
	}
	return r, m[1]
}

// postDev posts the form with client c.
func (e *env) postDev(c *http.Client, form url.Values) result {
	e.t.Helper()
	return e.do(c, http.MethodPost, ProviderLoginPrefix+DevName,
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, strings.NewReader(form.Encode()))
}

// usersWithEmail counts the recorded users with an email address.
func (e *env) usersWithEmail(email string) int {
	e.t.Helper()
	us, err := e.store.FindUsers(context.Background(), email, 10)
	if err != nil {
		e.t.Fatal(err)
	}
	return len(us)
}

func TestDevSignIn(t *testing.T) {
	e := newDevEnv(t, []Rule{
		{Everyone: true, Scopes: []string{"booking:read"}},
		{Emails: []string{"ada@example.com"}},
	})
	authorize := "/oauth/authorize?client_id=abc&state=s&scope=booking%3Aread"

	// Without a session, the application sends the browser to the form,
	// keeping where it came from server-side.
	r := e.get(authorize)
	if r.status != http.StatusFound || !strings.HasPrefix(r.loc, e.app.URL+ProviderLoginPrefix+"dev?return_to=") || strings.Contains(r.loc, "authorize") {
		t.Fatalf("Login: %d to %q, want the development form", r.status, r.loc)
	}
	form, token := e.devForm(r.loc)
	for _, want := range []string{"<title>Development sign-in</title>", "For development only.", `action="/auth/login/dev"`,
		`name="email" type="email"`, `name="name" type="text"`} {
		if !strings.Contains(form.body, want) {
			t.Errorf("the form lacks %q", want)
		}
	}
	if form.cookie(insecureBindingCookie) == nil {
		t.Errorf("the form sets no binding cookie: %v", form.header.Values("Set-Cookie"))
	}

	r = e.postDev(e.client, url.Values{"csrf_token": {token}, "email": {" Ada@Example.COM "}, "name": {" Ada Lovelace "}})
	if r.status != http.StatusSeeOther || r.loc != e.app.URL+authorize {
		t.Fatalf("POST: %d to %q, want 303 back to %s; body %s", r.status, r.loc, authorize, r.body)
	}
	if r.cookie(InsecureSessionCookie) == nil {
		t.Fatal("no session cookie")
	}
	var got struct {
		ID, Email string
		Scopes    []string
	}
	if b := e.get(authorize); json.Unmarshal([]byte(b.body), &got) != nil || got.Email != "ada@example.com" || got.Scopes != nil {
		t.Fatalf("back at the application: %s (ada@example.com has every scope)", b.body)
	}
	u, err := e.store.GetUser(context.Background(), got.ID)
	if err != nil || u.Provider != "dev" || u.Subject != "ada@example.com" || u.Email != "ada@example.com" ||
		!u.EmailVerified || u.Name != "Ada Lovelace" {
		t.Fatalf("user %+v (%v)", u, err)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "login_succeeded") || !strings.Contains(logs, "provider=dev") {
		t.Errorf("no audit record of the login:\n%s", logs)
	}
	if strings.Contains(logs, token) || strings.Contains(logs, e.sessionCookie(e.client)) {
		t.Errorf("the log holds a token:\n%s", logs)
	}

	// The same address again, in another browser and another case, is
	// the same user; another address gets the everyone rule's scopes.
	for _, tt := range []struct {
		email, name string
		sameUser    bool
		scopes      []string
	}{
		{"ADA@example.com", "Countess", true, nil},
		{"grace@example.org", "Grace", false, []string{"booking:read"}},
	} {
		b := e.newBrowser()
		e.client = b
		_, token := e.devForm(ProviderLoginPrefix + "dev")
		r := e.postDev(b, url.Values{"csrf_token": {token}, "email": {tt.email}, "name": {tt.name}})
		if r.status != http.StatusSeeOther || r.loc != e.app.URL+MePath {
			t.Fatalf("%s: %d to %q, want /auth/me", tt.email, r.status, r.loc)
		}
		var me Me
		if m := e.get(MePath); json.Unmarshal([]byte(m.body), &me) != nil || (me.ID == got.ID) != tt.sameUser ||
			me.Provider != "dev" || me.Name != tt.name || !slices.Equal(me.Scopes, tt.scopes) {
			t.Errorf("%s: /auth/me %+v", tt.email, me)
		}
	}
}

func TestDevSignInDenied(t *testing.T) {
	e := newDevEnv(t, []Rule{{Emails: []string{"bob@example.com"}}})
	_, token := e.devForm("/oauth/authorize?x=1")
	r := e.postDev(e.client, url.Values{"csrf_token": {token}, "email": {"eve@example.com"}, "name": {"Eve"}})
	wantPage(t, r, http.StatusForbidden, "Access denied: eve@example.com is not allowed to use this server.")
	if r.cookie(InsecureSessionCookie) != nil || e.sessionCookie(e.client) != "" {
		t.Error("a denied user got a session")
	}
	if logs := e.logs.String(); !strings.Contains(logs, "login_denied") || !strings.Contains(logs, "reason=policy") ||
		!strings.Contains(logs, "provider=dev") {
		t.Errorf("no audit record of the denial:\n%s", logs)
	}
}

func TestDevSignInBadInput(t *testing.T) {
	long := strings.Repeat("a", 243) + "@example.com" // 255 bytes
	tests := []struct {
		name, email, display string
		field, text          string // the field with the error, and what it says
	}{
		{"empty email", "", "Ada", "email", "Enter an email address."},
		{"blank email", "   ", "Ada", "email", "Enter an email address."},
		{"no at sign", "ada", "Ada", "email", "such as ada@example.com"},
		{"no domain", "ada@", "Ada", "email", "such as ada@example.com"},
		{"no local part", "@example.com", "Ada", "email", "such as ada@example.com"},
		{"display name", "Ada <ada@example.com>", "Ada", "email", "such as ada@example.com"},
		{"two at signs", "ada@b@example.com", "Ada", "email", "such as ada@example.com"},
		{"space in the domain", "ada@exa mple.com", "Ada", "email", "such as ada@example.com"},
		{"empty label", "ada@example..com", "Ada", "email", "such as ada@example.com"},
		{"address literal", "ada@[127.0.0.1]", "Ada", "email", "such as ada@example.com"},
		{"too long email", long, "Ada", "email", "too long"},
		{"control character in email", "ada\x07@example.com", "Ada", "email", "not allowed"},
		{"newline in email", "ada@example.com\r\nBcc: x@example.com", "Ada", "email", "not allowed"},
		{"empty name", "ada@example.com", "", "name", "Enter a display name."},
		{"blank name", "ada@example.com", " \t ", "name", "Enter a display name."},
		{"too long name", "ada@example.com", strings.Repeat("é", 101), "name", "too long"},
		{"NUL in name", "ada@example.com", "Ada\x00", "name", "not allowed"},
		{"bidi override in name", "ada@example.com", "Ada\u202egnirts", "name", "not allowed"},
		{"invalid UTF-8 in name", "ada@example.com", "Ada\xff", "name", "not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newDevEnv(t, []Rule{{Everyone: true}})
			_, token := e.devForm("/oauth/authorize?x=1")
			r := e.postDev(e.client, url.Values{"csrf_token": {token}, "email": {tt.email}, "name": {tt.display}})
			wantPage(t, r, http.StatusBadRequest, tt.text)
			errID, other := tt.field+"-error", "name"
			if tt.field == "name" {
				other = "email"
			}
			if !strings.Contains(r.body, `<p id="`+errID+`" class="error">`) || strings.Contains(r.body, `id="`+other+`-error"`) {
				t.Errorf("the error is not on the %s field alone:\n%s", tt.field, r.body)
			}
			// The other field keeps its value.
			kept := map[string]string{"email": tt.email, "name": tt.display}[other]
			if !strings.Contains(r.body, `name="`+other+`"`) || !strings.Contains(r.body, `value="`+html.EscapeString(kept)+`"`) {
				t.Errorf("the %s field lost %q:\n%s", other, kept, r.body)
			}
			if r.cookie(InsecureSessionCookie) != nil || e.usersWithEmail("ada@example.com") != 0 {
				t.Error("bad input signed someone in")
			}
			// The form comes back with a new token; the old one is spent.
			m := csrfField.FindStringSubmatch(r.body)
			if m == nil || m[1] == token {
				t.Fatalf("the form came back without a fresh token")
			}
			again := e.postDev(e.client, url.Values{"csrf_token": {token}, "email": {"ada@example.com"}, "name": {"Ada"}})
			wantPage(t, again, http.StatusBadRequest, "already sent")
			ok := e.postDev(e.client, url.Values{"csrf_token": {m[1]}, "email": {"ada@example.com"}, "name": {"Ada"}})
			if ok.status != http.StatusSeeOther || ok.loc != e.app.URL+"/oauth/authorize?x=1" {
				t.Errorf("corrected form: %d to %q", ok.status, ok.loc)
			}
		})
	}
}

func TestDevSignInCSRF(t *testing.T) {
	good := url.Values{"email": {"ada@example.com"}, "name": {"Ada"}}
	with := func(token string) url.Values {
		v := url.Values{"csrf_token": {token}}
		for k, vs := range good {
			v[k] = vs
		}
		return v
	}
	forged := strings.Repeat("A", 43)
	tests := []struct {
		name   string
		post   func(e *env) result
		status int
		text   string
		reason string
	}{
		{"no token", func(e *env) result {
			e.devForm(ProviderLoginPrefix + "dev")
			return e.postDev(e.client, good)
		}, http.StatusBadRequest, "incomplete or has expired", "missing_csrf_token"},
		{"malformed token", func(e *env) result {
			e.devForm(ProviderLoginPrefix + "dev")
			return e.postDev(e.client, with("not a token"))
		}, http.StatusBadRequest, "incomplete or has expired", "missing_csrf_token"},
		{"forged token", func(e *env) result {
			e.devForm(ProviderLoginPrefix + "dev")
			return e.postDev(e.client, with(forged))
		}, http.StatusBadRequest, "not issued by this server", "unknown_csrf_token"},
		{"token of another browser", func(e *env) result {
			_, token := e.devForm(ProviderLoginPrefix + "dev")
			return e.postDev(e.newBrowser(), with(token))
		}, http.StatusForbidden, "not issued to this browser", "browser_mismatch"},
		{"expired token", func(e *env) result {
			_, token := e.devForm(ProviderLoginPrefix + "dev")
			e.clock.Advance(pendingLifetime + 1)
			return e.postDev(e.client, with(token))
		}, http.StatusBadRequest, "Sign-in form expired", ""},
		{"replayed token", func(e *env) result {
			_, token := e.devForm(ProviderLoginPrefix + "dev")
			if r := e.postDev(e.client, with(token)); r.status != http.StatusSeeOther {
				e.t.Fatalf("first post: %d", r.status)
			}
			e.client = e.newBrowser() // signed out; the old form is posted again
			e.get(ProviderLoginPrefix + "dev")
			return e.postDev(e.client, with(token))
		}, http.StatusBadRequest, "already sent", "replayed_csrf_token"},
		{"state of an OpenID login", func(e *env) result {
			up, _ := url.Parse(e.toProvider(ProviderLoginPrefix + "test"))
			return e.postDev(e.client, with(up.Query().Get("state")))
		}, http.StatusBadRequest, "does not belong to this sign-in page", "provider_mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newDevEnv(t, []Rule{{Everyone: true}}, "test")
			signedIn := e.sessionCookie(e.client) != ""
			r := tt.post(e)
			wantPage(t, r, tt.status, tt.text)
			if !strings.Contains(r.body, `href="/auth/login/dev"`) {
				t.Errorf("the page does not lead back to the form:\n%s", r.body)
			}
			if r.cookie(InsecureSessionCookie) != nil || (!signedIn && tt.name != "replayed token" && e.usersWithEmail("ada@example.com") != 0) {
				t.Error("a refused form signed someone in")
			}
			if tt.reason != "" && !strings.Contains(e.logs.String(), "reason="+tt.reason) {
				t.Errorf("no login_denied with reason %s:\n%s", tt.reason, e.logs.String())
			}
		})
	}
}

func TestDevSignInRoutes(t *testing.T) {
	e := newDevEnv(t, []Rule{{Everyone: true}})
	for _, tt := range []struct{ method, path, allow string }{
		{http.MethodPut, ProviderLoginPrefix + "dev", "GET, HEAD, POST"},
		{http.MethodDelete, ProviderLoginPrefix + "dev", "GET, HEAD, POST"},
	} {
		r := e.do(e.client, tt.method, tt.path, nil, nil)
		if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != tt.allow {
			t.Errorf("%s %s: %d, Allow %q", tt.method, tt.path, r.status, r.header.Get("Allow"))
		}
	}
	// A development sign-in has no callback.
	wantPage(t, e.get(CallbackPrefix+"dev?code=x&state=y"), http.StatusNotFound, "no sign-in provider by that name")
	// The login page with the form alone leads to it.
	if r := e.get(LoginPath + "?return_to=/oauth/authorize%3Fx%3D1"); r.status != http.StatusFound ||
		r.loc != e.app.URL+ProviderLoginPrefix+"dev?return_to=%2Foauth%2Fauthorize%3Fx%3D1" {
		t.Errorf("/auth/login: %d to %q", r.status, r.loc)
	}
	// An unreadable form changes nothing.
	r := e.do(e.client, http.MethodPost, ProviderLoginPrefix+"dev",
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, strings.NewReader("%zz"))
	wantPage(t, r, http.StatusBadRequest, "could not be read")

	// Beside an OpenID provider, the picker offers both.
	e = newDevEnv(t, []Rule{{Everyone: true}}, "test")
	r = e.get("/oauth/authorize?x=1")
	page := e.get(r.loc)
	wantPage(t, page, http.StatusOK, "Sign in with Test")
	if !strings.Contains(page.body, "Development sign-in (any email address)") ||
		!strings.Contains(page.body, `href="/auth/login/dev?return_to=`) {
		t.Errorf("the picker lacks the development sign-in:\n%s", page.body)
	}
}
