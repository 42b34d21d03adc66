package oauth

import (
	"html"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/caddymcp/caddymcp/caddymcp/internal/web"
)

func sampleConsent() consentPage {
	return consentPage{
		ClientName:        "Example Client",
		ClientID:          "client-123",
		RedirectURI:       "https://app.example.com/oauth/callback?x=1",
		RedirectHost:      "app.example.com",
		UserName:          "Ada Lovelace",
		UserEmail:         "ada@example.com",
		ResourceName:      "Shop tools",
		Resource:          "https://shop.example.com/mcp",
		Scopes:            []string{"booking:read", "product:write", "form:read"},
		FormAction:        "/oauth/authorize",
		RequestID:         "req-abc",
		CSRFToken:         "csrf-xyz",
		FormActionSources: []string{"https://app.example.com"},
	}
}

func renderConsent(t *testing.T, p consentPage) (*httptest.ResponseRecorder, string) {
	t.Helper()
	w := httptest.NewRecorder()
	writeConsentPage(w, p)
	if w.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200", w.Code)
	}
	return w, w.Body.String()
}

var nonceRE = regexp.MustCompile(`<style nonce="([^"]+)">`)

func cspNonce(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	m := regexp.MustCompile(`style-src 'nonce-([^']+)'`).FindStringSubmatch(w.Header().Get("Content-Security-Policy"))
	if m == nil {
		t.Fatalf("no nonce in CSP %q", w.Header().Get("Content-Security-Policy"))
	}
	return m[1]
}

func TestConsentPageContent(t *testing.T) {
	hostile := sampleConsent()
	hostile.ClientName = "<script>alert(1)</script>"
	hostile.RedirectHost = `evil.example"><b>`
	hostile.UserName = "<img src=x onerror=alert(1)>"

	noName := sampleConsent()
	noName.ClientName = ""

	unknown := sampleConsent()
	unknown.Scopes = []string{"weird:scope"}

	derived := sampleConsent()
	derived.RedirectHost = ""
	derived.RedirectURI = "cursor://anysphere.cursor-mcp/oauth/callback"

	tests := []struct {
		name    string
		page    consentPage
		want    []string
		notWant []string
	}{
		{
			name: "basic",
			page: sampleConsent(),
			want: []string{
				`<html lang="en">`,
				`<meta name="viewport" content="width=device-width, initial-scale=1">`,
				"<main>", "</main>",
				"<title>Authorize Example Client</title>",
				"Example Client",
				"Ada Lovelace (ada@example.com)",
				"app.example.com",
				"https://app.example.com/oauth/callback?x=1",
				"Shop tools", "https://shop.example.com/mcp",
				"View your bookings", "Unlocks: bookings_list, bookings_get",
				"Manage your products", "Unlocks: products_create, products_update, products_delete, products_adjust_stock",
				"View your forms", "Unlocks: forms_list, forms_get, forms_list_submissions",
				"Only approve applications you trust",
				`<form method="post" action="/oauth/authorize">`,
				`<input type="hidden" name="request_id" value="req-abc">`,
				`<input type="hidden" name="csrf_token" value="csrf-xyz">`,
				`name="decision" value="approve"`, ">Approve</button>",
				`name="decision" value="deny"`, ">Deny</button>",
			},
			notWant: []string{"<script", "An application"},
		},
		{
			name:    "hostile input is escaped",
			page:    hostile,
			want:    []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(1)&gt;", "evil.example&#34;&gt;&lt;b&gt;"},
			notWant: []string{"<script", "<img", `"><b>`},
		},
		{
			name: "empty client name",
			page: noName,
			want: []string{"<title>Authorize An application</title>", "Authorize An application</h1>"},
		},
		{
			name:    "unknown scope shown by name",
			page:    unknown,
			want:    []string{"weird:scope", "Access named “weird:scope”."},
			notWant: []string{"Unlocks:"},
		},
		{
			name: "redirect host derived from custom scheme",
			page: derived,
			want: []string{"<strong>cursor://anysphere.cursor-mcp</strong>"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, body := renderConsent(t, tc.page)
			for _, s := range tc.want {
				if !strings.Contains(body, s) {
					t.Errorf("body lacks %q", s)
				}
			}
			for _, s := range tc.notWant {
				if strings.Contains(body, s) {
					t.Errorf("body contains %q", s)
				}
			}
			if n := strings.Count(body, "<form"); n != 1 {
				t.Errorf("%d forms, want 1", n)
			}
		})
	}
}

func TestConsentPageHeaders(t *testing.T) {
	p := sampleConsent()
	p.FormActionSources = []string{
		"https://app.example.com", "cursor:", "http://[::1]:8080",
		"https://a.example.com; script-src *", "x'y", `x"y`, "a b", "",
		"https://ok.example.com\r\nX-Evil: 1",
	}
	w1, body1 := renderConsent(t, p)
	w2, _ := renderConsent(t, p)

	n1, n2 := cspNonce(t, w1), cspNonce(t, w2)
	if n1 == n2 {
		t.Errorf("nonce repeated across responses: %q", n1)
	}
	if len(n1) != 22 {
		t.Errorf("nonce %q is not 16 base64 bytes", n1)
	}
	m := nonceRE.FindStringSubmatch(body1)
	if m == nil || m[1] != n1 {
		t.Errorf("style nonce %v does not match CSP nonce %q", m, n1)
	}

	want := map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"Cache-Control":          "no-store",
		"Pragma":                 "no-cache",
		"X-Frame-Options":        "DENY",
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
		"Content-Security-Policy": "default-src 'none'; style-src 'nonce-" + n1 +
			"'; form-action 'self' https://app.example.com cursor: http://[::1]:8080; frame-ancestors 'none'; base-uri 'none'",
	}
	for k, v := range want {
		if got := w1.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestErrorPage(t *testing.T) {
	tests := []struct {
		status int
		page   errorPage
	}{
		{http.StatusBadRequest, errorPage{"Unknown application", "This application is not registered here."}},
		{http.StatusForbidden, errorPage{"Access denied", "You <b>denied</b> access."}},
	}
	for _, tc := range tests {
		t.Run(tc.page.Title, func(t *testing.T) {
			w := httptest.NewRecorder()
			writeErrorPage(w, tc.status, tc.page)
			body := w.Body.String()
			if w.Code != tc.status {
				t.Errorf("status = %d, want %d", w.Code, tc.status)
			}
			for _, s := range []string{
				"<title>" + html.EscapeString(tc.page.Title) + "</title>",
				"<h1 class=\"wrap\">" + html.EscapeString(tc.page.Title) + "</h1>",
				html.EscapeString(tc.page.Message),
				`<html lang="en">`, "<main>",
			} {
				if !strings.Contains(body, s) {
					t.Errorf("body lacks %q", s)
				}
			}
			for _, s := range []string{"<form", "<a ", "<button", "<input", "<b>"} {
				if strings.Contains(body, s) {
					t.Errorf("body contains %q", s)
				}
			}
			n := cspNonce(t, w)
			csp := "default-src 'none'; style-src 'nonce-" + n + "'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
			if got := w.Header().Get("Content-Security-Policy"); got != csp {
				t.Errorf("CSP = %q, want %q", got, csp)
			}
			for k, v := range map[string]string{
				"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store",
				"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
				"Referrer-Policy": "no-referrer", "Pragma": "no-cache",
			} {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if m := nonceRE.FindStringSubmatch(body); m == nil || m[1] != n {
				t.Errorf("style nonce does not match CSP nonce %q", n)
			}
		})
	}
}

// tagRE finds a start or end tag and its attributes.
var tagRE = regexp.MustCompile(`<(/?)([a-zA-Z0-9]+)([^>]*)>`)

func TestConsentPageAccessibility(t *testing.T) {
	_, body := renderConsent(t, sampleConsent())
	tags := tagRE.FindAllStringSubmatchIndex(body, -1)

	labels := map[string]bool{}
	for _, m := range regexp.MustCompile(`<label[^>]*\bfor="([^"]+)"`).FindAllStringSubmatch(body, -1) {
		labels[m[1]] = true
	}
	lastHeading := 0
	buttons := 0
	for i, m := range tags {
		closing := body[m[2]:m[3]] == "/"
		name := strings.ToLower(body[m[4]:m[5]])
		attrs := body[m[6]:m[7]]
		if closing {
			continue
		}
		switch name {
		case "button":
			buttons++
			// Visible text: everything up to </button>, without tags.
			end := strings.Index(body[m[1]:], "</button>")
			if end < 0 {
				t.Fatalf("unclosed button at %d", m[0])
			}
			text := strings.TrimSpace(tagRE.ReplaceAllString(body[m[1]:m[1]+end], ""))
			if text == "" {
				t.Errorf("button %q has no visible text", body[m[0]:m[1]])
			}
		case "input":
			if strings.Contains(attrs, `type="hidden"`) {
				continue
			}
			id := regexp.MustCompile(`\bid="([^"]+)"`).FindStringSubmatch(attrs)
			if id == nil || !labels[id[1]] {
				t.Errorf("input %q has no label", body[m[0]:m[1]])
			}
		case "h1", "h2", "h3", "h4", "h5", "h6":
			level := int(name[1] - '0')
			if level > lastHeading+1 {
				t.Errorf("heading %s follows h%d (tag %d)", name, lastHeading, i)
			}
			lastHeading = level
		}
	}
	if buttons != 2 {
		t.Errorf("%d buttons, want 2", buttons)
	}
	for _, s := range []string{":focus-visible", "prefers-color-scheme: dark", "min-height: 48px", "max-width:"} {
		if !strings.Contains(body, s) {
			t.Errorf("style lacks %q", s)
		}
	}
	if strings.Contains(body, "<script") || strings.Contains(body, "src=") || strings.Contains(body, "href=") {
		t.Error("page loads or links to something")
	}
}

func TestDescribeScope(t *testing.T) {
	for _, s := range web.DefaultScopes {
		d := describeScope(s)
		if d.Title == "" || d.Description == "" || len(d.Tools) == 0 {
			t.Errorf("scope %s is not fully described: %+v", s, d)
		}
	}
	d := describeScope("x:y")
	if d.Title != "x:y" || d.Description != "Access named “x:y”." || d.Tools != nil {
		t.Errorf("unknown scope: %+v", d)
	}
}

func TestPageRedirectHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://app.example.com/cb", "app.example.com"},
		{"http://127.0.0.1:33418/callback", "127.0.0.1:33418"},
		{"cursor://anysphere.cursor-mcp/oauth/callback", "cursor://anysphere.cursor-mcp"},
		{"com.example.app:/oauth", "com.example.app:"},
	}
	for _, tc := range tests {
		if got := redirectHost(tc.in); got != tc.want {
			t.Errorf("redirectHost(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestConsentPageUnsafeFormAction(t *testing.T) {
	p := sampleConsent()
	p.FormAction = "javascript:alert(1)"
	_, body := renderConsent(t, p)
	if strings.Contains(body, "javascript:") {
		t.Error("unsafe form action rendered")
	}
}

// TestConsentPageScopeTools checks that the consent page lists the tools
// the registry gates behind each requested scope, and falls back to the
// built-in list only for a scope the registry has no tools for.
func TestConsentPageScopeTools(t *testing.T) {
	registry := map[string][]ScopeTool{
		"booking:read": {{Name: "bookings_list", Title: "List bookings"}, {Name: "bookings_find", Title: "Find a booking"}},
		"weird:scope":  {{Name: "weird_tool"}},
		"form:read":    {},
	}
	tests := []struct {
		scope   string
		want    string
		notWant string
	}{
		{"booking:read", "Unlocks: List bookings (bookings_list), Find a booking (bookings_find)", "bookings_get"},
		{"weird:scope", "Unlocks: weird_tool", ""},
		{"form:read", "Unlocks: forms_list, forms_get, forms_list_submissions", ""},
		{"product:write", "Unlocks: products_create, products_update, products_delete, products_adjust_stock", ""},
	}
	for _, tc := range tests {
		t.Run(tc.scope, func(t *testing.T) {
			p := sampleConsent()
			p.Scopes = []string{tc.scope}
			p.ScopeTools = registry
			_, body := renderConsent(t, p)
			if !strings.Contains(body, tc.want) {
				t.Errorf("body lacks %q", tc.want)
			}
			if tc.notWant != "" && strings.Contains(body, tc.notWant) {
				t.Errorf("body contains %q", tc.notWant)
			}
		})
	}
}
