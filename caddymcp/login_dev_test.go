package caddymcp

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// validateJSON provisions a JSON config the way `caddy validate` does and
// returns the error.
func validateJSON(t *testing.T, cfgJSON []byte) error {
	t.Helper()
	var cfg caddy.Config
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatalf("%v in %s", err, cfgJSON)
	}
	return caddy.Validate(&cfg)
}

// wantDevRefusal checks err against want: "" for none, else a part of
// the refusal, which always names the directive and what is allowed.
func wantDevRefusal(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("refused: %v", err)
	case want == "":
	case err == nil:
		t.Fatalf("accepted, want a refusal about %q", want)
	case !strings.Contains(err.Error(), "mcp_oauth: login dev is for development only: ") ||
		!strings.Contains(err.Error(), want) || !strings.HasSuffix(err.Error(), devAllowed):
		t.Fatalf("error %q, want the login dev refusal about %q", err, want)
	}
}

// TestDevLoginLoopbackCaddyfile adapts and validates Caddyfiles with
// `login dev`: only a site that listens and answers on loopback alone
// loads.
func TestDevLoginLoopbackCaddyfile(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	const dev = "\tmcp_oauth {\n\t\tlogin dev\n\t\tallow *\n\t}\n"
	tests := []struct {
		name, global, sites, want string
	}{
		{"localhost bound to localhost", "", "localhost:8443 {\n\tbind localhost\n" + dev + "}\n", ""},
		{"the example's shape", "https_port 8443", "localhost {\n\tbind localhost\n" + dev + "}\n", ""},
		{"IPv4 and IPv6 loopback", "", "127.0.0.1:8443, [::1]:8443 {\n\tbind 127.0.0.1 [::1]\n" + dev + "}\n", ""},
		{"plain http", "", "http://localhost:9 {\n\tbind 127.0.0.1\n" + dev + "}\n", ""},
		{"default_bind", "default_bind localhost", "localhost:8443 {\n" + dev + "}\n", ""},
		{"issuer on loopback", "", "localhost:8443 {\n\tbind localhost\n\tmcp_oauth {\n\t\tissuer https://127.0.0.1:8443\n\t\tlogin dev\n\t\tallow *\n\t}\n}\n", ""},
		{"a public site without login dev", "", "http://mcp.example.com:9 {\n\tmcp_oauth\n}\nlocalhost:8443 {\n\tbind localhost\n" + dev + "}\n", ""},

		{"no bind", "", "localhost:8443 {\n" + dev + "}\n", "the site listens on :8443, on every network interface; bind it to loopback (bind localhost)"},
		{"bind to every IPv4 address", "", "localhost:8443 {\n\tbind 0.0.0.0\n" + dev + "}\n", "the site listens on 0.0.0.0:8443"},
		{"bind to every IPv6 address", "", "localhost:8443 {\n\tbind [::]\n" + dev + "}\n", "the site listens on [::]:8443"},
		{"bind to a LAN address too", "", "localhost:8443 {\n\tbind 127.0.0.1 192.168.1.10\n" + dev + "}\n", "the site listens on 192.168.1.10:8443"},
		{"bind to a Unix socket", "", "localhost:8443 {\n\tbind unix//run/caddymcp.sock\n" + dev + "}\n", "the site listens on unix//run/caddymcp.sock"},
		{"default_bind to every address", "default_bind 0.0.0.0", "localhost:8443 {\n" + dev + "}\n", "the site listens on 0.0.0.0:8443"},
		{"a public host", "", "example.com:8443 {\n\tbind localhost\n" + dev + "}\n", "the site answers to example.com"},
		{"localhost and a public host", "", "localhost:8443, example.com:8443 {\n\tbind localhost\n" + dev + "}\n", "the site answers to example.com"},
		{"no host", "", ":8443 {\n\tbind localhost\n" + dev + "}\n", "the site answers to any host name (it has no host, as in :8443)"},
		{"a wildcard host", "", "*.localhost:8443 {\n\tbind localhost\n" + dev + "}\n", "the site answers to *.localhost"},
		{"another site on the same server", "", "localhost:8443 {\n\tbind localhost\n" + dev + "}\nfoo.test:8443 {\n\tbind localhost\n\trespond ok\n}\n",
			"the site answers to foo.test"},
		{"a public issuer", "", "localhost:8443 {\n\tbind localhost\n\tmcp_oauth {\n\t\tissuer https://mcp.example.com\n\t\tlogin dev\n\t\tallow *\n\t}\n}\n",
			"the issuer is https://mcp.example.com"},
		{"a public issuer of the app", "caddymcp {\n\t\tissuer https://mcp.example.com\n\t}", "localhost:8443 {\n\tbind localhost\n" + dev + "}\n",
			"the issuer is https://mcp.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			global := "\tadmin off\n\tskip_install_trust\n"
			if tt.global != "" {
				global += "\t" + tt.global + "\n"
			}
			src := "{\n" + global + "}\n" + tt.sites
			cfgJSON, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), nil)
			if err != nil || len(warnings) > 0 {
				t.Fatalf("adapting: %v %v\n%s", err, warnings, src)
			}
			wantDevRefusal(t, validateJSON(t, cfgJSON), tt.want)
		})
	}
}

// TestDevLoginLoopbackJSON validates JSON configs with the development
// sign-in, which no Caddyfile adapter checked.
func TestDevLoginLoopbackJSON(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("CADDYMCP_TEST_DEV_HOST", "mcp.example.com")
	t.Setenv("CADDYMCP_TEST_DEV_LOCAL", "localhost")
	const oauth = `{"handler": "mcp_oauth", "login": [{"dev": true}], "allow": [{"everyone": true}]}`
	site := func(match string) string {
		return `{"match": ` + match + `, "handle": [{"handler": "subroute", "routes": [{"handle": [` + oauth + `]}]}], "terminal": true}`
	}
	const respond = `{"handle": [{"handler": "static_response", "body": "ok"}]}`
	tests := []struct {
		name, listen, routes, errors, want string
	}{
		{"loopback", `["127.0.0.1:9"]`, site(`[{"host": ["localhost", "127.0.0.1"]}]`), "", ""},
		{"IPv6 loopback", `["tcp6/[::1]:9", "localhost:9"]`, site(`[{"host": ["::1"]}]`), "", ""},
		{"directly in the server's routes", `["127.0.0.1:9"]`, `{"match": [{"host": ["localhost"]}], "handle": [` + oauth + `]}`, "", ""},
		{"a placeholder for localhost", `["127.0.0.1:9"]`, site(`[{"host": ["{env.CADDYMCP_TEST_DEV_LOCAL}"]}]`), "", ""},
		{"loopback error routes", `["127.0.0.1:9"]`, site(`[{"host": ["localhost"]}]`), `{"match": [{"host": ["localhost"]}], "handle": [` + oauth + `]}`, ""},
		{"a host matcher that matches nothing", `["127.0.0.1:9"]`, site(`[{"host": ["localhost"]}]`) + `, {"match": [{"host": []}], "handle": [{"handler": "static_response"}]}`, "", ""},

		{"every interface", `[":9"]`, site(`[{"host": ["localhost"]}]`), "", "the site listens on :9, on every network interface"},
		{"a range on every interface", `[":9-10"]`, site(`[{"host": ["localhost"]}]`), "", "the site listens on :9-10, on every network interface"},
		{"a public address", `["127.0.0.1:9", "203.0.113.7:9"]`, site(`[{"host": ["localhost"]}]`), "", "the site listens on 203.0.113.7:9"},
		{"a loopback address beyond 127.0.0.1", `["127.0.0.2:9"]`, site(`[{"host": ["localhost"]}]`), "", "the site listens on 127.0.0.2:9"},
		{"a file descriptor", `["fd/3"]`, site(`[{"host": ["localhost"]}]`), "", "the site listens on fd/3"},
		{"no matcher", `["127.0.0.1:9"]`, `{"handle": [` + oauth + `]}`, "", "the site answers to any host name (it has no host"},
		{"a matcher set without a host", `["127.0.0.1:9"]`, site(`[{"host": ["localhost"]}, {"path": ["/oauth/*"]}]`), "", "a route matches without a host"},
		{"a public host", `["127.0.0.1:9"]`, site(`[{"host": ["localhost", "mcp.example.com"]}]`), "", "the site answers to mcp.example.com"},
		{"a placeholder host", `["127.0.0.1:9"]`, site(`[{"host": ["{env.CADDYMCP_TEST_DEV_HOST}"]}]`), "", "the site answers to mcp.example.com"},
		{"a request placeholder host", `["127.0.0.1:9"]`, site(`[{"host": ["{http.request.header.X-Host}"]}]`), "", "the site answers to {http.request.header.X-Host}"},
		{"a catch-all route beside the site", `["127.0.0.1:9"]`, site(`[{"host": ["localhost"]}]`) + ", " + respond, "", "the site answers to any host name"},
		{"error routes for any host", `["127.0.0.1:9"]`, site(`[{"host": ["localhost"]}]`), respond, "the site answers to any host name"},
		{"error routes for a public host", `["127.0.0.1:9"]`, site(`[{"host": ["localhost"]}]`),
			`{"match": [{"host": ["mcp.example.com"]}], "handle": [` + oauth + `]}`, "the site answers to mcp.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := `"listen": ` + tt.listen + `, "routes": [` + tt.routes + `]`
			if tt.errors != "" {
				srv += `, "errors": {"routes": [` + tt.errors + `]}`
			}
			cfg := `{"admin": {"disabled": true}, "apps": {"http": {"servers": {"srv0": {` + srv + `}}}}}`
			wantDevRefusal(t, validateJSON(t, []byte(cfg)), tt.want)
		})
	}

	for _, tt := range []struct{ name, login, want string }{
		{"another name", `{"name": "local", "dev": true}`, `the development sign-in is named "dev", not "local"`},
		{"an issuer", `{"dev": true, "issuer": "https://accounts.google.com"}`, "login dev takes no issuer, client_id, client_secret or scopes"},
		{"a client id", `{"dev": true, "client_id": "x"}`, "login dev takes no issuer"},
		{"without allow", `{"dev": true}`, "no allow rule"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			allow := `, "allow": [{"everyone": true}]`
			if tt.name == "without allow" {
				allow = ""
			}
			cfg := `{"admin": {"disabled": true}, "apps": {"http": {"servers": {"srv0": {"listen": ["127.0.0.1:9"], "routes": [` +
				`{"match": [{"host": ["localhost"]}], "handle": [{"handler": "mcp_oauth", "login": [` + tt.login + `]` + allow + `}]}]}}}}}`
			err := validateJSON(t, []byte(cfg))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one about %q", err, tt.want)
			}
		})
	}
}

// TestDevLoginWarns checks that an accepted development sign-in logs a
// warning, and a refused one does not get that far.
func TestDevLoginWarns(t *testing.T) {
	o := &OAuthServer{Login: []LoginProvider{{Name: "dev", Dev: true}}}
	with := func(srv *caddyhttp.Server) caddy.Context {
		ctx := caddyCtx()
		if srv != nil {
			ctx.Context = context.WithValue(ctx.Context, caddyhttp.ServerCtxKey, srv)
		}
		return ctx
	}
	loopback := &caddyhttp.Server{Listen: []string{"localhost:8443"},
		Routes: caddyhttp.RouteList{{MatcherSets: caddyhttp.MatcherSets{{&caddyhttp.MatchHost{"localhost"}}}}}}
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	if err := o.checkDevLogin(with(loopback), "", log); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, "level=WARN") ||
		!strings.Contains(out, "development sign-in is enabled (login dev): anyone who can reach this host can sign in as any email address") ||
		!strings.Contains(out, "localhost:8443") {
		t.Errorf("no warning: %q", out)
	}

	buf.Reset()
	public := &caddyhttp.Server{Listen: []string{":8443"}, Routes: loopback.Routes}
	wantDevRefusal(t, o.checkDevLogin(with(public), "", log), "on every network interface")
	wantDevRefusal(t, o.checkDevLogin(with(nil), "", log), "it is not in a site of the http app")
	if buf.Len() != 0 {
		t.Errorf("a refused development sign-in logged %q", buf.String())
	}

	// Without login dev, nothing is checked or logged.
	if err := (&OAuthServer{}).checkDevLogin(with(public), "", log); err != nil || buf.Len() != 0 {
		t.Errorf("without login dev: %v %q", err, buf.String())
	}
}
