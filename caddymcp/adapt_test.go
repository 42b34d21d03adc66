package caddymcp

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

var update = flag.Bool("update", false, "rewrite the expected JSON of the adapt golden files")

const goldenSeparator = "\n----------\n"

// TestCaddyfileAdapt adapts each testdata/caddyfile_adapt/*.caddyfiletest:
// a Caddyfile, a line of dashes, then either the expected JSON or, when it
// does not start with '{', a substring of the expected error.
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob("testdata/caddyfile_adapt/*.caddyfiletest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".caddyfiletest"), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			input, expected, ok := strings.Cut(string(raw), goldenSeparator)
			if !ok {
				t.Fatalf("%s has no separator line", file)
			}
			input += "\n"
			expected = strings.TrimSpace(expected)
			got, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), map[string]any{"filename": "Caddyfile"})
			if expected != "" && !strings.HasPrefix(expected, "{") {
				if err == nil || !strings.Contains(err.Error(), expected) {
					t.Fatalf("error = %v, want it to contain %q", err, expected)
				}
				return
			}
			if err != nil {
				t.Fatalf("adapting: %v", err)
			}
			if len(warnings) > 0 {
				t.Errorf("warnings: %+v", warnings)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, got, "", "\t"); err != nil {
				t.Fatal(err)
			}
			if *update {
				out := strings.TrimSuffix(input, "\n") + goldenSeparator + pretty.String() + "\n"
				if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !jsonEqual(t, got, []byte(expected)) {
				t.Errorf("adapted JSON differs from %s (go test -run TestCaddyfileAdapt -update rewrites it):\n%s", file, pretty.String())
			}
		})
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("got invalid JSON: %v", err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("expected invalid JSON: %v", err)
	}
	return reflect.DeepEqual(x, y)
}

// TestCaddyfileExample checks that Caddyfile.example is formatted, adapts
// without warnings, and validates (which provisions every module).
func TestCaddyfileExample(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	src, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	if formatted := caddyfile.Format(src); !bytes.Equal(formatted, src) {
		t.Errorf("Caddyfile.example is not formatted; caddy fmt gives:\n%s", formatted)
	}
	cfgJSON, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": "Caddyfile.example"})
	if err != nil {
		t.Fatalf("adapting Caddyfile.example: %v", err)
	}
	if len(warnings) > 0 {
		t.Errorf("adapting Caddyfile.example: warnings %+v", warnings)
	}
	validateConfig(t, cfgJSON)
	// Validation must not create the store: no writes before Start.
	if _, err := os.Stat(filepath.Join(os.Getenv("XDG_DATA_HOME"), "caddy", "caddymcp")); !os.IsNotExist(err) {
		t.Errorf("validating created the store folder (err %v)", err)
	}
}

// TestCaddyfileExampleProduction uncomments the production block at the
// end of Caddyfile.example and checks that it is formatted, adapts with
// the environment variables it documents, keeps the secrets as
// placeholders, and validates.
func TestCaddyfileExampleProduction(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	for k, v := range map[string]string{
		"MCP_ISSUER":               "https://mcp.example.com",
		"MCP_GOOGLE_CLIENT_ID":     "1234.apps.googleusercontent.com",
		"MCP_GOOGLE_CLIENT_SECRET": "google-Secret-Value",
		"DATABASE_URL":             "postgres://caddymcp:db-Secret-Value@db.example.com:5432/caddymcp",
		"ALLOWED_ORIGINS":          "https://app.example.com https://inspector.example.com",
	} {
		t.Setenv(k, v)
	}
	src, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(src), "\n#{\n")
	if !ok {
		t.Fatal("Caddyfile.example has no commented production block (a line \"#{\")")
	}
	var prod strings.Builder
	prod.WriteString("{\n")
	for _, line := range strings.Split(strings.TrimSuffix(block, "\n"), "\n") {
		if !strings.HasPrefix(line, "#") {
			t.Fatalf("the production block has a line that is not commented out: %q", line)
		}
		prod.WriteString(line[1:] + "\n")
	}
	text := []byte(prod.String())
	if formatted := caddyfile.Format(text); !bytes.Equal(formatted, text) {
		t.Errorf("the production block is not formatted; caddy fmt gives:\n%s", formatted)
	}
	cfgJSON, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(text, map[string]any{"filename": "production"})
	if err != nil || len(warnings) > 0 {
		t.Fatalf("adapting the production block: %v %+v\n%s", err, warnings, text)
	}
	for _, want := range []string{`"database":"{env.DATABASE_URL}"`, `"issuer":"{env.MCP_ISSUER}"`, `"host":["mcp.example.com"]`,
		`"client_id":"{env.MCP_GOOGLE_CLIENT_ID}"`, `"client_secret":"{env.MCP_GOOGLE_CLIENT_SECRET}"`,
		`"allowed_origins":["https://app.example.com","https://inspector.example.com"]`} {
		if !bytes.Contains(cfgJSON, []byte(want)) {
			t.Errorf("the adapted production block lacks %s:\n%s", want, cfgJSON)
		}
	}
	if bytes.Contains(cfgJSON, []byte("Secret-Value")) || bytes.Contains(cfgJSON, []byte(`"dev"`)) {
		t.Errorf("the adapted production block holds a secret or the development sign-in:\n%s", cfgJSON)
	}
	validateConfig(t, cfgJSON)
}

// TestBrokenCaddyfileNamesFileAndLine makes sure an operator's mistake is
// reported with its location.
func TestBrokenCaddyfileNamesFileAndLine(t *testing.T) {
	for name, src := range map[string]string{
		"unknown subdirective": "localhost {\n\tmcp_oauth {\n\t\tissuerr https://x\n\t}\n}\n",
		"missing argument":     "{\n\tcaddymcp {\n\t\tdatabase\n\t}\n}\nlocalhost {\n\tmcp_oauth\n}\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), map[string]any{"filename": "Broken.caddyfile"})
			if err == nil || !strings.Contains(err.Error(), "Broken.caddyfile:3") {
				t.Fatalf("error = %v, want it to name Broken.caddyfile:3", err)
			}
		})
	}
}
