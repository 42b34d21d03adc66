package caddymcp

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddymcp/caddymcp/caddymcp/oauth"
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
		"database":           func() error { return oneArg(d, &a.Database) },
		"embedded_path":      func() error { return oneArg(d, &a.EmbeddedPath) },
		"issuer":             func() error { return oneArg(d, &a.Issuer) },
		"max_conns":          func() error { return intArg(d, &a.MaxConns) },
		"scopes":             func() error { return scopesArg(d, &a.Scopes) },
		"start_timeout":      func() error { return durationArg(d, &a.StartTimeout) },
		"sweep_interval":     func() error { return durationArg(d, &a.SweepInterval) },
		"client_retention":   func() error { return durationArg(d, &a.ClientRetention) },
		"key_rotation":       func() error { return durationArg(d, &a.KeyRotation) },
		"key_encryption_key": func() error { return oneArg(d, &a.KeyEncryptionKey) },
		"signing_algorithm":  func() error { return oneArg(d, &a.SigningAlgorithm) },
	})
	if err != nil {
		return err
	}
	if a.Database != "" && a.EmbeddedPath != "" {
		return d.Err("database and embedded_path exclude each other")
	}
	return nil
}

// parseOAuthServer sets up mcp_oauth. Syntax:
//
//	mcp_oauth [<matcher>] {
//		issuer                 <url>
//		scopes                 <scope...>
//		resources              <url|path...>
//		registration           off
//		registration {
//			initial_access_token <token>
//			max_clients          <n>
//			max_redirect_uris    <n>
//			secret_lifetime      <duration>
//		}
//		client_metadata_documents off
//		client_metadata_documents {
//			allow_domains <domain...>
//			timeout       <duration>
//		}
//		client <id> {
//			secret        <secret>
//			name          <name>
//			redirect_uris <uri...>
//			scopes        <scope...>
//			tls_client_auth subject_dn|san_dns|san_uri|san_ip|san_email <value>
//			self_signed_tls_client_auth <pem-file...>
//			certificate_bound_tokens
//		}
//		code_lifetime          <duration>
//		access_token_lifetime  <duration>
//		refresh_token_lifetime <duration>
//		refresh_token_idle     <duration>
//		refresh_grace          <duration>
//		allowed_origins        <origin...>
//		login google | oidc <name> {
//			issuer        <url>
//			client_id     <id>
//			client_secret <secret>
//			scopes        <scope...>
//			label         <text>
//		}
//		allow * | email <address...> | domain <domain...> | hosted_domain <domain...> {
//			scopes <scope...>
//		}
//		session_idle           <duration>
//		session_lifetime       <duration>
//		rate_limit             off
//		rate_limit {
//			register    <requests>/<window> [<burst>] | off
//			token       <requests>/<window> [<burst>] | off
//			authorize   <requests>/<window> [<burst>] | off
//			login       <requests>/<window> [<burst>] | off
//			ipv6_prefix <bits>
//		}
//		dpop                   off
//		dpop {
//			nonce required | off
//		}
//		mtls                   off
//		mtls {
//			bind_tokens always | on_request
//			endpoint    <url>
//		}
//	}
//
// Without a block it uses the caddymcp app's issuer and scopes, with open
// dynamic registration. client, login and allow may be repeated. Access
// is denied unless an allow rule matches; a rule's scopes (default: all)
// bound what its users may grant. Requests are limited per client IP
// address unless rate_limit says otherwise (defaults: register 10/m 20,
// token 600/m 100, authorize 60/m 30, login 60/m 30); a window is s, m,
// h or a duration such as 15m, and the burst defaults to the requests.
// Clients may name themselves by the https URL of their metadata
// document (CIMD) unless `client_metadata_documents off`; allow_domains
// (repeatable; host names, *.domain or IP addresses) limits the hosts
// such documents may come from, and timeout bounds a fetch (default 5s).
// DPoP-bound tokens (RFC 9449) are issued for requests with a DPoP proof
// unless `dpop off`; `nonce required` makes every proof carry a server
// nonce. Mutual TLS (RFC 8705) uses the client certificate of the
// connection unless `mtls off`: clients may authenticate with it (a
// client block's tls_client_auth names the subject of a certificate
// Caddy verified, self_signed_tls_client_auth the PEM files of
// self-signed certificates), and access tokens are bound to it
// (`bind_tokens on_request`: only for clients that ask, and for client
// blocks with certificate_bound_tokens); endpoint publishes a host for
// mutual TLS as mtls_endpoint_aliases.
func parseOAuthServer(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	o := new(OAuthServer)
	err := o.UnmarshalCaddyfile(h.Dispenser)
	return o, err
}

// UnmarshalCaddyfile sets up mcp_oauth from Caddyfile tokens; see
// parseOAuthServer for the syntax.
func (o *OAuthServer) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if err := noArgs(d); err != nil {
		return err
	}
	return parseBlock(d, map[string]func() error{
		"issuer":                    func() error { return oneArg(d, &o.Issuer) },
		"scopes":                    func() error { return scopesArg(d, &o.Scopes) },
		"resources":                 func() error { return listArg(d, &o.Resources) },
		"registration":              func() error { return o.parseRegistration(d) },
		"client":                    func() error { return o.parseClient(d) },
		"code_lifetime":             func() error { return durationArg(d, &o.CodeLifetime) },
		"access_token_lifetime":     func() error { return durationArg(d, &o.AccessTokenLifetime) },
		"refresh_token_lifetime":    func() error { return durationArg(d, &o.RefreshTokenLifetime) },
		"refresh_token_idle":        func() error { return durationArg(d, &o.RefreshTokenIdle) },
		"refresh_grace":             func() error { return durationArg(d, &o.RefreshGrace) },
		"allowed_origins":           func() error { return listArg(d, &o.AllowedOrigins) },
		"login":                     func() error { return o.parseLogin(d) },
		"allow":                     func() error { return o.parseAllow(d) },
		"session_idle":              func() error { return durationArg(d, &o.SessionIdle) },
		"session_lifetime":          func() error { return durationArg(d, &o.SessionLifetime) },
		"rate_limit":                func() error { return o.parseRateLimit(d) },
		"dpop":                      func() error { return o.parseDPoP(d) },
		"mtls":                      func() error { return o.parseMTLS(d) },
		"client_metadata_documents": func() error { return o.parseClientDocuments(d) },
	})
}

// parseClientDocuments reads `client_metadata_documents off` or its block
// of mcp_oauth.
func (o *OAuthServer) parseClientDocuments(d *caddyfile.Dispenser) error {
	if o.ClientMetadataDocuments != nil {
		return d.Err("client_metadata_documents already specified")
	}
	c := new(ClientMetadataDocuments)
	o.ClientMetadataDocuments = c
	return offOrBlock(d, &c.Disabled, map[string]func() error{
		"allow_domains": func() error {
			if err := listArg(d, &c.AllowDomains); err != nil {
				return err
			}
			if err := oauth.CheckAllowDomains(c.AllowDomains); err != nil {
				return d.WrapErr(err)
			}
			return nil
		},
		"timeout": func() error { return durationArg(d, &c.Timeout) },
	})
}

// parseDPoP reads `dpop off` or `dpop { nonce required|off }` of
// mcp_oauth.
func (o *OAuthServer) parseDPoP(d *caddyfile.Dispenser) error {
	if o.DPoP != nil {
		return d.Err("dpop already specified")
	}
	o.DPoP = new(DPoPOptions)
	return offOrBlock(d, &o.DPoP.Disabled, map[string]func() error{
		"nonce": func() error {
			var v string
			if err := oneArg(d, &v); err != nil {
				return err
			}
			switch v {
			case "required":
				o.DPoP.RequireNonce = true
			case "off":
				o.DPoP.RequireNonce = false
			default:
				return d.Errf("nonce takes 'required' or 'off', not '%s'", v)
			}
			return nil
		},
	})
}

// parseMTLS reads `mtls off` or `mtls { bind_tokens always|on_request;
// endpoint <url> }` of mcp_oauth.
func (o *OAuthServer) parseMTLS(d *caddyfile.Dispenser) error {
	if o.MTLS != nil {
		return d.Err("mtls already specified")
	}
	o.MTLS = new(MTLSOptions)
	bind := ""
	return offOrBlock(d, &o.MTLS.Disabled, map[string]func() error{
		"bind_tokens": func() error {
			if err := oneArg(d, &bind); err != nil {
				return err
			}
			switch bind {
			case "always":
				o.MTLS.BindOnRequest = false
			case "on_request":
				o.MTLS.BindOnRequest = true
			default:
				return d.Errf("bind_tokens takes 'always' or 'on_request', not '%s'", bind)
			}
			return nil
		},
		"endpoint": func() error { return oneArg(d, &o.MTLS.Endpoint) },
	})
}

// parseRegistration reads `registration off` or its block of mcp_oauth.
func (o *OAuthServer) parseRegistration(d *caddyfile.Dispenser) error {
	if o.Registration != nil {
		return d.Err("registration already specified")
	}
	r := new(Registration)
	o.Registration = r
	return offOrBlock(d, &r.Disabled, map[string]func() error{
		"initial_access_token": func() error { return oneArg(d, &r.InitialAccessToken) },
		"max_clients":          func() error { return intArg(d, &r.MaxClients) },
		"max_redirect_uris":    func() error { return intArg(d, &r.MaxRedirectURIs) },
		"secret_lifetime":      func() error { return durationArg(d, &r.SecretLifetime) },
	})
}

// parseClient reads a `client <id> { … }` block of mcp_oauth: a static
// client, declared once.
func (o *OAuthServer) parseClient(d *caddyfile.Dispenser) error {
	var c StaticClient
	if !d.NextArg() {
		return d.ArgErr()
	}
	c.ID = d.Val()
	for _, other := range o.Clients {
		if other.ID == c.ID {
			return d.Errf("client '%s' is declared twice", c.ID)
		}
	}
	if err := noArgs(d); err != nil {
		return err
	}
	err := parseBlock(d, map[string]func() error{
		"secret":                      func() error { return oneArg(d, &c.Secret) },
		"name":                        func() error { return oneArg(d, &c.Name) },
		"redirect_uris":               func() error { return listArg(d, &c.RedirectURIs) },
		"scopes":                      func() error { return scopesArg(d, &c.Scopes) },
		"tls_client_auth":             func() error { return parseTLSClientAuth(d, &c) },
		"self_signed_tls_client_auth": func() error { return listArg(d, &c.SelfSignedCertificates) },
		"certificate_bound_tokens": func() error {
			c.CertificateBoundTokens = true
			return noArgs(d)
		},
	})
	if err != nil {
		return err
	}
	if len(c.RedirectURIs) == 0 {
		return d.Errf("client '%s' needs redirect_uris", c.ID)
	}
	o.Clients = append(o.Clients, c)
	return nil
}

// parseTLSClientAuth reads `tls_client_auth <kind> <value>` of a client
// block: the certificate subject of RFC 8705 §2.1.2.
func parseTLSClientAuth(d *caddyfile.Dispenser, c *StaticClient) error {
	if c.TLSClientAuth != nil {
		return d.Err("tls_client_auth already specified")
	}
	args := d.RemainingArgs()
	if len(args) != 2 {
		return d.Errf("tls_client_auth takes a kind (subject_dn, san_dns, san_uri, san_ip or san_email) and a value")
	}
	s := new(TLSClientSubject)
	switch args[0] {
	case oauth.SubjectDN:
		s.SubjectDN = args[1]
	case oauth.SANDNS:
		s.SANDNS = args[1]
	case oauth.SANURI:
		s.SANURI = args[1]
	case oauth.SANIP:
		s.SANIP = args[1]
	case oauth.SANEmail:
		s.SANEmail = args[1]
	default:
		return d.Errf("tls_client_auth: unknown kind '%s' (subject_dn, san_dns, san_uri, san_ip or san_email)", args[0])
	}
	if _, err := s.subject(); err != nil {
		return d.WrapErr(err)
	}
	c.TLSClientAuth = s
	return nil
}

// parseBearerAuth sets up mcp_bearer. Syntax:
//
//	mcp_bearer [<matcher>] {
//		resource               <url|path>
//		authorization_server   <issuer...>
//		issuer                 <issuer> {
//			jwks_url        <url>
//			audience        <aud...>
//			accept_jwt_type
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
// are verified with the keys it publishes. scope lists the scopes a
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
			paths := caddyhttp.MatchPath{oauth.PRMPath}
			if p := resourcePath(b.Resource); p != "" {
				paths = append(paths, oauth.PRMPath+p)
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
	})
	if err != nil {
		return err
	}
	b.Issuers = append(b.Issuers, ext)
	return nil
}

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
var (
	_ caddyfile.Unmarshaler = (*App)(nil)
	_ caddyfile.Unmarshaler = (*OAuthServer)(nil)
	_ caddyfile.Unmarshaler = (*BearerAuth)(nil)
	_ caddyfile.Unmarshaler = (*Tools)(nil)
)
