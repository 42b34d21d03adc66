//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The pages the walk of TestEveryPageAccessible screenshots, in order.
// The development sign-in form, with and without a field error, is
// screenshotted and checked the same way by TestExampleDevSignIn
// (dev-sign-in/01-login-dev.png, 01-login-dev-error.png).
var everyPage = []string{
	"01-sign-in-picker.png",
	"02-consent.png",
	"03-account.png",
	"04-account-error-forged-form.png",
	"05-account-error-not-found.png",
	"06-account-application-revoked.png",
	"07-error-unknown-client.png",
	"08-error-bad-redirect-uri.png",
	"09-error-authorization-failed.png",
	"10-signed-out.png",
	"11-error-sign-in-denied.png",
	"12-error-sign-in-form-expired.png",
	"13-error-unknown-provider.png",
	"14-error-provider-unreachable.png",
	"15-error-provider-timeout.png",
	"16-error-too-many-requests.png",
}

// pagesOAuth replaces the example's mcp_oauth with two providers — its
// development sign-in and the local OpenID provider — so that signing
// in starts at the picker, and a policy that lets ada@example.com grant
// every scope and nobody else in.
func pagesOAuth(t *testing.T, example, issuer string) string {
	t.Helper()
	return replaceOAuth(t, example, "\tmcp_oauth {\n\t\tlogin dev\n"+
		"\t\tlogin oidc test {\n\t\t\tissuer "+issuer+"\n\t\t\tclient_id "+resilOPClient+
		"\n\t\t\tclient_secret {env.CADDYMCP_E2E_OP_SECRET}\n\t\t\tlabel \"Test Identity Provider\"\n\t\t}\n"+
		"\t\tallow email ada@example.com\n\t}\n")
}

// outageOAuth replaces the example's mcp_oauth with two OpenID providers
// that cannot sign anyone in: down at a closed port, slow at a port that
// accepts connections and never answers.
func outageOAuth(t *testing.T, example string, closed, stalled int) string {
	t.Helper()
	provider := func(name, label string, port int) string {
		return fmt.Sprintf("\t\tlogin oidc %s {\n\t\t\tissuer http://127.0.0.1:%d\n\t\t\tclient_id caddymcp-e2e\n"+
			"\t\t\tclient_secret {env.CADDYMCP_E2E_OP_SECRET}\n\t\t\tlabel %q\n\t\t}\n", name, port, label)
	}
	return replaceOAuth(t, example, "\tmcp_oauth {\n"+provider("down", "Example ID", closed)+provider("slow", "Example Accounts", stalled)+
		"\t\tallow email ada@example.com\n\t}\n")
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// stallingPort returns a loopback port that accepts connections and never
// answers on them, until the test ends.
func stallingPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().(*net.TCPAddr).Port
}

// TestEveryPageAccessible walks, in headless Chromium (node pages.mjs),
// every page a person sees on a host: the provider picker, the consent
// page, the account page with two applications and two sessions, and
// each error page — authorization requests refused, sign-in denied by
// the policy, a forged form, a provider that is down or too slow, the
// rate limit. Each is screenshotted into
// .cache/test-artifacts/pages/, and fails the test on any WCAG 2.x A/AA
// violation axe-core finds (light and dark colour schemes) or a link,
// button or field that Tab does not reach with a visible focus.
func TestEveryPageAccessible(t *testing.T) {
	ct := needClientTools(t)
	started := time.Now()
	artifacts := repoFile(t, filepath.Join(".cache", "test-artifacts", "pages"))
	if err := os.RemoveAll(artifacts); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	example := exampleText(t)

	t.Log("step 1: start the host (Caddyfile.example with development sign-in and an OpenID provider) and a host whose providers are down and stalled")
	op := startOIDC(t)
	in := newInstance(t, "", "CADDYMCP_E2E_OP_SECRET="+resilOPSecret)
	in.startWith(pagesOAuth(t, example, op.Issuer))
	outage := newInstance(t, "", "CADDYMCP_E2E_OP_SECRET="+resilOPSecret)
	outage.startWith(outageOAuth(t, example, closedPort(t), stallingPort(t)))

	t.Log("step 2: walk every page (node pages.mjs)")
	env := append([]string{"BASE_URL=" + in.base(), "OUTAGE_URL=" + outage.base(),
		"UNREACHABLE_PROVIDER=down", "SLOW_PROVIDER=slow",
		"LOGIN_EMAIL=ada@example.com", "LOGIN_NAME=Ada Lovelace", "DENIED_EMAIL=mallory@example.net",
		"CHROMIUM=" + ct.chromium, "ARTIFACTS_DIR=" + artifacts, "STEP_PREFIX=2."}, nodeEnv(in)...)
	if _, err := runNode(t, ct, ct.dir, "pages | ", 3*time.Minute, env, "pages.mjs"); err != nil {
		t.Fatalf("pages.mjs failed (%v); its steps and the browser's navigations are above, screenshots in %s", err, artifacts)
	}

	t.Log("step 3: every page was screenshotted, and the screenshots are real pictures")
	b, err := os.ReadFile(filepath.Join(artifacts, "pages.json"))
	var index []struct {
		File   string `json:"file"`
		Status int    `json:"status"`
		Title  string `json:"title"`
	}
	if err == nil {
		err = json.Unmarshal(b, &index)
	}
	if err != nil {
		t.Fatalf("pages.json: %v", err)
	}
	var files []string
	for _, p := range index {
		files = append(files, p.File)
	}
	if !slices.Equal(files, everyPage) {
		t.Errorf("pages.mjs screenshotted\n\t%s\nwant\n\t%s", strings.Join(files, "\n\t"), strings.Join(everyPage, "\n\t"))
	}
	for _, p := range index {
		checkScreenshot(t, filepath.Join(artifacts, p.File))
	}
	t.Logf("every page stage: %d pages in %v", len(index), time.Since(started).Round(100*time.Millisecond))
}
