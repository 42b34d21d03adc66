package caddymcp

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddymcp/caddymcp/caddymcp/login"
	"github.com/caddymcp/caddymcp/caddymcp/oauth"
	"github.com/caddymcp/caddymcp/caddymcp/store"
	"github.com/caddymcp/caddymcp/caddymcp/tools"
)

// OAuthServer is the OAuth 2.1 authorization server of a site
// (http.handlers.mcp_oauth). It answers its own endpoints and passes every
// other request to the next handler, so one line in a site block is
// enough:
//
//   - `GET /.well-known/oauth-authorization-server`: RFC 8414 metadata
//     (with an issuer that has a path, the path is appended);
//   - `GET /oauth/jwks`: the public keys that sign access tokens;
//   - `POST /oauth/register`: dynamic client registration (RFC 7591);
//   - `GET|POST /oauth/authorize` and `POST /oauth/consent`: the
//     authorization endpoint with PKCE, resource indicators and a consent
//     page;
//   - `POST /oauth/token`: authorization codes and rotating refresh
//     tokens for JWT access tokens (RFC 9068), bearer tokens or, with a
//     `DPoP` proof, DPoP-bound tokens (RFC 9449; see DPoP), bound to the
//     TLS client certificate of the connection, if any (RFC 8705; see
//     MTLS);
//   - `POST /oauth/revoke` (RFC 7009) and `POST /oauth/introspect`
//     (RFC 7662).
//
// Registration, the token endpoint, authorization and sign-in are rate
// limited per client IP address (see RateLimits); over a limit a request
// gets `429 Too Many Requests` with `Retry-After`.
//
// The signing key is created once, when the caddymcp app first starts,
// and kept in the store, so restarts and reloads keep the same key id.
// Audit events (client registered, consent, codes, tokens, reuse
// detected) are logged at INFO with "audit": true and never contain a
// secret.
type OAuthServer struct {
	// Issuer is this authorization server's issuer identifier: an https
	// URL without a trailing slash. Default: the caddymcp app's issuer,
	// or else the origin of each request. Supports `{env.*}`
	// placeholders.
	Issuer string `json:"issuer,omitempty"`

	// Scopes are the scopes offered (scopes_supported). Default: the
	// caddymcp app's scopes.
	Scopes []string `json:"scopes,omitempty"`

	// Resources are further resource identifiers (absolute URLs, or paths
	// on the issuer's origin) that tokens may be issued for, besides those
	// guarded by mcp_bearer in this Caddy, which are always included.
	Resources []string `json:"resources,omitempty"`

	// Registration configures dynamic client registration (RFC 7591),
	// which is open by default.
	Registration *Registration `json:"registration,omitempty"`

	// ClientMetadataDocuments configures clients whose client_id is the
	// https URL of their metadata document, as Claude and VS Code use
	// them. On by default, for documents on hosts with public addresses.
	ClientMetadataDocuments *ClientMetadataDocuments `json:"client_metadata_documents,omitempty"`

	// Clients are pre-registered clients, for use with or instead of
	// dynamic registration.
	Clients []StaticClient `json:"clients,omitempty"`

	// CodeLifetime is how long an authorization code lives. Default: 60s;
	// at most 10m.
	CodeLifetime caddy.Duration `json:"code_lifetime,omitempty"`

	// AccessTokenLifetime is how long an access token lives. Default: 1h;
	// at most 24h.
	AccessTokenLifetime caddy.Duration `json:"access_token_lifetime,omitempty"`

	// RefreshTokenLifetime is the absolute lifetime of a grant's refresh
	// tokens, counted from the first authorization. Default: 30 days.
	RefreshTokenLifetime caddy.Duration `json:"refresh_token_lifetime,omitempty"`

	// RefreshTokenIdle expires a refresh token that is not used for this
	// long. Default: 14 days.
	RefreshTokenIdle caddy.Duration `json:"refresh_token_idle,omitempty"`

	// RefreshGrace is how long a rotated refresh token still gets the
	// same response, so that concurrent refreshes by one client do not
	// log the user out. Default: 10s.
	RefreshGrace caddy.Duration `json:"refresh_grace,omitempty"`

	// AllowedOrigins restricts which browser origins may call the
	// registration, token, revocation and introspection endpoints
	// cross-origin. Default: any origin. The authorization server
	// metadata and the JWKS are public and readable from any origin.
	AllowedOrigins []string `json:"allowed_origins,omitempty"`

	// Login lists the identity providers users sign in with (Google or
	// any OpenID Connect provider), or the development sign-in (see
	// LoginProvider.Dev). Without one, no user can authorize a client.
	Login []LoginProvider `json:"login,omitempty"`

	// Allow is the access policy: who may sign in and which scopes they
	// may grant. Deny by default.
	Allow []AccessRule `json:"allow,omitempty"`

	// SessionIdle ends a login session unused for this long. Default: 24h.
	SessionIdle caddy.Duration `json:"session_idle,omitempty"`

	// SessionLifetime ends every login session this long after sign-in.
	// Default: 7 days.
	SessionLifetime caddy.Duration `json:"session_lifetime,omitempty"`

	// RateLimit limits how often one client IP address may register
	// clients, request tokens, authorize and sign in. On by default; see
	// RateLimits for the defaults.
	RateLimit *RateLimits `json:"rate_limit,omitempty"`

	// DPoP configures sender-constrained tokens (RFC 9449). By default a
	// token request with a valid `DPoP` proof gets a DPoP-bound access
	// token (`token_type: DPoP`, `cnf.jkt`), and a public client's
	// refresh token is bound to the same key; a request without one gets
	// a bearer token.
	DPoP *DPoPOptions `json:"dpop,omitempty"`

	// MTLS configures mutual TLS (RFC 8705), with the client certificates
	// that the site's TLS client authentication (`tls { client_auth … }`)
	// requests or verifies. By default clients may authenticate with
	// `tls_client_auth` (a certificate whose chain Caddy verified against
	// the trust pool, with the subject they registered) or
	// `self_signed_tls_client_auth` (a certificate with a public key of
	// their registered `jwks`), and an access token requested over a
	// connection with a client certificate is bound to it
	// (`cnf.x5t#S256`), as is a public client's refresh token.
	MTLS *MTLSOptions `json:"mtls,omitempty"`

	server *oauth.Server
	login  *login.Server
	app    *App
}

// Registration configures dynamic client registration.
type Registration struct {
	// Disabled turns registration off; only Clients can then authorize.
	Disabled bool `json:"disabled,omitempty"`

	// InitialAccessToken, when set, must be sent as
	// `Authorization: Bearer <token>` to register (RFC 7591 §3), which
	// closes open registration. Supports `{env.*}` and `{file.*}`
	// placeholders.
	InitialAccessToken string `json:"initial_access_token,omitempty"`

	// MaxClients caps the number of registered clients. Default: 10000.
	// When it is reached, the oldest client that never completed an
	// authorization is deleted to make way; only when there is none is
	// the registration refused.
	MaxClients int `json:"max_clients,omitempty"`

	// MaxRedirectURIs caps a client's redirect URIs. Default: 10.
	MaxRedirectURIs int `json:"max_redirect_uris,omitempty"`

	// SecretLifetime makes client secrets expire; the default 0 means
	// they do not.
	SecretLifetime caddy.Duration `json:"secret_lifetime,omitempty"`
}

// DPoPOptions configures DPoP (RFC 9449) at the token endpoint.
//
// A proof is checked as RFC 9449 §4.3 says: one `DPoP` header holding a
// JWT of typ `dpop+jwt`, signed with an asymmetric algorithm (ES256,
// ES384, ES512, EdDSA, PS256…PS512, RS256…RS512) by the public key in its
// `jwk` header, with `htm` POST, `htu` the token endpoint, an `iat` at
// most 60 seconds old (5 seconds of clock skew either way) and a `jti`
// not seen before on this instance. A bad proof gets
// `400 invalid_dpop_proof`. The `dpop_jkt` authorization parameter
// binds the code to a key (§10).
type DPoPOptions struct {
	// Disabled ignores DPoP proofs and `dpop_jkt`: every access token is
	// a bearer token, and the metadata does not list
	// `dpop_signing_alg_values_supported`.
	Disabled bool `json:"disabled,omitempty"`

	// RequireNonce makes every DPoP proof carry a nonce of this server
	// (RFC 9449 §8). A proof without the current nonce gets
	// `400 {"error":"use_dpop_nonce"}` with a `DPoP-Nonce` header, and
	// the code or refresh token stays usable for the retry. A nonce is
	// valid for 5 to 10 minutes, and every answer to a request with a
	// proof carries the current one. Nonces are derived from a secret
	// kept in the database (sealed with the key-encryption key, if there
	// is one), so every instance on the database accepts those of the
	// others.
	RequireNonce bool `json:"require_nonce,omitempty"`
}

// MTLSOptions configures mutual TLS (RFC 8705) at the token, revocation
// and introspection endpoints.
//
// The certificate is the one the client presented in the TLS handshake
// with Caddy, so TLS must end at Caddy, and the site must ask for client
// certificates: `client_auth` mode `request` or `require` for
// self-signed certificates and certificate-bound tokens, `verify_if_given`
// or `require_and_verify` with a `trust_pool` for `tls_client_auth`
// (whose chain Caddy must have verified). A protected resource accepts a
// certificate-bound token only over a connection with that certificate,
// so `mcp_bearer`'s site must request client certificates too.
type MTLSOptions struct {
	// Disabled ignores client certificates: the metadata offers neither
	// mutual-TLS client authentication nor certificate-bound tokens.
	Disabled bool `json:"disabled,omitempty"`

	// BindOnRequest binds access tokens to the client certificate only
	// for clients that registered
	// `tls_client_certificate_bound_access_tokens` (RFC 8705 §3.4), and
	// the static clients with CertificateBoundTokens. Default: every
	// access token requested over a connection with a client certificate
	// is bound to it.
	BindOnRequest bool `json:"bind_on_request,omitempty"`

	// Endpoint is the base URL of a host whose TLS server requests client
	// certificates, such as `https://mtls.example.com`, published as
	// `mtls_endpoint_aliases` (RFC 8705 §5) for the token, revocation and
	// introspection endpoints, so that the regular host need not ask
	// browsers for certificates. Its site must run this mcp_oauth (or one
	// configured the same). It needs an issuer (mcp_oauth's or the
	// caddymcp app's). Default: none; the regular endpoints use client
	// certificates when the site asks for them.
	Endpoint string `json:"endpoint,omitempty"`
}

// mtlsConfig turns the options into the authorization server's.
func (o *OAuthServer) mtlsConfig() oauth.MTLSConfig {
	if o.MTLS == nil {
		return oauth.MTLSConfig{}
	}
	return oauth.MTLSConfig{Disabled: o.MTLS.Disabled, BindOnRequest: o.MTLS.BindOnRequest, Endpoint: o.MTLS.Endpoint}
}

// nonceSecret is the DPoP nonce secret of app's store, read once the
// store is migrated and keyed.
func nonceSecret(app *App) func(ctx context.Context) ([]byte, error) {
	open := func(ctx context.Context) (store.Secrets, error) {
		if _, err := app.KeySet(ctx); err != nil {
			return nil, err
		}
		return app.Store(), nil
	}
	return oauth.StoredNonceSecret(open, app.keys.KEK, rand.Reader)
}

// dpopConfig turns the options into the authorization server's.
func (o *OAuthServer) dpopConfig(app *App) oauth.DPoPConfig {
	if o.DPoP == nil {
		return oauth.DPoPConfig{}
	}
	c := oauth.DPoPConfig{Disabled: o.DPoP.Disabled, RequireNonce: o.DPoP.RequireNonce}
	if c.RequireNonce && !c.Disabled {
		c.NonceSecret = nonceSecret(app)
	}
	return c
}

// ClientMetadataDocuments configures OAuth Client ID Metadata Documents
// (draft-ietf-oauth-client-id-metadata-document). A client_id that is an
// https URL with a path, such as
// `https://claude.ai/oauth/mcp-oauth-client-metadata`, names a JSON
// document of the client's metadata (RFC 7591 names). Instead of a
// registration, the server fetches it when the client first asks for
// authorization or a token, and uses it while its HTTP cache headers
// allow (at least 5 minutes, at most 24 hours; never with `no-store` or
// `no-cache`). The metadata then advertises
// `client_id_metadata_document_supported: true`.
//
// A fetch is https only, on port 443 unless `allow_ports` lists others,
// follows no redirect, reads at most 5 KB and takes at most `timeout`.
// Every connection, TLS or HTTP failure reads the same to the client and
// the user ("it could not be fetched"); the details are logged. It connects only to public addresses: an
// address that is loopback, private, link-local, shared (CGNAT),
// multicast, unspecified, or otherwise special-use (RFC 6890) is refused
// at the moment of connecting, so DNS rebinding cannot get around it.
// The document must be a JSON object whose `client_id` is exactly its
// URL, with `client_name` and `redirect_uris` (which pass the same policy
// as at registration), and without a shared secret: no `client_secret`,
// and a `token_endpoint_auth_method` of `none` (absent means none;
// `private_key_jwt` is not supported). The requested `redirect_uri` must
// be one of its `redirect_uris` (any port of a loopback one). The consent
// page shows the client_id's host with the redirect host, and warns when
// the redirect leads back to the user's own device. A document that
// cannot be fetched or is invalid gets an error page at the
// authorization endpoint and `401 invalid_client` at the token endpoint
// (`503 temporarily_unavailable` while its host is unreachable; a known
// document then keeps serving token requests for up to a day); neither
// errors nor invalid documents are cached.
type ClientMetadataDocuments struct {
	// Disabled turns client metadata documents off: an https client_id
	// is then an unknown client.
	Disabled bool `json:"disabled,omitempty"`

	// AllowDomains limits the hosts documents may come from: a name such
	// as `claude.ai` matches that host only, `*.example.com` every
	// subdomain of example.com (not example.com itself). Default: any
	// host. Listing a loopback host exactly (`localhost`, `127.0.0.1`,
	// `::1`) lets documents be fetched from that host's loopback
	// addresses: meant for tests only, and logged as a warning.
	AllowDomains []string `json:"allow_domains,omitempty"`

	// AllowPorts are the ports other than 443 that documents may be
	// fetched on. Default: none (443 only), so that a client_id cannot make
	// the server probe other ports of a host.
	AllowPorts []int `json:"allow_ports,omitempty"`

	// Timeout bounds one fetch: connecting, TLS and reading the document.
	// Default: 5s; at most 30s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
}

// maxDocumentTimeout bounds ClientMetadataDocuments.Timeout: a request
// waits for the fetch.
const maxDocumentTimeout = 30 * time.Second

// StaticClient is a client declared in the configuration.
type StaticClient struct {
	// ID is the client_id.
	ID string `json:"id,omitempty"`

	// Secret is the client secret; empty for a public client (which must
	// use PKCE, as every client must). Supports `{env.*}` and `{file.*}`
	// placeholders.
	Secret string `json:"secret,omitempty"`

	// Name is shown on the consent page.
	Name string `json:"name,omitempty"`

	// RedirectURIs are the allowed redirect URIs.
	RedirectURIs []string `json:"redirect_uris,omitempty"`

	// Scopes limits the scopes the client may receive. Default: all.
	Scopes []string `json:"scopes,omitempty"`

	// TLSClientAuth makes the client authenticate with `tls_client_auth`
	// (RFC 8705 §2.1): a TLS client certificate whose chain Caddy's
	// client_auth verified, carrying this subject. Exclusive with Secret
	// and SelfSignedCertificates.
	TLSClientAuth *TLSClientSubject `json:"tls_client_auth,omitempty"`

	// SelfSignedCertificates are PEM files of the client's certificates;
	// it then authenticates with `self_signed_tls_client_auth` (RFC 8705
	// §2.2): a TLS client certificate with the public key of one of them,
	// whose chain is not verified. Exclusive with Secret and
	// TLSClientAuth.
	SelfSignedCertificates []string `json:"self_signed_tls_client_auth,omitempty"`

	// CertificateBoundTokens issues the client only access tokens bound
	// to its TLS client certificate (RFC 8705 §3.4): a token request
	// without one is refused.
	CertificateBoundTokens bool `json:"certificate_bound_tokens,omitempty"`
}

// TLSClientSubject is the subject the certificate of a `tls_client_auth`
// client carries (RFC 8705 §2.1.2). Exactly one field is set.
type TLSClientSubject struct {
	// SubjectDN is the certificate's subject distinguished name, in RFC
	// 4514 syntax such as `CN=agent,O=Example\, Inc.,C=DE` (most
	// specific first; compared ignoring case and extra spaces).
	SubjectDN string `json:"subject_dn,omitempty"`
	// SANDNS is a DNS name among the certificate's subject alternative
	// names.
	SANDNS string `json:"san_dns,omitempty"`
	// SANURI is a URI among its subject alternative names.
	SANURI string `json:"san_uri,omitempty"`
	// SANIP is an IP address among its subject alternative names.
	SANIP string `json:"san_ip,omitempty"`
	// SANEmail is an email address among its subject alternative names.
	SANEmail string `json:"san_email,omitempty"`
}

// subject returns the one subject that is set.
func (s *TLSClientSubject) subject() (store.CertificateSubject, error) {
	var out store.CertificateSubject
	for i, v := range []string{s.SubjectDN, s.SANDNS, s.SANURI, s.SANIP, s.SANEmail} {
		if v == "" {
			continue
		}
		if out.Kind != "" {
			return out, errors.New("tls_client_auth takes exactly one subject")
		}
		out = store.CertificateSubject{Kind: oauth.SubjectKinds[i], Value: v}
	}
	if out.Kind == "" {
		return out, errors.New("tls_client_auth needs a subject")
	}
	return out, oauth.CheckCertificateSubject(out)
}

// readCertificates reads the certificates of PEM files.
func readCertificates(files []string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		n := 0
		for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
			if block.Type != "CERTIFICATE" {
				continue
			}
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			certs, n = append(certs, cert), n+1
		}
		if n == 0 {
			return nil, fmt.Errorf("%s holds no PEM certificate", name)
		}
	}
	return certs, nil
}

func durationOf(d caddy.Duration) time.Duration { return time.Duration(d) }

// maxAccessTokenLifetime bounds access tokens, so that retired signing
// keys (published for a day) outlive every token they signed.
const maxAccessTokenLifetime = 24 * time.Hour

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
	o.app = app
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
	if err := o.checkDevLogin(ctx, issuer, ctx.Slogger()); err != nil {
		return err
	}
	scopes := o.Scopes
	if scopes == nil {
		scopes = app.Scopes
	}
	if err := validateScopes(scopes); err != nil {
		return err
	}
	if time.Duration(o.AccessTokenLifetime) > maxAccessTokenLifetime {
		return errors.New("access_token_lifetime may be at most 24h")
	}
	reg, err := o.registration()
	if err != nil {
		return err
	}
	clients, err := o.staticClients()
	if err != nil {
		return err
	}
	docs, err := o.clientDocuments()
	if err != nil {
		return err
	}
	limits, err := o.rateLimiters()
	if err != nil {
		return err
	}
	if o.login, err = o.loginServer(ctx, app, limits.login); err != nil {
		return err
	}
	var users oauth.Authenticator
	account := ""
	if o.login != nil {
		users, account = o.login, login.AccountPath
	}
	extra := o.Resources
	o.server, err = oauth.New(oauth.Config{
		Users:                   users,
		Issuer:                  issuer,
		Scopes:                  scopes,
		Keys:                    app,
		Store:                   app.Store(),
		Resources:               func() []string { return append(app.resources(), extra...) },
		StaticClients:           clients,
		Registration:            reg,
		ClientMetadataDocuments: docs,
		ScopeTools:              consentScopeTools(),
		AccountURL:              account,
		CodeLifetime:            time.Duration(o.CodeLifetime),
		AccessTokenLifetime:     time.Duration(o.AccessTokenLifetime),
		RefreshLifetime:         time.Duration(o.RefreshTokenLifetime),
		RefreshIdle:             time.Duration(o.RefreshTokenIdle),
		RefreshGrace:            time.Duration(o.RefreshGrace),
		AllowedOrigins:          o.AllowedOrigins,
		RateLimits:              limits.oauth,
		DPoP:                    o.dpopConfig(app),
		MTLS:                    o.mtlsConfig(),
		OnRevoke:                app.refreshDenyList,
		Logger:                  ctx.Slogger(),
		Events:                  app.oauthEvents(ctx.Slogger()),
	})
	return err
}

func (o *OAuthServer) registration() (oauth.Registration, error) {
	r := o.Registration
	if r == nil {
		return oauth.Registration{}, nil
	}
	token, err := resolve("registration initial_access_token", r.InitialAccessToken)
	if err != nil {
		return oauth.Registration{}, err
	}
	if r.MaxClients < 0 || r.MaxRedirectURIs < 0 || r.SecretLifetime < 0 {
		return oauth.Registration{}, errors.New("registration limits must not be negative")
	}
	return oauth.Registration{Disabled: r.Disabled, InitialAccessToken: token, MaxClients: r.MaxClients,
		MaxRedirectURIs: r.MaxRedirectURIs, SecretLifetime: time.Duration(r.SecretLifetime)}, nil
}

func (o *OAuthServer) clientDocuments() (oauth.ClientMetadataDocuments, error) {
	c := o.ClientMetadataDocuments
	if c == nil {
		return oauth.ClientMetadataDocuments{}, nil
	}
	if c.Timeout < 0 || time.Duration(c.Timeout) > maxDocumentTimeout {
		return oauth.ClientMetadataDocuments{}, errors.New("client_metadata_documents: the timeout must be between 0 and 30s")
	}
	if err := oauth.CheckAllowPorts(c.AllowPorts); err != nil {
		return oauth.ClientMetadataDocuments{}, err
	}
	return oauth.ClientMetadataDocuments{Disabled: c.Disabled, AllowDomains: c.AllowDomains, AllowPorts: c.AllowPorts,
		Timeout: time.Duration(c.Timeout)}, nil
}

func (o *OAuthServer) staticClients() ([]oauth.StaticClient, error) {
	out := make([]oauth.StaticClient, 0, len(o.Clients))
	for _, c := range o.Clients {
		secret, err := resolve(fmt.Sprintf("client %s secret", c.ID), c.Secret)
		if err != nil {
			return nil, err
		}
		if err := validateScopes(c.Scopes); err != nil {
			return nil, fmt.Errorf("client %s: %w", c.ID, err)
		}
		sc := oauth.StaticClient{ID: c.ID, Secret: secret, Name: c.Name, RedirectURIs: c.RedirectURIs, Scopes: c.Scopes,
			CertificateBoundTokens: c.CertificateBoundTokens}
		if c.TLSClientAuth != nil {
			if sc.TLSClientAuth, err = c.TLSClientAuth.subject(); err != nil {
				return nil, fmt.Errorf("client %s: %w", c.ID, err)
			}
		}
		if len(c.SelfSignedCertificates) > 0 {
			if sc.SelfSignedCertificates, err = readCertificates(c.SelfSignedCertificates); err != nil {
				return nil, fmt.Errorf("client %s: self_signed_tls_client_auth: %w", c.ID, err)
			}
		}
		out = append(out, sc)
	}
	return out, nil
}

// ServeHTTP answers the authorization server's endpoints and passes other
// requests on.
func (o *OAuthServer) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	var serve http.Handler = o.server
	endpoint := o.server.Endpoint(r.URL.Path)
	if endpoint == "" && o.login != nil {
		serve, endpoint = o.login, o.login.Endpoint(r.URL.Path)
	}
	if endpoint == "" {
		return next.ServeHTTP(w, r)
	}
	o.app.serve(w, r, func(w http.ResponseWriter, r *http.Request) {
		defer o.app.meters().observe("mcp_oauth", endpoint, time.Now())
		serve.ServeHTTP(w, r)
	})
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*OAuthServer)(nil)
	_ caddyhttp.MiddlewareHandler = (*OAuthServer)(nil)
)

// consentScopeTools lists, per scope, the tools the consent page names:
// the tool registry's own declarations, so the page cannot drift from
// what a token unlocks.
func consentScopeTools() map[string][]oauth.ScopeTool {
	out := map[string][]oauth.ScopeTool{}
	for scope, list := range tools.ByScope() {
		for _, t := range list {
			out[scope] = append(out[scope], oauth.ScopeTool{Name: t.Name, Title: t.Title})
		}
	}
	return out
}
