package bearer

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddymcp/caddymcp/caddymcp/internal/web"
	"github.com/caddymcp/caddymcp/caddymcp/jose"
)

// RemoteIssuerConfig describes an external authorization server (Keycloak,
// Auth0, Entra ID, Okta, another caddymcp…) whose JWT access tokens a
// resource accepts.
type RemoteIssuerConfig struct {
	// Issuer is the exact iss of its tokens, and the identifier published
	// in authorization_servers (byte for byte as the server's own
	// metadata gives it, trailing slash included).
	Issuer string
	// JWKSURL is where its public keys are published. Empty: the
	// jwks_uri of its metadata, read from
	// /.well-known/oauth-authorization-server (RFC 8414), else
	// /.well-known/openid-configuration.
	JWKSURL string
	// Audiences are accepted as aud besides the resource identifier, for
	// servers that name the audience otherwise (an API identifier, an
	// application id URI).
	Audiences []string
	// AcceptJWTType also accepts tokens with typ "JWT" or no typ, which
	// servers that predate RFC 9068 issue (Keycloak, Entra ID). Only
	// enable it when Audiences cannot match an ID token of that server.
	AcceptJWTType bool
	// Client fetches metadata and keys. Default: a client with a 10 s
	// timeout.
	Client *http.Client
	// RefreshInterval is how long fetched keys are used before they are
	// fetched again. Default: 1h.
	RefreshInterval time.Duration
	// MinRefetch is the least time between two fetches, which bounds the
	// fetches that tokens with unknown kids can cause. Default: 30s.
	MinRefetch time.Duration
	// TrustEmail takes the email claim of its tokens as verified even
	// without email_verified: true. Only for a server that puts nothing
	// but addresses it verified in its access tokens (most enterprise
	// directories do). Default: an address counts only with
	// email_verified true (the boolean or the string "true").
	TrustEmail bool
	// Leeway tolerates clock skew between this server and the resource on
	// the exp, nbf and iat of its tokens: a token is accepted at most this
	// long after its exp, and the verified-token cache honours the same
	// bound. Default: 30s (DefaultRemoteLeeway); at most 5 minutes
	// (MaxRemoteLeeway).
	Leeway time.Duration
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Logger receives warnings about failed fetches. Default: discard.
	Logger *slog.Logger
}

// The leeway on external issuers' tokens (RemoteIssuerConfig.Leeway).
const (
	// DefaultRemoteLeeway is the default leeway.
	DefaultRemoteLeeway = 30 * time.Second
	// MaxRemoteLeeway is the largest leeway accepted.
	MaxRemoteLeeway = 5 * time.Minute
)

// maxRemoteDocument caps the size of a fetched metadata or JWKS document.
const maxRemoteDocument = 1 << 20

// RemoteIssuer verifies the access tokens of an external authorization
// server with the keys it publishes (a jose.RemoteKeySet: fetched once and
// kept in memory, fetched again after RefreshInterval and when a token
// names an unknown kid, at most once per MinRefetch; while the server is
// unreachable the keys last fetched stay in use).
type RemoteIssuer struct {
	cfg  RemoteIssuerConfig
	keys *jose.RemoteKeySet
	// jwksURL is the configured or discovered JWKS URL; only the key
	// set's fetch (serialised by it) reads and writes it.
	jwksURL string
}

// NewRemoteIssuer checks cfg and returns the issuer. It does not fetch
// anything: keys are fetched on the first token.
func NewRemoteIssuer(cfg RemoteIssuerConfig) (*RemoteIssuer, error) {
	if err := ValidateRemoteIssuer(cfg.Issuer); err != nil {
		return nil, err
	}
	if cfg.JWKSURL != "" {
		if err := checkFetchURL(cfg.JWKSURL, "jwks_url"); err != nil {
			return nil, err
		}
	}
	for _, aud := range cfg.Audiences {
		if aud == "" || strings.ContainsAny(aud, " \t\r\n") {
			return nil, fmt.Errorf("audience %q must be a non-empty value without spaces", aud)
		}
	}
	switch {
	case cfg.Leeway < 0 || cfg.Leeway > MaxRemoteLeeway:
		return nil, fmt.Errorf("leeway must be between 0 and %v, not %v", MaxRemoteLeeway, cfg.Leeway)
	case cfg.Leeway == 0:
		cfg.Leeway = DefaultRemoteLeeway
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			return checkFetchURL(req.URL.String(), "redirect")
		}}
	}
	// RefreshInterval, MinRefetch, Now and Logger go on as they are:
	// jose.NewRemoteKeySet and jose.Verify apply the defaults documented
	// above.
	ri := &RemoteIssuer{cfg: cfg, jwksURL: cfg.JWKSURL}
	ri.keys = jose.NewRemoteKeySet(jose.RemoteConfig{
		Name:            cfg.Issuer,
		Fetch:           ri.load,
		RefreshInterval: cfg.RefreshInterval,
		MinRefetch:      cfg.MinRefetch,
		Now:             cfg.Now,
		Logger:          cfg.Logger,
	})
	return ri, nil
}

// ValidateRemoteIssuer checks the identifier of an external issuer: an
// https URL (http only on loopback) without query or fragment. Unlike our
// own issuer it may end with a slash, as Auth0's do.
func ValidateRemoteIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil {
		return fmt.Errorf("issuer %q is not a URL: %w", issuer, err)
	}
	return web.CheckHTTPSURL(issuer, u, "issuer")
}

// Issuer returns the issuer identifier.
func (ri *RemoteIssuer) Issuer() string { return ri.cfg.Issuer }

// Verify checks a token of this issuer for resource: the signature with
// one of the issuer's keys (in an algorithm that key allows, never none or
// HMAC), typ, iss, exp, nbf, iat, and an aud naming resource or one of
// the configured audiences. The client id is read from client_id (RFC
// 9068), azp or appid, and the scopes from scope or scp, whichever the
// server uses. exp, nbf and iat are checked with the issuer's Leeway. The
// error wraps ErrKeysUnavailable when no keys could be fetched, else
// ErrInvalidToken.
func (ri *RemoteIssuer) Verify(ctx context.Context, raw, resource string) (*jose.AccessClaims, error) {
	// Without any keys, no token of this issuer can be judged: the
	// resource answers 503 rather than calling a valid token invalid.
	if _, err := ri.keys.Current(ctx); err != nil {
		return nil, err
	}
	types := jose.AccessTokenTypes
	if ri.cfg.AcceptJWTType {
		types = jose.LegacyAccessTokenTypes
	}
	var rc remoteClaims
	err := jose.Verify(raw, &rc, jose.Rules{
		Issuers:   []string{ri.cfg.Issuer},
		Audiences: append([]string{resource}, ri.cfg.Audiences...),
		Types:     types,
		Now:       ri.cfg.Now,
		Leeway:    ri.cfg.Leeway,
		Key: func(kid, alg string) (crypto.PublicKey, error) {
			k, err := ri.keys.Key(ctx, kid, alg)
			return k.Key, err
		},
	})
	if err != nil {
		return nil, err
	}
	claims := &jose.AccessClaims{RegisteredClaims: rc.RegisteredClaims, ClientID: rc.ClientID, Cnf: rc.Cnf}
	// Only a verified address identifies the user: an unverified one is
	// whatever someone typed at a provider that does not check.
	if ri.cfg.TrustEmail || rc.emailVerified() {
		claims.Email = rc.Email
	}
	if claims.ClientID == "" {
		claims.ClientID = rc.AZP
	}
	if claims.ClientID == "" {
		claims.ClientID = rc.AppID
	}
	scopes := rc.Scope.list
	if len(scopes) == 0 {
		scopes = rc.SCP.list
	}
	claims.Scope = strings.Join(scopes, " ")
	if claims.Subject == "" {
		return nil, fmt.Errorf("%w: missing sub", jose.ErrInvalidToken)
	}
	return claims, nil
}

// remoteClaims are the claims external servers put in access tokens.
type remoteClaims struct {
	jwt.RegisteredClaims
	ClientID string    `json:"client_id"`
	AZP      string    `json:"azp"`   // OpenID Connect, Keycloak, Entra v2
	AppID    string    `json:"appid"` // Entra v1
	Scope    scopeList `json:"scope"`
	SCP      scopeList `json:"scp"` // Entra (a string), Okta (an array)
	Email    string    `json:"email"`
	// EmailVerified is true (or "true", as some servers send it) when
	// the server verified Email (OpenID Connect Core §5.1).
	EmailVerified json.RawMessage `json:"email_verified"`
	// Cnf binds a token to a DPoP key (jkt, RFC 9449 §6.1) or a TLS
	// client certificate (x5t#S256, RFC 8705 §3.1); the resource checks
	// every request's proof and certificate against it.
	Cnf *jose.Confirmation `json:"cnf"`
}

// emailVerified reads email_verified, which some servers send as the
// string "true".
func (rc *remoteClaims) emailVerified() bool {
	v := strings.TrimSpace(string(rc.EmailVerified))
	return v == "true" || v == `"true"`
}

// scopeList reads a scope claim given as a space-separated string or as
// an array of strings.
type scopeList struct{ list []string }

// UnmarshalJSON accepts a string or an array of strings.
func (s *scopeList) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err == nil {
		s.list = strings.Fields(str)
		return nil
	}
	var arr []string
	if err := json.Unmarshal(b, &arr); err != nil {
		return errors.New("scope must be a string or an array of strings")
	}
	for _, sc := range arr {
		s.list = append(s.list, strings.Fields(sc)...)
	}
	return nil
}

// load discovers the JWKS URL if needed and fetches the keys (called by
// the key set, one fetch at a time).
func (ri *RemoteIssuer) load(ctx context.Context) (*jose.KeySet, error) {
	if ri.jwksURL == "" {
		u, err := ri.discover(ctx)
		if err != nil {
			return nil, err
		}
		ri.jwksURL = u
	}
	var raw json.RawMessage
	if err := ri.getJSON(ctx, ri.jwksURL, &raw); err != nil {
		return nil, err
	}
	set, err := jose.ParseJWKS(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ri.jwksURL, err)
	}
	return set, nil
}

// discover reads jwks_uri from the issuer's metadata: RFC 8414 §3 (the
// well-known suffix inserted before the issuer's path), then OpenID
// Connect Discovery (appended to it). The metadata's issuer must equal
// the configured one exactly (RFC 8414 §3.3).
func (ri *RemoteIssuer) discover(ctx context.Context) (string, error) {
	u, _ := url.Parse(ri.cfg.Issuer) // validated in NewRemoteIssuer
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	candidates := []string{
		u.Scheme + "://" + u.Host + "/.well-known/oauth-authorization-server" + path,
		u.Scheme + "://" + u.Host + path + "/.well-known/openid-configuration",
	}
	var errs []error
	for _, c := range candidates {
		var meta struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := ri.getJSON(ctx, c, &meta); err != nil {
			errs = append(errs, err)
			continue
		}
		if meta.Issuer != ri.cfg.Issuer {
			return "", fmt.Errorf("metadata at %s names issuer %q, not %q", c, meta.Issuer, ri.cfg.Issuer)
		}
		if err := checkFetchURL(meta.JWKSURI, "jwks_uri"); err != nil {
			return "", fmt.Errorf("metadata at %s: %w", c, err)
		}
		return meta.JWKSURI, nil
	}
	return "", fmt.Errorf("discovering the keys of %s: %w", ri.cfg.Issuer, errors.Join(errs...))
}

// checkFetchURL checks a URL keys are fetched from: absolute, https (http
// only on loopback), without user information.
func checkFetchURL(raw, what string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || raw == "":
		return fmt.Errorf("%s %q is not a URL", what, raw)
	case !u.IsAbs() || u.Host == "":
		return fmt.Errorf("%s %q must be an absolute URL", what, raw)
	case u.Scheme != "https" && !(u.Scheme == "http" && web.IsLoopbackHost(u.Hostname())):
		return fmt.Errorf("%s %q must use https (http is allowed only for localhost)", what, raw)
	case u.User != nil:
		return fmt.Errorf("%s %q must not contain user information", what, raw)
	}
	return nil
}

// getJSON fetches a JSON document of at most maxRemoteDocument bytes.
func (ri *RemoteIssuer) getJSON(ctx context.Context, u string, v any) error {
	if err := web.GetJSON(ctx, ri.cfg.Client, u, maxRemoteDocument, v); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}
