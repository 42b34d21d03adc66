//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dpopResult is what dpop-flow.mjs hands back.
type dpopResult struct {
	Version              string `json:"oauth4webapi_version"`
	Challenge            string `json:"challenge"`
	JKT                  string `json:"jkt"`
	TokenType            string `json:"token_type"`
	CodeNonceRetries     int    `json:"code_nonce_retries"`
	RefreshNonceRetries  int    `json:"refresh_nonce_retries"`
	Tools                int    `json:"tools"`
	RefreshedAccessToken string `json:"refreshed_access_token"`
}

// withDPoPNonces makes mcp_oauth demand a server nonce in every DPoP
// proof.
func withDPoPNonces(t *testing.T, config string) string {
	t.Helper()
	const open = "\n\tmcp_oauth {\n"
	if !strings.Contains(config, open) {
		t.Fatalf("the configuration has no mcp_oauth block:\n%s", config)
	}
	return strings.Replace(config, open, open+"\t\tdpop {\n\t\t\tnonce required\n\t\t}\n", 1)
}

// TestDPoP runs oauth4webapi, an OAuth client library with DPoP support
// (RFC 9449), against the real binary over HTTPS, on Caddyfile.example
// with its upstream login replaced by oidc-provider and DPoP nonces
// required: dynamic registration, authorization with dpop_jkt in
// Chromium, the code exchange through the nonce the server asks for,
// tools/list and tools/call with DPoP, the refusals of a replayed proof,
// of the token sent as a bearer token and of a proof of another key, and
// a DPoP refresh. The test then checks from Go what the wire shows.
func TestDPoP(t *testing.T) {
	ct := needClientTools(t)
	if _, err := os.Stat(filepath.Join(ct.dir, "node_modules", "oauth4webapi", "package.json")); err != nil {
		msg := "the DPoP test needs the npm package oauth4webapi in " + ct.dir + "/node_modules (npm ci)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip("\n!! SKIPPED: " + msg)
	}
	started := time.Now()
	artifacts := repoFile(t, filepath.Join(".cache", "test-artifacts", "dpop"))
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	t.Log("step 1: start oidc-provider (node op.mjs) as the upstream login")
	in := newInstance(t, "", "CADDYMCP_E2E_OP_SECRET="+opSecret)
	op := startOP(t, ct, fmt.Sprintf("https://localhost:%d/auth/callback/test", in.httpsPort))

	t.Log("step 2: start Caddy on Caddyfile.example with that login and `dpop { nonce required }`")
	in.startWith(withDPoPNonces(t, withLogin(t, exampleText(t), op.issuer)))

	t.Log("step 3: oauth4webapi through the whole flow with DPoP (node dpop-flow.mjs)")
	var res dpopResult
	runFlowScript(t, ct, in, op, artifacts, "dpop-flow.mjs", "its steps and HTTP trace are above", &res)
	if res.RefreshedAccessToken == "" {
		t.Fatalf("dpop-flow.mjs result without the refreshed token: %+v", res)
	}
	if res.TokenType != "dpop" || res.CodeNonceRetries != 1 || res.RefreshNonceRetries != 0 || res.Tools == 0 {
		t.Errorf("result %+v", res)
	}
	t.Logf("        oauth4webapi %s: token_type %s, %d nonce retry at the code exchange, %d at the refresh, %d tools",
		res.Version, res.TokenType, res.CodeNonceRetries, res.RefreshNonceRetries, res.Tools)

	t.Log("step 4: what Go sees on the wire")
	// The metadata advertises DPoP.
	var meta map[string]any
	in.getJSON("/.well-known/oauth-authorization-server", &meta)
	if algs, _ := meta["dpop_signing_alg_values_supported"].([]any); len(algs) == 0 || algs[0] != "ES256" {
		t.Errorf("dpop_signing_alg_values_supported = %v", meta["dpop_signing_alg_values_supported"])
	}
	var prm map[string]any
	in.getJSON("/.well-known/oauth-protected-resource/mcp", &prm)
	if prm["dpop_bound_access_tokens_required"] != false || prm["dpop_signing_alg_values_supported"] == nil {
		t.Errorf("protected resource metadata %v", prm)
	}
	// Without a token: two challenges, Bearer first.
	r, _ := in.send("POST", "/mcp", map[string]string{"Content-Type": "application/json"}, "{}")
	if ch := r.Header.Values("WWW-Authenticate"); r.StatusCode != 401 || len(ch) != 2 ||
		!strings.HasPrefix(ch[0], `Bearer resource_metadata="`+in.base()+`/.well-known/oauth-protected-resource/mcp"`) ||
		!strings.HasPrefix(ch[1], "DPoP ") || !strings.Contains(ch[1], `algs="ES256`) {
		t.Errorf("401 without a token: %d %q", r.StatusCode, ch)
	}
	// The refreshed token is DPoP-bound: as a bearer token it is refused.
	r, body := in.send("POST", "/mcp", map[string]string{"Authorization": "Bearer " + res.RefreshedAccessToken,
		"Content-Type": "application/json", "Accept": "application/json, text/event-stream"},
		`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`)
	if r.StatusCode != 401 || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) ||
		!strings.Contains(string(body), "DPoP-bound") {
		t.Errorf("the DPoP-bound token as a bearer token: %d %q %s", r.StatusCode, r.Header.Values("WWW-Authenticate"), body)
	}
	// And with the DPoP scheme but no proof, too.
	r, _ = in.send("POST", "/mcp", map[string]string{"Authorization": "DPoP " + res.RefreshedAccessToken,
		"Content-Type": "application/json"}, `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`)
	if r.StatusCode != 401 || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "DPoP ") ||
		!strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_dpop_proof"`) {
		t.Errorf("DPoP scheme without a proof: %d %q", r.StatusCode, r.Header.Values("WWW-Authenticate"))
	}
	t.Logf("DPoP stage: %v", time.Since(started).Round(100*time.Millisecond))
}
