// Package login signs people in to caddymcp through upstream OpenID
// Connect providers such as Google, or for development through a form
// that believes what it is told (Dev), and keeps them signed in with a
// server-side session behind an HttpOnly cookie.
//
// A Server is an oauth.Authenticator: the authorization server asks it
// who is signed in (CurrentUser) and hands it the browsers of those who
// are not (Login). It also answers its own endpoints under /auth/: the
// provider picker, the start of each provider's login (the form, for a
// development sign-in), the providers' callbacks, /auth/me,
// /auth/logout, and /auth/account, where a signed-in user sees and
// revokes the applications they authorized and the sessions they are
// signed in with.
//
// The upstream leg is an authorization-code flow with PKCE, state and
// nonce. The ID token is verified against the provider's published keys,
// then an access policy (Rule) decides who may sign in and which scopes
// they may grant. Nothing the provider returns (its code, tokens) is
// kept: only the user's profile.
//
// It imports oauth (the Authenticator it implements), jose (ID tokens),
// store, ratelimit and internal packages; never bearer, tools or Caddy.
// Its API carries no stability promise outside this module.
package login

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/internal/audit"
	"github.com/caddymcp/caddymcp/caddymcp/internal/web"
	"github.com/caddymcp/caddymcp/caddymcp/oauth"
	"github.com/caddymcp/caddymcp/caddymcp/ratelimit"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// Endpoint paths of the login server.
const (
	// LoginPath starts a login: with one provider it goes straight to
	// it, with several it shows a page to choose one.
	LoginPath = "/auth/login"
	// ProviderLoginPrefix followed by a provider name starts a login
	// with that provider.
	ProviderLoginPrefix = "/auth/login/"
	// CallbackPrefix followed by a provider name is where that provider
	// sends the browser back (the redirect URI to register upstream).
	CallbackPrefix = "/auth/callback/"
	// MePath describes the signed-in user as JSON.
	MePath = "/auth/me"
	// LogoutPath ends the session (POST).
	LogoutPath = "/auth/logout"
	// AccountPath shows the signed-in user the applications they
	// authorized and their sessions (GET), and revokes one of them or
	// signs out (POST).
	AccountPath = "/auth/account"
)

// Defaults of Config.
const (
	// DefaultSessionIdle is how long an unused session lives.
	DefaultSessionIdle = 24 * time.Hour
	// DefaultSessionLifetime is the absolute lifetime of a session.
	DefaultSessionLifetime = 7 * 24 * time.Hour
	// DefaultHTTPTimeout is the default of Config.HTTPTimeout.
	DefaultHTTPTimeout = 10 * time.Second
)

// Cookie names. The __Host- prefix makes browsers insist on Secure,
// Path=/ and no Domain, so no sibling host can plant or read it.
const (
	// SessionCookie is the session cookie over HTTPS.
	SessionCookie = "__Host-caddymcp_session"
	// InsecureSessionCookie is the session cookie over plain HTTP
	// (loopback development only).
	InsecureSessionCookie = "caddymcp_session"
	// bindingCookie ties a pending login to the browser that started
	// it, so that a callback URL cannot be replayed into another
	// browser (login CSRF, RFC 6749 §10.12).
	bindingCookie         = "__Host-caddymcp_login"
	insecureBindingCookie = "caddymcp_login"
)

const (
	pendingLifetime = 10 * time.Minute
	touchInterval   = time.Minute
	jwksMinRefetch  = time.Minute
	jwksMaxAge      = 24 * time.Hour
	maxResponseSize = 1 << 20
	maxFormSize     = 64 << 10
	maxAccountForm  = 4 << 10
	tokenBytes      = 32
	userIDBytes     = 16
	maxUserAgentLen = 512
	maxProviderName = 64
	clientIDPrefix  = "login:"
	returnClientID  = "login:return"
)

// Provider is an upstream OpenID Connect provider.
type Provider struct {
	// Name identifies the provider in paths (/auth/login/{name},
	// /auth/callback/{name}) and in the users table: lowercase letters,
	// digits, '-' and '_'. Changing it makes its users new users.
	Name string
	// Issuer is the provider's issuer identifier; its discovery document
	// is fetched from Issuer + "/.well-known/openid-configuration" and
	// must name exactly this issuer. https (http only for loopback).
	Issuer string
	// ClientID is the OAuth client id registered with the provider.
	ClientID string
	// ClientSecret is the client secret; empty for a public client.
	ClientSecret string
	// Scopes are the upstream scopes requested. Default: openid, email,
	// profile. openid is always requested.
	Scopes []string
	// Label is shown on the login page. Default: Name.
	Label string
	// Dev makes this a development sign-in instead of an OpenID Connect
	// provider: /auth/login/{name} shows a form asking for an email
	// address and a display name, and posting it signs in whoever
	// filled it in as that address, marked verified (see Dev). Anyone
	// who can reach the server can then sign in as anyone: for a
	// loopback host in development only. Issuer, ClientID, ClientSecret
	// and Scopes must be empty.
	Dev bool
}

// Google returns the preset for Google accounts. Register
// <base>/auth/callback/google as an authorized redirect URI of the
// OAuth client.
func Google(clientID, clientSecret string) Provider {
	return Provider{
		Name:         "google",
		Issuer:       "https://accounts.google.com",
		ClientID:     clientID,
		ClientSecret: clientSecret,
		Scopes:       []string{"openid", "email", "profile"},
		Label:        "Google",
	}
}

// Rule is one entry of the access policy. Access is denied unless some
// rule matches the user; a user matches a rule if any of its conditions
// holds.
type Rule struct {
	// Emails are addresses allowed in, compared case-insensitively. Only
	// an email the provider marks verified (email_verified) matches.
	Emails []string
	// Domains are email domains allowed in ("example.com"); only a
	// verified email matches.
	Domains []string
	// HostedDomains are Google Workspace domains (the ID token's hd
	// claim) allowed in.
	HostedDomains []string
	// Everyone lets every user of the providers in.
	Everyone bool
	// Scopes limits what a user matching the rule may grant; nil means
	// every scope, an empty list none (the user may sign in but grant
	// nothing). A user's scopes are the union over all matching rules.
	Scopes []string
}

// Store is what the login server keeps in the database.
type Store interface {
	store.Users
	store.Sessions
	store.AuthRequests
	store.Accounts
}

// Config configures the login server.
type Config struct {
	// Providers are the upstream providers (and the development
	// sign-in, if any); at least one.
	Providers []Provider
	// Rules are the access policy; at least one. Deny by default.
	Rules []Rule
	// Store keeps users, sessions and pending logins.
	Store Store
	// BaseURL is the origin ("https://host[:port]", no path) the
	// callbacks are built on; logins that start on another host are sent
	// there first. https (http only for loopback). Default: the origin of
	// each request (see web.RequestOrigin).
	BaseURL string
	// SessionIdle ends a session unused this long. Default: 24h.
	SessionIdle time.Duration
	// SessionLifetime ends a session this long after login, used or
	// not. Default: 7 days.
	SessionLifetime time.Duration
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Random is the randomness source. Default: crypto/rand.
	Random io.Reader
	// HTTPClient makes the calls to the providers, the token exchange
	// included. Its own Timeout, if any, should not be shorter than
	// HTTPTimeout. Default: a client with a timeout of HTTPTimeout.
	HTTPClient *http.Client
	// HTTPTimeout bounds each call to a provider, from waiting for
	// another request's fetch of the same document to the last byte of
	// the answer: its discovery document, the token exchange, its keys
	// (JWKS). A provider that refuses connections gets the browser a 502
	// page at once; one that does not answer in full within HTTPTimeout,
	// a 504 page. The start of a login makes at most one call (the
	// discovery document, until it is cached), a callback at most three.
	// Default: DefaultHTTPTimeout (10s).
	HTTPTimeout time.Duration
	// RateLimit limits how often one client may start a login or come
	// back from a provider (LoginPath, ProviderLoginPrefix and
	// CallbackPrefix, counted together): a start writes to the store, a
	// callback calls the provider. Over the limit a request gets a 429
	// page with Retry-After. Default: no limit.
	RateLimit *ratelimit.RequestLimiter
	// ScopeTools lists, per scope, the tools it unlocks, so that the
	// account page describes what each application may do as the consent
	// page did: give it the same map as oauth.Config.ScopeTools. Default:
	// none (the built-in descriptions of the default scopes).
	ScopeTools map[string][]oauth.ScopeTool
	// ClientNames names, by client_id, the clients the store does not
	// hold (those configured statically), for the account page. Default:
	// none; such a client is shown by its client_id.
	ClientNames map[string]string
	// OnRevoke is called after the account page revoked an application's
	// tokens, so that deny-lists catch up at once; give it the hook of
	// oauth.Config.OnRevoke. Optional: without it they catch up at their
	// next poll.
	OnRevoke func(ctx context.Context)
	// Events receives the login server's audit events (the Event*
	// kinds). Default: written to Logger as Info records with
	// audit=true.
	Events audit.Hook
	// Logger receives internal errors, and audit events when Events is
	// not set. Default: discard.
	Logger *slog.Logger
}

// Server is the login server: an oauth.Authenticator and an http.Handler
// for the paths Handles reports.
type Server struct {
	cfg       Config
	base      string // validated BaseURL, or ""
	providers map[string]*provider
	order     []*provider
	policy    policy
	log       *slog.Logger
	events    audit.Hook
}

var _ oauth.Authenticator = (*Server)(nil)

// New checks cfg, fills in defaults, and returns a server. It makes no
// network call: each provider's discovery document is fetched on first
// use.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("login: no store")
	}
	if len(cfg.Providers) == 0 {
		return nil, errors.New("login: no provider configured")
	}
	s := &Server{cfg: cfg, providers: map[string]*provider{}}
	c := &s.cfg
	if c.BaseURL != "" {
		base, err := validateBaseURL(c.BaseURL)
		if err != nil {
			return nil, err
		}
		s.base = base
	}
	for i, p := range c.Providers {
		pp, err := newProvider(p)
		if err != nil {
			return nil, fmt.Errorf("login: provider %d: %w", i+1, err)
		}
		if _, dup := s.providers[pp.Name]; dup {
			return nil, fmt.Errorf("login: provider %q is configured twice", pp.Name)
		}
		s.providers[pp.Name] = pp
		s.order = append(s.order, pp)
	}
	pol, err := newPolicy(c.Rules)
	if err != nil {
		return nil, err
	}
	s.policy = pol
	switch {
	case c.SessionIdle < 0:
		return nil, errors.New("login: negative session idle timeout")
	case c.SessionIdle == 0:
		c.SessionIdle = DefaultSessionIdle
	}
	switch {
	case c.SessionLifetime < 0:
		return nil, errors.New("login: negative session lifetime")
	case c.SessionLifetime == 0:
		c.SessionLifetime = DefaultSessionLifetime
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Random == nil {
		c.Random = rand.Reader
	}
	switch {
	case c.HTTPTimeout < 0:
		return nil, errors.New("login: negative HTTP timeout")
	case c.HTTPTimeout == 0:
		c.HTTPTimeout = DefaultHTTPTimeout
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: c.HTTPTimeout}
	}
	s.log = c.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.events = c.Events
	if s.events == nil {
		s.events = audit.Log(s.log)
	}
	// The key sets take the clock, timeout and logger filled in above.
	for _, p := range s.order {
		if !p.Dev { // the development form has no keys to fetch
			p.keys = s.providerKeys(p)
		}
	}
	return s, nil
}

// validateBaseURL checks that raw is an https origin (http on loopback)
// and returns it without a trailing slash.
func validateBaseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("login: base URL %q is not a URL: %w", raw, err)
	}
	switch {
	case !u.IsAbs() || u.Host == "":
		return "", fmt.Errorf("login: base URL %q must be an absolute URL", raw)
	case u.Scheme != "https" && !(u.Scheme == "http" && web.IsLoopbackHost(u.Hostname())):
		return "", fmt.Errorf("login: base URL %q must use https (http is allowed only for localhost)", raw)
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#"):
		return "", fmt.Errorf("login: base URL %q must be an origin, without user, query or fragment", raw)
	case u.Path != "" && u.Path != "/":
		return "", fmt.Errorf("login: base URL %q must be an origin, without a path", raw)
	case !strings.HasPrefix(raw, u.Scheme+"://") || u.Host != strings.ToLower(u.Host):
		return "", fmt.Errorf("login: base URL %q must have a lowercase scheme and host", raw)
	}
	return u.Scheme + "://" + u.Host, nil
}

// validProviderName reports whether name is lowercase [a-z0-9_-]+.
func validProviderName(name string) bool {
	if name == "" || len(name) > maxProviderName {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// route names the endpoint of a path and the provider it names, if any.
func (s *Server) route(path string) (route, name string) {
	switch path {
	case LoginPath:
		return "picker", ""
	case MePath:
		return "me", ""
	case LogoutPath:
		return "logout", ""
	case AccountPath:
		return "account", ""
	}
	if rest, ok := strings.CutPrefix(path, ProviderLoginPrefix); ok {
		return "start", rest
	}
	if rest, ok := strings.CutPrefix(path, CallbackPrefix); ok {
		return "callback", rest
	}
	return "", ""
}

// Handles reports whether the server answers requests for path; others
// should go to the next handler.
func (s *Server) Handles(path string) bool {
	route, _ := s.route(path)
	return route != ""
}

// routePaths are the endpoint paths of the route names, as Endpoint
// reports them (provider names left out).
var routePaths = map[string]string{
	"picker": LoginPath, "start": LoginPath, "callback": strings.TrimSuffix(CallbackPrefix, "/"),
	"me": MePath, "logout": LogoutPath, "account": AccountPath,
}

// Endpoint names the endpoint a path belongs to (`/auth/login`,
// `/auth/callback`, `/auth/me`, `/auth/logout`, `/auth/account`), or ""
// if the server does not answer it.
func (s *Server) Endpoint(path string) string {
	route, _ := s.route(path)
	return routePaths[route]
}

// ServeHTTP answers the login endpoints; other paths get 404.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	route, name := s.route(r.URL.Path)
	if (route == "picker" || route == "start" || route == "callback") && !s.allow(w, r) {
		return
	}
	var p *provider
	if route == "start" || route == "callback" {
		// A development sign-in has no callback: its form signs in.
		if p = s.providers[name]; p == nil || p.Dev && route == "callback" {
			s.page(w, http.StatusNotFound, "Unknown sign-in provider", "This server has no sign-in provider by that name.")
			return
		}
	}
	allow, ok := "GET, HEAD", r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case route == "logout":
		allow, ok = "POST", r.Method == http.MethodPost
	case route == "start" && p.Dev, route == "account":
		allow, ok = "GET, HEAD, POST", ok || r.Method == http.MethodPost
	}
	if route != "" && !ok {
		w.Header().Set("Allow", allow)
		s.page(w, http.StatusMethodNotAllowed, "Method not allowed", "This address does not accept "+r.Method+" requests.")
		return
	}
	switch route {
	case "picker":
		s.servePicker(w, r)
	case "start":
		if p.Dev {
			s.serveDev(w, r, p)
		} else {
			s.serveStart(w, r, p)
		}
	case "callback":
		s.serveCallback(w, r, p)
	case "me":
		s.serveMe(w, r)
	case "logout":
		s.serveLogout(w, r)
	case "account":
		s.serveAccount(w, r)
	default:
		s.page(w, http.StatusNotFound, "Not found", "There is nothing at this address.")
	}
}

// allow applies the rate limit to r, and answers r with a 429 page when
// it is over the limit.
func (s *Server) allow(w http.ResponseWriter, r *http.Request) bool {
	ok, wait := s.cfg.RateLimit.Allow(r)
	if ok {
		return true
	}
	s.log.Debug("rate limit exceeded", "path", r.URL.Path, "retry_after", wait.String())
	retry := ratelimit.RetryAfter(wait)
	w.Header().Set("Retry-After", retry)
	s.page(w, http.StatusTooManyRequests, "Too many requests",
		"Too many sign-in attempts came from your network. Wait "+retry+" seconds, then reload this page.")
	return false
}

// randomToken returns n random bytes, base64url-encoded without padding.
func (s *Server) randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.cfg.Random, b); err != nil {
		return "", fmt.Errorf("reading randomness: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// validToken reports whether v looks like a value randomToken(tokenBytes)
// returned, so that junk never reaches the store.
func validToken(v string) bool {
	return len(v) == base64.RawURLEncoding.EncodedLen(tokenBytes) && web.IsBase64URL(v)
}

// baseURL returns the origin the callbacks of r are built on.
func (s *Server) baseURL(r *http.Request) (string, error) {
	if s.base != "" {
		return s.base, nil
	}
	return web.RequestOrigin(r)
}

// secure reports whether the browser reached r over HTTPS, which selects
// the __Host- cookies.
func (s *Server) secure(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(s.base, "https://")
}

// audit records a security-relevant event. Callers never pass secrets.
func (s *Server) audit(kind audit.Kind, attrs ...any) {
	s.events(audit.Event{Kind: kind, Attrs: attrs})
}
