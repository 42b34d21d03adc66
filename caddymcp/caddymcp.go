// Package caddymcp is a Caddy plugin that makes a Caddy host an OAuth 2.1
// authorization server and an MCP (Model Context Protocol) resource
// server.
//
// It registers the app "caddymcp" (global option caddymcp) and three HTTP
// handlers, each with a Caddyfile directive of the same name and a
// registered place in the directive order:
//
//   - mcp_oauth (http.handlers.mcp_oauth): the authorization server's
//     endpoints, ordered before basic_auth;
//   - mcp_bearer (http.handlers.mcp_bearer): bearer-token protection of any
//     route, ordered after basic_auth;
//   - mcp_tools (http.handlers.mcp_tools): the MCP endpoint, ordered
//     before respond.
//
// This package is the only one that imports Caddy. It parses the
// configuration, builds the cores (oauth, bearer, login, tools, store,
// signing) and routes requests to them; the domain lives in the cores.
// TestPackageLayout keeps the dependencies pointing one way.
package caddymcp

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func init() {
	caddy.RegisterModule(new(App))
	caddy.RegisterModule(new(OAuthServer))
	caddy.RegisterModule(new(BearerAuth))
	caddy.RegisterModule(new(Tools))

	httpcaddyfile.RegisterGlobalOption("caddymcp", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("mcp_oauth", parseOAuthServer)
	httpcaddyfile.RegisterDirective("mcp_bearer", parseBearerAuth)
	httpcaddyfile.RegisterDirective("mcp_tools", parseTools)

	httpcaddyfile.RegisterDirectiveOrder("mcp_oauth", httpcaddyfile.Before, "basic_auth")
	httpcaddyfile.RegisterDirectiveOrder("mcp_bearer", httpcaddyfile.After, "basic_auth")
	httpcaddyfile.RegisterDirectiveOrder("mcp_tools", httpcaddyfile.Before, "respond")

	registerCommands()
}
