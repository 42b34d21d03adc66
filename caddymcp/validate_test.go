package caddymcp

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// validateConfig provisions (and cleans up) a config without starting it,
// as `caddy validate` does.
func validateConfig(t *testing.T, cfgJSON []byte) {
	t.Helper()
	var cfg caddy.Config
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&cfg); err != nil {
		t.Fatalf("validating: %v", err)
	}
}

// caddyCtx is a context without a config, for modules that need none.
func caddyCtx() caddy.Context {
	ctx, _ := caddy.NewContext(caddy.Context{Context: context.Background()})
	return ctx
}
