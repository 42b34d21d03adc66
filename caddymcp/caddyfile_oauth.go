package caddymcp

// Caddyfile parsing of the mcp_oauth directive: its syntax, and the
// blocks it holds (registration, client metadata documents, DPoP, mutual
// TLS, static clients). Login providers and allow rules are parsed in
// login_config.go, rate_limit in rate_limit.go.

import (
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddymcp/caddymcp/caddymcp/oauth"
)

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
//			allow_ports   <port...>
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
//		login dev {
//			label <text>
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
// bound what its users may grant. `login dev` is a sign-in form that
// believes any email address, for development: Caddy refuses it on a
// site that is not loopback only (see LoginProvider.Dev). Requests are limited per client IP
// address unless rate_limit says otherwise (defaults: register 10/m 20,
// token 600/m 100, authorize 60/m 30, login 60/m 30); a window is s, m,
// h or a duration such as 15m, and the burst defaults to the requests.
// Clients may name themselves by the https URL of their metadata
// document (CIMD) unless `client_metadata_documents off`; allow_domains
// (repeatable; host names, *.domain or IP addresses) limits the hosts
// such documents may come from, allow_ports (repeatable) the ports other
// than 443 they may be fetched on (default: 443 only), and timeout bounds
// a fetch (default 5s).
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
		"allow_ports": func() error {
			var ports []string
			if err := listArg(d, &ports); err != nil {
				return err
			}
			for _, p := range ports {
				n, err := strconv.Atoi(p)
				if err != nil || oauth.CheckAllowPorts([]int{n}) != nil {
					return d.Errf("allow_ports: %q is not a port between 1 and 65535", p)
				}
				c.AllowPorts = append(c.AllowPorts, n)
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

// Interface guards
var _ caddyfile.Unmarshaler = (*OAuthServer)(nil)
