package tools_test

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/tools"
)

// TestObserve checks that every tool call is reported with its outcome,
// over JSON-RPC and the REST view.
func TestObserve(t *testing.T) {
	s := embeddedStore(t, filepath.Join(t.TempDir(), "o.db"))
	var (
		mu   sync.Mutex
		seen []string
	)
	srv, err := tools.New(tools.Config{Shop: s, Observe: func(tool, outcome string, _ time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, tool+" "+outcome)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	e := &env{t: t, srv: srv, h: srv}
	e.mustCall("products_list", map[string]any{})
	e.call("products_get", map[string]any{"id": "nope"}, allScopes)
	e.call("products_create", map[string]any{"sku": ""}, allScopes)
	e.rpc("tools/call", map[string]any{"name": "products_create", "arguments": map[string]any{}}, []string{"product:read"})
	e.request("POST", "/mcp/tools/product/list", `{}`, allScopes, nil)
	e.request("POST", "/mcp/tools/product/create", `{}`, []string{"product:read"}, nil)
	want := []string{"products_list ok", "products_get tool_error", "products_create invalid", "products_create forbidden",
		"products_list ok", "products_create forbidden"}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != len(want) {
		t.Fatalf("observed %q, want %q", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("observed %q, want %q", seen, want)
		}
	}
}
