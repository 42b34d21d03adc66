package caddymcp

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddymcp/caddymcp/caddymcp/tools"
)

// Tools is the MCP endpoint (http.handlers.mcp_tools): an MCP Streamable
// HTTP server (stateless, JSON and SSE responses) with the booking,
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

	// Unguarded lets the config load without an mcp_bearer guarding the
	// endpoint (requests still need a verified principal, so they all get
	// 401 unless another handler provides one).
	Unguarded bool `json:"unguarded,omitempty"`

	server *tools.Server
	app    *App
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
	t.server, err = tools.New(tools.Config{Shop: app.Store(), Path: t.Path, AllowedOrigins: t.AllowedOrigins,
		Version: caddy.CustomVersion, Logger: ctx.Slogger()})
	return err
}

// Validate ensures the path is usable.
func (t *Tools) Validate() error {
	if t.Path != "" && (!strings.HasPrefix(t.Path, "/") || strings.ContainsAny(t.Path, "*?#") || strings.HasSuffix(t.Path, "/")) {
		return fmt.Errorf("path %q must start with '/' and contain no wildcard, query, fragment or trailing slash", t.Path)
	}
	return nil
}

// Cleanup closes the MCP transport.
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
	done, err := t.app.enter(r.Context())
	if err != nil {
		serveUnavailable(w)
		return nil
	}
	defer done()
	t.server.ServeHTTP(w, r)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Tools)(nil)
	_ caddy.Validator             = (*Tools)(nil)
	_ caddy.CleanerUpper          = (*Tools)(nil)
	_ caddyhttp.MiddlewareHandler = (*Tools)(nil)
)
