//go:build e2e

package e2e

import (
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testflow"
)

// exampleWriter is the address the example's `allow email` rule lets
// grant every scope.
func exampleWriter(t *testing.T, example string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\t+allow email (\S+)$`).FindStringSubmatch(example)
	if m == nil {
		t.Fatal("Caddyfile.example no longer has an `allow email <address>` rule")
	}
	return m[1]
}

// TestExampleDevSignIn runs Caddyfile.example as it is — its ports come
// from the environment, as the example reads them, and nothing else
// changes — and takes the official MCP TypeScript SDK through the whole
// flow in headless Chromium, signing in on the example's development
// form: 401, metadata, registration, sign-in form (with an error first),
// consent, code, token, tools/list, tools/call, the step-up to a write
// scope, refresh and revocation. Before that, a plain HTTP client checks
// what a newcomer meets: the warning at start, the form (not a 503) at
// the authorization endpoint, and the example's policy (read scopes for
// everyone).
func TestExampleDevSignIn(t *testing.T) {
	ct := needClientTools(t)
	started := time.Now()
	example := exampleText(t)
	writer := exampleWriter(t, example)
	artifacts := repoFile(t, filepath.Join(".cache", "test-artifacts", "dev-sign-in"))
	if err := os.RemoveAll(artifacts); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	t.Log("step 1: start Caddy on Caddyfile.example, unchanged")
	in := newInstance(t, example)
	in.start()
	t.Cleanup(func() {
		if t.Failed() {
			lines := strings.Split(strings.TrimSpace(in.out.String()), "\n")
			t.Logf("caddy output (last %d of %d lines):\n%s", min(40, len(lines)), len(lines),
				strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})
	if out := in.out.String(); !strings.Contains(out, `"level":"warn"`) ||
		!strings.Contains(out, "development sign-in is enabled (login dev): anyone who can reach this host can sign in as any email address") {
		t.Errorf("no warning about the development sign-in at start:\n%s", out)
	}
	base := in.base()
	endpoint := base + "/mcp"

	t.Run("form", func(t *testing.T) {
		t.Log("step 2: the authorization endpoint shows the sign-in form; a read-only user gets the read scope only")
		b := testflow.NewBrowser(t, localRoots(t, in))
		const redirect = "http://127.0.0.1:9/callback"
		clientID := b.Register(base, "dev e2e", redirect)
		q := testflow.NewRequest(base, clientID, redirect, "product:read product:write", endpoint)
		res, page := b.Follow(q.URL(), "")
		if res.StatusCode != 200 || res.Request.URL.Path != "/auth/login/dev" || !strings.Contains(page, `<input id="email" name="email" type="email"`) {
			t.Fatalf("GET /oauth/authorize ends at %d %s, want the development form with an email field:\n%s", res.StatusCode, res.Request.URL.Path, page)
		}
		m := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("the form has no csrf_token:\n%s", page)
		}
		res, _ = b.PostForm(base+"/auth/login/dev", url.Values{"csrf_token": {m[1]}, "email": {"bob@example.org"}, "name": {"Bob"}})
		if res.StatusCode != 303 || !strings.HasPrefix(res.Header.Get("Location"), "/oauth/authorize?") {
			t.Fatalf("signing in: %d to %q", res.StatusCode, res.Header.Get("Location"))
		}
		consent := b.ConsentPage(q)
		if !strings.Contains(consent, "bob@example.org") || strings.Contains(consent, "Manage your products") {
			t.Fatalf("consent page (product:write must not be offered to bob):\n%s", consent)
		}
		if tokens := b.Redeem(q, b.Approve(q, consent)); tokens.Scope != "product:read" {
			t.Errorf("bob was granted %q, want product:read", tokens.Scope)
		}
	})

	ok := t.Run("sdk", func(t *testing.T) {
		t.Logf("step 3: the MCP TypeScript SDK through the whole flow, signing in as %s (node sdk-flow.mjs, LOGIN_KIND=dev)", writer)
		data := filepath.Join(in.dir, "data", "caddy")
		certDir := filepath.Join(data, "certificates", "local", "localhost")
		resultFile := filepath.Join(t.TempDir(), "result.json")
		env := []string{"LOGIN_KIND=dev", "MCP_URL=" + endpoint, "LOGIN_EMAIL=" + writer, "LOGIN_NAME=Ada Lovelace",
			"CHROMIUM=" + ct.chromium, "ARTIFACTS_DIR=" + artifacts, "RESULT_FILE=" + resultFile, "STEP_PREFIX=3.",
			"CADDY_CERT=" + filepath.Join(certDir, "localhost.crt"), "CADDY_KEY=" + filepath.Join(certDir, "localhost.key"),
			"NODE_EXTRA_CA_CERTS=" + filepath.Join(data, "pki", "authorities", "local", "root.crt"), "NODE_OPTIONS=", "NO_COLOR=1"}
		if _, err := runNode(t, ct, ct.dir, "sdk | ", 3*time.Minute, env, "sdk-flow.mjs"); err != nil {
			t.Fatalf("sdk-flow.mjs failed (%v); its steps, the HTTP trace and the browser's navigations are above, "+
				"screenshots in %s", err, artifacts)
		}
		var res sdkResult
		b, err := os.ReadFile(resultFile)
		if err != nil || json.Unmarshal(b, &res) != nil || res.CreatedProductID == "" || res.RevokedAccessToken == "" {
			t.Fatalf("sdk-flow.mjs result (%d bytes): %v", len(b), err)
		}
		t.Logf("        SDK %s; step-up: %s; created product %s", res.SDKVersion, res.StepUp, res.CreatedProductID)
		for _, name := range []string{"01-login-dev.png", "01-login-dev-error.png", "02-consent.png", "03-consent-step-up.png"} {
			checkScreenshot(t, filepath.Join(artifacts, name))
		}
	})
	if !ok {
		t.FailNow()
	}

	t.Run("users", func(t *testing.T) {
		t.Log("step 4: both people are users of provider dev")
		out, err := in.run("mcp-users", "list")
		if err != nil || !strings.Contains(out, writer) || !strings.Contains(out, "bob@example.org") || !strings.Contains(out, "dev") {
			t.Errorf("mcp-users list (%v):\n%s", err, out)
		}
	})
	t.Logf("development sign-in stage: %v", time.Since(started).Round(100*time.Millisecond))
}

// TestDevSignInRefusedOffLoopback checks that the real binary refuses
// Caddyfile.example's development sign-in on a site that is not loopback
// only — through `caddy validate`, `caddy run`, and as JSON — with an
// error that names the directive.
func TestDevSignInRefusedOffLoopback(t *testing.T) {
	example := exampleText(t)
	const bind, site = "\tbind localhost\n", "\nlocalhost {\n"
	if !strings.Contains(example, bind) || !strings.Contains(example, site) {
		t.Fatalf("Caddyfile.example no longer has %q and %q", bind, site)
	}
	const refusal = "mcp_oauth: login dev is for development only: "
	tests := []struct {
		name, config, want string
	}{
		{"no bind", strings.Replace(example, bind, "", 1), "the site listens on :"},
		{"bind to every address", strings.Replace(example, bind, "\tbind 0.0.0.0\n", 1), "the site listens on 0.0.0.0:"},
		{"a public host name", strings.Replace(example, site, "\nmcp.example.com {\n", 1), "the site answers to mcp.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := newInstance(t, tt.config)
			out, err := in.run("validate", "--config", in.config, "--adapter", "caddyfile")
			if err == nil || !strings.Contains(out, refusal) || !strings.Contains(out, tt.want) ||
				!strings.Contains(out, "only localhost, 127.0.0.1 and [::1] are allowed") {
				t.Fatalf("caddy validate: %v, want the refusal about %q:\n%s", err, tt.want, out)
			}
		})
	}

	t.Run("run", func(t *testing.T) {
		in := newInstance(t, tests[2].config)
		out, err := in.run("run", "--config", in.config, "--adapter", "caddyfile")
		if err == nil || !strings.Contains(out, refusal+tests[2].want) {
			t.Fatalf("caddy run on a public host: %v\n%s", err, out)
		}
	})

	t.Run("json", func(t *testing.T) {
		in := newInstance(t, example)
		adapt := exec.Command(in.bin, "adapt", "--config", in.config, "--adapter", "caddyfile")
		adapt.Env = in.env
		stdout, err := adapt.Output()
		if err != nil {
			t.Fatalf("caddy adapt: %v\n%s", err, stdout)
		}
		cfg := strings.TrimSpace(string(stdout))
		loopback := `"listen":["localhost:` + strings.TrimPrefix(in.base(), "https://localhost:") + `"]`
		if !strings.Contains(cfg, loopback) {
			t.Fatalf("the adapted example does not listen on %s:\n%s", loopback, cfg)
		}
		file := filepath.Join(in.dir, "caddy.json")
		for name, c := range map[string]string{"as adapted": cfg, "on every interface": strings.Replace(cfg, `"listen":["localhost:`, `"listen":[":`, 1)} {
			if err := os.WriteFile(file, []byte(c), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := in.run("validate", "--config", file)
			if name == "as adapted" && err != nil {
				t.Errorf("caddy validate of the adapted example: %v\n%s", err, out)
			}
			if name != "as adapted" && (err == nil || !strings.Contains(out, refusal+"the site listens on :")) {
				t.Errorf("caddy validate of JSON %s: %v\n%s", name, err, out)
			}
		}
	})
}
