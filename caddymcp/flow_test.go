package caddymcp

import (
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testflow"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testoidc"
)

// flowSite is a site with login through a local OpenID provider, a
// policy, and two guarded routes needing different scopes.
const flowSite = `{
	admin off
	caddymcp {
		embedded_path %s
	}
}

http://127.0.0.1:%d {
	mcp_oauth {
		login oidc test {
			issuer %s
			client_id caddymcp-test
			client_secret {env.CADDYMCP_FLOW_SECRET}
			label "Test login"
		}
		allow email ada@example.com {
			scopes booking:read product:read
		}
	}
	mcp_bearer /mcp/write* {
		resource /mcp
		scope booking:write
	}
	mcp_bearer /mcp* {
		scope booking:read
	}
	mcp_tools
	respond /mcp/whoami "email={http.auth.user.email} scope={http.auth.user.scope}"
}
`

// TestFullFlowThroughCaddy runs the whole authorization flow through an
// in-process Caddy: registration, login upstream, consent, code, token,
// the guarded route, step-up refusal, refresh and revocation.
func TestFullFlowThroughCaddy(t *testing.T) {
	t.Setenv("CADDYMCP_FLOW_SECRET", "op-secret")
	op := testoidc.Start(t, "caddymcp-test", "op-secret", testoidc.User{Subject: "ada-1", Email: "ada@example.com", EmailVerified: true, Name: "Ada"})
	port := testflow.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	startCaddyfile(t, fmt.Sprintf(flowSite, filepath.Join(t.TempDir(), "flow.db"), port, op.Issuer))
	b := testflow.NewBrowser(t, nil)

	// Registration, as an MCP client does it; then the authorization
	// request through the upstream login to the consent page.
	const redirect = "http://127.0.0.1:9/callback"
	clientID := b.Register(base, "Flow client", redirect)
	q := testflow.NewRequest(base, clientID, redirect, "booking:read booking:write product:read", base+"/mcp")
	page := b.ConsentPage(q)
	if !strings.Contains(page, "Flow client") || !strings.Contains(page, "127.0.0.1:9") {
		t.Fatalf("consent page:\n%s", page)
	}
	if strings.Contains(page, "Manage your bookings") {
		t.Error("the consent page offers booking:write, which the policy does not allow this user")
	}
	tokens := b.Redeem(q, b.Approve(q, page))
	if tokens.Scope != "booking:read product:read" || tokens.RefreshToken == "" {
		t.Fatalf("tokens: %+v", tokens)
	}

	call := func(path, token string) *http.Response { return callListProducts(t, b, base+path, token) }
	// The guarded route lets the token through to the MCP tools.
	if res := call("/mcp", tokens.AccessToken); res.StatusCode != http.StatusOK {
		t.Fatalf("/mcp with a token: %d", res.StatusCode)
	}
	// The next handler learns the user's email from the user record (the
	// token does not carry it).
	req, _ := http.NewRequest("GET", base+"/mcp/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+tokens.AccessToken)
	if res, body := b.Do(req); res.StatusCode != 200 || body != "email=ada@example.com scope=booking:read product:read" {
		t.Fatalf("identity placeholders: %d %q", res.StatusCode, body)
	}
	// mcp-go's own client, with the token, sees and calls the tools.
	testflow.MCPClientCalls(t, base+"/mcp", tokens.AccessToken, nil)

	// A route needing booking:write: 403 with a step-up challenge.
	res := call("/mcp/write", tokens.AccessToken)
	if ch := res.Header.Get("WWW-Authenticate"); res.StatusCode != 403 || !strings.Contains(ch, `error="insufficient_scope"`) ||
		!strings.Contains(ch, "booking:write") {
		t.Fatalf("step-up: %d %q", res.StatusCode, ch)
	}

	// Refresh rotates; the new access token works.
	refreshed := b.Exchange(base, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tokens.RefreshToken},
		"client_id": {clientID}})
	if refreshed.RefreshToken == tokens.RefreshToken || call("/mcp", refreshed.AccessToken).StatusCode != http.StatusOK {
		t.Fatalf("refresh: %+v", refreshed)
	}

	// Revocation: the refresh token ends the grant, and with it the
	// access token.
	res, _ = b.PostForm(base+"/oauth/revoke", url.Values{"token": {refreshed.RefreshToken}, "client_id": {clientID}})
	if res.StatusCode != 200 {
		t.Fatalf("revoke: %d", res.StatusCode)
	}
	if res := call("/mcp", refreshed.AccessToken); res.StatusCode != 401 {
		t.Fatalf("revoked token: %d", res.StatusCode)
	}

	// A second authorization is remembered: no consent page this time.
	res, _ = b.Follow(q.URL(), redirect)
	if loc := res.Header.Get("Location"); res.StatusCode != 302 || !strings.HasPrefix(loc, redirect) || !strings.Contains(loc, "code=") {
		t.Fatalf("remembered consent: %d %s", res.StatusCode, loc)
	}
	// /auth/me knows the user.
	res, body := b.Follow(base+"/auth/me", "")
	if res.StatusCode != 200 || !strings.Contains(body, "ada@example.com") {
		t.Fatalf("/auth/me: %d %s", res.StatusCode, body)
	}

	// A user the policy does not allow gets a 403 page and no code.
	op.SetUser(testoidc.User{Subject: "eve-1", Email: "eve@evil.example", EmailVerified: true})
	other := testflow.NewBrowser(t, nil)
	res, body = other.Follow(q.URL(), redirect)
	if res.StatusCode != 403 || res.Header.Get("Location") != "" {
		t.Fatalf("denied user: %d %s\n%s", res.StatusCode, res.Header.Get("Location"), body)
	}
}
