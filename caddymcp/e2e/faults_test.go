//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testflow"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testoidc"
)

// The helpers of this file are shared by the resilience tests (faults,
// reload, cluster): configs, sign-in, token and tool calls that never
// call t.Fatal (they run on worker goroutines), and a load recorder.

// latencyBound is the longest any answer may take, even while the
// database is down: a client must hear back quickly, not hang.
const latencyBound = 10 * time.Second

const (
	resilOPClient = "caddymcp-e2e"
	resilOPSecret = "op-secret"
	resilRedirect = "http://127.0.0.1:9/callback"
	resilScopes   = "booking:read booking:write product:read product:write order:read order:write form:read form:write"
)

var resilUser = testoidc.User{Subject: "ada-1", Email: "ada@example.com", EmailVerified: true, Name: "Ada"}

// resilOAuth replaces the example's mcp_oauth with a block that signs
// users in through the local OpenID provider and lets ada@example.com
// grant every scope; extra lines go into the block.
func resilOAuth(t *testing.T, example, opIssuer string, extra ...string) string {
	t.Helper()
	block := "\tmcp_oauth {\n\t\tlogin oidc test {\n\t\t\tissuer " + opIssuer +
		"\n\t\t\tclient_id " + resilOPClient + "\n\t\t\tclient_secret {env.CADDYMCP_E2E_OP_SECRET}\n\t\t}\n" +
		"\t\tallow email ada@example.com\n"
	for _, e := range extra {
		block += "\t\t" + e + "\n"
	}
	return replaceOAuth(t, example, block+"\t}\n")
}

// withProbe adds a route under the bearer guard that needs no database:
// /mcp/probe answers with the token's subject.
func withProbe(t *testing.T, config string) string {
	t.Helper()
	const line = "\n\tmcp_tools\n"
	if !strings.Contains(config, line) {
		t.Fatalf("Caddyfile.example no longer has a bare mcp_tools line")
	}
	return strings.Replace(config, line, line+"\trespond /mcp/probe \"ok {http.auth.user.id}\" 200\n", 1)
}

// localRoots is the certificate pool of an instance's local CA, which
// must exist.
func localRoots(t *testing.T, in *instance) *x509.CertPool {
	t.Helper()
	roots := in.roots()
	if roots == nil {
		t.Fatalf("no local CA certificate at %s", in.rootCA())
	}
	return roots
}

// loadClient is an HTTP client for load: HTTP/2 when h2 is set (as
// browsers and most HTTP libraries speak over TLS), else HTTP/1.1.
func loadClient(roots *x509.CertPool, h2 bool) *http.Client {
	return &http.Client{
		Timeout: 3 * latencyBound,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: h2,
			MaxIdleConnsPerHost: 8},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// httpReply is one HTTP exchange, with how long it took.
type httpReply struct {
	status int
	header http.Header
	body   []byte
	took   time.Duration
	err    error
}

func (r httpReply) String() string {
	if r.err != nil {
		return fmt.Sprintf("error after %v: %v", r.took.Round(time.Millisecond), r.err)
	}
	b := string(r.body)
	if len(b) > 300 {
		b = b[:300] + "…"
	}
	return fmt.Sprintf("%d in %v (Retry-After %q, Content-Type %q) %s", r.status, r.took.Round(time.Millisecond),
		r.header.Get("Retry-After"), r.header.Get("Content-Type"), b)
}

// call sends one request; it never fails the test.
func httpCall(c *http.Client, method, u string, hdr map[string]string, body string) httpReply {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return httpReply{err: err}
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	start := time.Now()
	res, err := c.Do(req)
	if err != nil {
		return httpReply{err: err, took: time.Since(start)}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return httpReply{status: res.StatusCode, header: res.Header, body: b, err: err, took: time.Since(start)}
}

var formHdr = map[string]string{"Content-Type": "application/x-www-form-urlencoded"}

// httpPostForm posts a form.
func httpPostForm(c *http.Client, u string, form url.Values) httpReply {
	return httpCall(c, "POST", u, formHdr, form.Encode())
}

// jsonString is a string field of a JSON object, or "".
func jsonString(body []byte, field string) string {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	s, _ := m[field].(string)
	return s
}

// oauthUnavailable reports whether r is the token, registration,
// revocation or introspection endpoints' answer while the database is
// down: 503, temporarily_unavailable in OAuth JSON, Retry-After, no-store.
func oauthUnavailable(r httpReply) bool {
	return r.err == nil && r.status == 503 && r.header.Get("Retry-After") != "" &&
		strings.HasPrefix(r.header.Get("Content-Type"), "application/json") &&
		r.header.Get("Cache-Control") == "no-store" && jsonString(r.body, "error") == "temporarily_unavailable"
}

// pageUnavailable reports whether r is a browser endpoint's answer while
// the database is down: a 503 page with Retry-After.
func pageUnavailable(r httpReply) bool {
	return r.err == nil && r.status == 503 && r.header.Get("Retry-After") != "" &&
		strings.HasPrefix(r.header.Get("Content-Type"), "text/html")
}

// refreshGrant uses a refresh token.
func refreshGrant(c *http.Client, base, clientID, rt string) (httpReply, testflow.Tokens) {
	r := httpPostForm(c, base+"/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID}})
	var ts testflow.Tokens
	if r.err == nil && r.status == 200 {
		if err := json.Unmarshal(r.body, &ts); err != nil || ts.AccessToken == "" || ts.RefreshToken == "" {
			r.err = fmt.Errorf("token response %s: %v", r.body, err)
		}
	}
	return r, ts
}

// rpcResult is a JSON-RPC answer of the MCP endpoint.
type rpcResult struct {
	Result *struct {
		IsError           bool            `json:"isError"`
		StructuredContent json.RawMessage `json:"structuredContent"`
		Tools             []any           `json:"tools"`
	} `json:"result"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// callMCP posts one JSON-RPC request to the MCP endpoint (stateless: no
// initialize needed) and decodes the answer, JSON or one SSE event.
func callMCP(c *http.Client, endpoint, token, method string, params any) (httpReply, rpcResult) {
	msg, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	r := httpCall(c, "POST", endpoint, map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json",
		"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}, string(msg))
	var out rpcResult
	if r.err != nil || r.status != 200 {
		return r, out
	}
	body := r.body
	if strings.HasPrefix(r.header.Get("Content-Type"), "text/event-stream") {
		for line := range strings.Lines(string(body)) {
			if d, ok := strings.CutPrefix(line, "data:"); ok {
				body = []byte(strings.TrimSpace(d))
			}
		}
	}
	if err := json.Unmarshal(body, &out); err != nil || (out.Result == nil) == (out.Error == nil) {
		r.err = fmt.Errorf("JSON-RPC answer %s: %v", r.body, err)
	}
	return r, out
}

// callTool calls a tool; ok means a result that is not a tool error.
func callTool(c *http.Client, endpoint, token, name string, args map[string]any) (httpReply, rpcResult, bool) {
	r, out := callMCP(c, endpoint, token, "tools/call", map[string]any{"name": name, "arguments": args})
	return r, out, r.err == nil && r.status == 200 && out.Result != nil && !out.Result.IsError
}

// toolsUnavailable reports whether a tool call was refused because the
// database is down: a JSON-RPC error saying so, or a 503 with Retry-After.
func toolsUnavailable(r httpReply, out rpcResult) bool {
	if r.err != nil {
		return false
	}
	if r.status == 503 {
		return r.header.Get("Retry-After") != ""
	}
	return r.status == 200 && out.Error != nil && strings.Contains(out.Error.Message, "temporarily unavailable")
}

// authFlow drives the authorization code flow of one signed-in browser.
type authFlow struct {
	t        *testing.T
	b        *testflow.Browser
	base     string
	clientID string
}

// newAuthFlow registers a public client at base for a browser trusting roots.
func newAuthFlow(t *testing.T, base string, roots *x509.CertPool, name string) *authFlow {
	t.Helper()
	b := testflow.NewBrowser(t, roots)
	return &authFlow{t: t, b: b, base: base, clientID: b.Register(base, name, resilRedirect)}
}

// code runs an authorization request to its code: through sign-in and
// consent the first time, straight back once consent is remembered.
func (f *authFlow) code(scope string) (*testflow.Request, string) {
	f.t.Helper()
	q := testflow.NewRequest(f.base, f.clientID, resilRedirect, scope, f.base+"/mcp")
	res, body := f.b.Follow(q.URL(), q.Redirect)
	if loc := res.Header.Get("Location"); res.StatusCode == 302 && strings.HasPrefix(loc, q.Redirect) {
		u, err := url.Parse(loc)
		if err != nil || u.Query().Get("state") != q.State || u.Query().Get("iss") != f.base || u.Query().Get("code") == "" {
			f.t.Fatalf("authorization redirect %q (want state %s, iss %s)", loc, q.State, f.base)
		}
		return q, u.Query().Get("code")
	}
	if res.StatusCode != 200 || !strings.Contains(body, `name="csrf_token"`) {
		f.t.Fatalf("expected the consent page or a redirect with a code, got %d:\n%s", res.StatusCode, body)
	}
	return q, f.b.Approve(q, body)
}

// tokens runs the whole flow and redeems the code.
func (f *authFlow) tokens(scope string) testflow.Tokens {
	f.t.Helper()
	q, code := f.code(scope)
	return f.b.Redeem(q, code)
}

// outcome of one request of a load.
const (
	outOK          = "ok"
	outUnavailable = "unavailable" // the documented answer while the database is down
	outFail        = "fail"
)

// loadSample is one request of a load.
type loadSample struct {
	kind       string
	needsDB    bool
	start, end time.Time
	outcome    string
	detail     string
}

// loadRecorder collects the samples of concurrent workers.
type loadRecorder struct {
	mu      sync.Mutex
	samples []loadSample
}

func (rec *loadRecorder) add(kind string, needsDB bool, start time.Time, r httpReply, outcome string) {
	s := loadSample{kind: kind, needsDB: needsDB, start: start, end: start.Add(r.took), outcome: outcome}
	if outcome != outOK {
		s.detail = r.String()
	}
	rec.mu.Lock()
	rec.samples = append(rec.samples, s)
	rec.mu.Unlock()
}

func (rec *loadRecorder) all() []loadSample {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.samples)
}

// loadSummary counts outcomes per kind, for the log.
func loadSummary(ss []loadSample) string {
	type count struct{ ok, unavailable, fail int }
	counts := map[string]*count{}
	var kinds []string
	for _, s := range ss {
		c := counts[s.kind]
		if c == nil {
			c = &count{}
			counts[s.kind] = c
			kinds = append(kinds, s.kind)
		}
		switch s.outcome {
		case outOK:
			c.ok++
		case outUnavailable:
			c.unavailable++
		default:
			c.fail++
		}
	}
	sort.Strings(kinds)
	var b strings.Builder
	for _, k := range kinds {
		c := counts[k]
		fmt.Fprintf(&b, "\n\t%-14s ok %4d  unavailable %4d  failed %4d", k, c.ok, c.unavailable, c.fail)
	}
	return b.String()
}

// slowestSample is the longest request of ss.
func slowestSample(ss []loadSample) (time.Duration, loadSample) {
	var worst time.Duration
	var which loadSample
	for _, s := range ss {
		if d := s.end.Sub(s.start); d > worst {
			worst, which = d, s
		}
	}
	return worst, which
}

// loadRun runs the workers of a load until end is called, at the latest
// when the test ends.
type loadRun struct {
	ctx   context.Context
	roots *x509.CertPool
	wg    sync.WaitGroup
	// end stops the workers and waits for them; calling it again does
	// nothing.
	end func()
}

// startLoad prepares a load on a host whose local CA is roots.
func startLoad(t *testing.T, roots *x509.CertPool) *loadRun {
	ctx, stop := context.WithCancel(context.Background())
	l := &loadRun{ctx: ctx, roots: roots}
	l.end = sync.OnceFunc(func() {
		stop()
		l.wg.Wait()
	})
	t.Cleanup(l.end)
	return l
}

// every adds a worker with its own HTTP/2 client that calls fn with
// n = 0, 1, … and pauses after each call, until the load ends.
func (l *loadRun) every(pause time.Duration, fn func(c *http.Client, n int)) {
	l.wg.Go(func() {
		c := loadClient(l.roots, true)
		for n := 0; l.ctx.Err() == nil; n++ {
			fn(c, n)
			sleepCtx(l.ctx, pause)
		}
	})
}

// refreshChain adds a worker that refreshes a grant of clientID at base
// again and again, each time with the refresh token the last success
// returned, starting with rt. Each answer is recorded as a refresh, with
// the outcome that judge gives it; ok says whether the refresh
// succeeded, ts holds its tokens then.
func (l *loadRun) refreshChain(rec *loadRecorder, base, clientID, rt string, pause time.Duration,
	judge func(r httpReply, ts testflow.Tokens, ok bool) string) {
	l.every(pause, func(c *http.Client, _ int) {
		start := time.Now()
		r, ts := refreshGrant(c, base, clientID, rt)
		ok := r.err == nil && r.status == 200
		if ok {
			rt = ts.RefreshToken
		}
		rec.add("refresh", true, start, r, judge(r, ts, ok))
	})
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// TestFaultDatabaseDown stops the PostgreSQL server under load and starts
// it again, without restarting Caddy. While it is down every endpoint that
// needs it answers at once with a clear 503 (Retry-After), issued access
// tokens keep verifying at mcp_bearer, and the MCP handshake and metadata
// keep working; once it is back everything recovers, a code and a refresh
// token refused during the outage still work, and the database holds no
// half-written row.
func TestFaultDatabaseDown(t *testing.T) {
	pg := startPGServer(t)
	op := startOIDC(t)
	config := withProbe(t, resilOAuth(t, withPostgres(t, exampleText(t)), op.Issuer, "code_lifetime 10m", "rate_limit off"))
	in := newInstance(t, config, "CADDYMCP_E2E_OP_SECRET="+resilOPSecret, "CADDYMCP_DATABASE_URL="+pg.URL("postgres"))
	in.start()
	t.Cleanup(func() { logCaddyErrors(t, in) })
	base, roots := in.base(), localRoots(t, in)
	pid := in.proc.Process.Pid

	// Grants for the load and for the checks during the outage.
	f := newAuthFlow(t, base, roots, "Fault client")
	loadGrants := []testflow.Tokens{f.tokens(resilScopes), f.tokens(resilScopes)}
	spare := f.tokens(resilScopes)      // refreshed during the outage, then after it
	unused := f.tokens(resilScopes)     // first presented during the outage
	revoked := f.tokens("product:read") // revoked before the outage
	spareQ, spareCode := f.code(resilScopes)
	// A sign-in that the provider completes just before the outage: its
	// callback reaches caddymcp while the database is down.
	signIn := testflow.NewBrowser(t, roots)
	res, _ := signIn.Follow(base+"/auth/login/test?return_to=%2F", base+"/auth/callback/")
	callback := res.Header.Get("Location")
	if !strings.HasPrefix(callback, base+"/auth/callback/test?") {
		t.Fatalf("sign-in did not reach the callback: %d %q", res.StatusCode, callback)
	}
	c := loadClient(roots, true)
	if r := httpPostForm(c, base+"/oauth/revoke", url.Values{"token": {revoked.AccessToken}, "client_id": {f.clientID}}); r.status != 200 {
		t.Fatalf("revoke: %v", r)
	}
	probe := func(token string) httpReply {
		return httpCall(c, "GET", base+"/mcp/probe", map[string]string{"Authorization": "Bearer " + token}, "")
	}
	if r := probe(revoked.AccessToken); r.status != 401 {
		t.Fatalf("revoked token before the outage: %v", r)
	}

	// Two products with plenty of stock for orders.
	const stock = 1_000_000
	var products []string
	for i := range 2 {
		r, out, ok := callTool(c, base+"/mcp", loadGrants[0].AccessToken, "products_create", map[string]any{
			"sku": fmt.Sprintf("FAULT-%d", i), "name": fmt.Sprintf("Fault %d", i), "price_minor": 250 + i, "currency": "EUR", "stock": stock})
		var p struct{ ID string }
		if !ok || json.Unmarshal(out.Result.StructuredContent, &p) != nil || p.ID == "" {
			t.Fatalf("products_create: %v", r)
		}
		products = append(products, p.ID)
	}

	// The load: refresh chains, authorization codes and their exchange,
	// tool calls (reads and orders), and requests that need no database.
	rec := &loadRecorder{}
	var orderMu sync.Mutex
	var ordersAcked []string
	load := startLoad(t, roots)
	for i, g := range loadGrants {
		load.refreshChain(rec, base, f.clientID, g.RefreshToken, 100*time.Millisecond, func(r httpReply, _ testflow.Tokens, ok bool) string {
			return outcomeOf(ok, oauthUnavailable(r))
		})
		load.every(100*time.Millisecond, func(lc *http.Client, n int) {
			start := time.Now()
			if n%2 == 0 {
				r, out, ok := callTool(lc, base+"/mcp", g.AccessToken, "products_list", map[string]any{"limit": 5})
				rec.add("products_list", true, start, r, outcomeOf(ok, toolsUnavailable(r, out)))
				return
			}
			r, out, ok := callTool(lc, base+"/mcp", g.AccessToken, "orders_create", map[string]any{
				"customer": fmt.Sprintf("load-%d-%d", i, n),
				"items":    []map[string]any{{"product_id": products[0], "quantity": 1}, {"product_id": products[1], "quantity": 2}}})
			rec.add("orders_create", true, start, r, outcomeOf(ok, toolsUnavailable(r, out)))
			var o struct{ ID string }
			if ok && json.Unmarshal(out.Result.StructuredContent, &o) == nil {
				orderMu.Lock()
				ordersAcked = append(ordersAcked, o.ID)
				orderMu.Unlock()
			}
		})
	}
	// The authorization endpoint (consent is remembered, so it redirects
	// with a code) and the code's exchange.
	load.every(150*time.Millisecond, func(lc *http.Client, _ int) {
		lc.Jar = f.b.Client.Jar
		q := testflow.NewRequest(base, f.clientID, resilRedirect, "product:read", base+"/mcp")
		start := time.Now()
		r := httpCall(lc, "GET", q.URL(), nil, "")
		var code string
		if u, err := url.Parse(r.header.Get("Location")); r.err == nil && r.status == 302 && err == nil && strings.HasPrefix(u.String(), resilRedirect) {
			code = u.Query().Get("code")
		}
		rec.add("authorize", true, start, r, outcomeOf(code != "", pageUnavailable(r)))
		if code == "" {
			return
		}
		start = time.Now()
		r = httpPostForm(lc, base+"/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {q.Redirect}, "client_id": {q.ClientID}, "code_verifier": {q.Verifier}, "resource": {q.Resource}})
		rec.add("code_exchange", true, start, r, outcomeOf(r.err == nil && r.status == 200 && jsonString(r.body, "access_token") != "", oauthUnavailable(r)))
	})
	// Requests that need no database: a route behind mcp_bearer, the
	// authorization server metadata and the MCP handshake.
	load.every(100*time.Millisecond, func(lc *http.Client, n int) {
		start := time.Now()
		switch n % 3 {
		case 0:
			r := probe(loadGrants[0].AccessToken)
			rec.add("bearer_probe", false, start, r, outcomeOf(r.err == nil && r.status == 200 && string(r.body) == "ok "+jwtSub(loadGrants[0].AccessToken), false))
		case 1:
			r := httpCall(lc, "GET", base+"/.well-known/oauth-authorization-server", nil, "")
			rec.add("metadata", false, start, r, outcomeOf(r.err == nil && r.status == 200 && jsonString(r.body, "issuer") == base, false))
		default:
			r, out := callMCP(lc, base+"/mcp", loadGrants[1].AccessToken, "tools/list", map[string]any{})
			rec.add("tools_list", false, start, r, outcomeOf(r.err == nil && r.status == 200 && out.Result != nil && len(out.Result.Tools) > 0, false))
		}
	})

	time.Sleep(2 * time.Second)
	stopAt := time.Now()
	pg.stop()
	stoppedAt := time.Now()
	t.Logf("PostgreSQL stopped (took %v)", stoppedAt.Sub(stopAt).Round(time.Millisecond))

	t.Run("down", func(t *testing.T) {
		within := func(what string, r httpReply) {
			t.Helper()
			if r.err != nil || r.took > latencyBound {
				t.Errorf("%s while the database is down: %v (want an answer within %v)", what, r, latencyBound)
			}
		}
		// The token endpoint: a refresh and a code exchange.
		r, _ := refreshGrant(c, base, f.clientID, spare.RefreshToken)
		within("refresh", r)
		if !oauthUnavailable(r) {
			t.Errorf("refresh while the database is down: %v; want 503 temporarily_unavailable with Retry-After and no-store", r)
		}
		r = httpPostForm(c, base+"/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {spareCode},
			"redirect_uri": {spareQ.Redirect}, "client_id": {f.clientID}, "code_verifier": {spareQ.Verifier}, "resource": {spareQ.Resource}})
		within("code exchange", r)
		if !oauthUnavailable(r) {
			t.Errorf("code exchange while the database is down: %v; want 503 temporarily_unavailable", r)
		}
		// Registration, revocation and introspection.
		r = httpCall(c, "POST", base+"/oauth/register", map[string]string{"Content-Type": "application/json"},
			`{"client_name":"x","redirect_uris":["`+resilRedirect+`"],"token_endpoint_auth_method":"none"}`)
		within("registration", r)
		if !oauthUnavailable(r) {
			t.Errorf("registration while the database is down: %v; want 503 temporarily_unavailable", r)
		}
		r = httpPostForm(c, base+"/oauth/revoke", url.Values{"token": {spare.RefreshToken}, "client_id": {f.clientID}})
		within("revocation", r)
		if !oauthUnavailable(r) {
			t.Errorf("revocation while the database is down: %v; want 503 temporarily_unavailable (a 200 would claim a revocation that did not happen)", r)
		}
		// The browser endpoints: authorization (signed in), the start of
		// a sign-in, and the session.
		bc := loadClient(roots, true)
		bc.Jar = f.b.Client.Jar
		q := testflow.NewRequest(base, f.clientID, resilRedirect, "product:read", base+"/mcp")
		r = httpCall(bc, "GET", q.URL(), nil, "")
		within("authorize", r)
		if !pageUnavailable(r) {
			t.Errorf("authorize while the database is down: %v; want a 503 page with Retry-After", r)
		}
		r = httpCall(c, "GET", base+"/auth/login/test?return_to=%2F", nil, "")
		within("sign-in", r)
		if !pageUnavailable(r) {
			t.Errorf("starting a sign-in while the database is down: %v; want a 503 page with Retry-After", r)
		}
		r = httpCall(signIn.Client, "GET", callback, nil, "")
		within("sign-in callback", r)
		if !pageUnavailable(r) {
			t.Errorf("the provider's callback while the database is down: %v; want a 503 page with Retry-After", r)
		}
		r = httpCall(bc, "GET", base+"/auth/me", nil, "")
		within("/auth/me", r)
		if r.status != 503 || r.header.Get("Retry-After") == "" || jsonString(r.body, "error") != "temporarily_unavailable" {
			t.Errorf("/auth/me while the database is down: %v; want 503 temporarily_unavailable", r)
		}
		// Issued tokens keep verifying, even one never seen before; a
		// token revoked before the outage stays refused.
		r = probe(unused.AccessToken)
		within("bearer", r)
		if r.status != 200 || string(r.body) != "ok "+jwtSub(unused.AccessToken) {
			t.Errorf("a valid access token, first used while the database is down: %v; want 200", r)
		}
		if r = probe(revoked.AccessToken); r.status != 401 {
			t.Errorf("a revoked access token while the database is down: %v; want 401", r)
		}
		// Tools: a JSON-RPC error (or 503) saying the database is down;
		// the REST view answers 503.
		r, out, _ := callTool(c, base+"/mcp", unused.AccessToken, "products_list", map[string]any{"limit": 1})
		within("tools/call", r)
		if !toolsUnavailable(r, out) {
			t.Errorf("tools/call while the database is down: %v; want a JSON-RPC error saying the database is temporarily unavailable", r)
		}
		r = httpCall(c, "POST", base+"/mcp/tools/product/list", map[string]string{"Authorization": "Bearer " + unused.AccessToken,
			"Content-Type": "application/json"}, `{"limit":1}`)
		within("REST tool", r)
		if r.status != 503 || r.header.Get("Retry-After") == "" || jsonString(r.body, "error") != "temporarily_unavailable" {
			t.Errorf("REST tool call while the database is down: %v; want 503 temporarily_unavailable with Retry-After", r)
		}
		// Metadata and keys need no database.
		for _, p := range []string{"/.well-known/oauth-authorization-server", "/.well-known/oauth-protected-resource/mcp", "/oauth/jwks"} {
			if r := httpCall(c, "GET", base+p, nil, ""); r.status != 200 {
				t.Errorf("GET %s while the database is down: %v", p, r)
			}
		}
	})
	// Keep it down long enough for several failed deny-list polls (every
	// 2 s) under load.
	if d := 6*time.Second - time.Since(stoppedAt); d > 0 {
		time.Sleep(d)
	}
	startAt := time.Now()
	pg.start()
	t.Logf("PostgreSQL started again after %v down", time.Since(stoppedAt).Round(time.Millisecond))

	// Recovery, without restarting Caddy: the refresh token refused
	// during the outage works.
	var after testflow.Tokens
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, ts := refreshGrant(c, base, f.clientID, spare.RefreshToken)
		if r.err == nil && r.status == 200 {
			after = ts
			break
		}
		if !oauthUnavailable(r) {
			t.Fatalf("refresh after the database came back: %v", r)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery within 30s of the database's start: %v", r)
		}
		time.Sleep(200 * time.Millisecond)
	}
	recoveredAt := time.Now()
	t.Logf("recovered %v after the start", recoveredAt.Sub(startAt).Round(time.Millisecond))

	t.Run("recovered", func(t *testing.T) {
		// The code refused during the outage is still good.
		tokens := f.b.Redeem(spareQ, spareCode)
		if r := probe(tokens.AccessToken); r.status != 200 {
			t.Errorf("token from the code refused during the outage: %v", r)
		}
		if r := probe(after.AccessToken); r.status != 200 {
			t.Errorf("token refreshed after the outage: %v", r)
		}
		// The sign-in whose callback came during the outage completes.
		r := httpCall(signIn.Client, "GET", callback, nil, "")
		if r.status < 300 || r.status > 399 {
			t.Errorf("the callback refused during the outage, again after it: %v; want the redirect to return_to", r)
		} else if r := httpCall(signIn.Client, "GET", base+"/auth/me", nil, ""); r.status != 200 {
			t.Errorf("/auth/me after a sign-in completed after the outage: %v", r)
		}
		// A new user session: sign-in, consent, token, tools.
		g := newAuthFlow(t, base, roots, "After the outage")
		fresh := g.tokens("product:read order:read")
		if _, out, ok := callTool(c, base+"/mcp", fresh.AccessToken, "orders_list", map[string]any{"limit": 1}); !ok {
			t.Errorf("orders_list after the outage: %+v", out)
		}
		if r := httpCall(g.b.Client, "GET", base+"/auth/me", nil, ""); r.status != 200 || !strings.Contains(string(r.body), "ada@example.com") {
			t.Errorf("/auth/me after the outage: %v", r)
		}
		// Revocation works again and reaches the bearer guard through the
		// deny-list poll.
		if r := httpPostForm(c, base+"/oauth/revoke", url.Values{"token": {fresh.AccessToken}, "client_id": {g.clientID}}); r.status != 200 {
			t.Errorf("revoke after the outage: %v", r)
		}
		if r := probe(fresh.AccessToken); r.status != 401 {
			t.Errorf("token revoked after the outage: %v; want 401", r)
		}
	})

	// Let the load run on the recovered database, then stop it.
	time.Sleep(3 * time.Second)
	load.end()
	const settle = 2 * time.Second // for connections that died with the server
	ss := rec.all()
	t.Logf("load: %d requests%s", len(ss), loadSummary(ss))

	t.Run("load", func(t *testing.T) {
		worst, which := slowestSample(ss)
		t.Logf("slowest request: %s in %v", which.kind, worst.Round(time.Millisecond))
		if worst > latencyBound {
			t.Errorf("a %s request took %v (over %v): %s", which.kind, worst, latencyBound, which.detail)
		}
		downOK, downUnavailable, afterOK := map[string]int{}, map[string]int{}, map[string]int{}
		for _, s := range ss {
			phase := "transition"
			switch {
			case s.end.Before(stopAt):
				phase = "before"
			case s.start.After(stoppedAt) && s.end.Before(startAt):
				phase = "down"
			case s.start.After(recoveredAt.Add(settle)):
				phase = "after"
			}
			switch {
			case s.outcome == outFail:
				t.Errorf("%s (%s the outage): %s; want success or the documented 503/temporarily-unavailable answer", s.kind, phaseWords[phase], s.detail)
			case phase == "before" && s.outcome != outOK:
				t.Errorf("%s before the outage: %s", s.kind, s.detail)
			case phase == "after" && s.outcome != outOK:
				t.Errorf("%s %v after recovery: %s", s.kind, s.start.Sub(recoveredAt).Round(time.Millisecond), s.detail)
			case phase == "down" && !s.needsDB && s.outcome != outOK:
				t.Errorf("%s needs no database but failed while it was down: %s", s.kind, s.detail)
			case phase == "down" && s.needsDB && s.outcome == outOK:
				t.Errorf("%s succeeded while the database was down", s.kind)
			}
			switch {
			case phase == "down" && s.outcome == outOK:
				downOK[s.kind]++
			case phase == "down" && s.outcome == outUnavailable:
				downUnavailable[s.kind]++
			case phase == "after" && s.outcome == outOK:
				afterOK[s.kind]++
			}
		}
		for _, k := range []string{"refresh", "products_list", "orders_create", "authorize"} {
			if downUnavailable[k] == 0 {
				t.Errorf("no %s request was answered while the database was down", k)
			}
		}
		for _, k := range []string{"bearer_probe", "metadata", "tools_list"} {
			if downOK[k] == 0 {
				t.Errorf("no %s request succeeded while the database was down", k)
			}
		}
		for _, k := range []string{"refresh", "products_list", "orders_create", "authorize", "code_exchange", "bearer_probe"} {
			if afterOK[k] == 0 {
				t.Errorf("no %s request succeeded after recovery", k)
			}
		}
	})

	t.Run("no restart, no secret in the log", func(t *testing.T) {
		select {
		case err := <-in.done:
			t.Fatalf("caddy exited (%v)", err)
		default:
		}
		if in.proc.Process.Pid != pid {
			t.Errorf("caddy was restarted")
		}
		out := in.out.String()
		if strings.Contains(out, "panic") {
			t.Errorf("caddy panicked:\n%s", out)
		}
		if strings.Contains(out, pg.password) {
			t.Errorf("caddy's log holds the database password")
		}
	})

	t.Run("no partial writes", func(t *testing.T) {
		db := pg.connect("postgres")
		ctx := context.Background()
		checks := []struct{ what, sql string }{
			{"orders without items", `SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id)`},
			{"orders with a line missing", `SELECT count(*) FROM (SELECT order_id FROM order_items GROUP BY order_id HAVING count(*) <> 2) x`},
			{"orders whose total is not the sum of their lines", `SELECT count(*) FROM orders o
				WHERE total_minor <> (SELECT sum(line_minor) FROM order_items i WHERE i.order_id = o.id)`},
			{"grants without an access token", `SELECT count(*) FROM grants g WHERE NOT EXISTS (SELECT 1 FROM access_tokens a WHERE a.grant_id = g.id)`},
			{"grants without a refresh token", `SELECT count(*) FROM grants g WHERE NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = g.id)`},
			{"redeemed codes without their grant", `SELECT count(*) FROM authorization_codes c
				WHERE consumed_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.id = c.grant_id)`},
			{"rotated refresh tokens without a successor", `SELECT count(*) FROM refresh_tokens WHERE rotated_at IS NOT NULL AND successor IS NULL`},
			{"grants with several live refresh tokens", `SELECT count(*) FROM (SELECT grant_id FROM refresh_tokens
				WHERE rotated_at IS NULL AND revoked_at IS NULL GROUP BY grant_id HAVING count(*) > 1) x`},
		}
		for _, c := range checks {
			var n int64
			if err := db.QueryRow(ctx, c.sql).Scan(&n); err != nil {
				t.Fatalf("%s: %v", c.what, err)
			}
			if n != 0 {
				t.Errorf("%d %s", n, c.what)
			}
		}
		// Stock: what is left plus what live orders took is what there was.
		for i, id := range products {
			var left, taken int64
			err := db.QueryRow(ctx, `SELECT p.stock, COALESCE((SELECT sum(i.quantity) FROM order_items i JOIN orders o ON o.id = i.order_id
				WHERE i.product_id = p.id AND o.status <> 'cancelled'), 0) FROM products p WHERE p.id = $1`, id).Scan(&left, &taken)
			if err != nil {
				t.Fatal(err)
			}
			if left+taken != stock || taken == 0 {
				t.Errorf("product %d: stock %d + ordered %d != %d", i, left, taken, stock)
			}
		}
		// Every order a client was told about exists.
		var n int64
		if err := db.QueryRow(ctx, `SELECT count(*) FROM orders WHERE id = ANY($1)`, ordersAcked).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != int64(len(ordersAcked)) || n == 0 {
			t.Errorf("%d of the %d acknowledged orders are in the database", n, len(ordersAcked))
		}
		var total int64
		_ = db.QueryRow(ctx, `SELECT count(*) FROM orders`).Scan(&total)
		t.Logf("%d orders acknowledged, %d in the database", len(ordersAcked), total)
	})
}

// phaseWords names the phases of TestFaultDatabaseDown in messages.
var phaseWords = map[string]string{"before": "before", "down": "during", "after": "after",
	"transition": "at the start or the end of"}

// outcomeOf turns a check into an outcome: ok, the documented unavailable
// answer, or a failure.
func outcomeOf(ok, unavailable bool) string {
	switch {
	case ok:
		return outOK
	case unavailable:
		return outUnavailable
	}
	return outFail
}

// jwtSub is the sub claim of a JWT, unverified (for comparisons only).
func jwtSub(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	return jsonString(b, "sub")
}

// logCaddyErrors logs Caddy's error lines, which name the cause of a 500,
// when the test failed.
func logCaddyErrors(t *testing.T, in *instance) {
	t.Helper()
	if !t.Failed() {
		return
	}
	for line := range strings.Lines(in.out.String()) {
		if strings.Contains(line, `"level":"error"`) {
			t.Logf("caddy: %s", strings.TrimSpace(line))
		}
	}
}
