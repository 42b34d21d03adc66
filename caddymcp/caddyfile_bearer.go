package caddymcp

// Caddyfile parsing of the mcp_bearer directive: its syntax, the route
// that also serves the resource's metadata URLs, and external issuers.

import (
	"github.com/caddymcp/caddymcp/caddymcp/bearer"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// parseBearerAuth sets up mcp_bearer. Syntax:
//
//	mcp_bearer [<matcher>] {
//		resource               <url|path>
//		authorization_server   <issuer...>
//		issuer                 <issuer> {
//			jwks_url        <url>
//			audience        <aud...>
//			accept_jwt_type
//			leeway          <duration>
//			trust_email
//		}
//		scope                  <scope...>
//		scope_match            any|all
//		scopes                 <scope...>
//		resource_name          <name>
//		resource_documentation <url>
//		legacy_tokens
//		dpop                   required
//	}
//
// authorization_server names issuers of this Caddy's own mcp_oauth;
// issuer (repeatable) adds an external authorization server whose tokens
// are verified with the keys it publishes, with leeway on its exp (default
// 30s, at most 5m); its email claim reaches {http.auth.user.email} only
// with email_verified true, or always with trust_email. scope lists the scopes a
// request needs (any one of them, or all with scope_match all); scopes
// lists those published as scopes_supported. `dpop required` accepts
// only DPoP-bound tokens (RFC 9449), refusing bearer tokens.
// The resource defaults to the path of a path matcher (`/mcp` for
// `mcp_bearer /mcp*`), else the site's origin. The route also matches the
// resource's two metadata URLs, so they are served without a token.
func parseBearerAuth(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	if !h.Next() {
		return nil, h.ArgErr()
	}
	matcherSet, err := h.ExtractMatcherSet()
	if err != nil {
		return nil, err
	}
	b := new(BearerAuth)
	if err := b.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	if b.Resource == "" {
		b.Resource = pathOfMatcher(matcherSet)
	}
	routes := h.NewRoute(matcherSet, b)
	if matcherSet != nil && len(routes) == 1 {
		route, ok := routes[0].Value.(caddyhttp.Route)
		if ok {
			paths := caddyhttp.MatchPath{bearer.PRMPath}
			if p := resourcePath(b.Resource); p != "" {
				paths = append(paths, bearer.PRMPath+p)
			}
			route.MatcherSetsRaw = append(route.MatcherSetsRaw, caddy.ModuleMap{"path": h.JSON(paths)})
			routes[0].Value = route
		}
	}
	return routes, nil
}

// UnmarshalCaddyfile sets up mcp_bearer from Caddyfile tokens (after the
// matcher has been taken out); see parseBearerAuth for the syntax.
func (b *BearerAuth) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if err := noArgs(d); err != nil {
		return err
	}
	servers := func() error { return listArg(d, &b.AuthorizationServers) }
	return parseBlock(d, map[string]func() error{
		"resource":               func() error { return oneArg(d, &b.Resource) },
		"authorization_server":   servers,
		"authorization_servers":  servers,
		"scopes":                 func() error { return scopesArg(d, &b.Scopes) },
		"scope":                  func() error { return scopesArg(d, &b.Require) },
		"scope_match":            func() error { return scopeMatchArg(d, &b.RequireAll) },
		"issuer":                 func() error { return b.parseIssuer(d) },
		"legacy_tokens":          func() error { b.LegacyTokens = true; return noArgs(d) },
		"resource_name":          func() error { return oneArg(d, &b.ResourceName) },
		"resource_documentation": func() error { return oneArg(d, &b.ResourceDocumentation) },
		"dpop": func() error {
			var v string
			if err := oneArg(d, &v); err != nil {
				return err
			}
			if v != "required" {
				return d.Errf("dpop takes 'required', not '%s'", v)
			}
			b.RequireDPoP = true
			return nil
		},
	})
}

// parseIssuer reads an `issuer <url> { … }` block of mcp_bearer.
func (b *BearerAuth) parseIssuer(d *caddyfile.Dispenser) error {
	var ext ExternalIssuer
	if err := oneArg(d, &ext.Issuer); err != nil {
		return err
	}
	for _, other := range b.Issuers {
		if other.Issuer == ext.Issuer {
			return d.Errf("issuer '%s' is declared twice", ext.Issuer)
		}
	}
	err := parseBlock(d, map[string]func() error{
		"jwks_url":        func() error { return oneArg(d, &ext.JWKSURL) },
		"audience":        func() error { return listArg(d, &ext.Audiences) },
		"accept_jwt_type": func() error { ext.AcceptJWTType = true; return noArgs(d) },
		"leeway":          func() error { return durationArg(d, &ext.Leeway) },
		"trust_email":     func() error { ext.TrustEmail = true; return noArgs(d) },
	})
	if err != nil {
		return err
	}
	b.Issuers = append(b.Issuers, ext)
	return nil
}

// scopeMatchArg reads "any" or "all".
func scopeMatchArg(d *caddyfile.Dispenser, all *bool) error {
	var v string
	if err := oneArg(d, &v); err != nil {
		return err
	}
	switch v {
	case "any":
		*all = false
	case "all":
		*all = true
	default:
		return d.Errf("scope_match takes 'any' or 'all', not '%s'", v)
	}
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*BearerAuth)(nil)
