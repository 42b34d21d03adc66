package oauth

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/internal/audit"
	"github.com/caddymcp/caddymcp/caddymcp/internal/dpop"
	"github.com/caddymcp/caddymcp/caddymcp/internal/web"
	"github.com/caddymcp/caddymcp/caddymcp/ratelimit"
	"github.com/caddymcp/caddymcp/caddymcp/signing"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// Endpoint paths of the authorization server, relative to the issuer.
const (
	JWKSPath       = "/oauth/jwks"
	RegisterPath   = "/oauth/register"
	AuthorizePath  = "/oauth/authorize"
	ConsentPath    = "/oauth/consent"
	TokenPath      = "/oauth/token"
	RevokePath     = "/oauth/revoke"
	IntrospectPath = "/oauth/introspect"
)

// Defaults of Config's lifetimes and limits.
const (
	DefaultCodeLifetime        = time.Minute
	MaxCodeLifetime            = 10 * time.Minute
	DefaultAccessTokenLifetime = time.Hour
	DefaultRefreshLifetime     = 30 * 24 * time.Hour
	DefaultRefreshIdle         = 14 * 24 * time.Hour
	DefaultRefreshGrace        = 10 * time.Second
	DefaultMaxClients          = 10000
	DefaultMaxRedirectURIs     = 10
	authRequestLifetime        = 10 * time.Minute
	maxBodyBytes               = 64 << 10
)

// Store is what the authorization server keeps in the database.
type Store interface {
	store.Clients
	store.Codes
	store.AuthRequests
	store.Grants
	store.Consents
}

// User is the logged-in person an authorization request is decided by.
type User struct {
	// ID becomes the sub of access tokens.
	ID string
	// Name and Email are shown on the consent page.
	Name, Email string
	// Scopes limits what the user may grant; nil means no limit beyond
	// scopes_supported.
	Scopes []string
}

// Authenticator tells who is logged in, and sends the others to log in.
type Authenticator interface {
	// CurrentUser returns the logged-in user of r, or nil.
	CurrentUser(r *http.Request) (*User, error)
	// Login answers r by sending the user to log in, after which the
	// user's browser comes back to r's URL.
	Login(w http.ResponseWriter, r *http.Request)
	// UserScopes applies the current access policy to a user: whether
	// they may still use the server, and the scopes they may grant (nil:
	// no limit). It is asked at every refresh.
	UserScopes(ctx context.Context, userID string) (scopes []string, allowed bool, err error)
}

// Config configures the authorization server.
type Config struct {
	// Issuer is the issuer identifier. Empty means: the origin of each
	// request (see RequestOrigin), which suits a site with one host name.
	Issuer string
	// Scopes are the scopes offered (scopes_supported). Default:
	// DefaultScopes.
	Scopes []string
	// Keys yields the signing keys.
	Keys signing.KeySource
	// Store keeps clients, codes, grants and consents. Without it no
	// client can be authorized, and static clients are refused.
	Store Store
	// Users tells who is logged in. Without it no authorization request
	// can succeed (fail closed).
	Users Authenticator
	// Resources returns the identifiers (absolute URLs, or paths taken
	// relative to the issuer's origin) of the resources tokens may be
	// issued for; the first is the default when a request names none.
	Resources func() []string
	// StaticClients are clients declared in the configuration.
	StaticClients []StaticClient
	// Registration configures dynamic client registration.
	Registration Registration
	// CodeLifetime is how long an authorization code lives. Default: 60s;
	// at most 10 minutes.
	CodeLifetime time.Duration
	// AccessTokenLifetime is how long an access token lives. Default: 1h.
	AccessTokenLifetime time.Duration
	// RefreshLifetime is the absolute lifetime of a grant's refresh
	// tokens. Default: 30 days.
	RefreshLifetime time.Duration
	// RefreshIdle expires a refresh token unused this long. Default: 14
	// days.
	RefreshIdle time.Duration
	// RefreshGrace is how long a rotated refresh token still returns the
	// same response, for clients that refresh concurrently. Default: 10s.
	RefreshGrace time.Duration
	// AllowedOrigins restricts which browser origins may call the
	// registration, token, revocation and introspection endpoints
	// cross-origin. Empty means any ("*"). The metadata and the JWKS are
	// public and always allow any origin.
	AllowedOrigins []string
	// RateLimits limits how often one client may call the registration,
	// token and authorization endpoints. Default: no limits.
	RateLimits RateLimits
	// DPoP configures sender-constrained tokens (RFC 9449). Default: on,
	// without nonces.
	DPoP DPoPConfig
	// MTLS configures mutual-TLS client authentication and
	// certificate-bound tokens (RFC 8705). Default: on, binding every
	// access token requested over a connection with a client certificate.
	MTLS MTLSConfig
	// ScopeTools lists, per scope, the tools a token with that scope may
	// call, so that the consent page tells the person approving a scope
	// what it unlocks. Fill it from the tool registry (tools.ByScope) so
	// the page cannot drift from the tools served. A scope with no tools
	// here is described by the built-in text of the default scopes.
	// Default: none.
	ScopeTools map[string][]ScopeTool
	// AccountURL is the page where signed-in users see and revoke the
	// applications they authorized (the login server's /auth/account).
	// The consent page links to it. Default: none, and no link.
	AccountURL string
	// ClientMetadataDocuments configures clients whose client_id is the
	// https URL of their metadata document (CIMD). Default: on, for hosts
	// with public addresses; off without a Store.
	ClientMetadataDocuments ClientMetadataDocuments
	// OnRevoke is called after tokens were revoked (revocation, a
	// replayed code, refresh-token reuse), so that deny-lists can catch up
	// at once. Optional.
	OnRevoke func(ctx context.Context)
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Random is the randomness source. Default: crypto/rand.
	Random io.Reader
	// Events receives the server's audit events (the Event* kinds).
	// Default: written to Logger as Info records with audit=true.
	Events audit.Hook
	// Logger receives internal errors, and audit events when Events is
	// not set. Default: discard.
	Logger *slog.Logger
}

// Registration configures dynamic client registration (RFC 7591).
type Registration struct {
	// Disabled turns the registration endpoint off.
	Disabled bool
	// InitialAccessToken, when set, must be presented as a bearer token
	// to register (RFC 7591 §3).
	InitialAccessToken string
	// MaxClients caps the number of registered clients. Default: 10000.
	// When it is reached, the oldest client that never completed an
	// authorization is deleted to make way; only when there is none is
	// the registration refused.
	MaxClients int
	// MaxRedirectURIs caps a client's redirect URIs. Default: 10.
	MaxRedirectURIs int
	// SecretLifetime sets client_secret_expires_at; 0 means never.
	SecretLifetime time.Duration
}

// RateLimits are per-client limits of the endpoints that cost a database
// write or invite abuse; nil means no limit. A request over its limit gets
// 429 Too Many Requests with Retry-After: the JSON endpoints with the
// error too_many_requests, the authorization endpoint with an error
// page. CORS preflights are never counted.
type RateLimits struct {
	// Register limits POST /oauth/register.
	Register *ratelimit.RequestLimiter
	// Token limits POST /oauth/token.
	Token *ratelimit.RequestLimiter
	// Authorize limits /oauth/authorize and /oauth/consent, counted
	// together.
	Authorize *ratelimit.RequestLimiter
}

// StaticClient is a client declared in the configuration.
type StaticClient struct {
	// ID is the client_id.
	ID string
	// Secret is the client secret; empty for a public client.
	Secret string
	// Name is shown on the consent page.
	Name string
	// RedirectURIs are the allowed redirect URIs.
	RedirectURIs []string
	// Scopes limits the scopes the client may get; nil means any.
	Scopes []string
	// TLSClientAuth, when set, makes the client authenticate with
	// tls_client_auth: a TLS client certificate whose chain the TLS server
	// verified, carrying this subject (RFC 8705 §2.1). Exclusive with
	// Secret and SelfSignedCertificates.
	TLSClientAuth store.CertificateSubject
	// SelfSignedCertificates, when set, make the client authenticate with
	// self_signed_tls_client_auth: a TLS client certificate with the
	// public key of one of these (RFC 8705 §2.2). Exclusive with Secret
	// and TLSClientAuth.
	SelfSignedCertificates []*x509.Certificate
	// CertificateBoundTokens issues the client only access tokens bound to
	// its TLS client certificate, as tls_client_certificate_bound_access_tokens
	// does for a registered client (RFC 8705 §3.4).
	CertificateBoundTokens bool
}

// Server is the authorization server: an http.Handler for the paths
// Handles reports.
type Server struct {
	cfg        Config
	issuerPath string
	static     map[string]*store.Client
	log        *slog.Logger
	events     audit.Hook
	replay     *dpop.ReplayCache // DPoP proofs seen at the token endpoint
	docs       *documents        // client metadata documents; nil when off
	mtlsPath   string            // path of the mutual-TLS endpoint aliases
	// The token endpoint authentication methods offered: at the token and
	// revocation endpoints, and at the introspection endpoint.
	authMethods, introspectMethods []string
}

// New checks cfg, fills in defaults, and returns a server.
func New(cfg Config) (*Server, error) {
	s := &Server{cfg: cfg, static: map[string]*store.Client{}, replay: dpop.NewReplayCache()}
	if cfg.Issuer != "" {
		if err := web.ValidateIssuer(cfg.Issuer); err != nil {
			return nil, err
		}
		u, _ := url.Parse(cfg.Issuer) // validated above
		s.issuerPath = u.EscapedPath()
	}
	if cfg.Keys == nil {
		return nil, errors.New("oauth server: no key source")
	}
	c := &s.cfg
	if c.Scopes == nil {
		c.Scopes = web.DefaultScopes
	}
	if c.Resources == nil {
		c.Resources = func() []string { return nil }
	}
	setDefault(&c.CodeLifetime, DefaultCodeLifetime)
	if c.CodeLifetime > MaxCodeLifetime {
		return nil, fmt.Errorf("code lifetime %v exceeds the 10 minutes OAuth allows", c.CodeLifetime)
	}
	setDefault(&c.AccessTokenLifetime, DefaultAccessTokenLifetime)
	setDefault(&c.RefreshLifetime, DefaultRefreshLifetime)
	setDefault(&c.RefreshIdle, DefaultRefreshIdle)
	setDefault(&c.RefreshGrace, DefaultRefreshGrace)
	if err := checkDPoPConfig(&c.DPoP); err != nil {
		return nil, err
	}
	var err error
	if s.mtlsPath, err = checkMTLSConfig(&c.MTLS, c.Issuer); err != nil {
		return nil, err
	}
	s.authMethods, s.introspectMethods = slices.Clone(authMethods), slices.Clone(secretAuthMethods)
	if !c.MTLS.Disabled {
		// RFC 8705 §2.1.1, §2.2.1.
		s.authMethods = append(s.authMethods, TLSClientAuth, SelfSignedTLSClientAuth)
		s.introspectMethods = append(s.introspectMethods, TLSClientAuth, SelfSignedTLSClientAuth)
	}
	if c.Registration.MaxClients == 0 {
		c.Registration.MaxClients = DefaultMaxClients
	}
	if c.Registration.MaxRedirectURIs == 0 {
		c.Registration.MaxRedirectURIs = DefaultMaxRedirectURIs
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Random == nil {
		c.Random = rand.Reader
	}
	s.log = c.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.events = c.Events
	if s.events == nil {
		s.events = audit.Log(s.log)
	}
	if c.Store == nil && len(c.StaticClients) > 0 {
		// Codes, grants and consents of static clients live in the store.
		return nil, errors.New("oauth server: static clients need a store")
	}
	if !c.ClientMetadataDocuments.Disabled && c.Store != nil {
		docs, err := newDocuments(c.ClientMetadataDocuments)
		if err != nil {
			return nil, err
		}
		s.docs = docs
		logDocumentSettings(s.log, s.docs.hosts)
	}
	for _, sc := range c.StaticClients {
		cl, err := staticClient(sc, c.MTLS.Disabled)
		if err != nil {
			return nil, err
		}
		if _, dup := s.static[cl.ID]; dup {
			return nil, fmt.Errorf("client %q is declared twice", cl.ID)
		}
		s.static[cl.ID] = cl
	}
	return s, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// route names the endpoint a path belongs to, or "" if it is not ours.
func (s *Server) route(path string) string {
	if path == ASMetadataPath+s.issuerPath {
		return "metadata"
	}
	if s.mtlsAliases() != nil && s.mtlsPath != s.issuerPath {
		// The mutual-TLS aliases (RFC 8705 §5) under their own path.
		if rest, ok := strings.CutPrefix(path, s.mtlsPath); ok {
			switch name := routeNames[rest]; name {
			case "token", "revoke", "introspect":
				return name
			}
		}
	}
	if rest, ok := strings.CutPrefix(path, s.issuerPath); ok {
		return routeNames[rest]
	}
	return ""
}

// routeNames are the route names of the endpoint paths below the
// issuer's path (the metadata is below the well-known prefix instead).
var routeNames = map[string]string{
	JWKSPath: "jwks", RegisterPath: "register", AuthorizePath: "authorize", ConsentPath: "consent",
	TokenPath: "token", RevokePath: "revoke", IntrospectPath: "introspect",
}

// Handles reports whether the server answers requests for path; others
// should go to the next handler.
func (s *Server) Handles(path string) bool { return s.route(path) != "" }

// routePaths are the endpoint paths of the route names, as Endpoint
// reports them.
var routePaths = map[string]string{
	"metadata": ASMetadataPath, "jwks": JWKSPath, "register": RegisterPath, "authorize": AuthorizePath,
	"consent": ConsentPath, "token": TokenPath, "revoke": RevokePath, "introspect": IntrospectPath,
}

// Endpoint names the endpoint a path belongs to by its path without the
// issuer's (`/oauth/token`, `/.well-known/oauth-authorization-server`,
// …), or "" if the server does not answer it.
func (s *Server) Endpoint(path string) string { return routePaths[s.route(path)] }

// Issuer returns the issuer for a request: the configured one, or the
// request's origin.
func (s *Server) Issuer(r *http.Request) (string, error) {
	if s.cfg.Issuer != "" {
		return s.cfg.Issuer, nil
	}
	return web.RequestOrigin(r)
}

// ServeHTTP answers the server's endpoints; other paths get 404.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	route := s.route(r.URL.Path)
	if route == "" {
		web.WriteError(w, http.StatusNotFound, "invalid_request", "no such endpoint")
		return
	}
	if !s.allow(w, r, route) {
		return
	}
	issuer, err := s.Issuer(r)
	if err != nil {
		web.WriteError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	switch route {
	case "metadata":
		s.serveMetadata(w, r, issuer)
	case "jwks":
		serveJWKS(w, r, s.cfg.Keys)
	case "register":
		s.serveRegister(w, r)
	case "authorize":
		s.serveAuthorize(w, r, issuer)
	case "consent":
		s.serveConsent(w, r, issuer)
	case "token":
		s.serveToken(w, r, issuer)
	case "revoke":
		s.serveRevoke(w, r, issuer)
	case "introspect":
		s.serveIntrospect(w, r, issuer)
	}
}

// allow applies the rate limit of route to r, and answers r with 429
// when it is over the limit.
func (s *Server) allow(w http.ResponseWriter, r *http.Request, route string) bool {
	var limit *ratelimit.RequestLimiter
	switch route {
	case "register":
		limit = s.cfg.RateLimits.Register
	case "token":
		limit = s.cfg.RateLimits.Token
	case "authorize", "consent":
		limit = s.cfg.RateLimits.Authorize
	}
	if limit == nil || r.Method == http.MethodOptions {
		return true
	}
	ok, wait := limit.Allow(r)
	if ok {
		return true
	}
	s.log.Debug("rate limit exceeded", "endpoint", route, "retry_after", wait.String())
	retry := ratelimit.RetryAfter(wait)
	w.Header().Set("Retry-After", retry)
	if route == "authorize" || route == "consent" {
		writeErrorPage(w, http.StatusTooManyRequests, errorPage{Title: "Too many requests",
			Message: "Too many requests came from your network. Wait " + retry + " seconds, then reload this page."})
		return false
	}
	// Let browser clients read the answer, as they could read any other
	// answer of these endpoints.
	if r.Method == http.MethodPost {
		s.preflight(w, r, "POST, OPTIONS")
	}
	// RFC 6749 has no code for this. too_many_requests is what MCP SDKs
	// use for it; a client reads it as "try later", never as a reason to
	// drop its registration (invalid_client) or its tokens (invalid_grant).
	web.WriteError(w, http.StatusTooManyRequests, "too_many_requests", "too many requests from this client; retry after "+retry+" seconds")
	return false
}

// ASMetadata is the authorization server metadata (RFC 8414 §2).
type ASMetadata struct {
	// Issuer is the issuer identifier, byte-identical to the one the
	// metadata URL was built from (RFC 8414 §3.3).
	Issuer string `json:"issuer"`
	// AuthorizationEndpoint is the URL of the authorization endpoint.
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	// TokenEndpoint is the URL of the token endpoint.
	TokenEndpoint string `json:"token_endpoint"`
	// RegistrationEndpoint is the URL of dynamic client registration;
	// absent when registration is off.
	RegistrationEndpoint string `json:"registration_endpoint,omitempty"`
	// RevocationEndpoint is the URL of token revocation (RFC 7009).
	RevocationEndpoint string `json:"revocation_endpoint"`
	// IntrospectionEndpoint is the URL of token introspection (RFC 7662).
	IntrospectionEndpoint string `json:"introspection_endpoint"`
	// JWKSURI is the URL of the JSON Web Key Set.
	JWKSURI string `json:"jwks_uri"`
	// ScopesSupported lists the scopes clients may request.
	ScopesSupported []string `json:"scopes_supported"`
	// ResponseTypesSupported is ["code"]: OAuth 2.1 has no implicit flow.
	ResponseTypesSupported []string `json:"response_types_supported"`
	// ResponseModesSupported is ["query"].
	ResponseModesSupported []string `json:"response_modes_supported"`
	// GrantTypesSupported lists authorization_code and refresh_token.
	GrantTypesSupported []string `json:"grant_types_supported"`
	// TokenEndpointAuthMethodsSupported lists none,
	// client_secret_basic and client_secret_post, and with mutual TLS
	// tls_client_auth and self_signed_tls_client_auth (RFC 8705 §2).
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	// RevocationEndpointAuthMethodsSupported is the same list.
	RevocationEndpointAuthMethodsSupported []string `json:"revocation_endpoint_auth_methods_supported"`
	// IntrospectionEndpointAuthMethodsSupported lists the methods of
	// confidential clients (introspection needs authentication).
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported"`
	// CodeChallengeMethodsSupported is ["S256"] (RFC 7636); MCP clients
	// refuse a server that does not publish it.
	CodeChallengeMethodsSupported []string `json:"code_challenge_methods_supported"`
	// AuthorizationResponseISSParameterSupported is true: every
	// authorization response carries iss (RFC 9207).
	AuthorizationResponseISSParameterSupported bool `json:"authorization_response_iss_parameter_supported"`
	// DPoPSigningAlgValuesSupported lists the algorithms accepted for
	// DPoP proofs (RFC 9449 §5.1); absent when DPoP is off.
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported,omitempty"`
	// ClientIDMetadataDocumentSupported is true when a client may use the
	// https URL of its metadata document as its client_id (CIMD §5);
	// absent when that is off.
	ClientIDMetadataDocumentSupported bool `json:"client_id_metadata_document_supported,omitempty"`
	// TLSClientCertificateBoundAccessTokens is true when access tokens
	// may be bound to the client's TLS certificate (RFC 8705 §3.3);
	// absent when mutual TLS is off.
	TLSClientCertificateBoundAccessTokens bool `json:"tls_client_certificate_bound_access_tokens,omitempty"`
	// MTLSEndpointAliases are the endpoints of the mutual-TLS host, which
	// a client that uses mutual TLS prefers (RFC 8705 §5); absent
	// without one.
	MTLSEndpointAliases *MTLSEndpointAliases `json:"mtls_endpoint_aliases,omitempty"`
}

var (
	authMethods       = []string{"none", "client_secret_basic", "client_secret_post"}
	secretAuthMethods = []string{"client_secret_basic", "client_secret_post"}
)

// Metadata returns the metadata document for an issuer.
func (s *Server) Metadata(issuer string) ASMetadata {
	m := ASMetadata{
		Issuer:                                     issuer,
		AuthorizationEndpoint:                      issuer + AuthorizePath,
		TokenEndpoint:                              issuer + TokenPath,
		RevocationEndpoint:                         issuer + RevokePath,
		IntrospectionEndpoint:                      issuer + IntrospectPath,
		JWKSURI:                                    issuer + JWKSPath,
		ScopesSupported:                            s.cfg.Scopes,
		ResponseTypesSupported:                     []string{"code"},
		ResponseModesSupported:                     []string{"query"},
		GrantTypesSupported:                        []string{"authorization_code", "refresh_token"},
		TokenEndpointAuthMethodsSupported:          s.authMethods,
		RevocationEndpointAuthMethodsSupported:     s.authMethods,
		IntrospectionEndpointAuthMethodsSupported:  s.introspectMethods,
		CodeChallengeMethodsSupported:              []string{"S256"},
		AuthorizationResponseISSParameterSupported: true,
	}
	if !s.cfg.Registration.Disabled {
		m.RegistrationEndpoint = issuer + RegisterPath
	}
	if !s.cfg.DPoP.Disabled {
		m.DPoPSigningAlgValuesSupported = dpop.Algorithms
	}
	m.ClientIDMetadataDocumentSupported = s.docs != nil
	m.TLSClientCertificateBoundAccessTokens = !s.cfg.MTLS.Disabled
	m.MTLSEndpointAliases = s.mtlsAliases()
	return m
}

// serveMetadata answers the RFC 8414 metadata. It is public, like the
// JWKS and the protected resource metadata: readable from any origin
// whatever AllowedOrigins says, which governs the other endpoints.
func (s *Server) serveMetadata(w http.ResponseWriter, r *http.Request, issuer string) {
	if !web.ServePublicGet(w, r) {
		return
	}
	web.WriteJSON(w, http.StatusOK, s.Metadata(issuer), "public, max-age=300")
}

// randomToken returns n random bytes, base64url-encoded.
func (s *Server) randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.cfg.Random, b); err != nil {
		return "", fmt.Errorf("reading randomness: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// internalError logs cause and answers with a generic OAuth error: 503
// when the store is unavailable, else 500.
func (s *Server) internalError(w http.ResponseWriter, r *http.Request, what string, cause error) {
	if errors.Is(cause, store.ErrUnavailable) || errors.Is(cause, context.DeadlineExceeded) {
		s.log.Warn("store unavailable", "during", what, "error", cause.Error())
		w.Header().Set("Retry-After", "5")
		web.WriteError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the service is temporarily unavailable; retry shortly")
		return
	}
	s.log.Error("internal error", "during", what, "error", cause.Error(), "path", r.URL.Path)
	web.WriteError(w, http.StatusInternalServerError, "server_error", "the server could not complete the request")
}

// revoked tells OnRevoke that tokens were revoked.
func (s *Server) revoked(ctx context.Context) {
	if s.cfg.OnRevoke != nil {
		s.cfg.OnRevoke(ctx)
	}
}
