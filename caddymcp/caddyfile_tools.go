package caddymcp

// Caddyfile parsing of the mcp_tools directive: its syntax, the path it
// takes from its matcher, and MCP sessions.

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

// parseTools sets up mcp_tools. Syntax:
//
//	mcp_tools [<matcher>] {
//		path            <path>
//		allowed_origins <origin...>
//		sessions        [<idle_timeout>]
//		unguarded
//	}
//
// The path defaults to that of a path matcher (/rpc for
// `mcp_tools /rpc*`), else /mcp; the REST view of the tools is at
// <path>/tools. `sessions` turns on MCP sessions, ended after
// <idle_timeout> without a request (default 30m).
func parseTools(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	if !h.Next() {
		return nil, h.ArgErr()
	}
	matcherSet, err := h.ExtractMatcherSet()
	if err != nil {
		return nil, err
	}
	t := new(Tools)
	if err := t.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	if t.Path == "" {
		t.Path = pathOfMatcher(matcherSet)
	}
	return h.NewRoute(matcherSet, t), nil
}

// UnmarshalCaddyfile sets up mcp_tools from Caddyfile tokens (after the
// matcher has been taken out); see parseTools for the syntax.
func (t *Tools) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if err := noArgs(d); err != nil {
		return err
	}
	return parseBlock(d, map[string]func() error{
		"path":            func() error { return oneArg(d, &t.Path) },
		"allowed_origins": func() error { return listArg(d, &t.AllowedOrigins) },
		"sessions":        func() error { return t.parseSessions(d) },
		"unguarded": func() error {
			t.Unguarded = true
			return noArgs(d)
		},
	})
}

// parseSessions reads `sessions [<idle_timeout>]` of mcp_tools.
func (t *Tools) parseSessions(d *caddyfile.Dispenser) error {
	if t.Sessions != nil {
		return d.Err("sessions already specified")
	}
	t.Sessions = new(ToolsSessions)
	if !d.NextArg() {
		return nil
	}
	idle, err := caddy.ParseDuration(d.Val())
	if err != nil || idle <= 0 {
		return d.Errf("sessions: '%s' is not a positive duration", d.Val())
	}
	t.Sessions.IdleTimeout = caddy.Duration(idle)
	return noArgs(d)
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Tools)(nil)
