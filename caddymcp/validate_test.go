package caddymcp

import (
	"context"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// validateConfig provisions (and cleans up) a config without starting it,
// as `caddy validate` does.
func validateConfig(t *testing.T, cfgJSON []byte) {
	t.Helper()
	if err := validateErr(cfgJSON); err != nil {
		t.Fatalf("validating: %v", err)
	}
}

// caddyCtx is a context without a config, for modules that need none.
func caddyCtx() caddy.Context {
	ctx, _ := caddy.NewContext(caddy.Context{Context: context.Background()})
	return ctx
}

// TestOAuthConfigValidation provisions mcp_oauth configurations, good and
// bad, the way `caddy validate` does.
func TestOAuthConfigValidation(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("CADDYMCP_TEST_CLIENT_SECRET", "s3cret-value")
	t.Setenv("CADDYMCP_TEST_EMPTY", "")
	site := func(block string) string {
		return "{\n\tadmin off\n}\nhttp://localhost:9 {\n\tmcp_oauth {\n" + block + "\n\t}\n\tmcp_bearer /mcp*\n}\n"
	}
	tests := []struct {
		name, block, wantErr string
	}{
		{"static clients and registration", `
		registration {
			initial_access_token {env.CADDYMCP_TEST_CLIENT_SECRET}
			max_clients 5
		}
		client cli {
			secret {env.CADDYMCP_TEST_CLIENT_SECRET}
			redirect_uris http://127.0.0.1/cb
		}
		access_token_lifetime 24h`, ""},
		{"unset secret placeholder", `
		client cli {
			secret {env.CADDYMCP_TEST_EMPTY}
			redirect_uris http://127.0.0.1/cb
		}`, "client cli secret"},
		{"bad static redirect", `
		client cli {
			redirect_uris http://evil.example/cb
		}`, "http is allowed only for localhost"},
		{"login and policy", `
		login oidc corp {
			issuer https://login.corp.example
			client_id caddymcp
			client_secret {env.CADDYMCP_TEST_CLIENT_SECRET}
		}
		allow domain example.com`, ""},
		{"login without a rule", `
		login google {
			client_id x
			client_secret {env.CADDYMCP_TEST_CLIENT_SECRET}
		}`, "no allow rule"},
		{"rule without login", `allow *`, "need at least one login provider"},
		{"login secret unset", `
		login google {
			client_id x
			client_secret {env.CADDYMCP_TEST_EMPTY}
		}
		allow *`, "login google client_secret"},
		{"login over http to a remote host", `
		login oidc corp {
			issuer http://login.corp.example
			client_id x
		}
		allow *`, "https"},
		{"long access tokens", `access_token_lifetime 25h`, "at most 24h"},
		{"long codes", `code_lifetime 11m`, "10 minutes"},
		{"bad scope", `scopes "a b"`, "invalid scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfgJSON, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(site(tt.block)), nil)
			if err != nil {
				if tt.wantErr != "" && strings.Contains(err.Error(), tt.wantErr) {
					return
				}
				t.Fatalf("adapting: %v", err)
			}
			err = validateErr(cfgJSON)
			checkErr(t, err, tt.wantErr)
			if err != nil && strings.Contains(err.Error(), "s3cret-value") {
				t.Fatalf("error reveals a secret: %v", err)
			}
		})
	}
}
