package caddymcp

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddymcp/caddymcp/caddymcp/oauth"
)

// OAuthServer is the OAuth 2.1 authorization server of a site
// (http.handlers.mcp_oauth). It answers its own endpoints and passes every
// other request to the next handler, so one line in a site block is
// enough:
//
//   - `GET /.well-known/oauth-authorization-server` (RFC 8414 metadata;
//     with an issuer that has a path, the path is appended);
//   - `GET /oauth/jwks`, the JSON Web Key Set of the ES256 keys that sign
//     access tokens.
//
// The signing key is created once, when the caddymcp app first starts,
// and kept in the store, so restarts and reloads keep the same key id.
type OAuthServer struct {
	// Issuer is this authorization server's issuer identifier: an https
	// URL without a trailing slash. Default: the caddymcp app's issuer,
	// or else the origin of each request. Supports `{env.*}`
	// placeholders.
	Issuer string `json:"issuer,omitempty"`

	// Scopes are the scopes offered (scopes_supported). Default: the
	// caddymcp app's scopes.
	Scopes []string `json:"scopes,omitempty"`

	server *oauth.Server
}

// CaddyModule returns the Caddy module information.
func (*OAuthServer) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.mcp_oauth",
		New: func() caddy.Module { return new(OAuthServer) },
	}
}

// Provision sets up the authorization server.
func (o *OAuthServer) Provision(ctx caddy.Context) error {
	app, err := loadApp(ctx)
	if err != nil {
		return err
	}
	issuer, err := resolve("issuer", o.Issuer)
	if err != nil {
		return err
	}
	if issuer == "" {
		issuer = app.Issuer
	}
	scopes := o.Scopes
	if scopes == nil {
		scopes = app.Scopes
	}
	if err := validateScopes(scopes); err != nil {
		return err
	}
	o.server, err = oauth.New(oauth.Config{Issuer: issuer, Scopes: scopes, Keys: app, Logger: ctx.Slogger()})
	return err
}

// ServeHTTP answers the authorization server's endpoints and passes other
// requests on.
func (o *OAuthServer) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if !o.server.Handles(r.URL.Path) {
		return next.ServeHTTP(w, r)
	}
	o.server.ServeHTTP(w, r)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*OAuthServer)(nil)
	_ caddyhttp.MiddlewareHandler = (*OAuthServer)(nil)
)
