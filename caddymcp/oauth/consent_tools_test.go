package oauth_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/caddymcp/caddymcp/caddymcp/oauth"
)

// TestConsentListsScopeTools checks that the consent page the server
// shows for an authorization request lists the tools of Config.ScopeTools
// for each requested scope.
func TestConsentListsScopeTools(t *testing.T) {
	f := newFlow(t, func(c *oauth.Config) {
		c.ScopeTools = map[string][]oauth.ScopeTool{
			"booking:read":  {{Name: "bookings_list", Title: "List bookings"}},
			"booking:write": {{Name: "bookings_cancel", Title: "Cancel a booking"}},
			"product:read":  {{Name: "products_list", Title: "List products"}},
		}
	})
	c := f.register("none", nil)
	_, challenge := newPKCE(t)
	w := f.get(oauth.AuthorizePath, authQuery(c, challenge, url.Values{"scope": {"booking:read booking:write"}}))
	consentForm(t, w)
	body := w.Body.String()
	for _, s := range []string{"Unlocks: List bookings (bookings_list)", "Unlocks: Cancel a booking (bookings_cancel)"} {
		if !strings.Contains(body, s) {
			t.Errorf("the consent page lacks %q", s)
		}
	}
	if strings.Contains(body, "products_list") {
		t.Error("the consent page lists a tool of a scope not requested")
	}
	if w.Code != http.StatusOK {
		t.Errorf("status %d", w.Code)
	}
}

// TestConsentLinksAccount checks that the consent page links to the
// page where the user manages their applications when Config.AccountURL
// names it, and has no such link otherwise.
func TestConsentLinksAccount(t *testing.T) {
	for _, tc := range []struct {
		name, account, want string
	}{
		{"configured", "/auth/account", `<a href="/auth/account">Manage your applications</a>`},
		{"not configured", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFlow(t, func(c *oauth.Config) { c.AccountURL = tc.account })
			c := f.register("none", nil)
			_, challenge := newPKCE(t)
			w := f.get(oauth.AuthorizePath, authQuery(c, challenge, nil))
			consentForm(t, w)
			body := w.Body.String()
			if has := strings.Contains(body, "Manage your applications"); has != (tc.want != "") || !strings.Contains(body, tc.want) {
				t.Errorf("account link: want %q in the page:\n%s", tc.want, body)
			}
		})
	}
}

// TestDescribeScopes checks the scope descriptions the account page
// shares with the consent page.
func TestDescribeScopes(t *testing.T) {
	got := oauth.DescribeScopes([]string{"booking:read", "odd:scope"},
		map[string][]oauth.ScopeTool{"booking:read": {{Name: "bookings_list", Title: "List bookings"}}})
	if len(got) != 2 || got[0].Title != "View your bookings" || got[0].Tools != "List bookings (bookings_list)" ||
		got[1].Title != "odd:scope" || got[1].Tools != "" {
		t.Errorf("DescribeScopes = %+v", got)
	}
	if got := oauth.RedirectHost("http://127.0.0.1:5000/cb"); got != "127.0.0.1:5000" {
		t.Errorf("RedirectHost = %q", got)
	}
}
