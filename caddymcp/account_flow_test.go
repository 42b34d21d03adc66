package caddymcp

import (
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testflow"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testoidc"
)

// TestAccountPageThroughCaddy checks the wiring of the account page in
// an in-process Caddy: the consent page links to it, it describes the
// application with the tool registry's tools, and revoking the
// application there makes mcp_bearer refuse its access token at once
// and the next authorization ask the user again.
func TestAccountPageThroughCaddy(t *testing.T) {
	t.Setenv("CADDYMCP_FLOW_SECRET", "op-secret")
	op := testoidc.Start(t, "caddymcp-test", "op-secret", testoidc.User{Subject: "ada-1", Email: "ada@example.com", EmailVerified: true, Name: "Ada"})
	port := testflow.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	startCaddyfile(t, fmt.Sprintf(flowSite, filepath.Join(t.TempDir(), "account.db"), port, op.Issuer))
	b := testflow.NewBrowser(t, nil)

	const redirect = "http://127.0.0.1:9/callback"
	clientID := b.Register(base, "Account client", redirect)
	q := testflow.NewRequest(base, clientID, redirect, "booking:read product:read", base+"/mcp")
	consent := b.ConsentPage(q)
	if !strings.Contains(consent, `<a href="/auth/account">Manage your applications</a>`) {
		t.Errorf("the consent page does not link to the account page:\n%s", consent)
	}
	tokens := b.Redeem(q, b.Approve(q, consent))
	call := func() int {
		req, _ := http.NewRequest("POST", base+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		req.Header.Set("Authorization", "Bearer "+tokens.AccessToken)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		res, _ := b.Do(req)
		return res.StatusCode
	}
	if got := call(); got != http.StatusOK {
		t.Fatalf("/mcp with the token: %d", got)
	}

	res, page := b.Follow(base+"/auth/account", "")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/auth/account: %d\n%s", res.StatusCode, page)
	}
	for _, want := range []string{"Account client", "Sent back to <strong>127.0.0.1:9</strong>", "View your bookings",
		"(bookings_list)", "(products_list)", "This session"} {
		if !strings.Contains(page, want) {
			t.Errorf("the account page lacks %q", want)
		}
	}
	field := func(name string) string {
		m := regexp.MustCompile(`name="` + name + `" value="([^"]+)"`).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no %s in the account page:\n%s", name, page)
		}
		return m[1]
	}
	res, body := b.PostForm(base+"/auth/account", url.Values{"csrf_token": {field("csrf_token")},
		"action": {"revoke_application"}, "grant": {field("grant")}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoking: %d\n%s", res.StatusCode, body)
	}
	// The deny-list was refreshed by the revocation, not by its poll.
	if got := call(); got != http.StatusUnauthorized {
		t.Errorf("/mcp with the revoked token: %d, want 401", got)
	}
	res, body = b.PostForm(base+"/oauth/token", url.Values{"grant_type": {"refresh_token"},
		"refresh_token": {tokens.RefreshToken}, "client_id": {clientID}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "invalid_grant") {
		t.Errorf("refreshing the revoked grant: %d %s", res.StatusCode, body)
	}
	// The consent is forgotten: the client's next authorization asks.
	b.ConsentPage(testflow.NewRequest(base, clientID, redirect, "booking:read", base+"/mcp"))
}
