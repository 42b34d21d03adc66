package login

import (
	"context"
	"crypto"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"github.com/caddymcp/caddymcp/caddymcp/internal/web"
	"github.com/caddymcp/caddymcp/caddymcp/jose"
)

// provider is a configured Provider with its cached discovery document
// and keys.
type provider struct {
	Provider
	// issuers are the iss values accepted in ID tokens.
	issuers []string

	// fetch serialises fetches of the discovery document, so that
	// concurrent first logins make one request; waiting on it respects
	// the request's context.
	fetch chan struct{}

	mu   sync.Mutex
	disc *discovery
	// keys are the provider's published keys (set by the Server, which
	// knows how to fetch them).
	keys *jose.RemoteKeySet
}

// discovery is the part of an OpenID Provider's metadata used here.
type discovery struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	JWKSURI               string   `json:"jwks_uri"`
	TokenAuthMethods      []string `json:"token_endpoint_auth_methods_supported"`
}

// googleIssuer is Google's issuer; its ID tokens may also carry the
// issuer without the scheme, as Google documents.
const googleIssuer = "https://accounts.google.com"

// newProvider checks p and fills in defaults.
func newProvider(p Provider) (*provider, error) {
	if !validProviderName(p.Name) {
		return nil, fmt.Errorf("name %q must be lowercase letters, digits, '-' or '_'", p.Name)
	}
	if p.Dev {
		if p.Issuer != "" || p.ClientID != "" || p.ClientSecret != "" || p.Scopes != nil {
			return nil, fmt.Errorf("%s: a development sign-in takes no issuer, client id, client secret or scopes", p.Name)
		}
		if p.Label == "" {
			p.Label = Dev().Label
		}
		return &provider{Provider: p}, nil
	}
	if err := checkEndpoint(p.Issuer); err != nil {
		return nil, fmt.Errorf("%s: issuer: %w", p.Name, err)
	}
	if u, _ := url.Parse(p.Issuer); u.RawQuery != "" || u.ForceQuery || strings.Contains(p.Issuer, "#") {
		return nil, fmt.Errorf("%s: issuer %q must not have a query or fragment", p.Name, p.Issuer)
	}
	if p.ClientID == "" {
		return nil, fmt.Errorf("%s: no client id", p.Name)
	}
	scopes := p.Scopes
	if scopes == nil {
		scopes = []string{"openid", "email", "profile"}
	}
	for _, sc := range scopes {
		if !web.ValidScopeToken(sc) {
			return nil, fmt.Errorf("%s: invalid scope %q", p.Name, sc)
		}
	}
	if !slices.Contains(scopes, "openid") {
		scopes = append([]string{"openid"}, scopes...)
	}
	p.Scopes = slices.Clone(scopes)
	if p.Label == "" {
		p.Label = p.Name
	}
	pp := &provider{Provider: p, issuers: []string{p.Issuer}, fetch: make(chan struct{}, 1)}
	if p.Issuer == googleIssuer {
		pp.issuers = append(pp.issuers, "accounts.google.com")
	}
	return pp, nil
}

// checkEndpoint requires an absolute https URL (http on loopback) without
// user information.
func checkEndpoint(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a URL", raw)
	case !u.IsAbs() || u.Host == "":
		return fmt.Errorf("%q is not an absolute URL", raw)
	case u.Scheme != "https" && !(u.Scheme == "http" && web.IsLoopbackHost(u.Hostname())):
		return fmt.Errorf("%q must use https (http is allowed only for localhost)", raw)
	case u.User != nil:
		return fmt.Errorf("%q must not contain user information", raw)
	}
	return nil
}

// lock takes the provider's fetch lock, or gives up with ctx.
func (p *provider) lock(ctx context.Context) error {
	select {
	case p.fetch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *provider) unlock() { <-p.fetch }

// discovery returns the provider's metadata, fetching it on first use. A
// failed fetch is not cached: the next login tries again.
func (s *Server) discovery(ctx context.Context, p *provider) (*discovery, error) {
	p.mu.Lock()
	d := p.disc
	p.mu.Unlock()
	if d != nil {
		return d, nil
	}
	// Waiting for another request's fetch counts towards the bound.
	ctx, cancel := context.WithTimeout(ctx, s.cfg.HTTPTimeout)
	defer cancel()
	if err := p.lock(ctx); err != nil {
		return nil, s.callError(ctx, fmt.Errorf("waiting for the discovery document of %s: %w", p.Name, err))
	}
	defer p.unlock()
	p.mu.Lock()
	d = p.disc
	p.mu.Unlock()
	if d != nil {
		return d, nil
	}
	d = new(discovery)
	u := strings.TrimSuffix(p.Issuer, "/") + "/.well-known/openid-configuration"
	if err := s.getJSON(ctx, u, d); err != nil {
		return nil, fmt.Errorf("fetching the discovery document of %s: %w", p.Name, err)
	}
	if d.Issuer != p.Issuer {
		return nil, fmt.Errorf("the discovery document of %s names issuer %q, not the configured %q", p.Name, d.Issuer, p.Issuer)
	}
	for what, v := range map[string]string{
		"authorization_endpoint": d.AuthorizationEndpoint,
		"token_endpoint":         d.TokenEndpoint,
		"jwks_uri":               d.JWKSURI,
	} {
		if err := checkEndpoint(v); err != nil {
			return nil, fmt.Errorf("the discovery document of %s: %s: %w", p.Name, what, err)
		}
	}
	p.mu.Lock()
	p.disc = d
	p.mu.Unlock()
	return d, nil
}

// getJSON fetches a JSON document of at most maxResponseSize bytes, in
// one call bounded by HTTPTimeout.
func (s *Server) getJSON(ctx context.Context, u string, v any) error {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	return s.callError(ctx, web.GetJSON(ctx, s.cfg.HTTPClient, u, maxResponseSize, v))
}

// oauth2Config returns the upstream client for a redirect URI.
func oauth2Config(p *provider, d *discovery, redirectURI string) *oauth2.Config {
	style := oauth2.AuthStyleAutoDetect
	switch {
	case p.ClientSecret == "":
		style = oauth2.AuthStyleInParams // a public client sends only client_id
	case slices.Contains(d.TokenAuthMethods, "client_secret_basic"):
		style = oauth2.AuthStyleInHeader
	case slices.Contains(d.TokenAuthMethods, "client_secret_post"):
		style = oauth2.AuthStyleInParams
	}
	return &oauth2.Config{
		ClientID:     p.ClientID,
		ClientSecret: p.ClientSecret,
		Endpoint: oauth2.Endpoint{
			AuthURL:   d.AuthorizationEndpoint,
			TokenURL:  d.TokenEndpoint,
			AuthStyle: style,
		},
		RedirectURL: redirectURI,
		Scopes:      p.Scopes,
	}
}

// providerKeys makes the key set of p: its JWKS, from the jwks_uri of its
// discovery document, fetched on first use and again when a day old; an
// unknown kid makes a refetch (the provider may have rotated its keys),
// but the keys are fetched at most once a minute.
func (s *Server) providerKeys(p *provider) *jose.RemoteKeySet {
	return jose.NewRemoteKeySet(jose.RemoteConfig{
		Name: p.Name,
		Fetch: func(ctx context.Context) (*jose.KeySet, error) {
			d, err := s.discovery(ctx, p)
			if err != nil {
				return nil, err
			}
			var raw json.RawMessage
			if err := s.getJSON(ctx, d.JWKSURI, &raw); err != nil {
				return nil, fmt.Errorf("fetching the keys of %s: %w", p.Name, err)
			}
			return jose.ParseJWKS(raw)
		},
		RefreshInterval: jwksMaxAge,
		MinRefetch:      jwksMinRefetch,
		FetchTimeout:    s.cfg.HTTPTimeout,
		Now:             s.cfg.Now,
		Logger:          s.log,
	})
}

// idClaims are the ID token claims used here (OpenID Connect Core §2,
// §5.1).
type idClaims struct {
	jwt.RegisteredClaims
	Nonce         string          `json:"nonce"`
	AZP           string          `json:"azp"`
	Email         string          `json:"email"`
	EmailVerified json.RawMessage `json:"email_verified"`
	Name          string          `json:"name"`
	Picture       string          `json:"picture"`
	HostedDomain  string          `json:"hd"`
}

// emailVerified reads email_verified, which some providers send as the
// string "true".
func (c *idClaims) emailVerified() bool {
	v := strings.TrimSpace(string(c.EmailVerified))
	return v == "true" || v == `"true"`
}

// verifyIDToken checks an ID token (OpenID Connect Core §3.1.3.7): its
// signature with the provider's key named by kid, in an algorithm that
// key allows (any asymmetric algorithm of jose.Algorithms, never none or
// HMAC), iss, aud, azp, exp, iat and nonce.
//
// Fetching the keys, or waiting for another request's fetch, is bounded
// by HTTPTimeout; when they cannot be had, the error says why (see
// outageOf), not that the token is invalid.
func (s *Server) verifyIDToken(ctx context.Context, p *provider, _ *discovery, raw, nonce string) (*idClaims, error) {
	kctx, cancel := context.WithTimeout(ctx, s.cfg.HTTPTimeout)
	defer cancel()
	var keysErr error // jose.Verify keeps only the text of the Key error
	var c idClaims
	err := jose.Verify(raw, &c, jose.Rules{
		Issuers:   p.issuers,
		Audiences: []string{p.ClientID},
		Now:       s.cfg.Now,
		Leeway:    time.Minute,
		Key: func(kid, alg string) (crypto.PublicKey, error) {
			k, err := p.keys.Key(kctx, kid, alg)
			switch {
			case errors.Is(err, jose.ErrUnknownKey):
				return nil, fmt.Errorf("no key %q among the keys of %s", kid, p.Name)
			case errors.Is(err, jose.ErrWrongAlgorithm):
				return nil, fmt.Errorf("key %q is for %s, not %s", kid, strings.Join(k.Algs, " "), alg)
			case err != nil:
				keysErr = s.callError(kctx, err)
				return nil, err
			}
			return k.Key, nil
		},
	})
	if keysErr != nil {
		return nil, fmt.Errorf("the ID token could not be verified: %w", keysErr)
	}
	if err != nil {
		return nil, fmt.Errorf("invalid ID token: %w", err)
	}
	switch {
	case c.IssuedAt == nil:
		return nil, errors.New("invalid ID token: no iat")
	case c.Subject == "" || len(c.Subject) > 255:
		return nil, errors.New("invalid ID token: bad sub")
	case len(c.Audience) > 1 && c.AZP != p.ClientID:
		return nil, fmt.Errorf("invalid ID token: azp %q with several audiences", c.AZP)
	case c.Nonce == "" || subtle.ConstantTimeCompare([]byte(c.Nonce), []byte(nonce)) != 1:
		return nil, errors.New("invalid ID token: nonce mismatch")
	}
	return &c, nil
}
