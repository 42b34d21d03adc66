package caddymcp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/caddyserver/caddy/v2/caddyconfig"

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
}
`

// browser follows redirects by hand, keeping cookies, and logs each hop.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	b.t.Logf("%s %s -> %d %s", req.Method, req.URL.Redacted(), res.StatusCode, res.Header.Get("Location"))
	return res, string(body)
}

// follow GETs u and follows redirects until a page answers or the
// browser is sent to stopAt.
func (b *browser) follow(u, stopAt string) (*http.Response, string) {
	b.t.Helper()
	for range 10 {
		req, _ := http.NewRequest("GET", u, nil)
		res, body := b.do(req)
		loc := res.Header.Get("Location")
		if res.StatusCode < 300 || res.StatusCode > 399 || loc == "" {
			return res, body
		}
		next, err := req.URL.Parse(loc)
		if err != nil {
			b.t.Fatal(err)
		}
		if strings.HasPrefix(next.String(), stopAt) {
			return res, body
		}
		u = next.String()
	}
	b.t.Fatal("too many redirects")
	return nil, ""
}

func (b *browser) postForm(u string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var hiddenField = regexp.MustCompile(`name="(request_id|csrf_token)" value="([^"]+)"`)

// TestFullFlowThroughCaddy runs the whole authorization flow through an
// in-process Caddy: registration, login upstream, consent, code, token,
// the guarded route, step-up refusal, refresh and revocation.
func TestFullFlowThroughCaddy(t *testing.T) {
	t.Setenv("CADDYMCP_FLOW_SECRET", "op-secret")
	op := testoidc.Start(t, "caddymcp-test", "op-secret", testoidc.User{Subject: "ada-1", Email: "ada@example.com", EmailVerified: true, Name: "Ada"})
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	src := fmt.Sprintf(flowSite, filepath.Join(t.TempDir(), "flow.db"), port, op.Issuer)
	cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), nil)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("adapting: %v %v", err, warnings)
	}
	if err := load(t, cfg); err != nil {
		t.Fatalf("loading: %v", err)
	}
	defer stopCaddy(t)
	b := newBrowser(t)

	// Registration, as an MCP client does it.
	const redirect = "http://127.0.0.1:9/callback"
	req, _ := http.NewRequest("POST", base+"/oauth/register", strings.NewReader(
		`{"client_name":"Flow client","redirect_uris":["`+redirect+`"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]}`))
	req.Header.Set("Content-Type", "application/json")
	res, body := b.do(req)
	var reg struct {
		ClientID string `json:"client_id"`
	}
	if res.StatusCode != 201 || json.Unmarshal([]byte(body), &reg) != nil {
		t.Fatalf("registration: %d %s", res.StatusCode, body)
	}

	// Authorization with PKCE: login upstream, then the consent page.
	verifier := rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	authURL := base + "/oauth/authorize?" + url.Values{
		"response_type": {"code"}, "client_id": {reg.ClientID}, "redirect_uri": {redirect}, "state": {"st-1"},
		"scope": {"booking:read booking:write product:read"}, "resource": {base + "/mcp"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}.Encode()
	res, body = b.follow(authURL, redirect)
	if res.StatusCode != 200 || !strings.Contains(body, "Flow client") || !strings.Contains(body, "127.0.0.1:9") {
		t.Fatalf("consent page: %d\n%s", res.StatusCode, body)
	}
	if strings.Contains(body, "Manage your bookings") {
		t.Error("the consent page offers booking:write, which the policy does not allow this user")
	}
	fields := url.Values{"decision": {"approve"}}
	for _, m := range hiddenField.FindAllStringSubmatch(body, -1) {
		fields.Set(m[1], m[2])
	}
	res, _ = b.postForm(base+"/oauth/consent", fields)
	loc, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != 303 || loc == nil || !strings.HasPrefix(loc.String(), redirect) {
		t.Fatalf("consent: %d %v", res.StatusCode, loc)
	}
	q := loc.Query()
	if q.Get("state") != "st-1" || q.Get("iss") != base || q.Get("code") == "" {
		t.Fatalf("redirect parameters %v", q)
	}

	// Token exchange.
	tokens := exchange(t, b, base, url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"redirect_uri": {redirect}, "client_id": {reg.ClientID}, "code_verifier": {verifier}, "resource": {base + "/mcp"}})
	if tokens.Scope != "booking:read product:read" || tokens.RefreshToken == "" {
		t.Fatalf("tokens: %+v", tokens)
	}

	const listProducts = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"products_list","arguments":{}}}`
	call := func(path, token string) *http.Response {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(listProducts))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		res, body := b.do(req)
		if res.StatusCode == 200 && !strings.Contains(body, `"structuredContent"`) {
			t.Errorf("tools/call answered %s", body)
		}
		return res
	}
	// The guarded route lets the token through to the MCP tools.
	if res := call("/mcp", tokens.AccessToken); res.StatusCode != http.StatusOK {
		t.Fatalf("/mcp with a token: %d", res.StatusCode)
	}
	// mcp-go's own client, with the token, sees and calls the tools.
	mcpClientCalls(t, base+"/mcp", tokens.AccessToken)

	// A route needing booking:write: 403 with a step-up challenge.
	res = call("/mcp/write", tokens.AccessToken)
	if ch := res.Header.Get("WWW-Authenticate"); res.StatusCode != 403 || !strings.Contains(ch, `error="insufficient_scope"`) ||
		!strings.Contains(ch, "booking:write") {
		t.Fatalf("step-up: %d %q", res.StatusCode, ch)
	}

	// Refresh rotates; the new access token works.
	refreshed := exchange(t, b, base, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tokens.RefreshToken},
		"client_id": {reg.ClientID}})
	if refreshed.RefreshToken == tokens.RefreshToken || call("/mcp", refreshed.AccessToken).StatusCode != http.StatusOK {
		t.Fatalf("refresh: %+v", refreshed)
	}

	// Revocation: the refresh token ends the grant, and with it the
	// access token.
	res, _ = b.postForm(base+"/oauth/revoke", url.Values{"token": {refreshed.RefreshToken}, "client_id": {reg.ClientID}})
	if res.StatusCode != 200 {
		t.Fatalf("revoke: %d", res.StatusCode)
	}
	if res := call("/mcp", refreshed.AccessToken); res.StatusCode != 401 {
		t.Fatalf("revoked token: %d", res.StatusCode)
	}

	// A second authorization is remembered: no consent page this time.
	res, _ = b.follow(authURL, redirect)
	if loc := res.Header.Get("Location"); res.StatusCode != 302 || !strings.HasPrefix(loc, redirect) || !strings.Contains(loc, "code=") {
		t.Fatalf("remembered consent: %d %s", res.StatusCode, loc)
	}
	// /auth/me knows the user.
	res, body = b.follow(base+"/auth/me", "")
	if res.StatusCode != 200 || !strings.Contains(body, "ada@example.com") {
		t.Fatalf("/auth/me: %d %s", res.StatusCode, body)
	}

	// A user the policy does not allow gets a 403 page and no code.
	op.SetUser(testoidc.User{Subject: "eve-1", Email: "eve@evil.example", EmailVerified: true})
	other := newBrowser(t)
	res, body = other.follow(authURL, redirect)
	if res.StatusCode != 403 || res.Header.Get("Location") != "" {
		t.Fatalf("denied user: %d %s\n%s", res.StatusCode, res.Header.Get("Location"), body)
	}
}

type tokenSet struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	TokenType    string `json:"token_type"`
}

func exchange(t *testing.T, b *browser, base string, form url.Values) tokenSet {
	t.Helper()
	res, body := b.postForm(base+"/oauth/token", form)
	var ts tokenSet
	if res.StatusCode != 200 || json.Unmarshal([]byte(body), &ts) != nil || ts.TokenType != "Bearer" {
		t.Fatalf("token endpoint: %d %s", res.StatusCode, body)
	}
	return ts
}

// mcpClientCalls drives the endpoint with mcp-go's Streamable HTTP
// client: initialize, tools/list, a read tool, and a write tool the token
// has no scope for (refused with 403, which the client reports as an
// error).
func mcpClientCalls(t *testing.T, endpoint, token string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := mcpclient.NewStreamableHttpClient(endpoint, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "flow-test", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	list, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil || len(list.Tools) != 20 {
		t.Fatalf("tools/list: %v (%d tools)", err, len(list.Tools))
	}
	call := mcp.CallToolRequest{}
	call.Params.Name = "products_list"
	call.Params.Arguments = map[string]any{"limit": 5}
	res, err := c.CallTool(ctx, call)
	if err != nil || res.IsError || res.StructuredContent == nil {
		t.Fatalf("products_list: %v %+v", err, res)
	}
	call.Params.Name = "products_create"
	call.Params.Arguments = map[string]any{"sku": "X", "name": "X", "price_minor": 1, "currency": "EUR"}
	if _, err := c.CallTool(ctx, call); err == nil || !strings.Contains(err.Error(), "insufficient_scope") {
		t.Fatalf("products_create without product:write: %v", err)
	}
}
