//go:build e2e

package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// TestLegacyTokenCommand creates a legacy token with `caddy mcp-token`
// against the embedded store of a running host whose mcp_bearer accepts
// them, calls a tool with it, and revokes it.
func TestLegacyTokenCommand(t *testing.T) {
	example := exampleText(t)
	config := strings.Replace(example, `resource_name "caddymcp example"`, "resource_name \"caddymcp example\"\n\t\tlegacy_tokens", 1)
	if config == example {
		t.Fatal("Caddyfile.example has no resource_name line to extend")
	}
	in := newInstance(t, config)
	in.start()

	out, err := in.run("mcp-token", "create", "--user", "ops@example.com", "--scope", "product:read", "--name", "e2e")
	if err != nil {
		t.Fatalf("mcp-token create: %v\n%s", err, out)
	}
	var token, id string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "mcpat_") {
			token = line
		}
		if f := strings.Fields(line); len(f) > 3 && f[0] == "created" {
			id = f[3]
		}
	}
	if token == "" || id == "" {
		t.Fatalf("no token or id in:\n%s", out)
	}
	call := func(tool string) *http.Response {
		body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + tool + `","arguments":{}}}`
		res, _ := in.send("POST", "/mcp", map[string]string{"Authorization": "Bearer " + token,
			"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}, body)
		return res
	}
	if res := call("products_list"); res.StatusCode != 200 {
		t.Fatalf("tools/call with a legacy token: %d", res.StatusCode)
	}
	if res := call("products_create"); res.StatusCode != 403 || !strings.Contains(res.Header.Get("WWW-Authenticate"), "insufficient_scope") {
		t.Fatalf("write tool with a read-only legacy token: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	out, err = in.run("mcp-token", "list", "--user", "ops@example.com")
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, "active") || strings.Contains(out, token) {
		t.Fatalf("mcp-token list: %v\n%s", err, out)
	}
	out, err = in.run("mcp-token", "revoke", id)
	if err != nil || !strings.Contains(out, "revoked "+id) {
		t.Fatalf("mcp-token revoke: %v\n%s", err, out)
	}
	if out, err := in.run("mcp-token", "revoke", id); err == nil {
		t.Fatalf("second revoke succeeded:\n%s", out)
	}
}
