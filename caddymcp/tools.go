package caddymcp

import (
	"errors"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Tools is the MCP endpoint (http.handlers.mcp_tools). It owns one path
// and passes every other request to the next handler. Put it behind
// mcp_bearer.
//
// The tools themselves are not part of this version: requests to the
// endpoint are answered `501 Not Implemented`.
type Tools struct {
	// Path is the MCP endpoint's path. Default: `/mcp`.
	Path string `json:"path,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (*Tools) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.mcp_tools",
		New: func() caddy.Module { return new(Tools) },
	}
}

// Provision sets defaults.
func (t *Tools) Provision(caddy.Context) error {
	if t.Path == "" {
		t.Path = "/mcp"
	}
	return nil
}

// Validate ensures the path is usable.
func (t *Tools) Validate() error {
	if !strings.HasPrefix(t.Path, "/") || strings.ContainsAny(t.Path, "*?#") {
		return errors.New("path must start with '/' and contain no wildcard, query or fragment")
	}
	return nil
}

// ServeHTTP answers the MCP endpoint and passes other requests on.
func (t *Tools) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if r.URL.Path != t.Path {
		return next.ServeHTTP(w, r)
	}
	return caddyhttp.Error(http.StatusNotImplemented, errors.New("the MCP tools are not available in this version"))
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Tools)(nil)
	_ caddy.Validator             = (*Tools)(nil)
	_ caddyhttp.MiddlewareHandler = (*Tools)(nil)
)
