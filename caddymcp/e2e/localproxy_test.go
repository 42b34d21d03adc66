//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testflow"
)

// localProxyCaddyfile is a second Caddy standing in for a tunnel or TLS
// terminator on the same machine (cloudflared, a sidecar, a load
// balancer): it listens on plain HTTP at 127.0.0.1 and forwards to the
// product's Caddy at 127.0.0.1 with the public Host.
func localProxyCaddyfile(productPort int, productCA string) string {
	return fmt.Sprintf(`{
	http_port {$CADDYMCP_HTTP_PORT}
	https_port {$CADDYMCP_HTTPS_PORT}
	admin {$CADDYMCP_ADMIN}
	auto_https off
}

http://127.0.0.1:{$CADDYMCP_HTTP_PORT} {
	bind 127.0.0.1
	reverse_proxy https://127.0.0.1:%[1]d {
		header_up Host %[2]s:%[1]d
		transport http {
			tls_server_name %[2]s
			tls_trust_pool file %[3]s
		}
	}
}
`, productPort, proxyHost, productCA)
}

// TestMCPBehindLocalProxy puts a second Caddy on loopback in front of
// Caddyfile.example served as mcp.example.com (security finding 10): the
// product receives every request on a loopback socket with the public
// Host, and a tool call through the front must be answered, not refused
// with mcp-go's "403 invalid Host header". A foreign browser Origin is
// still refused by mcp_tools.
func TestMCPBehindLocalProxy(t *testing.T) {
	op := startOIDC(t)
	config := withLogin(t, exampleText(t), op.Issuer)
	for old, repl := range map[string]string{
		"\nlocalhost {\n":    "\n" + proxyHost + " {\n\ttls internal\n",
		"\tbind localhost\n": "\tbind 127.0.0.1\n",
	} {
		if !strings.Contains(config, old) {
			t.Fatalf("Caddyfile.example no longer contains %q", old)
		}
		config = strings.Replace(config, old, repl, 1)
	}
	product := newInstance(t, config, "CADDYMCP_E2E_OP_SECRET="+resilOPSecret)
	base, _, roots := startProxyHost(t, product)

	// A token for the product's /mcp, through the flow at the product.
	b := testflow.NewBrowser(t, roots)
	b.Client.Transport.(*http.Transport).DialContext = proxyDial
	clientID := b.Register(base, "Local proxy client", resilRedirect)
	q := testflow.NewRequest(base, clientID, resilRedirect, "booking:read product:read", base+"/mcp")
	tokens := b.Redeem(q, b.Approve(q, b.ConsentPage(q)))
	if tokens.Scope != "booking:read product:read" {
		t.Fatalf("granted scope %q", tokens.Scope)
	}

	frontConfig := localProxyCaddyfile(product.httpsPort, product.rootCA())
	t.Logf("front Caddyfile:\n%s", frontConfig)
	front := newInstance(t, frontConfig)
	front.launch()
	frontURL := fmt.Sprintf("http://127.0.0.1:%d", front.httpPort)
	c := &http.Client{Timeout: 10 * time.Second}
	front.await(30*time.Second, frontURL, func() bool {
		res, err := c.Get(frontURL + "/.well-known/oauth-authorization-server")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})

	const call = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"products_list","arguments":{}}}`
	t.Run("tools/call through the front", func(t *testing.T) {
		res, body := proxyPost(t, c, frontURL+"/mcp", tokens.AccessToken, nil, call)
		if res.StatusCode != 200 {
			t.Fatalf("status %d, want 200: %s", res.StatusCode, body)
		}
		var msg struct {
			Result struct {
				IsError           bool           `json:"isError"`
				StructuredContent map[string]any `json:"structuredContent"`
			} `json:"result"`
		}
		if err := json.Unmarshal(body, &msg); err != nil || msg.Result.IsError || msg.Result.StructuredContent["products"] == nil {
			t.Fatalf("products_list: %v %s", err, body)
		}
	})

	t.Run("mcp-go client through the front", func(t *testing.T) {
		testflow.MCPClientCalls(t, frontURL+"/mcp", tokens.AccessToken, c)
	})

	t.Run("foreign Origin still refused", func(t *testing.T) {
		res, body := proxyPost(t, c, frontURL+"/mcp", tokens.AccessToken, http.Header{"Origin": {"https://evil.example"}}, call)
		if res.StatusCode != 403 || !strings.Contains(string(body), `"forbidden"`) {
			t.Fatalf("status %d, want 403 from the Origin check: %s", res.StatusCode, body)
		}
	})

	t.Run("no token: 401", func(t *testing.T) {
		if res, _ := proxyPost(t, c, frontURL+"/mcp", "", nil, call); res.StatusCode != 401 {
			t.Fatalf("status %d, want 401", res.StatusCode)
		}
	})
}
