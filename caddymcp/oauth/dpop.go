package oauth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddymcp/caddymcp/caddymcp/internal/jose"
)

// DPoP (RFC 9449) names.
const (
	// DPoPScheme is the authentication scheme of DPoP-bound access tokens
	// (RFC 9449 §7.1) and the token_type the token endpoint returns for
	// them (§5).
	DPoPScheme = "DPoP"
	// DPoPHeader is the request header that carries a DPoP proof (§4.1).
	DPoPHeader = "DPoP"
	// DPoPNonceHeader is the response header that carries a server nonce
	// (§8).
	DPoPNonceHeader = "DPoP-Nonce"
	// DPoPProofType is the typ of a DPoP proof JWT (§4.2).
	DPoPProofType = "dpop+jwt"
)

// DPoPAlgorithms are the algorithms accepted for DPoP proofs, published
// as dpop_signing_alg_values_supported and in the algs parameter of DPoP
// challenges: asymmetric ones only, never "none" or HMAC (RFC 9449 §4.2).
var DPoPAlgorithms = []string{"ES256", "ES384", "ES512", "EdDSA", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"}

// The acceptance window of DPoP proofs (RFC 9449 §11.1).
const (
	// DPoPProofMaxAge is how old (by its iat) a proof may be, plus
	// DPoPProofLeeway.
	DPoPProofMaxAge = 60 * time.Second
	// DPoPProofLeeway tolerates clock skew: a proof's iat may be this far
	// in the future, or this much older than DPoPProofMaxAge.
	DPoPProofLeeway = 5 * time.Second
)

// DPoPNonceSlot is how long a server nonce (RFC 9449 §8) is handed out:
// a nonce is accepted during the slot it was made in and the next one, so
// for 5 to 10 minutes.
const DPoPNonceSlot = 5 * time.Minute

// Limits on what a proof may make the server hold.
const (
	maxProofLen = 8 << 10
	maxJTILen   = 256
	// replayCapacity bounds the remembered proofs per window and
	// instance; beyond it proofs are refused rather than forgotten.
	replayCapacity = 1 << 17
)

// DPoPConfig configures DPoP (RFC 9449) at the token endpoint. By default
// a token request that carries a valid DPoP proof gets a DPoP-bound
// access token, and one without gets a bearer token.
type DPoPConfig struct {
	// Disabled ignores DPoP proofs and dpop_jkt: every access token is a
	// bearer token, and the metadata does not advertise DPoP.
	Disabled bool
	// RequireNonce makes the token endpoint demand a server nonce in
	// every DPoP proof (RFC 9449 §8): a proof without the current nonce
	// is answered 400 use_dpop_nonce with a DPoP-Nonce header, and the
	// code or refresh token stays usable for the retry. Nonces are
	// derived from NonceSecret and the time, so every instance that
	// shares the secret accepts the nonces of the others.
	RequireNonce bool
	// NonceSecret returns the secret nonces are derived from, the same
	// on every instance. Required with RequireNonce.
	NonceSecret func(ctx context.Context) ([]byte, error)
}

// dpopProof is a DPoP proof that passed the checks of RFC 9449 §4.3.
type dpopProof struct {
	jkt   string // RFC 7638 thumbprint of the proof's key
	jti   string
	htu   string // normalised
	nonce string
}

// proofClaims are the claims of a DPoP proof (RFC 9449 §4.2).
type proofClaims struct {
	jwt.RegisteredClaims
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	ATH   string `json:"ath"`
	Nonce string `json:"nonce"`
}

// checkDPoPProof checks the DPoP header values of a request made with
// method to htu (RFC 9449 §4.3): exactly one well-formed proof JWT with
// typ dpop+jwt, an accepted asymmetric alg, a public jwk that verifies
// its signature, the jti, htm, htu and iat claims, htm and htu matching
// the request, iat within the window, and, when accessToken is not
// empty, ath equal to its hash. The nonce, the binding to a key and
// replay are the caller's to check. The error is a description for the
// client.
func checkDPoPProof(values []string, method, htu, accessToken string, now time.Time) (*dpopProof, error) {
	switch {
	case len(values) == 0:
		return nil, errors.New("the DPoP header is missing")
	case len(values) > 1:
		return nil, errors.New("more than one DPoP header")
	case len(values[0]) > maxProofLen:
		return nil, errors.New("the DPoP proof is too long")
	}
	var claims proofClaims
	tok, parts, err := jwt.NewParser().ParseUnverified(values[0], &claims)
	switch {
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return nil, errors.New("the DPoP proof's alg must be one of " + strings.Join(DPoPAlgorithms, " "))
	case err != nil:
		return nil, errors.New("the DPoP proof is not a well-formed JWT")
	}
	// §4.3 steps 4 to 7: the type, an asymmetric algorithm, a public key
	// that fits it, and the signature made with it.
	alg := tok.Method.Alg()
	if typ, _ := tok.Header["typ"].(string); !strings.EqualFold(typ, DPoPProofType) {
		return nil, errors.New("the DPoP proof's typ must be " + DPoPProofType)
	}
	if !slices.Contains(DPoPAlgorithms, alg) {
		return nil, errors.New("the DPoP proof's alg must be one of " + strings.Join(DPoPAlgorithms, " "))
	}
	if _, crit := tok.Header["crit"]; crit {
		return nil, errors.New("the DPoP proof names critical header parameters this server does not know")
	}
	key, jkt, err := proofKey(tok.Header["jwk"], alg)
	if err != nil {
		return nil, err
	}
	if err := tok.Method.Verify(parts[0]+"."+parts[1], tok.Signature, key); err != nil {
		return nil, errors.New("the DPoP proof's signature does not verify with its jwk")
	}
	switch {
	case claims.ID == "" || claims.HTM == "" || claims.HTU == "" || claims.IssuedAt == nil:
		return nil, errors.New("the DPoP proof lacks one of the claims jti, htm, htu and iat")
	case len(claims.ID) > maxJTILen:
		return nil, errors.New("the DPoP proof's jti is too long")
	case claims.HTM != method:
		return nil, errors.New("the DPoP proof's htm does not match the request method")
	}
	want, ok := normalizeHTU(htu)
	got, ok2 := normalizeHTU(claims.HTU)
	if !ok || !ok2 || got != want {
		return nil, errors.New("the DPoP proof's htu does not match the request URL")
	}
	switch iat := claims.IssuedAt.Time; {
	case iat.Before(now.Add(-DPoPProofMaxAge - DPoPProofLeeway)):
		return nil, errors.New("the DPoP proof is too old (iat): make a new proof for each request")
	case iat.After(now.Add(DPoPProofLeeway)):
		return nil, errors.New("the DPoP proof's iat is in the future: check the client's clock")
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		if subtle.ConstantTimeCompare([]byte(claims.ATH), []byte(base64.RawURLEncoding.EncodeToString(sum[:]))) != 1 {
			return nil, errors.New("the DPoP proof's ath does not match the access token")
		}
	}
	return &dpopProof{jkt: jkt, jti: claims.ID, htu: got, nonce: claims.Nonce}, nil
}

// proofKey turns the jwk header of a proof into the public key that
// verifies it in alg, and its RFC 7638 thumbprint. It refuses keys with
// private or symmetric members (RFC 9449 §4.3 step 7), keys of types
// other than EC, RSA (2048 bits or more) and OKP Ed25519, and an alg the
// key cannot have.
func proofKey(header any, alg string) (any, string, error) {
	m, ok := header.(map[string]any)
	if !ok {
		return nil, "", errors.New("the DPoP proof needs a jwk header holding a public key")
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, "", errors.New("the DPoP proof's jwk is malformed")
	}
	jwk, pk, err := jose.ParsePublicJWK(raw)
	switch {
	case errors.Is(err, jose.ErrNotPublic):
		return nil, "", errors.New("the DPoP proof's jwk must not contain a private key")
	case errors.Is(err, jose.ErrMalformed):
		return nil, "", errors.New("the DPoP proof's jwk is malformed")
	case err != nil:
		return nil, "", errors.New("the DPoP proof's jwk is not a usable EC, RSA or Ed25519 public key")
	case !pk.Allows(alg):
		return nil, "", errors.New("the DPoP proof's alg " + alg + " does not fit its jwk")
	}
	return pk.Key, jwk.Thumbprint(), nil
}

// normalizeHTU reduces an http(s) URL to the form in which htu is
// compared (RFC 9449 §4.3, RFC 3986 §6.2.2 and §6.2.3): lowercase scheme
// and host, no default port, no query or fragment, percent-encoding
// normalised, dot segments removed, and "/" for an empty path. URLs with
// user information, or that are not absolute http(s) URLs, are refused.
func normalizeHTU(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.User != nil || u.Host == "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", false
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if host == "" {
		return "", false
	}
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	path := removeDotSegments(normalizePercent(u.EscapedPath()))
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, true
}

// normalizePercent decodes percent-encoded unreserved characters and
// uppercases the hex digits of the others (RFC 3986 §6.2.2.1, §6.2.2.2).
func normalizePercent(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' || i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
			b.WriteByte(p[i])
			continue
		}
		c := unhex(p[i+1])<<4 | unhex(p[i+2])
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
		} else {
			b.WriteString(strings.ToUpper(p[i : i+3]))
		}
		i += 2
	}
	return b.String()
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// removeDotSegments applies RFC 3986 §5.2.4 to an absolute path.
func removeDotSegments(p string) string {
	if !strings.Contains(p, ".") {
		return p
	}
	var out []string
	segs := strings.Split(p, "/")
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 1 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return strings.Join(out, "/")
}

// replayCache remembers the DPoP proofs accepted within the acceptance
// window, so that each is accepted once (RFC 9449 §11.1). It keeps two
// generations of one window each: a proof is remembered for at least a
// window, which outlasts its acceptance, and forgetting costs no sweep.
// It holds hashes only, and refuses new proofs rather than forget ones
// still acceptable when a generation is full.
type replayCache struct {
	mu        sync.Mutex
	window    time.Duration
	capacity  int
	gen       int64
	cur, prev map[[32]byte]struct{}
}

func newReplayCache() *replayCache {
	return &replayCache{window: DPoPProofMaxAge + 2*DPoPProofLeeway, capacity: replayCapacity}
}

// errReplayFull means the replay cache has no room for another proof.
var errReplayFull = errors.New("too many DPoP proofs to remember; retry shortly")

// firstUse records a proof and reports whether it is new. A proof is
// identified by its target URI, key and jti.
func (c *replayCache) firstUse(p *dpopProof, now time.Time) (bool, error) {
	key := sha256.Sum256([]byte(p.htu + "\x00" + p.jkt + "\x00" + p.jti))
	c.mu.Lock()
	defer c.mu.Unlock()
	gen := now.UnixNano() / int64(c.window)
	switch {
	case c.cur == nil || gen > c.gen+1:
		c.prev, c.cur = map[[32]byte]struct{}{}, map[[32]byte]struct{}{}
	case gen == c.gen+1:
		c.prev, c.cur = c.cur, map[[32]byte]struct{}{}
	}
	if gen > c.gen {
		c.gen = gen
	}
	if _, seen := c.cur[key]; seen {
		return false, nil
	}
	if _, seen := c.prev[key]; seen {
		return false, nil
	}
	if len(c.cur) >= c.capacity {
		return false, errReplayFull
	}
	c.cur[key] = struct{}{}
	return true, nil
}

// dpopNonce is the server nonce of a time slot (RFC 9449 §8): an HMAC of
// the slot and the issuer under the shared secret, so unpredictable
// without the secret, and the same on every instance.
func dpopNonce(secret []byte, issuer string, slot int64) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("caddymcp DPoP nonce\x00" + issuer + "\x00"))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(slot))
	mac.Write(b[:])
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:24])
}

// nonceSlot is the slot of a time.
func nonceSlot(t time.Time) int64 { return t.UnixNano() / int64(DPoPNonceSlot) }

// validNonce reports whether nonce is the nonce of the current slot or
// of the one before.
func validNonce(secret []byte, issuer, nonce string, now time.Time) bool {
	slot := nonceSlot(now)
	ok := false
	for _, s := range []int64{slot, slot - 1} {
		if hmac.Equal([]byte(nonce), []byte(dpopNonce(secret, issuer, s))) {
			ok = true
		}
	}
	return ok
}

// tokenProof checks the DPoP proof of a token request (RFC 9449 §5):
// none (nil, true) when the request has no DPoP header or DPoP is off.
// When it has answered the request (a bad proof, a missing nonce, a
// failure) it returns false. With nonces required, every answer to a
// request with a proof carries the current nonce (§8.2).
func (s *Server) tokenProof(w http.ResponseWriter, r *http.Request, issuer string) (*dpopProof, bool) {
	values := r.Header.Values(DPoPHeader)
	if s.cfg.DPoP.Disabled || len(values) == 0 {
		return nil, true
	}
	now := s.cfg.Now()
	var secret []byte
	if s.cfg.DPoP.RequireNonce {
		var err error
		if secret, err = s.cfg.DPoP.NonceSecret(r.Context()); err != nil {
			s.internalError(w, r, "reading the DPoP nonce secret", err)
			return nil, false
		}
		w.Header().Set(DPoPNonceHeader, dpopNonce(secret, issuer, nonceSlot(now)))
	}
	proof, err := checkDPoPProof(values, http.MethodPost, issuer+TokenPath, "", now)
	if err != nil {
		badRequest("invalid_dpop_proof", err.Error()).write(w)
		return nil, false
	}
	if s.cfg.DPoP.RequireNonce && !validNonce(secret, issuer, proof.nonce, now) {
		// The grant is not looked at: the code or refresh token stays
		// usable for the retry with the nonce.
		desc := "a DPoP nonce is required: retry with a proof carrying the nonce of the DPoP-Nonce header"
		if proof.nonce != "" {
			desc = "the DPoP nonce is unknown or expired: retry with the nonce of the DPoP-Nonce header"
		}
		badRequest("use_dpop_nonce", desc).write(w)
		return nil, false
	}
	fresh, err := s.replay.firstUse(proof, now)
	switch {
	case err != nil:
		s.log.Warn("DPoP replay cache full", "endpoint", "token")
		w.Header().Set("Retry-After", "5")
		WriteError(w, http.StatusServiceUnavailable, "temporarily_unavailable", err.Error())
		return nil, false
	case !fresh:
		badRequest("invalid_dpop_proof", "the DPoP proof was already used: make a new proof for each request").write(w)
		return nil, false
	}
	return proof, true
}

// checkDPoPConfig checks the DPoP configuration.
func checkDPoPConfig(c *DPoPConfig) error {
	if c.RequireNonce && !c.Disabled && c.NonceSecret == nil {
		return errors.New("oauth server: DPoP nonces need a nonce secret")
	}
	return nil
}
