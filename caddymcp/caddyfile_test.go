package caddymcp

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

// Caddyfile bodies, after the option's or directive's name, that use
// every setting. The parsing tables check what they give; FuzzCaddyfile
// starts from them.
const (
	everyGlobalOption = ` {
	database {env.CADDYMCP_DATABASE_URL}
	max_conns 20
	issuer https://mcp.example.com
	scopes a:read a:write
	start_timeout 1m
	sweep_interval 5m
	client_retention 90d
	unused_client_retention 6h
	key_rotation 7d
	key_encryption_key {env.CADDYMCP_KEK}
	signing_algorithm EdDSA
}`
	everyOAuthSetting = ` {
	resources https://api.example.com/mcp /other
	registration {
		initial_access_token {env.REG_TOKEN}
		max_clients 50
		max_redirect_uris 3
		secret_lifetime 90d
	}
	client cli {
		secret {file./run/secrets/cli}
		name "Command line"
		redirect_uris http://127.0.0.1/cb https://app.example.com/cb
		scopes booking:read
	}
	client public {
		redirect_uris cursor://x/cb
	}
	code_lifetime 30s
	access_token_lifetime 15m
	refresh_token_lifetime 7d
	refresh_token_idle 1d
	refresh_grace 5s
	allowed_origins http://localhost:6274
}`
	oauthLoginAndPolicy = ` {
	login google {
		client_id {env.GOOGLE_ID}
		client_secret {env.GOOGLE_SECRET}
	}
	login oidc corp {
		issuer https://login.corp.example/realms/main
		client_id caddymcp
		client_secret {file./run/secrets/corp}
		scopes openid email
		label "Corp SSO"
	}
	allow domain example.com {
		scopes booking:read product:read
	}
	allow email admin@example.com boss@example.com
	allow hosted_domain example.org
	allow *
	session_idle 2h
	session_lifetime 3d
}`
	everyBearerSetting = ` {
	resource https://mcp.example.com/mcp
	authorization_server https://as.example.com https://as2.example.com
	scopes booking:read
	resource_name "Shop MCP"
	resource_documentation https://docs.example.com
}`
)

func TestParseGlobalOption(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    *App
		wantErr string
	}{
		{name: "no block", input: `caddymcp`, want: &App{}},
		{name: "empty block", input: "caddymcp {\n}", want: &App{}},
		{name: "everything", input: "caddymcp" + everyGlobalOption, want: &App{SigningAlgorithm: "EdDSA", SweepInterval: caddy.Duration(5 * time.Minute), ClientRetention: caddy.Duration(90 * 24 * time.Hour),
			UnusedClientRetention: caddy.Duration(6 * time.Hour), KeyRotation: caddy.Duration(7 * 24 * time.Hour), KeyEncryptionKey: "{env.CADDYMCP_KEK}", Database: "{env.CADDYMCP_DATABASE_URL}", MaxConns: 20, Issuer: "https://mcp.example.com",
			Scopes: []string{"a:read", "a:write"}, StartTimeout: caddy.Duration(time.Minute)}},
		{name: "embedded path", input: "caddymcp {\n embedded_path /var/lib/caddymcp.db\n}", want: &App{EmbeddedPath: "/var/lib/caddymcp.db"}},
		{name: "unknown subdirective", input: "caddymcp {\n databse x\n}", wantErr: "unrecognized subdirective 'databse', at Testfile:2"},
		{name: "missing argument", input: "caddymcp {\n database\n}", wantErr: "Testfile:2"},
		{name: "extra argument", input: "caddymcp {\n issuer a b\n}", wantErr: "unexpected argument 'b'"},
		{name: "twice", input: "caddymcp {\n issuer a\n issuer b\n}", wantErr: "issuer already specified"},
		{name: "bad max_conns", input: "caddymcp {\n max_conns lots\n}", wantErr: "not a non-negative integer"},
		{name: "bad duration", input: "caddymcp {\n start_timeout soon\n}", wantErr: "not a positive duration"},
		{name: "bad scope", input: "caddymcp {\n scopes a\"b\n}", wantErr: "invalid scope"},
		{name: "duplicate scope", input: "caddymcp {\n scopes a a\n}", wantErr: "listed twice"},
		{name: "both stores", input: "caddymcp {\n database x\n embedded_path y\n}", wantErr: "exclude each other"},
		{name: "inline argument", input: "caddymcp postgres://x", wantErr: "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := caddyfile.NewTestDispenser(tt.input)
			v, err := parseGlobalOption(d, nil)
			if checkErr(t, err, tt.wantErr) {
				return
			}
			want, err := json.Marshal(tt.want)
			if err != nil {
				t.Fatal(err)
			}
			if got := v.(httpcaddyfile.App).Value; !jsonEqual(t, got, want) {
				t.Errorf("got %s, want %s", got, want)
			}
		})
	}
	if _, err := parseGlobalOption(caddyfile.NewTestDispenser("caddymcp"), httpcaddyfile.App{}); err == nil {
		t.Error("a second caddymcp block was accepted")
	}
}

func TestUnmarshalHandlers(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		module  caddyfile.Unmarshaler
		want    any
		wantErr string
	}{
		{name: "oauth bare", input: "mcp_oauth", module: new(OAuthServer), want: &OAuthServer{}},
		{name: "oauth block", input: "mcp_oauth {\n issuer https://a.example\n scopes x y\n}", module: new(OAuthServer),
			want: &OAuthServer{Issuer: "https://a.example", Scopes: []string{"x", "y"}}},
		{name: "oauth everything", input: "mcp_oauth" + everyOAuthSetting, module: new(OAuthServer), want: &OAuthServer{
			Resources: []string{"https://api.example.com/mcp", "/other"},
			Registration: &Registration{InitialAccessToken: "{env.REG_TOKEN}", MaxClients: 50, MaxRedirectURIs: 3,
				SecretLifetime: caddy.Duration(90 * 24 * time.Hour)},
			Clients: []StaticClient{
				{ID: "cli", Secret: "{file./run/secrets/cli}", Name: "Command line",
					RedirectURIs: []string{"http://127.0.0.1/cb", "https://app.example.com/cb"}, Scopes: []string{"booking:read"}},
				{ID: "public", RedirectURIs: []string{"cursor://x/cb"}},
			},
			CodeLifetime: caddy.Duration(30 * time.Second), AccessTokenLifetime: caddy.Duration(15 * time.Minute),
			RefreshTokenLifetime: caddy.Duration(7 * 24 * time.Hour), RefreshTokenIdle: caddy.Duration(24 * time.Hour),
			RefreshGrace: caddy.Duration(5 * time.Second), AllowedOrigins: []string{"http://localhost:6274"},
		}},
		{name: "oauth registration off", input: "mcp_oauth {\n registration off\n}", module: new(OAuthServer),
			want: &OAuthServer{Registration: &Registration{Disabled: true}}},
		{name: "oauth registration bad", input: "mcp_oauth {\n registration maybe\n}", module: new(OAuthServer), wantErr: "takes 'off' or a block"},
		{name: "oauth registration twice", input: "mcp_oauth {\n registration off\n registration off\n}", module: new(OAuthServer), wantErr: "already specified"},
		{name: "oauth client without redirects", input: "mcp_oauth {\n client a {\n name A\n }\n}", module: new(OAuthServer), wantErr: "needs redirect_uris"},
		{name: "oauth client twice", input: "mcp_oauth {\n client a {\n redirect_uris https://a/cb\n }\n client a {\n redirect_uris https://a/cb\n }\n}", module: new(OAuthServer), wantErr: "declared twice"},
		{name: "oauth client unknown", input: "mcp_oauth {\n client a {\n redirect https://a/cb\n }\n}", module: new(OAuthServer), wantErr: "unrecognized subdirective 'redirect', at Testfile:3"},
		{name: "oauth bad duration", input: "mcp_oauth {\n code_lifetime forever\n}", module: new(OAuthServer), wantErr: "not a positive duration"},
		{name: "oauth login and policy", input: "mcp_oauth" + oauthLoginAndPolicy, module: new(OAuthServer), want: &OAuthServer{
			Login: []LoginProvider{
				{Name: "google", ClientID: "{env.GOOGLE_ID}", ClientSecret: "{env.GOOGLE_SECRET}"},
				{Name: "corp", Issuer: "https://login.corp.example/realms/main", ClientID: "caddymcp", ClientSecret: "{file./run/secrets/corp}",
					Scopes: []string{"openid", "email"}, Label: "Corp SSO"},
			},
			Allow: []AccessRule{
				{Domains: []string{"example.com"}, Scopes: []string{"booking:read", "product:read"}},
				{Emails: []string{"admin@example.com", "boss@example.com"}},
				{HostedDomains: []string{"example.org"}},
				{Everyone: true},
			},
			SessionIdle: caddy.Duration(2 * time.Hour), SessionLifetime: caddy.Duration(72 * time.Hour),
		}},
		{name: "oauth login unknown kind", input: "mcp_oauth {\n login github {\n client_id x\n }\n}", module: new(OAuthServer), wantErr: "'google', 'oidc <name>' or 'dev'"},
		{name: "oauth development sign-in", input: "mcp_oauth {\n login dev\n allow *\n}", module: new(OAuthServer),
			want: &OAuthServer{Login: []LoginProvider{{Name: "dev", Dev: true}}, Allow: []AccessRule{{Everyone: true}}}},
		{name: "oauth development sign-in with a label", input: "mcp_oauth {\n login dev {\n label \"Test sign-in\"\n }\n}", module: new(OAuthServer),
			want: &OAuthServer{Login: []LoginProvider{{Name: "dev", Dev: true, Label: "Test sign-in"}}}},
		{name: "oauth development sign-in beside Google", input: "mcp_oauth {\n login google {\n client_id a\n }\n login dev\n}", module: new(OAuthServer),
			want: &OAuthServer{Login: []LoginProvider{{Name: "google", ClientID: "a"}, {Name: "dev", Dev: true}}}},
		{name: "oauth development sign-in with an argument", input: "mcp_oauth {\n login dev local\n}", module: new(OAuthServer), wantErr: "unexpected argument 'local'"},
		{name: "oauth development sign-in with a client id", input: "mcp_oauth {\n login dev {\n client_id x\n }\n}", module: new(OAuthServer), wantErr: "unrecognized subdirective 'client_id', at Testfile:3"},
		{name: "oauth development sign-in twice", input: "mcp_oauth {\n login dev\n login dev\n}", module: new(OAuthServer), wantErr: "'dev' is declared twice"},
		{name: "oauth development sign-in and an oidc dev", input: "mcp_oauth {\n login dev\n login oidc dev {\n issuer https://a.example\n client_id x\n }\n}", module: new(OAuthServer), wantErr: "'dev' is declared twice"},
		{name: "oauth oidc without issuer", input: "mcp_oauth {\n login oidc corp {\n client_id x\n }\n}", module: new(OAuthServer), wantErr: "needs issuer"},
		{name: "oauth login without client_id", input: "mcp_oauth {\n login google\n}", module: new(OAuthServer), wantErr: "needs client_id"},
		{name: "oauth login twice", input: "mcp_oauth {\n login google {\n client_id a\n }\n login google {\n client_id b\n }\n}", module: new(OAuthServer), wantErr: "declared twice"},
		{name: "oauth allow unknown kind", input: "mcp_oauth {\n allow user bob\n}", module: new(OAuthServer), wantErr: "'*', 'email', 'domain' or 'hosted_domain'"},
		{name: "oauth allow without values", input: "mcp_oauth {\n allow email\n}", module: new(OAuthServer), wantErr: "Testfile:2"},
		{name: "oauth allow star with values", input: "mcp_oauth {\n allow * bob\n}", module: new(OAuthServer), wantErr: "unexpected argument 'bob'"},
		{name: "oauth unknown", input: "mcp_oauth {\n issuers x\n}", module: new(OAuthServer), wantErr: "unrecognized subdirective 'issuers', at Testfile:2"},
		{name: "oauth argument", input: "mcp_oauth https://a.example", module: new(OAuthServer), wantErr: "unexpected argument"},
		{name: "oauth missing issuer", input: "mcp_oauth {\n issuer\n}", module: new(OAuthServer), wantErr: "Testfile:2"},
		{name: "bearer block", input: "mcp_bearer" + everyBearerSetting, module: new(BearerAuth), want: &BearerAuth{Resource: "https://mcp.example.com/mcp",
			AuthorizationServers: []string{"https://as.example.com", "https://as2.example.com"}, Scopes: []string{"booking:read"},
			ResourceName: "Shop MCP", ResourceDocumentation: "https://docs.example.com"}},
		{name: "bearer required scopes", input: "mcp_bearer {\n scope booking:write order:write\n scope_match all\n}", module: new(BearerAuth),
			want: &BearerAuth{Require: []string{"booking:write", "order:write"}, RequireAll: true}},
		{name: "bearer bad scope_match", input: "mcp_bearer {\n scope_match some\n}", module: new(BearerAuth), wantErr: "takes 'any' or 'all'"},
		{name: "bearer unknown", input: "mcp_bearer {\n scope_required x\n}", module: new(BearerAuth), wantErr: "unrecognized subdirective 'scope_required'"},
		{name: "bearer empty list", input: "mcp_bearer {\n authorization_server\n}", module: new(BearerAuth), wantErr: "Testfile:2"},
		{name: "tools default", input: "mcp_tools", module: new(Tools), want: &Tools{}},
		{name: "tools argument", input: "mcp_tools /rpc", module: new(Tools), wantErr: "unexpected argument '/rpc'"},
		{name: "tools everything", input: "mcp_tools {\n path /rpc\n allowed_origins https://app.example\n unguarded\n}", module: new(Tools),
			want: &Tools{Path: "/rpc", AllowedOrigins: []string{"https://app.example"}, Unguarded: true}},
		{name: "tools path block", input: "mcp_tools {\n path /rpc\n}", module: new(Tools), want: &Tools{Path: "/rpc"}},
		{name: "tools unknown", input: "mcp_tools {\n route /x\n}", module: new(Tools), wantErr: "unrecognized subdirective 'route'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.module.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if checkErr(t, err, tt.wantErr) {
				return
			}
			if !reflect.DeepEqual(tt.module, tt.want) {
				t.Errorf("got %+v, want %+v", tt.module, tt.want)
			}
		})
	}
}

func TestPathOfMatcher(t *testing.T) {
	tests := map[string]string{
		`["/mcp*"]`:      "/mcp",
		`["/mcp/*"]`:     "/mcp",
		`["/mcp"]`:       "/mcp",
		`["/a/b/"]`:      "/a/b",
		`["/mcp", "/x"]`: "",
		`["*.json"]`:     "",
		`["/m*p"]`:       "",
		`["/*"]`:         "",
	}
	for raw, want := range tests {
		if got := pathOfMatcher(caddy.ModuleMap{"path": json.RawMessage(raw)}); got != want {
			t.Errorf("pathOfMatcher(%s) = %q, want %q", raw, got, want)
		}
	}
	if got := pathOfMatcher(caddy.ModuleMap{"path": json.RawMessage(`["/mcp"]`), "method": json.RawMessage(`["GET"]`)}); got != "" {
		t.Errorf("two matchers gave %q", got)
	}
	for in, want := range map[string]string{"/mcp": "/mcp", "/mcp/": "/mcp", "https://h/mcp": "/mcp", "https://h": "", "": ""} {
		if got := resourcePath(in); got != want {
			t.Errorf("resourcePath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestOffOrBlock reads a subdirective `x` of the `off`-or-block shape
// inside an enclosing block, as mcp_oauth's registration, dpop, mtls,
// rate_limit and client_metadata_documents are read.
func TestOffOrBlock(t *testing.T) {
	tests := []struct {
		name     string
		input    string
		disabled bool
		a        string
		wantErr  string
	}{
		{name: "off", input: "x off", disabled: true},
		{name: "block", input: "x {\n a 1\n }", a: "1"},
		{name: "bare", input: "x"},
		{name: "empty block", input: "x {\n }"},
		{name: "other word", input: "x on", wantErr: "x takes 'off' or a block, not 'on', at Testfile:2"},
		{name: "off with an argument", input: "x off now", wantErr: "unexpected argument 'now'"},
		{name: "two words", input: "x on off", wantErr: "x takes 'off' or a block, not 'on'"},
		{name: "unknown subdirective", input: "x {\n b 1\n }", wantErr: "unrecognized subdirective 'b', at Testfile:3"},
		{name: "subdirective error", input: "x {\n a\n }", wantErr: "Testfile:3"},
		// The block is not read after off; the enclosing block then
		// refuses it.
		{name: "off and a block", input: "x off {\n a 1\n }", wantErr: "unrecognized subdirective '{'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := caddyfile.NewTestDispenser("outer {\n " + tt.input + "\n}")
			d.Next()
			var disabled bool
			var a string
			err := parseBlock(d, map[string]func() error{
				"x": func() error {
					return offOrBlock(d, &disabled, map[string]func() error{
						"a": func() error { return oneArg(d, &a) },
					})
				},
			})
			if checkErr(t, err, tt.wantErr) {
				return
			}
			if disabled != tt.disabled || a != tt.a {
				t.Errorf("disabled %v, a %q; want %v, %q", disabled, a, tt.disabled, tt.a)
			}
		})
	}
}
