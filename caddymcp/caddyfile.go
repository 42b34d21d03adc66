package caddymcp

// Caddyfile parsing of the caddymcp global option, and the helpers the
// directives' parsers share: the path a matcher guards, a block of
// subdirectives, an `off` or a block, and typed arguments that refuse a
// second use. Each directive has its own file: caddyfile_oauth.go,
// caddyfile_bearer.go and caddyfile_tools.go.

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

// parseGlobalOption sets up the caddymcp app from the global options
// block. Syntax:
//
//	caddymcp {
//		database       <postgres-url>
//		max_conns      <n>
//		embedded_path  <file>
//		issuer         <url>
//		scopes         <scope...>
//		start_timeout  <duration>
//		sweep_interval <duration>
//		client_retention <duration>
//		unused_client_retention <duration>
//		key_rotation   <duration>
//		key_encryption_key <secret>
//		signing_algorithm ES256|RS256|EdDSA
//	}
//
// Every subdirective is optional, and so is the block: without a
// database the app keeps its state in an embedded file under Caddy's data
// directory. Write secrets as {env.*} or {file.*} placeholders.
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		return nil, d.Err("the caddymcp global option may appear only once")
	}
	app := new(App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "caddymcp", Value: caddyconfig.JSON(app, nil)}, nil
}

// UnmarshalCaddyfile sets up the app from Caddyfile tokens; see
// parseGlobalOption for the syntax.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume option name
	if err := noArgs(d); err != nil {
		return err
	}
	err := parseBlock(d, map[string]func() error{
		"database":                func() error { return oneArg(d, &a.Database) },
		"embedded_path":           func() error { return oneArg(d, &a.EmbeddedPath) },
		"issuer":                  func() error { return oneArg(d, &a.Issuer) },
		"max_conns":               func() error { return intArg(d, &a.MaxConns) },
		"scopes":                  func() error { return scopesArg(d, &a.Scopes) },
		"start_timeout":           func() error { return durationArg(d, &a.StartTimeout) },
		"sweep_interval":          func() error { return durationArg(d, &a.SweepInterval) },
		"client_retention":        func() error { return durationArg(d, &a.ClientRetention) },
		"unused_client_retention": func() error { return durationArg(d, &a.UnusedClientRetention) },
		"key_rotation":            func() error { return durationArg(d, &a.KeyRotation) },
		"key_encryption_key":      func() error { return oneArg(d, &a.KeyEncryptionKey) },
		"signing_algorithm":       func() error { return oneArg(d, &a.SigningAlgorithm) },
	})
	if err != nil {
		return err
	}
	if a.Database != "" && a.EmbeddedPath != "" {
		return d.Err("database and embedded_path exclude each other")
	}
	return nil
}

// pathOfMatcher returns the path a matcher set guards when it is a single
// path pattern such as /mcp, /mcp/ or /mcp*, else "".
func pathOfMatcher(set caddy.ModuleMap) string {
	if len(set) != 1 {
		return ""
	}
	raw, ok := set["path"]
	if !ok {
		return ""
	}
	var paths []string
	if err := json.Unmarshal(raw, &paths); err != nil || len(paths) != 1 {
		return ""
	}
	p := strings.TrimSuffix(strings.TrimSuffix(paths[0], "*"), "/")
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "*?[]{}%") {
		return ""
	}
	return p
}

// resourcePath returns the path of a resource given as a path or URL.
func resourcePath(resource string) string {
	if strings.HasPrefix(resource, "/") {
		return strings.TrimSuffix(resource, "/")
	}
	if _, rest, ok := strings.Cut(resource, "://"); ok {
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			return strings.TrimSuffix(rest[i:], "/")
		}
	}
	return ""
}

// parseBlock reads a directive's block, handing each subdirective to its
// parser; an unknown one is an error with its location.
func parseBlock(d *caddyfile.Dispenser, parsers map[string]func() error) error {
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		parse, ok := parsers[d.Val()]
		if !ok {
			return d.Errf("unrecognized subdirective '%s'", d.Val())
		}
		if err := parse(); err != nil {
			return err
		}
	}
	return nil
}

// offOrBlock reads a subdirective that takes either the word off or a
// block, the shape of the features mcp_oauth turns on by default:
// `<name> off` sets *disabled, and `<name> { … }` (or a bare `<name>`,
// which keeps the defaults) hands the block to parsers. d is on the
// subdirective's name.
func offOrBlock(d *caddyfile.Dispenser, disabled *bool, parsers map[string]func() error) error {
	name := d.Val()
	if d.NextArg() {
		if d.Val() != "off" {
			return d.Errf("%s takes 'off' or a block, not '%s'", name, d.Val())
		}
		*disabled = true
		return noArgs(d)
	}
	return parseBlock(d, parsers)
}

// noArgs fails if the directive has arguments on its own line.
func noArgs(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.Errf("unexpected argument '%s'", d.Val())
	}
	return nil
}

// listArg appends one or more arguments to dst.
func listArg(d *caddyfile.Dispenser, dst *[]string) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.ArgErr()
	}
	*dst = append(*dst, args...)
	return nil
}

// oneArg reads exactly one argument into dst; a second use of the
// subdirective is an error.
func oneArg(d *caddyfile.Dispenser, dst *string) error {
	name := d.Val()
	if *dst != "" {
		return d.Errf("%s already specified", name)
	}
	if !d.NextArg() {
		return d.ArgErr()
	}
	*dst = d.Val()
	if *dst == "" {
		return d.Errf("%s must not be empty", name)
	}
	if d.NextArg() {
		return d.Errf("unexpected argument '%s'", d.Val())
	}
	return nil
}

// intArg reads one non-negative integer into dst; a second use of the
// subdirective is an error, as for oneArg.
func intArg(d *caddyfile.Dispenser, dst *int) error {
	name := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return d.Errf("%s: '%s' is not a non-negative integer", name, s)
	}
	*dst = n
	return nil
}

// durationArg reads one positive duration (Caddy's syntax, which adds d
// for days) into dst; a second use of the subdirective is an error.
func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	name := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil || dur <= 0 {
		return d.Errf("%s: '%s' is not a positive duration", name, s)
	}
	*dst = caddy.Duration(dur)
	return nil
}

// scopesArg appends one or more scopes to dst, refusing one that is not a
// scope token (RFC 6749 §3.3) or that dst already lists.
func scopesArg(d *caddyfile.Dispenser, dst *[]string) error {
	if err := listArg(d, dst); err != nil {
		return err
	}
	if err := validateScopes(*dst); err != nil {
		return d.WrapErr(err)
	}
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*App)(nil)
