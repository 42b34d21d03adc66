// Package caddymcp is a Caddy plugin that makes a Caddy host an OAuth 2.1
// authorization server and an MCP resource server.
package caddymcp

import (
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/mark3labs/mcp-go/server"
	_ "golang.org/x/oauth2"
)
