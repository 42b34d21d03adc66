package login

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"github.com/caddymcp/caddymcp/caddymcp/oauth"
)

// provider is a configured Provider with its cached discovery document
// and keys.
type provider struct {
	Provider
	// issuers are the iss values accepted in ID tokens.
	issuers []string

	// fetch serialises fetches, so that concurrent first logins make one
	// request; waiting on it respects the request's context.
	fetch chan struct{}

	mu        sync.Mutex
	disc      *discovery
	keys      map[string]publicKey // by kid
	keysAt    time.Time            // when keys were fetched
	lastFetch time.Time            // when a fetch of the keys was last tried
}

// discovery is the part of an OpenID Provider's metadata used here.
type discovery struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	JWKSURI               string   `json:"jwks_uri"`
	TokenAuthMethods      []string `json:"token_endpoint_auth_methods_supported"`
}

// publicKey is a verification key and the one algorithm it may be used
// with.
type publicKey struct {
	alg string
	key any
}

// googleIssuer is Google's issuer; its ID tokens may also carry the
// issuer without the scheme, as Google documents.
const googleIssuer = "https://accounts.google.com"

// newProvider checks p and fills in defaults.
func newProvider(p Provider) (*provider, error) {
	if !validProviderName(p.Name) {
		return nil, fmt.Errorf("name %q must be lowercase letters, digits, '-' or '_'", p.Name)
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
		if !oauth.ValidScopeToken(sc) {
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
	case u.Scheme != "https" && !(u.Scheme == "http" && oauth.IsLoopbackHost(u.Hostname())):
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
	if err := p.lock(ctx); err != nil {
		return nil, err
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

// getJSON fetches a JSON document of at most maxResponseSize bytes.
func (s *Server) getJSON(ctx context.Context, u string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, DefaultHTTPTimeout)
	defer cancel()
	return oauth.GetJSON(ctx, s.cfg.HTTPClient, u, maxResponseSize, v)
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

// jwk is one key of a JSON Web Key Set (RFC 7517), RSA or EC.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseKey returns the verification key of k, or an error for keys that
// are not RS256 or ES256 signing keys.
func parseKey(k jwk) (publicKey, error) {
	if k.Use != "" && k.Use != "sig" {
		return publicKey{}, fmt.Errorf("use %q", k.Use)
	}
	b64 := base64.RawURLEncoding
	switch k.Kty {
	case "RSA":
		if k.Alg != "" && k.Alg != "RS256" {
			return publicKey{}, fmt.Errorf("alg %q", k.Alg)
		}
		n, err1 := b64.DecodeString(k.N)
		e, err2 := b64.DecodeString(k.E)
		if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 {
			return publicKey{}, errors.New("malformed RSA key")
		}
		key := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if key.N.BitLen() < 2048 || key.E < 3 || key.E%2 == 0 {
			return publicKey{}, errors.New("weak RSA key")
		}
		return publicKey{alg: "RS256", key: key}, nil
	case "EC":
		if k.Crv != "P-256" || k.Alg != "" && k.Alg != "ES256" {
			return publicKey{}, fmt.Errorf("curve %q, alg %q", k.Crv, k.Alg)
		}
		x, err1 := b64.DecodeString(k.X)
		y, err2 := b64.DecodeString(k.Y)
		if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
			return publicKey{}, errors.New("malformed EC key")
		}
		key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return publicKey{}, fmt.Errorf("invalid EC key: %w", err)
		}
		return publicKey{alg: "ES256", key: key}, nil
	}
	return publicKey{}, fmt.Errorf("key type %q", k.Kty)
}

// fetchKeys downloads the provider's JWKS, keeping the usable keys.
func (s *Server) fetchKeys(ctx context.Context, p *provider, d *discovery) (map[string]publicKey, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := s.getJSON(ctx, d.JWKSURI, &set); err != nil {
		return nil, fmt.Errorf("fetching the keys of %s: %w", p.Name, err)
	}
	keys := map[string]publicKey{}
	for _, k := range set.Keys {
		pk, err := parseKey(k)
		if err != nil {
			continue // another algorithm or use: not for ID tokens
		}
		keys[k.Kid] = pk
	}
	return keys, nil
}

// key returns the key with kid. Keys are fetched on first use and again
// when a day old; an unknown kid makes a refetch (the provider may have
// rotated its keys), but the keys are fetched at most once a minute.
func (s *Server) key(ctx context.Context, p *provider, d *discovery, kid string) (publicKey, error) {
	k, ok, fetch := s.cachedKey(p, kid)
	if fetch {
		if err := p.lock(ctx); err != nil {
			return publicKey{}, err
		}
		defer p.unlock()
		// Another login may have fetched them while this one waited.
		k, ok, fetch = s.cachedKey(p, kid)
	}
	if fetch {
		p.mu.Lock()
		p.lastFetch = s.cfg.Now()
		p.mu.Unlock()
		keys, err := s.fetchKeys(ctx, p, d)
		switch {
		case err != nil && ok: // the stale set still knows this key
			s.log.Warn("refreshing provider keys failed; using the cached ones", "provider", p.Name, "error", err.Error())
			return k, nil
		case err != nil:
			return publicKey{}, err
		}
		p.mu.Lock()
		p.keys, p.keysAt = keys, s.cfg.Now()
		p.mu.Unlock()
		k, ok = keys[kid]
	}
	if !ok {
		return publicKey{}, fmt.Errorf("no key %q among the keys of %s", kid, p.Name)
	}
	return k, nil
}

// cachedKey looks kid up in the cached keys, and tells whether to fetch
// them: when there are none, or when they are stale or do not know kid
// and the last fetch is a minute old.
func (s *Server) cachedKey(p *provider, kid string) (k publicKey, ok, fetch bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := s.cfg.Now()
	k, ok = p.keys[kid]
	switch {
	case p.keys == nil:
		return k, false, true
	case ok && now.Sub(p.keysAt) < jwksMaxAge:
		return k, true, false
	}
	return k, ok, now.Sub(p.lastFetch) >= jwksMinRefetch
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
// signature with the provider's key named by kid, the algorithm that key
// is for, iss, aud, azp, exp, iat and nonce.
func (s *Server) verifyIDToken(ctx context.Context, p *provider, d *discovery, raw, nonce string) (*idClaims, error) {
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{"RS256", "ES256"}),
		jwt.WithAudience(p.ClientID),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(time.Minute),
		jwt.WithTimeFunc(s.cfg.Now),
	)
	var c idClaims
	_, err := parser.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, err := s.key(ctx, p, d, kid)
		if err != nil {
			return nil, err
		}
		if t.Method.Alg() != k.alg {
			return nil, fmt.Errorf("key %q is for %s, not %s", kid, k.alg, t.Method.Alg())
		}
		return k.key, nil
	})
	if err != nil {
		return nil, fmt.Errorf("invalid ID token: %w", err)
	}
	switch {
	case !slices.Contains(p.issuers, c.Issuer):
		return nil, fmt.Errorf("invalid ID token: issuer %q", c.Issuer)
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
