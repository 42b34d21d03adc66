//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testflow"
)

// The scripted user at the upstream OpenID provider: the address
// withLogin's access policy allows.
const (
	opUser     = `{"sub":"ada-1","email":"ada@example.com","email_verified":true,"name":"Ada Lovelace","password":"analytical-engine-1843"}`
	opEmail    = "ada@example.com"
	opPassword = "analytical-engine-1843"
	opClientID = "caddymcp-e2e"
	opSecret   = "op-secret-for-clients-e2e"
)

// clientTools is what the real-client tests need: the npm packages of
// caddymcp/e2e/clients installed, node and Chromium.
type clientTools struct {
	dir, node, chromium string
}

// needClientTools finds the tools, failing under CI=true and skipping
// loudly otherwise when one is missing.
func needClientTools(t *testing.T) clientTools {
	t.Helper()
	ct := clientTools{dir: os.Getenv("CADDYMCP_CLIENTS_DIR"), chromium: os.Getenv("CADDYMCP_CHROMIUM")}
	if ct.dir == "" {
		ct.dir = repoFile(t, "caddymcp/e2e/clients")
	}
	if ct.chromium == "" {
		ct.chromium = "/usr/bin/chromium"
	}
	var missing []string
	if p, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node (Node.js 20 or newer)")
	} else {
		ct.node = p
	}
	for _, pkg := range []string{"@modelcontextprotocol/sdk", "@modelcontextprotocol/inspector-cli", "oidc-provider", "playwright-core", "axe-core"} {
		if _, err := os.Stat(filepath.Join(ct.dir, "node_modules", pkg, "package.json")); err != nil {
			missing = append(missing, "npm package "+pkg+" in "+ct.dir+"/node_modules (npm ci)")
		}
	}
	if fi, err := os.Stat(ct.chromium); err != nil || fi.Mode()&0o111 == 0 {
		missing = append(missing, "Chromium at "+ct.chromium+" (apt-get install chromium)")
	}
	if len(missing) == 0 {
		return ct
	}
	msg := "the real-client tests need:\n\t" + strings.Join(missing, "\n\t") +
		"\nscripts/test.sh installs them (scripts/lib/clients.sh) and sets CADDYMCP_CLIENTS_DIR and CADDYMCP_CHROMIUM"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip("\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n!! SKIPPED: " + msg +
		"\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!")
	return ct
}

// lineLogger passes a process's output to t.Log line by line as it comes,
// with a prefix, and keeps it.
type lineLogger struct {
	t      *testing.T
	prefix string
	mu     sync.Mutex
	part   []byte
	all    bytes.Buffer
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Write(p)
	l.part = append(l.part, p...)
	for {
		i := bytes.IndexByte(l.part, '\n')
		if i < 0 {
			break
		}
		l.t.Log(l.prefix + string(l.part[:i]))
		l.part = l.part[i+1:]
	}
	return len(p), nil
}

func (l *lineLogger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.part) > 0 {
		l.t.Log(l.prefix + string(l.part))
		l.part = nil
	}
}

func (l *lineLogger) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// opProcess is oidc-provider running under node.
type opProcess struct {
	issuer string
	out    *syncBuffer
}

// startOP runs clients/op.mjs (oidc-provider) for one client whose redirect
// URI is redirect, until the test ends.
func startOP(t *testing.T, ct clientTools, redirect string) *opProcess {
	t.Helper()
	cmd := exec.Command(ct.node, "op.mjs")
	cmd.Dir = ct.dir
	cmd.Env = append(os.Environ(), "OP_CLIENT_ID="+opClientID, "OP_CLIENT_SECRET="+opSecret,
		"OP_REDIRECT_URI="+redirect, "OP_USER="+opUser)
	op := &opProcess{out: &syncBuffer{}}
	cmd.Stderr = op.out
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting oidc-provider: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		stopProcess(cmd.Process, done, 5*time.Second)
		if t.Failed() {
			t.Logf("oidc-provider log:\n%s", op.out)
		}
	})
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			first <- sc.Text()
		}
		close(first)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-first:
		var v struct{ Issuer string }
		if err := json.Unmarshal([]byte(line), &v); err != nil || !strings.HasPrefix(v.Issuer, "http://127.0.0.1:") {
			t.Fatalf("oidc-provider said %q; log:\n%s", line, op.out)
		}
		op.issuer = v.Issuer
	case <-time.After(30 * time.Second):
		t.Fatalf("oidc-provider did not start within 30s; log:\n%s", op.out)
	}
	return op
}

// runNode runs a node command in dir with extra environment, its output
// logged line by line, and returns the output and the error.
func runNode(t *testing.T, ct clientTools, dir, prefix string, timeout time.Duration, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, ct.node, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	// Its own process group, so that a timeout also ends the Chromium it
	// started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	out := &lineLogger{t: t, prefix: prefix}
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	out.flush()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v: %w", timeout, err)
	}
	return out.String(), err
}

// nodeEnv is the environment of a node client of the host: it trusts the
// host's local CA, takes no options from the caller's environment and
// prints no colours.
func nodeEnv(in *instance) []string {
	return []string{"NODE_EXTRA_CA_CERTS=" + in.rootCA(), "NODE_OPTIONS=", "NO_COLOR=1"}
}

// runFlowScript runs a client script of clients/ (sdk-flow.mjs,
// dpop-flow.mjs) through the whole flow against the host's MCP endpoint,
// as the scripted user of op in Chromium, with its steps numbered 3.x
// and its artifacts in artifacts, and decodes the JSON it hands back
// into result. A failed run fails the test, with hint saying where to
// look; extraEnv is what the script needs besides.
func runFlowScript(t *testing.T, ct clientTools, in *instance, op *opProcess, artifacts, script, hint string, result any, extraEnv ...string) {
	t.Helper()
	resultFile := filepath.Join(t.TempDir(), "result.json")
	env := append([]string{"MCP_URL=" + in.base() + "/mcp", "OP_ISSUER=" + op.issuer, "LOGIN_EMAIL=" + opEmail,
		"LOGIN_PASSWORD=" + opPassword, "CHROMIUM=" + ct.chromium, "ARTIFACTS_DIR=" + artifacts,
		"RESULT_FILE=" + resultFile, "STEP_PREFIX=3."}, nodeEnv(in)...)
	prefix := strings.TrimSuffix(script, "-flow.mjs") + " | "
	if _, err := runNode(t, ct, ct.dir, prefix, 3*time.Minute, append(env, extraEnv...), script); err != nil {
		t.Fatalf("%s failed (%v); %s", script, err, hint)
	}
	b, err := os.ReadFile(resultFile)
	if err == nil {
		err = json.Unmarshal(b, result)
	}
	if err != nil {
		t.Fatalf("%s result (%d bytes): %v", script, len(b), err)
	}
}

// sdkResult is what sdk-flow.mjs hands back.
type sdkResult struct {
	SDKVersion         string `json:"sdk_version"`
	ChallengeScope     string `json:"challenge_scope"`
	StepUp             string `json:"step_up"`
	CreatedProductID   string `json:"created_product_id"`
	RevokedAccessToken string `json:"revoked_access_token"`
	OtherAccessToken   string `json:"other_access_token"`
	OtherScope         string `json:"other_scope"`
}

// TestRealClients runs third-party clients against the real binary over
// HTTPS, with Caddyfile.example changed only in its ports and its upstream
// login — the npm package oidc-provider standing in for Google: the MCP
// TypeScript SDK through the whole authorization flow in headless
// Chromium (with screenshots, accessibility, focus and framing checks of
// the pages), MCP Inspector's CLI and mcp-go's client with a token.
func TestRealClients(t *testing.T) {
	ct := needClientTools(t)
	started := time.Now()
	artifacts := repoFile(t, filepath.Join(".cache", "test-artifacts", "clients"))
	if err := os.RemoveAll(artifacts); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	t.Log("step 1: start oidc-provider (node op.mjs) as the upstream login")
	in := newInstance(t, "", "CADDYMCP_E2E_OP_SECRET="+opSecret)
	op := startOP(t, ct, fmt.Sprintf("https://localhost:%d/auth/callback/test", in.httpsPort))
	t.Logf("        issuer %s", op.issuer)

	t.Log("step 2: start Caddy on Caddyfile.example with that login")
	// withLogin's policy lets the user grant the read scopes; the step-up
	// also needs product:write.
	config := withLogin(t, exampleText(t), op.issuer)
	const readOnly = "scopes booking:read product:read\n"
	if !strings.Contains(config, readOnly) {
		t.Fatalf("withLogin no longer writes %q", readOnly)
	}
	in.startWith(strings.Replace(config, readOnly, "scopes booking:read product:read product:write\n", 1))
	certDir := filepath.Join(in.dir, "data", "caddy", "certificates", "local", "localhost")
	endpoint := in.base() + "/mcp"

	var res sdkResult
	ok := t.Run("sdk", func(t *testing.T) {
		t.Log("step 3: the MCP TypeScript SDK through the whole flow (node sdk-flow.mjs)")
		runFlowScript(t, ct, in, op, artifacts, "sdk-flow.mjs",
			"its steps, the HTTP trace and the browser's navigations are above, screenshots in "+artifacts, &res,
			"CADDY_CERT="+filepath.Join(certDir, "localhost.crt"), "CADDY_KEY="+filepath.Join(certDir, "localhost.key"))
		if res.OtherAccessToken == "" || res.RevokedAccessToken == "" {
			t.Fatalf("sdk-flow.mjs result without the tokens: %+v", res)
		}
		t.Logf("        SDK %s; 401 challenge scope %q; step-up: %s", res.SDKVersion, res.ChallengeScope, res.StepUp)
	})
	if !ok {
		t.FailNow()
	}

	t.Run("screenshots", func(t *testing.T) {
		t.Log("step 4: the screenshots are real pictures")
		for _, name := range []string{"01-login-oidc-provider.png", "02-consent.png", "03-consent-step-up.png", "04-error-unknown-client.png"} {
			checkScreenshot(t, filepath.Join(artifacts, name))
		}
	})

	t.Run("inspector-cli", func(t *testing.T) {
		t.Logf("step 5: MCP Inspector's CLI with a token (scope %q) as a header", res.OtherScope)
		inspect := func(token string, args ...string) (string, error) {
			// The CLI reads its own package.json relative to the working
			// directory: run it from its build folder.
			dir := filepath.Join(ct.dir, "node_modules", "@modelcontextprotocol", "inspector-cli", "build")
			full := append([]string{"cli.js", "--cli", endpoint, "--transport", "http"}, args...)
			if token != "" {
				full = append(full, "--header", "Authorization: Bearer "+token)
			}
			return runNode(t, ct, dir, "inspector | ", time.Minute, nodeEnv(in), full...)
		}
		out, err := inspect(res.OtherAccessToken, "--method", "tools/list")
		var list struct {
			Tools []struct {
				Name string `json:"name"`
			} `json:"tools"`
		}
		if err != nil || json.Unmarshal([]byte(jsonPart(out)), &list) != nil || len(list.Tools) != 20 {
			t.Fatalf("inspector tools/list: %v (%d tools)", err, len(list.Tools))
		}
		out, err = inspect(res.OtherAccessToken, "--method", "tools/call", "--tool-name", "products_get",
			"--tool-arg", "id="+res.CreatedProductID)
		var got struct {
			IsError           bool           `json:"isError"`
			StructuredContent map[string]any `json:"structuredContent"`
		}
		if err != nil || json.Unmarshal([]byte(jsonPart(out)), &got) != nil || got.IsError || got.StructuredContent["id"] != res.CreatedProductID {
			t.Fatalf("inspector tools/call products_get: %v %+v", err, got)
		}
		out, err = inspect(res.OtherAccessToken, "--method", "tools/call", "--tool-name", "products_create",
			"--tool-arg", "sku=INSPECTOR-CLI-1", "name=Made by MCP Inspector", "price_minor=990", "currency=EUR")
		got.StructuredContent = nil
		if err != nil || json.Unmarshal([]byte(jsonPart(out)), &got) != nil || got.IsError || got.StructuredContent["sku"] != "INSPECTOR-CLI-1" {
			t.Fatalf("inspector tools/call products_create: %v %+v", err, got)
		}
		// Without a token the CLI cannot authorize (it has no OAuth flow):
		// it fails with the 401's body (it does not print the status).
		if out, err = inspect("", "--method", "tools/list"); err == nil || !strings.Contains(out, `"error":"unauthorized"`) {
			t.Errorf("inspector without a token: %v", err)
		}
		if out, err = inspect(res.RevokedAccessToken, "--method", "tools/list"); err == nil ||
			!strings.Contains(out, `"error":"invalid_token"`) || !strings.Contains(out, "revoked") {
			t.Errorf("inspector with the revoked token: %v", err)
		}
	})

	t.Run("mcp-go", func(t *testing.T) {
		t.Log("step 6: mcp-go's client with the token")
		hc := in.client()
		hc.CheckRedirect = nil
		c := newGoClient(t, endpoint, res.OtherAccessToken, hc)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		list, err := c.ListTools(ctx, mcp.ListToolsRequest{})
		if err != nil || len(list.Tools) != 20 {
			t.Fatalf("tools/list: %v", err)
		}
		r := callGo(t, c, "products_list", map[string]any{"query": "INSPECTOR-CLI"})
		if !strings.Contains(fmt.Sprint(r.StructuredContent), "INSPECTOR-CLI-1") {
			t.Errorf("products_list does not find the product the Inspector CLI created: %v", r.StructuredContent)
		}
		r = callGo(t, c, "products_adjust_stock", map[string]any{"id": res.CreatedProductID, "delta": 7})
		if m, _ := r.StructuredContent.(map[string]any); m["stock"] != float64(7) || m["id"] != res.CreatedProductID {
			t.Errorf("products_adjust_stock: %v", r.StructuredContent)
		}
		if _, err := c.CallTool(ctx, toolCall("bookings_list", nil)); err == nil || !strings.Contains(err.Error(), "insufficient_scope") {
			t.Errorf("bookings_list without booking:read: %v", err)
		}
		// A 401 is mcp-go's AuthorizationRequiredError, which carries the
		// challenge's resource_metadata.
		var authErr *transport.AuthorizationRequiredError
		revoked := newGoClientErr(endpoint, res.RevokedAccessToken, hc)
		if !errors.As(revoked, &authErr) || authErr.ResourceMetadataURL != in.base()+"/.well-known/oauth-protected-resource/mcp" {
			t.Errorf("mcp-go with the revoked token: %v", revoked)
		}
	})
	t.Logf("real clients stage: %v", time.Since(started).Round(100*time.Millisecond))
}

// jsonPart cuts what the Inspector CLI printed down to its JSON result
// (it may print notices around it).
func jsonPart(out string) string {
	i, j := strings.Index(out, "{"), strings.LastIndex(out, "}")
	if i < 0 || j < i {
		return ""
	}
	return out[i : j+1]
}

func toolCall(name string, args map[string]any) mcp.CallToolRequest {
	var r mcp.CallToolRequest
	r.Params.Name = name
	r.Params.Arguments = args
	return r
}

// newGoClient connects mcp-go's Streamable HTTP client with a bearer token.
func newGoClient(t *testing.T, endpoint, token string, hc *http.Client) *mcpclient.Client {
	t.Helper()
	c, err := startGoClient(endpoint, token, hc)
	if err != nil {
		t.Fatalf("mcp-go initialize: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// newGoClientErr returns the error of connecting with token.
func newGoClientErr(endpoint, token string, hc *http.Client) error {
	c, err := startGoClient(endpoint, token, hc)
	if c != nil {
		c.Close()
	}
	return err
}

func startGoClient(endpoint, token string, hc *http.Client) (*mcpclient.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := mcpclient.NewStreamableHttpClient(endpoint,
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}),
		transport.WithHTTPBasicClient(hc))
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		return c, err
	}
	_, err = c.Initialize(ctx, testflow.InitializeRequest("caddymcp-e2e-mcp-go"))
	return c, err
}

// callGo calls a tool that must succeed.
func callGo(t *testing.T, c *mcpclient.Client, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := c.CallTool(ctx, toolCall(name, args))
	if err != nil || r.IsError {
		t.Fatalf("%s: %v %+v", name, err, r)
	}
	t.Logf("        %s → %v", name, r.StructuredContent)
	return r
}

// checkScreenshot asserts that a PNG is a real picture: a sane size and
// not one colour (a blank or failed render).
func checkScreenshot(t *testing.T, file string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Errorf("%s: %v", file, err)
		return
	}
	b := img.Bounds()
	if b.Dx() < 300 || b.Dy() < 200 || b.Dx() > 4000 || b.Dy() > 20000 {
		t.Errorf("%s: size %dx%d", file, b.Dx(), b.Dy())
	}
	colours := map[uint32]int{}
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			colours[rgbKey(img, x, y)]++
		}
	}
	most, total := 0, (b.Dx()/2+1)*(b.Dy()/2+1)
	for _, n := range colours {
		most = max(most, n)
	}
	if len(colours) < 16 || float64(most) > 0.985*float64(total) {
		t.Errorf("%s looks blank: %d colours, the commonest covers %d of %d samples", file, len(colours), most, total)
	}
	t.Logf("        %s: %dx%d, %d colours", filepath.Base(file), b.Dx(), b.Dy(), len(colours))
}

func rgbKey(img image.Image, x, y int) uint32 {
	r, g, b, _ := img.At(x, y).RGBA()
	return r>>8<<16 | g>>8<<8 | b>>8
}
