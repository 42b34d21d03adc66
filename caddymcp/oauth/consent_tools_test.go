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
