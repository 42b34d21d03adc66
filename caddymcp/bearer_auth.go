package caddymcp

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddymcp/caddymcp/caddymcp/bearer"
	"github.com/caddymcp/caddymcp/caddymcp/internal/dpop"
	"github.com/caddymcp/caddymcp/caddymcp/jose"
)

// BearerAuth protects a route with OAuth bearer tokens
// (http.handlers.mcp_bearer): the MCP endpoint of mcp_tools, or a
// reverse_proxy to another MCP server.
//
// It serves the Protected Resource Metadata (RFC 9728) of the resource it
// guards at both `/.well-known/oauth-protected-resource<resource path>`
// and the root `/.well-known/oauth-protected-resource`, without a token.
// A request without a token is answered `401` with two challenges,
// Bearer first (clients that read one challenge read the first):
// `WWW-Authenticate: Bearer resource_metadata="…", scope="…"` and
// `WWW-Authenticate: DPoP resource_metadata="…", scope="…", algs="ES256 …"`,
// and a JSON body; a malformed Authorization header gets
// `400 invalid_request`. CORS preflight requests (`OPTIONS` with `Origin`
// and `Access-Control-Request-Method`) are answered here, `204` with the
// CORS headers (any origin, the MCP methods and request headers), and
// never passed on to the next handler.
//
// DPoP-bound tokens (RFC 9449) are accepted as `Authorization: DPoP
// <token>` with a `DPoP` proof of the key in the token's `cnf.jkt`: a
// proof of typ `dpop+jwt` signed with an asymmetric algorithm by its
// public `jwk`, whose `htm` is the request method, `htu` the request URL
// as the client addressed it (without query), `ath` the hash of the
// token, `iat` at most 60 seconds old (5 seconds of clock skew either
// way), and `jti` not seen before on this instance. The proof is checked
// on every request, whatever is cached about the token. A bad proof gets
// `401` with `WWW-Authenticate: DPoP error="invalid_dpop_proof"`, a
// token that does not match it `error="invalid_token"`; a DPoP-bound
// token sent as a bearer token is refused (RFC 9449 §7.2). With
// RequireDPoP, bearer tokens are refused altogether.
//
// Certificate-bound tokens (RFC 8705 §3, `cnf` with `x5t#S256`) are
// accepted only over a TLS connection whose client certificate is the one
// they are bound to, compared on every request: the site must request
// client certificates (`tls { client_auth { mode request } }` or a
// stricter mode), and TLS must end at Caddy. Otherwise the answer is
// `401 invalid_token`. A token bound to a DPoP key and a certificate
// needs both.
//
// Tokens are JWT access tokens (RFC 9068) of the caddymcp authorization
// server of this Caddy, or of the external issuers configured in Issuers:
// the signature with the issuer's keys (in the algorithm the key fixes,
// never none or HMAC), `typ` at+jwt, the exact `iss`, `exp` and `nbf`
// (with 5 seconds of leeway for local tokens, an issuer's Leeway for
// external ones, cached or not), an
// `aud` that names this resource (RFC 8707), and, for local tokens, a
// `jti` that is not on the revocation deny-list. The deny-list lives in memory and is
// refreshed from the database every 2 seconds (and at once after a
// revocation in this instance), so no request waits on the database and a
// revocation anywhere reaches every instance within seconds; while the
// database is unreachable the last list stays in force. A verified token
// is remembered for at most 5 minutes, never past its expiry, and only
// while the key that signed it is still published; local tokens without
// `iat` or living longer than 24 hours (`exp − iat`) are refused. An invalid token
// gets `401 invalid_token`; a token without the scope the route needs gets
// `403 insufficient_scope` with the scopes to ask for (MCP step-up).
//
// On success it sets `{http.auth.user.id}` (the token's sub) and
// `{http.auth.user.client_id}`, `{http.auth.user.scope}`,
// `{http.auth.user.aud}`, `{http.auth.user.iss}`,
// `{http.auth.user.email}` (only a verified address: from the token of
// an external issuer that carries one with `email_verified: true`, or
// with any email claim of an issuer set to TrustEmail; for a local token,
// from the local user's record if the provider verified it, remembered
// for a minute; else empty), `{http.auth.user.email_verified}` (`true`
// when `{http.auth.user.email}` holds an address, else `false`)
// and `{http.auth.user.dpop_jkt}` (the thumbprint of a DPoP-bound token's
// key, else empty), like Caddy's authentication handler, puts the
// principal on the request for mcp_tools, and removes the Authorization
// and DPoP headers, so that neither the token nor its proof is passed on
// to an upstream.
//
// When the server has `handle_errors` routes, refusals are returned as
// errors (with the WWW-Authenticate header already set) so those routes
// render them; otherwise the handler writes the JSON body itself.
type BearerAuth struct {
	// Resource is the identifier of the protected resource (RFC 8707):
	// an absolute https URL such as `https://mcp.example.com/mcp`, or a
	// path such as `/mcp` taken relative to each request's origin.
	// Default (Caddyfile): the path of the directive's path matcher, e.g.
	// `/mcp` for `mcp_bearer /mcp*`; otherwise the site's origin.
	Resource string `json:"resource,omitempty"`

	// AuthorizationServers are issuers of this Caddy's own caddymcp
	// authorization server (mcp_oauth) whose tokens are accepted, verified
	// with its signing keys, and published as authorization_servers.
	// Default, unless Issuers are configured: the caddymcp app's issuer,
	// or else the request's origin (the co-located mcp_oauth).
	AuthorizationServers []string `json:"authorization_servers,omitempty"`

	// Issuers are external authorization servers (Keycloak, Auth0, Entra
	// ID, Okta, another Caddy…) whose JWT access tokens are accepted,
	// verified with the keys each publishes. They are published in
	// authorization_servers after AuthorizationServers. With Issuers and
	// no AuthorizationServers, tokens of the local mcp_oauth are not
	// accepted.
	Issuers []ExternalIssuer `json:"issuers,omitempty"`

	// Scopes are published as scopes_supported and in the challenge's
	// scope parameter. Default: the caddymcp app's scopes.
	Scopes []string `json:"scopes,omitempty"`

	// ResourceName is a human-readable name of the resource
	// (resource_name).
	ResourceName string `json:"resource_name,omitempty"`

	// ResourceDocumentation is a URL of documentation for developers
	// (resource_documentation).
	ResourceDocumentation string `json:"resource_documentation,omitempty"`

	// LegacyTokens also accepts the opaque access tokens of the system
	// that predates OAuth, kept hashed in the database with a user, scopes
	// and an expiry, and created, listed and revoked with `caddy
	// mcp-token`. A token found is remembered for 5 seconds, so a
	// revocation takes effect within that time; an unknown one costs a
	// database query. Default: off.
	LegacyTokens bool `json:"legacy_tokens,omitempty"`

	// Require lists the scopes a request needs: any one of them, or all
	// with RequireAll. Default: none (any valid token).
	Require []string `json:"require,omitempty"`

	// RequireAll makes Require an all-of list.
	RequireAll bool `json:"require_all,omitempty"`

	// RequireDPoP accepts only DPoP-bound access tokens presented with
	// the DPoP scheme and a proof (RFC 9449): bearer tokens are refused
	// with `401` and a `WWW-Authenticate: DPoP` challenge, and the
	// metadata says `dpop_bound_access_tokens_required: true`. Default:
	// bearer and DPoP-bound tokens are both accepted.
	RequireDPoP bool `json:"require_dpop,omitempty"`

	resource *bearer.Resource
	app      *App
	emails   *bearer.Emails
}

// ExternalIssuer is an external authorization server whose tokens
// mcp_bearer accepts.
type ExternalIssuer struct {
	// Issuer is the exact iss of its tokens, as its own metadata gives it
	// (Auth0's end with a slash), e.g.
	// `https://sso.example.com/realms/mcp`. Required.
	Issuer string `json:"issuer"`

	// JWKSURL is the URL of its public keys. Default: the jwks_uri of its
	// metadata, read from `/.well-known/oauth-authorization-server`
	// (RFC 8414), else `/.well-known/openid-configuration`. Keys are
	// fetched on the first token, kept in memory, refreshed hourly and
	// when a token names an unknown key id (at most every 30 seconds);
	// while the server is unreachable the last keys stay in use.
	JWKSURL string `json:"jwks_url,omitempty"`

	// Audiences are accepted as the token's aud besides the resource
	// identifier: an API identifier (Auth0) or application id URI
	// (Entra ID) when the server cannot put the resource URL there.
	Audiences []string `json:"audiences,omitempty"`

	// AcceptJWTType also accepts tokens whose typ is "JWT" or missing
	// instead of RFC 9068's "at+jwt", as Keycloak and Entra ID issue.
	// Only enable it with an audience no ID token of that server carries.
	AcceptJWTType bool `json:"accept_jwt_type,omitempty"`

	// TrustEmail takes the email claim of its tokens for a verified
	// address even without `email_verified: true`, and passes it on in
	// `{http.auth.user.email}`. Enable it only for a server that puts
	// nothing but addresses it verified in its tokens. Default: only an
	// email claim with `email_verified: true` is passed on.
	TrustEmail bool `json:"trust_email,omitempty"`

	// Leeway tolerates clock skew between this server and Caddy on the
	// exp, nbf and iat of its tokens: a token is accepted at most this
	// long after its exp, cached or not. Default: 30s; at most 5m.
	// (Tokens of the local mcp_oauth, signed with Caddy's own clock, get
	// 5 seconds.)
	Leeway caddy.Duration `json:"leeway,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (*BearerAuth) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.mcp_bearer",
		New: func() caddy.Module { return new(BearerAuth) },
	}
}

// Provision sets up the resource.
func (b *BearerAuth) Provision(ctx caddy.Context) error {
	app, err := loadApp(ctx)
	if err != nil {
		return err
	}
	b.app, b.emails = app, bearer.NewEmails(app.store, nil)
	servers := b.AuthorizationServers
	if len(servers) == 0 && len(b.Issuers) == 0 && app.Issuer != "" {
		servers = []string{app.Issuer}
	}
	var remote []*bearer.RemoteIssuer
	for _, ext := range b.Issuers {
		ri, err := bearer.NewRemoteIssuer(bearer.RemoteIssuerConfig{
			Issuer:        ext.Issuer,
			JWKSURL:       ext.JWKSURL,
			Audiences:     ext.Audiences,
			AcceptJWTType: ext.AcceptJWTType,
			Leeway:        time.Duration(ext.Leeway),
			TrustEmail:    ext.TrustEmail,
			Logger:        ctx.Slogger(),
		})
		if err != nil {
			return fmt.Errorf("issuer %q: %w", ext.Issuer, err)
		}
		remote = append(remote, ri)
	}
	scopes := b.Scopes
	if scopes == nil {
		scopes = app.Scopes
	}
	if err := validateScopes(scopes); err != nil {
		return err
	}
	if err := validateScopes(b.Require); err != nil {
		return err
	}
	app.addResource(b.Resource)
	base := ""
	if app.Issuer != "" {
		base = originOf(app.Issuer)
	}
	var legacy func(context.Context, string) (*jose.AccessClaims, error)
	if b.LegacyTokens {
		legacy = bearer.LegacyLookup(app.store, nil)
	}
	b.resource, err = bearer.NewResource(bearer.ResourceConfig{
		Resource:              b.Resource,
		BaseOrigin:            base,
		AuthorizationServers:  servers,
		Remote:                remote,
		Scopes:                scopes,
		ResourceName:          b.ResourceName,
		ResourceDocumentation: b.ResourceDocumentation,
		Keys:                  app,
		Active:                app.store.deny.Active,
		Legacy:                legacy,
		Required:              b.Require,
		RequireAll:            b.RequireAll,
		RequireDPoP:           b.RequireDPoP,
		Logger:                ctx.Slogger(),
	})
	return err
}

// ServeHTTP serves the resource metadata, or checks the request's token.
func (b *BearerAuth) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if b.resource.IsMetadataPath(r.URL.Path) {
		b.resource.ServeMetadata(w, r)
		return nil
	}
	if bearer.IsPreflight(r) {
		// Answered here, never passed on: it carries no token.
		b.resource.ServePreflight(w, r)
		return nil
	}
	r, done, err := b.app.enter(r)
	if err != nil {
		serveUnavailable(w)
		return nil
	}
	defer done()
	start := time.Now()
	p, f := b.resource.Check(publicRequest(r))
	b.app.meters().observe("mcp_bearer", "check", start)
	if f != nil {
		b.app.meters().authFailure(failureReason(f))
		if hasErrorRoutes(r) {
			f.SetHeaders(w)
			return caddyhttp.Error(f.Status, f)
		}
		f.Write(w)
		return nil
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.auth.user.id", p.Subject)
		repl.Set("http.auth.user.client_id", p.ClientID)
		repl.Set("http.auth.user.scope", p.Scope)
		repl.Set("http.auth.user.aud", strings.Join(p.Audience, " "))
		repl.Set("http.auth.user.iss", p.Issuer)
		repl.Map(b.lazyEmail(r.Context(), p))
		repl.Set("http.auth.user.dpop_jkt", p.DPoPKey)
	}
	// No token passthrough: upstreams get identity, never the token.
	r.Header.Del("Authorization")
	r.Header.Del(dpop.Header)
	return next.ServeHTTP(w, r.WithContext(bearer.WithPrincipal(r.Context(), p)))
}

// lazyEmail answers {http.auth.user.email} with the principal's verified
// address (see bearer.Emails.Of: an external token's verified email
// claim, else a local user's verified address, looked up only when a
// placeholder asks for it, and once per request) and
// {http.auth.user.email_verified} with "true" when there is one, else
// "false".
func (b *BearerAuth) lazyEmail(ctx context.Context, p *bearer.Principal) caddy.ReplacerFunc {
	var once sync.Once
	var email string
	return func(key string) (any, bool) {
		if key != "http.auth.user.email" && key != "http.auth.user.email_verified" {
			return nil, false
		}
		once.Do(func() { email = b.emails.Of(ctx, p) })
		if key == "http.auth.user.email_verified" {
			return strconv.FormatBool(email != ""), true
		}
		return email, true
	}
}

// publicRequest returns r as the client sent it, before any rewrite of
// its path (handle_path, uri strip_prefix) by earlier handlers, so that
// a DPoP proof's htu is compared with the URL the client addressed.
func publicRequest(r *http.Request) *http.Request {
	orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request)
	if !ok || orig.URL == nil || orig.URL.EscapedPath() == r.URL.EscapedPath() {
		return r
	}
	pr := r.WithContext(r.Context())
	pr.URL = orig.URL
	return pr
}

// failureReason is the metrics label of a refusal.
func failureReason(f *bearer.Failure) string {
	if f.Reason != "" {
		return f.Reason
	}
	switch f.Code {
	case "unauthorized":
		return "missing_token"
	case "invalid_request":
		return "malformed_request"
	case "temporarily_unavailable":
		return "unavailable"
	}
	return f.Code
}

// Interface guards
var (
	_ caddy.Provisioner           = (*BearerAuth)(nil)
	_ caddyhttp.MiddlewareHandler = (*BearerAuth)(nil)
)
