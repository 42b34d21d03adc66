//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testflow"
)

// upstreamProc is the MCP server of ./upstream, running as its own
// process on a loopback port.
type upstreamProc struct {
	addr string
	out  *syncBuffer
	http *http.Client
}

// upstreamStats is the upstream's GET /_upstream/stats.
type upstreamStats struct {
	Requests          int64 `json:"requests"`
	WithAuthorization int64 `json:"with_authorization"`
}

// upstreamIdentity is the structured result of the upstream's whoami tool.
type upstreamIdentity struct {
	Headers       map[string][]string `json:"headers"`
	Authorization bool                `json:"authorization"`
}

// startUpstream builds ./upstream with go build and runs it until the test
// ends.
func startUpstream(t *testing.T) *upstreamProc {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "upstream")
	build := exec.Command("go", "build", "-tags", "e2e", "-o", bin, "./upstream")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./upstream: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	u := &upstreamProc{out: &syncBuffer{}, http: &http.Client{Timeout: 5 * time.Second}}
	cmd.Stderr = u.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { stopProcess(cmd.Process, done, 10*time.Second) })
	first := make(chan string, 1)
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			first <- sc.Text()
		}
		close(first)
		for sc.Scan() {
			fmt.Fprintln(u.out, sc.Text())
		}
		_ = cmd.Wait()
	}()
	select {
	case line := <-first:
		addr, ok := strings.CutPrefix(line, "listening on ")
		if !ok {
			t.Fatalf("upstream said %q first\n%s", line, u.out)
		}
		u.addr = addr
	case <-time.After(30 * time.Second):
		t.Fatalf("upstream did not start within 30s\n%s", u.out)
	}
	return u
}

// stats reads the upstream's request counters.
func (u *upstreamProc) stats(t *testing.T) upstreamStats {
	t.Helper()
	res, err := u.http.Get("http://" + u.addr + "/_upstream/stats")
	if err != nil {
		t.Fatalf("upstream stats: %v\n%s", err, u.out)
	}
	defer res.Body.Close()
	var s upstreamStats
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		t.Fatalf("upstream stats: %v", err)
	}
	return s
}

// release lets the upstream's wait_for_release call with this progress
// token answer.
func (u *upstreamProc) release(token string) error {
	res, err := u.http.Post("http://"+u.addr+"/_upstream/release?token="+url.QueryEscape(token), "", nil)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		return fmt.Errorf("release %s: status %d", token, res.StatusCode)
	}
	return nil
}

var readmeCaddyfileBlock = regexp.MustCompile("(?s)```caddyfile\n(.*?)```")

// readmeProxyExample returns the README's example of mcp_bearer in front
// of reverse_proxy, so that the test runs exactly what the README shows.
func readmeProxyExample(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile(repoFile(t, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range readmeCaddyfileBlock.FindAllStringSubmatch(string(readme), -1) {
		if strings.Contains(m[1], "reverse_proxy /mcp* 127.0.0.1:9000") && strings.Contains(m[1], "header_up X-User-Id") {
			return m[1]
		}
	}
	t.Fatal("README.md no longer has a caddyfile example with `reverse_proxy /mcp* 127.0.0.1:9000` and `header_up X-User-Id`")
	return ""
}

// proxyHost is the site name of the README's example. The test's clients
// reach it at the local Caddy, where DNS would send them in production.
const proxyHost = "mcp.example.com"

// hostFix makes reverse_proxy send the upstream's own address as Host.
// An MCP server on a loopback address that guards against DNS rebinding
// (mcp-go's Streamable HTTP server does by default) refuses any other
// Host with 403.
const hostFix = "header_up Host {upstream_hostport}"

// proxyCaddyfile is the README's reverse_proxy example, proxying to the
// upstream, with a certificate from Caddy's local CA, sign-in through the
// test provider, and a second guarded route, /admin/mcp, that needs
// product:write.
func proxyCaddyfile(t *testing.T, upstream, opIssuer string) string {
	t.Helper()
	site := readmeProxyExample(t)
	open := proxyHost + " {\n"
	for _, want := range []string{open, "reverse_proxy /mcp* 127.0.0.1:9000 {\n", "\n\tmcp_oauth\n"} {
		if !strings.Contains(site, want) {
			t.Fatalf("the README's reverse_proxy example no longer contains %q:\n%s", want, site)
		}
	}
	if !strings.Contains(site, hostFix) {
		t.Logf("the README's example lacks %q; the test adds it (the upstream would answer 403)", hostFix)
		site = strings.Replace(site, "reverse_proxy /mcp* 127.0.0.1:9000 {\n", "reverse_proxy /mcp* 127.0.0.1:9000 {\n\t\t"+hostFix+"\n", 1)
	}
	site = strings.Replace(site, open, open+"\ttls internal\n", 1)
	site = strings.ReplaceAll(site, "127.0.0.1:9000", upstream)
	site = withLogin(t, site, opIssuer)
	end := strings.LastIndex(site, "}")
	site = site[:end] + "\n\tmcp_bearer /admin/mcp* {\n\t\tscope product:write\n\t}\n" +
		"\treverse_proxy /admin/mcp* " + upstream + " {\n\t\t" + hostFix + "\n\t\theader_up X-User-Id {http.auth.user.id}\n\t}\n" + site[end:]
	return "{\n\thttp_port {$CADDYMCP_HTTP_PORT}\n\thttps_port {$CADDYMCP_HTTPS_PORT}\n\tadmin {$CADDYMCP_ADMIN}\n\tskip_install_trust\n}\n\n" + site
}

// proxyDial connects to proxyHost at 127.0.0.1, and elsewhere as usual.
func proxyDial(ctx context.Context, network, addr string) (net.Conn, error) {
	if host, port, err := net.SplitHostPort(addr); err == nil && host == proxyHost {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// startProxyHost runs `caddy run` as instance.start does, but waits for
// the site at proxyHost, and returns the base URL, an HTTPS client for it
// (no automatic redirects) and the local CA.
func startProxyHost(t *testing.T, in *instance) (string, *http.Client, *x509.CertPool) {
	t.Helper()
	base := fmt.Sprintf("https://%s:%d", proxyHost, in.httpsPort)
	in.launch()
	var c *http.Client
	var roots *x509.CertPool
	in.await(30*time.Second, base, func() bool {
		if roots = in.roots(); roots == nil {
			return false
		}
		c = &http.Client{
			Timeout:       10 * time.Second,
			Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, DialContext: proxyDial},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		res, err := c.Get(base + "/.well-known/oauth-authorization-server")
		if err != nil {
			return false
		}
		res.Body.Close()
		return true
	})
	return base, c, roots
}

// proxyPost posts a JSON-RPC message to u through Caddy with the token (if
// any) and extra headers.
func proxyPost(t *testing.T, c *http.Client, u, token string, hdr http.Header, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	t.Logf("POST %s -> %d %s\n\tWWW-Authenticate: %s\n\t%s", req.URL.Path, res.StatusCode, res.Header.Get("Content-Type"),
		res.Header.Get("WWW-Authenticate"), b)
	return res, b
}

// proxyDecode decodes the structuredContent of a tool result.
func proxyDecode(t *testing.T, structured any, v any) {
	t.Helper()
	b, err := json.Marshal(structured)
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		t.Fatalf("structuredContent %v: %v", structured, err)
	}
}

// TestProxyToUpstreamMCPServer puts mcp_bearer in front of reverse_proxy
// to a real MCP server in its own process, with the README's Caddyfile,
// over HTTPS: the challenge and metadata without a token, the OAuth flow,
// mcp-go's client through Caddy (a streamed response included), identity
// headers in place of the token, spoofed identity headers, a route whose
// scope the token lacks, and revocation.
func TestProxyToUpstreamMCPServer(t *testing.T) {
	up := startUpstream(t)
	op := startOIDC(t)
	config := proxyCaddyfile(t, up.addr, op.Issuer)
	t.Logf("Caddyfile:\n%s", config)
	in := newInstance(t, config, "CADDYMCP_E2E_OP_SECRET=op-secret")
	base, c, roots := startProxyHost(t, in)
	const ping = `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	const whoami = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`

	t.Run("no valid token: RFC 9728 challenge, upstream not reached", func(t *testing.T) {
		for _, tc := range []struct {
			name, path, auth string
			status           int
			wantError        string
		}{
			{"no Authorization", "/mcp", "", 401, ""},
			{"no Authorization, sub-path", "/mcp/anything", "", 401, ""},
			{"not a JWT", "/mcp", "Bearer not-a-token", 401, `error="invalid_token"`},
			{"Basic credentials", "/mcp", "Basic YTpi", 401, ""},
			{"malformed bearer token", "/mcp", "Bearer not,a,token", 400, `error="invalid_request"`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				hdr := http.Header{}
				if tc.auth != "" {
					hdr.Set("Authorization", tc.auth)
				}
				res, body := proxyPost(t, c, base+tc.path, "", hdr, ping)
				if res.StatusCode != tc.status {
					t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
				}
				ch := res.Header.Get("WWW-Authenticate")
				if tc.wantError != "" && !strings.Contains(ch, tc.wantError) {
					t.Errorf("WWW-Authenticate = %q, want %s", ch, tc.wantError)
				}
				if tc.status != 401 || tc.wantError != "" {
					return
				}
				want := `Bearer resource_metadata="` + base + `/.well-known/oauth-protected-resource/mcp", scope="booking:read"`
				if ch != want {
					t.Errorf("WWW-Authenticate = %q, want %q", ch, want)
				}
				const wantBody = `{"error":"unauthorized","error_description":"Bearer token required. See WWW-Authenticate header for authentication details."}`
				if string(body) != wantBody {
					t.Errorf("body = %s", body)
				}
			})
		}
		if s := up.stats(t); s.Requests != 0 {
			t.Errorf("the upstream received %d requests without a valid token", s.Requests)
		}
	})

	t.Run("protected resource metadata at both URLs", func(t *testing.T) {
		get := func(path string) map[string]any {
			req, _ := http.NewRequest("GET", base+path, nil)
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var doc map[string]any
			if res.StatusCode != 200 || json.NewDecoder(res.Body).Decode(&doc) != nil {
				t.Fatalf("GET %s: %d", path, res.StatusCode)
			}
			return doc
		}
		suffixed, root := get("/.well-known/oauth-protected-resource/mcp"), get("/.well-known/oauth-protected-resource")
		if fmt.Sprint(suffixed) != fmt.Sprint(root) {
			t.Errorf("the two documents differ:\n%v\n%v", suffixed, root)
		}
		if suffixed["resource"] != base+"/mcp" {
			t.Errorf("resource = %v, want %s", suffixed["resource"], base+"/mcp")
		}
		if as, _ := suffixed["authorization_servers"].([]any); len(as) != 1 || as[0] != base {
			t.Errorf("authorization_servers = %v, want [%s]", suffixed["authorization_servers"], base)
		}
		if bm, _ := suffixed["bearer_methods_supported"].([]any); len(bm) != 1 || bm[0] != "header" {
			t.Errorf("bearer_methods_supported = %v", suffixed["bearer_methods_supported"])
		}
		if admin := get("/.well-known/oauth-protected-resource/admin/mcp"); admin["resource"] != base+"/admin/mcp" {
			t.Errorf("/admin/mcp resource = %v", admin["resource"])
		}
		if s := up.stats(t); s.Requests != 0 {
			t.Errorf("metadata requests reached the upstream (%d)", s.Requests)
		}
	})

	// The OAuth flow, as TestFullFlowOverHTTPS runs it: a token for /mcp
	// and, for the stricter route, one for /admin/mcp.
	b := testflow.NewBrowser(t, roots)
	b.Client.Transport.(*http.Transport).DialContext = proxyDial
	const redirect = "http://127.0.0.1:9/callback"
	clientID := b.Register(base, "Proxy client", redirect)
	q := testflow.NewRequest(base, clientID, redirect, "booking:read product:read", base+"/mcp")
	tokens := b.Redeem(q, b.Approve(q, b.ConsentPage(q)))
	if tokens.Scope != "booking:read product:read" {
		t.Fatalf("granted scope %q", tokens.Scope)
	}
	qa := testflow.NewRequest(base, clientID, redirect, "booking:read product:read product:write", base+"/admin/mcp")
	adminTokens := b.Redeem(qa, b.Approve(qa, b.ConsentPage(qa)))
	if adminTokens.Scope != "booking:read product:read" {
		t.Fatalf("granted scope for /admin/mcp %q", adminTokens.Scope)
	}
	meRes, meBody := b.Do(proxyRequest(t, "GET", base+"/auth/me"))
	var me struct {
		ID string `json:"id"`
	}
	if meRes.StatusCode != 200 || json.Unmarshal([]byte(meBody), &me) != nil || me.ID == "" {
		t.Fatalf("/auth/me: %d %s", meRes.StatusCode, meBody)
	}
	wantIdentity := map[string][]string{
		"X-User-Id":   {me.ID},
		"X-Client-Id": {clientID},
		"X-Scope":     {"booking:read product:read"},
	}

	t.Run("mcp-go client through Caddy", func(t *testing.T) {
		before := up.stats(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		mc, err := mcpclient.NewStreamableHttpClient(base+"/mcp",
			transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + tokens.AccessToken}),
			transport.WithHTTPBasicClient(c))
		if err != nil {
			t.Fatal(err)
		}
		defer mc.Close()
		const progressToken = "proxy-stream-1"
		var mu sync.Mutex
		var progress []mcp.JSONRPCNotification
		released := make(chan error, 1)
		mc.OnNotification(func(n mcp.JSONRPCNotification) {
			if n.Method != string(mcp.MethodNotificationProgress) {
				return
			}
			mu.Lock()
			progress = append(progress, n)
			first := len(progress) == 1
			mu.Unlock()
			if first {
				// The call is still running upstream: only a response
				// streamed through Caddy can have brought this.
				go func() { released <- up.release(fmt.Sprint(n.Params.AdditionalFields["progressToken"])) }()
			}
		})
		if err := mc.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := mc.Initialize(ctx, testflow.InitializeRequest("caddymcp-proxy-test")); err != nil {
			t.Fatalf("initialize: %v\nupstream:\n%s", err, up.out)
		}
		list, err := mc.ListTools(ctx, mcp.ListToolsRequest{})
		if err != nil {
			t.Fatalf("tools/list: %v", err)
		}
		var names []string
		for _, tool := range list.Tools {
			names = append(names, tool.Name)
		}
		slices.Sort(names)
		if !slices.Equal(names, []string{"wait_for_release", "whoami"}) {
			t.Errorf("tools/list = %v", names)
		}

		call := mcp.CallToolRequest{}
		call.Params.Name = "whoami"
		res, err := mc.CallTool(ctx, call)
		if err != nil || res.IsError {
			t.Fatalf("whoami: %v %+v", err, res)
		}
		var id upstreamIdentity
		proxyDecode(t, res.StructuredContent, &id)
		if fmt.Sprint(id.Headers) != fmt.Sprint(wantIdentity) {
			t.Errorf("the upstream saw identity headers %v, want %v", id.Headers, wantIdentity)
		}
		if id.Authorization {
			t.Error("the Authorization header reached the upstream")
		}

		call.Params.Name = "wait_for_release"
		call.Params.Meta = &mcp.Meta{ProgressToken: progressToken}
		start := time.Now()
		res, err = mc.CallTool(ctx, call)
		if err != nil {
			t.Fatalf("wait_for_release: %v", err)
		}
		if res.IsError || len(res.Content) != 1 || mcp.GetTextFromContent(res.Content[0]) != "released" {
			t.Fatalf("wait_for_release after %v: %+v", time.Since(start), res)
		}
		// The release request may still be on its way back.
		select {
		case err := <-released:
			if err != nil {
				t.Errorf("releasing the call: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("the call answered, but no release was sent")
		}
		mu.Lock()
		defer mu.Unlock()
		if len(progress) != 1 || fmt.Sprint(progress[0].Params.AdditionalFields["progressToken"]) != progressToken ||
			progress[0].Params.AdditionalFields["message"] != "waiting for release" {
			t.Errorf("progress notifications: %+v", progress)
		}
		after := up.stats(t)
		if after.Requests < before.Requests+3 {
			t.Errorf("the upstream counted %d requests for initialize, tools/list and two calls", after.Requests-before.Requests)
		}
	})

	t.Run("spoofed identity headers are replaced", func(t *testing.T) {
		before := up.stats(t)
		hdr := http.Header{
			"X-User-Id":   {"mallory", "admin"},
			"X-Client-Id": {"evil-client"},
			"X-Scope":     {"product:write order:write"},
		}
		res, body := proxyPost(t, c, base+"/mcp", tokens.AccessToken, hdr, whoami)
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("whoami: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
		}
		var msg struct {
			Result struct {
				StructuredContent upstreamIdentity `json:"structuredContent"`
			} `json:"result"`
		}
		if err := json.Unmarshal(body, &msg); err != nil {
			t.Fatal(err)
		}
		if got := msg.Result.StructuredContent; fmt.Sprint(got.Headers) != fmt.Sprint(wantIdentity) || got.Authorization {
			t.Errorf("the upstream saw %+v, want only %v and no Authorization", got, wantIdentity)
		}
		if d := up.stats(t).Requests - before.Requests; d != 1 {
			t.Errorf("the upstream counted %d requests, want 1", d)
		}
	})

	t.Run("missing scope: 403 before the upstream", func(t *testing.T) {
		before := up.stats(t)
		res, _ := proxyPost(t, c, base+"/admin/mcp", adminTokens.AccessToken, nil, whoami)
		want := `Bearer resource_metadata="` + base + `/.well-known/oauth-protected-resource/admin/mcp", scope="booking:read product:read product:write", error="insufficient_scope"`
		if ch := res.Header.Get("WWW-Authenticate"); res.StatusCode != 403 || !strings.HasPrefix(ch, want) {
			t.Errorf("status %d, WWW-Authenticate %q; want 403 and a challenge starting with %q", res.StatusCode, ch, want)
		}
		// A token for /mcp is not one for /admin/mcp (RFC 8707), and the
		// /admin/mcp token is not one for /mcp.
		if res, _ := proxyPost(t, c, base+"/admin/mcp", tokens.AccessToken, nil, whoami); res.StatusCode != 401 ||
			!strings.Contains(res.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("the /mcp token at /admin/mcp: %d", res.StatusCode)
		}
		if res, _ := proxyPost(t, c, base+"/mcp", adminTokens.AccessToken, nil, whoami); res.StatusCode != 401 {
			t.Errorf("the /admin/mcp token at /mcp: %d", res.StatusCode)
		}
		if d := up.stats(t).Requests - before.Requests; d != 0 {
			t.Errorf("%d refused requests reached the upstream", d)
		}
	})

	t.Run("revoked token refused within 5s", func(t *testing.T) {
		form := url.Values{"token": {tokens.AccessToken}, "client_id": {clientID}}
		req, _ := http.NewRequest("POST", base+"/oauth/revoke", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("revoke: %d", res.StatusCode)
		}
		revoked := time.Now()
		before := up.stats(t)
		accepted := int64(0)
		for {
			res, _ := proxyPost(t, c, base+"/mcp", tokens.AccessToken, nil, ping)
			if res.StatusCode == 401 {
				if ch := res.Header.Get("WWW-Authenticate"); !strings.Contains(ch, `error="invalid_token"`) {
					t.Errorf("WWW-Authenticate = %q", ch)
				}
				t.Logf("refused %v after the revocation", time.Since(revoked).Round(time.Millisecond))
				break
			}
			if res.StatusCode != 200 {
				t.Fatalf("status %d", res.StatusCode)
			}
			accepted++
			if time.Since(revoked) > 5*time.Second {
				t.Fatal("the revoked token is still accepted after 5s")
			}
			time.Sleep(100 * time.Millisecond)
		}
		if d := up.stats(t).Requests - before.Requests; d != accepted {
			t.Errorf("the upstream counted %d requests, %d were accepted", d, accepted)
		}
	})

	if s := up.stats(t); s.WithAuthorization != 0 {
		t.Errorf("%d of %d requests reached the upstream with an Authorization header", s.WithAuthorization, s.Requests)
	}
}

// proxyRequest is a request without a body.
func proxyRequest(t *testing.T, method, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
