package caddymcp

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestClientMetadataDocumentsValidation provisions mcp_oauth with client
// metadata document settings, as `caddy validate` does: from a Caddyfile,
// and from JSON that no Caddyfile check has seen.
func TestClientMetadataDocumentsValidation(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	caddyfile := func(block string) string {
		return "{\n\tadmin off\n}\nhttp://localhost:9 {\n\tmcp_oauth {\n" + block + "\n\t}\n}\n"
	}
	rawJSON := func(docs string) string {
		return `{"admin":{"disabled":true},"apps":{"http":{"servers":{"s":{"listen":["localhost:9"],` +
			`"routes":[{"handle":[{"handler":"mcp_oauth","client_metadata_documents":` + docs + `}]}]}}}}}`
	}
	tests := []struct {
		name, config, wantErr string
	}{
		{"allow-list and timeout", caddyfile(`
		client_metadata_documents {
			allow_domains claude.ai vscode.dev *.example.com
			timeout 10s
		}`), ""},
		{"allowed ports", caddyfile(`
		client_metadata_documents {
			allow_ports 8443 9443
		}`), ""},
		{"bad port", caddyfile(`
		client_metadata_documents {
			allow_ports 70000
		}`), "adapting"},
		{"bad port in JSON", rawJSON(`{"allow_ports":[0]}`), "allowed port 0 is not between 1 and 65535"},
		{"off", caddyfile(`client_metadata_documents off`), ""},
		{"timeout too long", caddyfile(`
		client_metadata_documents {
			timeout 31s
		}`), "timeout must be between 0 and 30s"},
		{"bad domain in JSON", rawJSON(`{"allow_domains":["claude.ai","https://vscode.dev"]}`), `"https://vscode.dev" is not a host name`},
		{"negative timeout in JSON", rawJSON(`{"timeout":-1}`), "timeout must be between 0 and 30s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfgJSON := []byte(tt.config)
			if !strings.HasPrefix(tt.config, `{"admin"`) {
				var err error
				if cfgJSON, _, err = caddyconfig.GetAdapter("caddyfile").Adapt(cfgJSON, nil); err != nil {
					if tt.wantErr == "adapting" {
						return
					}
					t.Fatalf("adapting: %v", err)
				}
			}
			checkErr(t, validateErr(cfgJSON), tt.wantErr)
		})
	}
}
