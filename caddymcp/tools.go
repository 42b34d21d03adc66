package caddymcp

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddymcp/caddymcp/caddymcp/tools"
)

// Tools is the MCP endpoint (http.handlers.mcp_tools): an MCP Streamable
// HTTP server (stateless unless `sessions` is set; JSON and SSE
// responses) with the booking,
// product, order and form tools, and a REST view of the same tools at
// `<path>/tools`. It owns those paths and passes other requests to the
// next handler.
//
// Every tool declares a scope (`X:read` for reads, `X:write` for writes),
// listed in the tool's `_meta.scope`; a call the access token lacks the
// scope for is answered, before the tool runs, with `403` and a
// `WWW-Authenticate: Bearer error="insufficient_scope"` challenge. A
// request without a verified principal gets `401`: put mcp_tools behind
// mcp_bearer. Caddy refuses a config whose mcp_tools endpoint no
// mcp_bearer guards, unless `unguarded` is set.
type Tools struct {
	// Path is the MCP endpoint's path. Default: `/mcp`.
	Path string `json:"path,omitempty"`

	// AllowedOrigins lists browser origins that may call the endpoint,
	// besides its own origin and loopback origins. A request from any
	// other Origin gets 403.
	AllowedOrigins []string `json:"allowed_origins,omitempty"`

	// Sessions, when present, turns on MCP sessions: initialize returns an
	// `Mcp-Session-Id` that the client sends with every later request
	// (protocol versions up to 2025-11-25; 2026-07-28 has no sessions). A
	// session belongs to the user (token issuer and subject) who started
	// it: with anyone else's token, or once ended (DELETE by its owner,
	// idle timeout, config reload or stop), its id gets 404. A user holds
	// at most 100 sessions at once; another initialize gets 429. Sessions
	// live in this instance's memory, so several instances behind a load
	// balancer need sticky routing by `Mcp-Session-Id`. Default: absent
	// (stateless: any instance answers any request, and a GET listening
	// stream gets 405 as there is nothing to listen for).
	Sessions *ToolsSessions `json:"sessions,omitempty"`

	// Unguarded lets the config load without an mcp_bearer guarding the
	// endpoint (requests still need a verified principal, so they all get
	// 401 unless another handler provides one).
	Unguarded bool `json:"unguarded,omitempty"`

	server *tools.Server
	app    *App
}

// ToolsSessions configures the MCP sessions of mcp_tools.
type ToolsSessions struct {
	// IdleTimeout ends a session that has had no request for this long.
	// Default: 30m.
	IdleTimeout caddy.Duration `json:"idle_timeout,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (*Tools) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.mcp_tools",
		New: func() caddy.Module { return new(Tools) },
	}
}

// Provision builds the MCP server.
func (t *Tools) Provision(ctx caddy.Context) error {
	if t.Path == "" {
		t.Path = "/mcp"
	}
	if err := t.Validate(); err != nil {
		return err
	}
	app, err := loadApp(ctx)
	t.app = app
	if err != nil {
		return err
	}
	if !t.Unguarded {
		app.addToolsEndpoint(t.Path)
	}
	cfg := tools.Config{Shop: app.Store(), Path: t.Path, AllowedOrigins: t.AllowedOrigins,
		Version: caddy.CustomVersion, Logger: ctx.Slogger(), Observe: app.meters().toolCall}
	if t.Sessions != nil {
		cfg.Sessions, cfg.SessionIdleTimeout = true, time.Duration(t.Sessions.IdleTimeout)
	}
	t.server, err = tools.New(cfg)
	return err
}

// Validate ensures the path and the idle timeout are usable.
func (t *Tools) Validate() error {
	if t.Path != "" && (!strings.HasPrefix(t.Path, "/") || strings.ContainsAny(t.Path, "*?#") || strings.HasSuffix(t.Path, "/")) {
		return fmt.Errorf("path %q must start with '/' and contain no wildcard, query, fragment or trailing slash", t.Path)
	}
	if t.Sessions != nil && t.Sessions.IdleTimeout < 0 {
		return fmt.Errorf("sessions: negative idle_timeout %s", time.Duration(t.Sessions.IdleTimeout))
	}
	return nil
}

// Cleanup ends every MCP session (closing their open streams) and
// closes the MCP transport.
func (t *Tools) Cleanup() error {
	if t.server == nil {
		return nil
	}
	return t.server.Close()
}

// ServeHTTP answers the MCP endpoint and the REST view, and passes other
// requests on.
func (t *Tools) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if !t.server.Handles(r.URL.Path) {
		return next.ServeHTTP(w, r)
	}
	t.app.serve(w, r, t.server.ServeHTTP)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Tools)(nil)
	_ caddy.Validator             = (*Tools)(nil)
	_ caddy.CleanerUpper          = (*Tools)(nil)
	_ caddyhttp.MiddlewareHandler = (*Tools)(nil)
)
