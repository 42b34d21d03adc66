package oauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrKeysUnavailable means an issuer's keys could not be obtained, so no
// token of that issuer can be verified right now.
var ErrKeysUnavailable = errors.New("signing keys unavailable")

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
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Logger receives warnings about failed fetches. Default: discard.
	Logger *slog.Logger
}

// maxRemoteDocument caps the size of a fetched metadata or JWKS document.
const maxRemoteDocument = 1 << 20

// RemoteIssuer verifies the access tokens of an external authorization
// server with the keys it publishes, fetched once and kept in memory:
// fetched again after RefreshInterval, and when a token names an unknown
// kid (at most once per MinRefetch). While the server is unreachable the
// keys last fetched stay in use.
type RemoteIssuer struct {
	cfg   RemoteIssuerConfig
	keys  atomic.Pointer[remoteKeys]
	fetch sync.Mutex // one fetch at a time
	// lastAttempt is when the last fetch started (under fetch).
	lastAttempt time.Time
	jwksURL     string // discovered or configured (under fetch)
}

// remoteKeys is one fetched key set.
type remoteKeys struct {
	byKid   map[string]remoteKey
	noKid   []remoteKey // keys published without a kid
	fetched time.Time
}

// remoteKey is a public key and the algorithms it may verify.
type remoteKey struct {
	key  crypto.PublicKey
	algs []string
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
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			return checkFetchURL(req.URL.String(), "redirect")
		}}
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = time.Hour
	}
	if cfg.MinRefetch <= 0 {
		cfg.MinRefetch = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &RemoteIssuer{cfg: cfg, jwksURL: cfg.JWKSURL}, nil
}

// ValidateRemoteIssuer checks the identifier of an external issuer: an
// https URL (http only on loopback) without query or fragment. Unlike our
// own issuer it may end with a slash, as Auth0's do.
func ValidateRemoteIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil {
		return fmt.Errorf("issuer %q is not a URL: %w", issuer, err)
	}
	return checkHTTPSURL(issuer, u, "issuer")
}

// Issuer returns the issuer identifier.
func (ri *RemoteIssuer) Issuer() string { return ri.cfg.Issuer }

// Verify checks a token of this issuer for resource: the signature with
// one of the issuer's keys (in an algorithm that key allows, never none or
// HMAC), typ, iss, exp, nbf, iat, and an aud naming resource or one of
// the configured audiences. The client id is read from client_id (RFC
// 9068), azp or appid, and the scopes from scope or scp, whichever the
// server uses. The error wraps ErrKeysUnavailable when no keys could be
// fetched, else ErrInvalidToken.
func (ri *RemoteIssuer) Verify(ctx context.Context, raw, resource string, leeway time.Duration) (*AccessClaims, error) {
	keys, err := ri.current(ctx)
	if err != nil {
		return nil, err
	}
	var rc remoteClaims
	err = parseJWT(raw, &rc, jwtRules{
		issuer:    ri.cfg.Issuer,
		audiences: append([]string{resource}, ri.cfg.Audiences...),
		anyType:   ri.cfg.AcceptJWTType,
		now:       ri.cfg.Now,
		leeway:    leeway,
		key: func(kid, alg string) (crypto.PublicKey, error) {
			k, ok := keys.lookup(kid, alg)
			if !ok {
				// The issuer may have rotated its keys since the last fetch.
				if fresh := ri.refetch(ctx, keys); fresh != nil {
					k, ok = fresh.lookup(kid, alg)
				}
			}
			if !ok {
				return nil, errors.New("unknown signing key")
			}
			if !slices.Contains(k.algs, alg) {
				return nil, errors.New("algorithm does not match the key")
			}
			return k.key, nil
		},
	})
	if err != nil {
		return nil, err
	}
	claims := &AccessClaims{RegisteredClaims: rc.RegisteredClaims, ClientID: rc.ClientID, Email: rc.Email, Cnf: rc.Cnf}
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
		return nil, fmt.Errorf("%w: missing sub", ErrInvalidToken)
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
	// Cnf binds a token to a DPoP key (jkt, RFC 9449 §6.1) or a TLS
	// client certificate (x5t#S256, RFC 8705 §3.1); the resource checks
	// every request's proof and certificate against it.
	Cnf *Confirmation `json:"cnf"`
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

// lookup finds the key for a kid; a token without a kid may use the only
// key published without one.
func (k *remoteKeys) lookup(kid, alg string) (remoteKey, bool) {
	if kid != "" {
		rk, ok := k.byKid[kid]
		return rk, ok
	}
	var found []remoteKey
	for _, rk := range k.noKid {
		if slices.Contains(rk.algs, alg) {
			found = append(found, rk)
		}
	}
	if len(found) != 1 {
		return remoteKey{}, false
	}
	return found[0], true
}

// current returns the keys, fetching them the first time and again when
// they are older than RefreshInterval.
func (ri *RemoteIssuer) current(ctx context.Context) (*remoteKeys, error) {
	keys := ri.keys.Load()
	if keys != nil && ri.cfg.Now().Sub(keys.fetched) < ri.cfg.RefreshInterval {
		return keys, nil
	}
	if fresh := ri.refetch(ctx, keys); fresh != nil {
		return fresh, nil
	}
	if keys != nil {
		return keys, nil // stale keys beat none while the server is down
	}
	return nil, fmt.Errorf("%w: %s: no keys fetched yet", ErrKeysUnavailable, ri.cfg.Issuer)
}

// refetch fetches the keys unless a fetch started less than MinRefetch
// ago, and returns the new keys, or nil if none were fetched. seen is the
// set the caller has: if another request replaced it meanwhile, that one
// is returned without a fetch.
func (ri *RemoteIssuer) refetch(ctx context.Context, seen *remoteKeys) *remoteKeys {
	ri.fetch.Lock()
	defer ri.fetch.Unlock()
	if cur := ri.keys.Load(); cur != seen {
		return cur
	}
	now := ri.cfg.Now()
	if !ri.lastAttempt.IsZero() && now.Sub(ri.lastAttempt) < ri.cfg.MinRefetch {
		return nil
	}
	ri.lastAttempt = now
	// A slow server must not hold up the request for long, and a
	// cancelled request must not waste the fetch others wait for.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	keys, err := ri.load(ctx)
	if err != nil {
		ri.cfg.Logger.Warn("fetching the keys of an external issuer failed", "issuer", ri.cfg.Issuer, "error", err.Error())
		return nil
	}
	keys.fetched = now
	ri.keys.Store(keys)
	return keys
}

// load discovers the JWKS URL if needed and fetches the keys (under fetch).
func (ri *RemoteIssuer) load(ctx context.Context) (*remoteKeys, error) {
	if ri.jwksURL == "" {
		u, err := ri.discover(ctx)
		if err != nil {
			return nil, err
		}
		ri.jwksURL = u
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := ri.getJSON(ctx, ri.jwksURL, &set); err != nil {
		return nil, err
	}
	keys := &remoteKeys{byKid: map[string]remoteKey{}}
	for _, raw := range set.Keys {
		var jwk JWK
		if json.Unmarshal(raw, &jwk) != nil {
			continue
		}
		rk, ok := parsePublicJWK(jwk)
		if !ok {
			continue // encryption keys, symmetric keys, unknown types
		}
		if jwk.Kid == "" {
			keys.noKid = append(keys.noKid, rk)
		} else if _, dup := keys.byKid[jwk.Kid]; !dup {
			keys.byKid[jwk.Kid] = rk
		}
	}
	if len(keys.byKid) == 0 && len(keys.noKid) == 0 {
		return nil, fmt.Errorf("%s has no usable signing keys", ri.jwksURL)
	}
	return keys, nil
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
	case u.Scheme != "https" && !(u.Scheme == "http" && IsLoopbackHost(u.Hostname())):
		return fmt.Errorf("%s %q must use https (http is allowed only for localhost)", what, raw)
	case u.User != nil:
		return fmt.Errorf("%s %q must not contain user information", what, raw)
	}
	return nil
}

// getJSON fetches a JSON document of at most maxRemoteDocument bytes.
func (ri *RemoteIssuer) getJSON(ctx context.Context, u string, v any) error {
	if err := GetJSON(ctx, ri.cfg.Client, u, maxRemoteDocument, v); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

// GetJSON fetches the JSON document at u with client into v: a 200
// answer of at most max bytes that decodes as JSON.
func GetJSON(ctx context.Context, client *http.Client, u string, max int64, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return fmt.Errorf("reading the response: %w", err)
	}
	if int64(len(body)) > max {
		return fmt.Errorf("the document is larger than %d bytes", max)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("not a JSON document: %w", err)
	}
	return nil
}

// Algorithm families by key type (RFC 7518 §3.1, RFC 8037 §3.1). HMAC
// and "none" have no public key and so never appear.
var (
	rsaAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	ecAlgorithms  = map[string]string{"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
)

// parsePublicJWK turns a published signing key into a public key and the
// algorithms it may verify: its alg if it names one, else its key type's.
// Keys for encryption, symmetric keys, short RSA keys and points off
// their curve are refused.
func parsePublicJWK(j JWK) (remoteKey, bool) {
	if j.Use != "" && j.Use != "sig" {
		return remoteKey{}, false
	}
	dec := base64.RawURLEncoding.DecodeString
	var rk remoteKey
	switch j.Kty {
	case "RSA":
		n, err1 := dec(j.N)
		e, err2 := dec(j.E)
		if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 {
			return remoteKey{}, false
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < 2048 || pub.E < 3 || pub.E%2 == 0 {
			return remoteKey{}, false
		}
		rk = remoteKey{key: pub, algs: rsaAlgorithms}
	case "EC":
		alg, ok := ecAlgorithms[j.Crv]
		if !ok {
			return remoteKey{}, false
		}
		curve := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}[j.Crv]
		size := (curve.Params().BitSize + 7) / 8
		x, err1 := dec(j.X)
		y, err2 := dec(j.Y)
		if err1 != nil || err2 != nil || len(x) != size || len(y) != size {
			return remoteKey{}, false
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
		if err != nil {
			return remoteKey{}, false
		}
		rk = remoteKey{key: pub, algs: []string{alg}}
	case "OKP":
		x, err := dec(j.X)
		if j.Crv != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
			return remoteKey{}, false
		}
		rk = remoteKey{key: ed25519.PublicKey(x), algs: []string{AlgEdDSA}}
	default:
		return remoteKey{}, false
	}
	if j.Alg != "" {
		if !slices.Contains(rk.algs, j.Alg) {
			return remoteKey{}, false // an alg its key type cannot have
		}
		rk.algs = []string{j.Alg}
	}
	return rk, true
}
