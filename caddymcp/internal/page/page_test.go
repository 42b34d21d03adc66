package page

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// wantHeaders are the security headers of every page, but the CSP.
var wantHeaders = map[string]string{
	"Content-Type":           "text/html; charset=utf-8",
	"Cache-Control":          "no-store",
	"Pragma":                 "no-cache",
	"X-Frame-Options":        "DENY",
	"X-Content-Type-Options": "nosniff",
	"Referrer-Policy":        "no-referrer",
}

func TestWrite(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		page    Page
		csp     string
		want    []string
		notWant []string
	}{
		{
			name:   "message",
			status: http.StatusForbidden,
			page:   Page{Name: MessageName, Title: "Access <denied>", Nonce: "n0nce", Data: Message{Text: "You <b>may</b> not."}},
			csp:    "default-src 'none'; style-src 'nonce-n0nce'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
			want: []string{"<!doctype html>", `<html lang="en">`, `<style nonce="n0nce">`,
				"<title>Access &lt;denied&gt;</title>", `<h1 class="wrap">Access &lt;denied&gt;</h1>`,
				"You &lt;b&gt;may&lt;/b&gt; not.", "<main>", "</main>", "</html>"},
			notWant: []string{"<b>", "<ul", "<a ", "<form"},
		},
		{
			name:   "message with links",
			status: http.StatusOK,
			page: Page{Name: MessageName, Title: "Sign in", Nonce: "abc", PostTo: []string{Self}, Data: Message{Text: "Choose.",
				Links: []Link{{"Sign in with A", "/auth/login/a?return_to=x"}, {"Bad", "javascript:alert(1)"}}}},
			csp: "default-src 'none'; style-src 'nonce-abc'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
			want: []string{`<ul class="links">`, `<a class="button wrap" href="/auth/login/a?return_to=x">Sign in with A</a>`,
				"#ZgotmplZ"},
			notWant: []string{"javascript:"},
		},
		{
			name:   "consent",
			status: http.StatusOK,
			page: Page{Name: ConsentName, Title: "Authorize App", Nonce: "abc",
				PostTo: []string{Self, "https://app.example.com", "cursor:", "x'y", "a; script-src *", ""},
				Data: Consent{Client: "App", ClientID: "id-1", RedirectHost: "app.example.com", RedirectURI: "https://app.example.com/cb",
					Scopes:     []Scope{{"View things", "See them.", "things_list"}},
					FormAction: "/oauth/authorize", RequestID: "r1", CSRFToken: "c1"}},
			csp: "default-src 'none'; style-src 'nonce-abc'; form-action 'self' https://app.example.com cursor:; frame-ancestors 'none'; base-uri 'none'",
			want: []string{`<h1 class="wrap">Authorize App</h1>`, "Application ID: id-1", "Unlocks: things_list",
				`<form method="post" action="/oauth/authorize">`, `name="request_id" value="r1"`, `name="csrf_token" value="c1"`},
		},
		{
			name:   "development sign-in",
			status: http.StatusOK,
			page: Page{Name: DevSignInName, Title: "Development sign-in", Nonce: "abc", PostTo: []string{Self},
				Data: DevSignIn{FormAction: "/auth/login/dev", CSRFToken: "c1"}},
			csp: "default-src 'none'; style-src 'nonce-abc'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
			want: []string{`<h1 class="wrap">Development sign-in</h1>`, "For development only.",
				`<form method="post" action="/auth/login/dev">`, `name="csrf_token" value="c1"`,
				`<label for="email">Email address</label>`, `<input id="email" name="email" type="email"`, `value="">`,
				`<label for="name">Display name</label>`, `<input id="name" name="name" type="text"`},
			notWant: []string{` aria-invalid="true"`, "aria-describedby", `class="error"`},
		},
		{
			name:   "development sign-in with errors",
			status: http.StatusBadRequest,
			page: Page{Name: DevSignInName, Title: "Development sign-in", Nonce: "abc", PostTo: []string{Self},
				Data: DevSignIn{FormAction: "/auth/login/dev", CSRFToken: "c2", Email: `a"><script>@x`, Name: "Ada <b>",
					EmailError: "Enter an email address such as ada@example.com."}},
			csp: "default-src 'none'; style-src 'nonce-abc'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
			want: []string{`value="a&#34;&gt;&lt;script&gt;@x" aria-invalid="true" aria-describedby="email-error">`,
				`<p id="email-error" class="error">Enter an email address such as ada@example.com.</p>`,
				`value="Ada &lt;b&gt;">`},
			notWant: []string{`name-error`, "<b>"},
		},
		{
			name:   "consent with the account link",
			status: http.StatusOK,
			page: Page{Name: ConsentName, Title: "Authorize App", Nonce: "abc", PostTo: []string{Self},
				Data: Consent{Client: "App", SignedInAs: "Ada", AccountURL: "/auth/account", FormAction: "/oauth/consent"}},
			csp:  "default-src 'none'; style-src 'nonce-abc'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
			want: []string{`Signed in as <strong>Ada</strong> · <a href="/auth/account">Manage your applications</a>`},
		},
		{
			name:    "consent without the account link",
			status:  http.StatusOK,
			page:    Page{Name: ConsentName, Title: "Authorize App", Nonce: "abc", PostTo: []string{Self}, Data: Consent{Client: "App", SignedInAs: "Ada"}},
			csp:     "default-src 'none'; style-src 'nonce-abc'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
			notWant: []string{"Manage your applications"},
		},
		{
			name:   "account",
			status: http.StatusOK,
			page: Page{Name: AccountName, Title: "Your account", Nonce: "abc", PostTo: []string{Self},
				Data: Account{SignedInAs: "Ada <ada@example.com>", Notice: "Access revoked.", FormAction: "/auth/account", CSRFToken: "tok<en>",
					Applications: []Application{{Grant: "g-1", Name: "Claude <Code>", ClientID: "c-1", RedirectHost: "127.0.0.1:5000",
						RedirectURI: "http://127.0.0.1:5000/cb", Resource: "https://h/mcp",
						Scopes:     []Scope{{"View things", "See them.", "List things (things_list)"}},
						Authorized: Time{"2 Jan 2026, 03:04 UTC", "2026-01-02T03:04:05Z"}, LastUsed: Time{"3 Jan 2026, 03:04 UTC", "2026-01-03T03:04:05Z"}}},
					Sessions: []Session{
						{ID: "s-1", Browser: "Firefox on Linux", Address: "192.0.2.1", Current: true, Started: Time{"today", "2026-01-02T03:04:05Z"}},
						{ID: "s-2", Browser: "Safari on iPhone"},
					}}},
			csp: "default-src 'none'; style-src 'nonce-abc'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
			want: []string{`<h1 class="wrap">Your account</h1>`, "Signed in as <strong>Ada &lt;ada@example.com&gt;</strong>",
				`<p class="notice wrap" role="status">Access revoked.</p>`, `<h3 class="wrap">Claude &lt;Code&gt;</h3>`,
				"Application ID: c-1", "Sent back to <strong>127.0.0.1:5000</strong>", "http://127.0.0.1:5000/cb", "Access to https://h/mcp",
				"<strong>View things</strong>: See them.", "Unlocks: List things (things_list)",
				`Authorized <time datetime="2026-01-02T03:04:05Z">2 Jan 2026, 03:04 UTC</time>`,
				`<form method="post" action="/auth/account">`, `name="csrf_token" value="tok&lt;en&gt;"`,
				`name="action" value="revoke_application"`, `name="grant" value="g-1"`,
				`Revoke access<span class="vh"> of Claude &lt;Code&gt;</span>`,
				`Firefox on Linux <span class="badge">This session</span>`, "from 192.0.2.1",
				`name="action" value="end_session"`, `name="session" value="s-1"`, "Sign out of this session",
				`name="session" value="s-2"`, `End session<span class="vh"> on Safari on iPhone</span>`,
				`name="action" value="sign_out"`},
			notWant: []string{"<Code>", "tok<en>", "not authorized any"},
		},
		{
			name:   "account without applications",
			status: http.StatusOK,
			page: Page{Name: AccountName, Title: "Your account", Nonce: "abc", PostTo: []string{Self},
				Data: Account{FormAction: "/auth/account", CSRFToken: "t", Sessions: []Session{{ID: "s-1", Browser: "curl", Current: true}}}},
			csp:     "default-src 'none'; style-src 'nonce-abc'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
			want:    []string{"You have not authorized any application.", `name="action" value="sign_out"`},
			notWant: []string{"Signed in as", `role="status"`, "revoke_application"},
		},
		{
			name:   "a nonce that could inject blocks the stylesheet",
			status: http.StatusOK,
			page:   Page{Name: MessageName, Title: "T", Nonce: "x'; script-src *", Data: Message{Text: "m"}},
			csp:    "default-src 'none'; style-src 'none'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
		},
		{
			name:   "no nonce",
			status: http.StatusOK,
			page:   Page{Name: MessageName, Title: "T", Data: Message{Text: "m"}},
			csp:    "default-src 'none'; style-src 'none'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			if err := Write(w, tc.status, tc.page); err != nil {
				t.Fatal(err)
			}
			if w.Code != tc.status {
				t.Errorf("status %d, want %d", w.Code, tc.status)
			}
			for k, v := range wantHeaders {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if got := w.Header().Get("Content-Security-Policy"); got != tc.csp {
				t.Errorf("CSP = %q, want %q", got, tc.csp)
			}
			body := w.Body.String()
			for _, s := range tc.want {
				if !strings.Contains(body, s) {
					t.Errorf("body lacks %q:\n%s", s, body)
				}
			}
			for _, s := range tc.notWant {
				if strings.Contains(body, s) {
					t.Errorf("body contains %q", s)
				}
			}
			if strings.Contains(body, "<script") {
				t.Error("body has a script")
			}
		})
	}
}

// TestWriteFailure checks that a page that cannot be rendered sends a
// plain 500, not half a page.
func TestWriteFailure(t *testing.T) {
	for _, p := range []Page{
		{Name: "no-such-template", Nonce: "n"},
		{Name: MessageName, Nonce: "n", Data: 42}, // not a Message
	} {
		w := httptest.NewRecorder()
		if err := Write(w, http.StatusOK, p); err == nil {
			t.Errorf("%s: no error", p.Name)
		}
		if w.Code != http.StatusInternalServerError || strings.TrimSpace(w.Body.String()) != "internal error" {
			t.Errorf("%s: got %d %q, want 500 internal error", p.Name, w.Code, w.Body.String())
		}
		if strings.Contains(w.Header().Get("Content-Type"), "html") {
			t.Errorf("%s: Content-Type = %q", p.Name, w.Header().Get("Content-Type"))
		}
	}
}

func TestNewNonce(t *testing.T) {
	n, err := NewNonce(bytes.NewReader(make([]byte, 16)))
	if err != nil || n != "AAAAAAAAAAAAAAAAAAAAAA" {
		t.Errorf("NewNonce = %q, %v", n, err)
	}
	if !validNonce(n) {
		t.Errorf("%q is not a valid nonce", n)
	}
	if _, err := NewNonce(bytes.NewReader(make([]byte, 15))); err == nil {
		t.Error("a short read gave a nonce")
	}
	if _, err := NewNonce(errReader{}); err == nil {
		t.Error("a failing reader gave a nonce")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("no randomness") }

func TestValidSource(t *testing.T) {
	for s, want := range map[string]bool{
		"https://app.example.com": true, "cursor:": true, "http://[::1]:8080": true, "https://*.example.com": true,
		"": false, "'self'": false, "a b": false, "x;y": false, `x"y`: false, "https://ok.example.com\r\nX-Evil: 1": false,
	} {
		if got := validSource(s); got != want {
			t.Errorf("validSource(%q) = %v, want %v", s, got, want)
		}
	}
}
