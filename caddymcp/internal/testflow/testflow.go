// Package testflow drives caddymcp the way a browser and an MCP client
// do, for tests that run the whole authorization flow over real HTTP:
// dynamic registration, the authorization request with PKCE through the
// upstream login and the consent page, the token exchange, and MCP calls
// with the access token.
package testflow

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// FreePort returns a loopback TCP port that nothing listens on at the
// moment, for a server the test is about to start.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Browser follows redirects by hand, keeps cookies, and logs each hop so
// that a failing test shows the trace.
type Browser struct {
	t *testing.T
	// Client is the underlying HTTP client (no automatic redirects).
	Client *http.Client
}

// NewBrowser returns a browser that trusts roots (nil: the system's).
func NewBrowser(t *testing.T, roots *x509.CertPool) *Browser {
	jar, _ := cookiejar.New(nil)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots}
	return &Browser{t: t, Client: &http.Client{Jar: jar, Transport: tr, Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Do sends a request and returns the response with its body read.
func (b *Browser) Do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	res, err := b.Client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL.Redacted(), err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	b.t.Logf("%s %s -> %d %s", req.Method, req.URL.Redacted(), res.StatusCode, res.Header.Get("Location"))
	return res, string(body)
}

// Follow GETs u and follows redirects until a page answers or the
// browser is sent to an address starting with stopAt.
func (b *Browser) Follow(u, stopAt string) (*http.Response, string) {
	b.t.Helper()
	for range 10 {
		req, _ := http.NewRequest("GET", u, nil)
		res, body := b.Do(req)
		loc := res.Header.Get("Location")
		if res.StatusCode < 300 || res.StatusCode > 399 || loc == "" {
			return res, body
		}
		next, err := req.URL.Parse(loc)
		if err != nil {
			b.t.Fatal(err)
		}
		if stopAt != "" && strings.HasPrefix(next.String(), stopAt) {
			return res, body
		}
		u = next.String()
	}
	b.t.Fatal("too many redirects")
	return nil, ""
}

// PostForm posts a form.
func (b *Browser) PostForm(u string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.Do(req)
}

// PostJSON posts a JSON body.
func (b *Browser) PostJSON(u, body string) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return b.Do(req)
}

// Register registers a public client with one redirect URI and returns
// its client_id.
func (b *Browser) Register(base, name, redirect string) string {
	b.t.Helper()
	res, body := b.PostJSON(base+"/oauth/register", `{"client_name":"`+name+`","redirect_uris":["`+redirect+
		`"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]}`)
	var reg struct {
		ClientID string `json:"client_id"`
	}
	if res.StatusCode != 201 || json.Unmarshal([]byte(body), &reg) != nil || reg.ClientID == "" {
		b.t.Fatalf("registration: %d %s", res.StatusCode, body)
	}
	return reg.ClientID
}

// Request is an authorization request with PKCE.
type Request struct {
	Base, ClientID, Redirect, Scope, Resource, State string
	// Verifier is the PKCE code verifier (set by NewRequest).
	Verifier string
}

// NewRequest prepares an authorization request with a fresh verifier.
func NewRequest(base, clientID, redirect, scope, resource string) *Request {
	return &Request{Base: base, ClientID: clientID, Redirect: redirect, Scope: scope, Resource: resource,
		State: rand.Text(), Verifier: rand.Text() + rand.Text()}
}

// URL is the authorization URL.
func (q *Request) URL() string {
	sum := sha256.Sum256([]byte(q.Verifier))
	return q.Base + "/oauth/authorize?" + url.Values{
		"response_type": {"code"}, "client_id": {q.ClientID}, "redirect_uri": {q.Redirect}, "state": {q.State},
		"scope": {q.Scope}, "resource": {q.Resource},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}.Encode()
}

var hiddenField = regexp.MustCompile(`name="(request_id|csrf_token)" value="([^"]+)"`)

// ConsentPage follows the authorization URL (through the upstream login)
// to the consent page and returns its HTML.
func (b *Browser) ConsentPage(q *Request) string {
	b.t.Helper()
	res, body := b.Follow(q.URL(), q.Redirect)
	if res.StatusCode != 200 || !strings.Contains(body, `name="csrf_token"`) {
		b.t.Fatalf("expected the consent page, got %d:\n%s", res.StatusCode, body)
	}
	return body
}

// Approve posts Approve on a consent page and returns the code, checking
// state and iss.
func (b *Browser) Approve(q *Request, page string) string {
	b.t.Helper()
	fields := url.Values{"decision": {"approve"}}
	for _, m := range hiddenField.FindAllStringSubmatch(page, -1) {
		fields.Set(m[1], m[2])
	}
	res, _ := b.PostForm(q.Base+"/oauth/consent", fields)
	loc, err := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != 303 || err != nil || !strings.HasPrefix(loc.String(), q.Redirect) {
		b.t.Fatalf("consent: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	v := loc.Query()
	if v.Get("state") != q.State || v.Get("iss") != q.Base || v.Get("code") == "" {
		b.t.Fatalf("redirect parameters %v (want state %s, iss %s)", v, q.State, q.Base)
	}
	return v.Get("code")
}

// Tokens is a token response.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
}

// Exchange posts to the token endpoint and decodes a successful answer.
func (b *Browser) Exchange(base string, form url.Values) Tokens {
	b.t.Helper()
	res, body := b.PostForm(base+"/oauth/token", form)
	var ts Tokens
	if res.StatusCode != 200 || json.Unmarshal([]byte(body), &ts) != nil || ts.TokenType != "Bearer" {
		b.t.Fatalf("token endpoint: %d %s", res.StatusCode, body)
	}
	return ts
}

// Redeem exchanges the code of q.
func (b *Browser) Redeem(q *Request, code string) Tokens {
	b.t.Helper()
	return b.Exchange(q.Base, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {q.Redirect}, "client_id": {q.ClientID}, "code_verifier": {q.Verifier}, "resource": {q.Resource}})
}

// MCPClientCalls drives an MCP endpoint with mcp-go's Streamable HTTP
// client and the token: initialize, tools/list, a read tool, and a write
// tool the token has no scope for, which must be refused with
// insufficient_scope.
func MCPClientCalls(t *testing.T, endpoint, token string, httpClient *http.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opts := []transport.StreamableHTTPCOption{transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token})}
	if httpClient != nil {
		plain := *httpClient
		plain.Jar, plain.CheckRedirect = nil, nil
		opts = append(opts, transport.WithHTTPBasicClient(&plain))
	}
	c, err := mcpclient.NewStreamableHttpClient(endpoint, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Initialize(ctx, InitializeRequest("caddymcp-test")); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	list, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil || len(list.Tools) != 20 {
		t.Fatalf("tools/list: %v", err)
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

// InitializeRequest is an MCP initialize request of the latest protocol
// version from a client called name.
func InitializeRequest(name string) mcp.InitializeRequest {
	var init mcp.InitializeRequest
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: name, Version: "1"}
	return init
}

// ListProducts calls the products_list tool with mcp-go's client c; a
// tool error is an error too.
func ListProducts(c *mcpclient.Client) error {
	res, err := c.CallTool(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "products_list"}})
	if err == nil && res.IsError {
		err = errors.New("tool error")
	}
	return err
}

// ListenStream opens the listening stream (GET) of the MCP session id at
// endpoint with a bearer token, on protocol version 2025-11-25 (the last
// with sessions), and fails the test unless the answer is an event
// stream. The caller closes the body.
func ListenStream(t testing.TB, hc *http.Client, endpoint, token, id string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", endpoint, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", id)
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		res.Body.Close()
		t.Fatalf("GET stream: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	return res
}
