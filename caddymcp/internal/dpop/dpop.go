// Package dpop checks DPoP proofs (RFC 9449) for the token endpoint and
// the resource server alike: the proof JWT and its key (§4.3), the
// normalised target URI, the replay cache of proofs seen, and server
// nonces derived from a shared secret (§8).
//
// It imports jose and no other caddymcp package.
package dpop

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/jose"
	"github.com/golang-jwt/jwt/v5"
)

// DPoP (RFC 9449) names.
const (
	// Scheme is the authentication scheme of DPoP-bound access tokens
	// (RFC 9449 §7.1) and the token_type the token endpoint returns for
	// them (§5).
	Scheme = "DPoP"
	// Header is the request header that carries a DPoP proof (§4.1).
	Header = "DPoP"
	// NonceHeader is the response header that carries a server nonce
	// (§8).
	NonceHeader = "DPoP-Nonce"
	// ProofType is the typ of a DPoP proof JWT (§4.2).
	ProofType = "dpop+jwt"
)

// Algorithms are the algorithms accepted for DPoP proofs, published
// as dpop_signing_alg_values_supported and in the algs parameter of DPoP
// challenges: asymmetric ones only, never "none" or HMAC (RFC 9449 §4.2).
var Algorithms = []string{"ES256", "ES384", "ES512", "EdDSA", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"}

// The acceptance window of DPoP proofs (RFC 9449 §11.1).
const (
	// ProofMaxAge is how old (by its iat) a proof may be, plus
	// ProofLeeway.
	ProofMaxAge = 60 * time.Second
	// ProofLeeway tolerates clock skew: a proof's iat may be this far
	// in the future, or this much older than ProofMaxAge.
	ProofLeeway = 5 * time.Second
)

// NonceSlot is how long a server nonce (RFC 9449 §8) is handed out:
// a nonce is accepted during the slot it was made in and the next one, so
// for 5 to 10 minutes.
const NonceSlot = 5 * time.Minute

// Limits on what a proof may make the server hold.
const (
	maxProofLen = 8 << 10
	maxJTILen   = 256
	// replayCapacity bounds the proofs remembered per instance; beyond
	// it the oldest are forgotten.
	replayCapacity = 1 << 17
)

// Proof is a DPoP proof that passed the checks of RFC 9449 §4.3.
type Proof struct {
	// JKT is the RFC 7638 thumbprint of the proof's key.
	JKT string
	// JTI is the proof's unique identifier.
	JTI string
	// HTU is the target URI, normalised.
	HTU string
	// Nonce is the server nonce the proof carries, if any (§8).
	Nonce string
}

// proofClaims are the claims of a DPoP proof (RFC 9449 §4.2).
type proofClaims struct {
	jwt.RegisteredClaims
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	ATH   string `json:"ath"`
	Nonce string `json:"nonce"`
}

// CheckProof checks the DPoP header values of a request made with
// method to htu (RFC 9449 §4.3): exactly one well-formed proof JWT with
// typ dpop+jwt, an accepted asymmetric alg, a public jwk that verifies
// its signature, the jti, htm, htu and iat claims, htm and htu matching
// the request, iat within the window, and, when accessToken is not
// empty, ath equal to its hash. The claims are checked before the key
// and the signature, which is the costly step. The nonce, the binding to
// a key and replay are the caller's to check. The error is a description
// for the client.
func CheckProof(values []string, method, htu, accessToken string, now time.Time) (*Proof, error) {
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
		return nil, errors.New("the DPoP proof's alg must be one of " + strings.Join(Algorithms, " "))
	case err != nil:
		return nil, errors.New("the DPoP proof is not a well-formed JWT")
	}
	// §4.3 steps 4 and 5: the type and an asymmetric algorithm.
	alg := tok.Method.Alg()
	if typ, _ := tok.Header["typ"].(string); !strings.EqualFold(typ, ProofType) {
		return nil, errors.New("the DPoP proof's typ must be " + ProofType)
	}
	if !slices.Contains(Algorithms, alg) {
		return nil, errors.New("the DPoP proof's alg must be one of " + strings.Join(Algorithms, " "))
	}
	if _, crit := tok.Header["crit"]; crit {
		return nil, errors.New("the DPoP proof names critical header parameters this server does not know")
	}
	// §4.3 steps 3, 8, 9, 11 and 12 come before the signature: they
	// cost next to nothing, while verifying a signature is the dearest
	// step, so a proof that would be refused anyway costs none.
	htuNorm, err := checkClaims(&claims, method, htu, accessToken, now)
	if err != nil {
		return nil, err
	}
	// §4.3 steps 6 and 7: a public key that fits the algorithm (within
	// jose's size limits, checked before any arithmetic), and the
	// signature made with it.
	key, jkt, err := proofKey(tok.Header["jwk"], alg)
	if err != nil {
		return nil, err
	}
	if err := tok.Method.Verify(parts[0]+"."+parts[1], tok.Signature, key); err != nil {
		return nil, errors.New("the DPoP proof's signature does not verify with its jwk")
	}
	return &Proof{JKT: jkt, JTI: claims.ID, HTU: htuNorm, Nonce: claims.Nonce}, nil
}

// checkClaims checks the claims of a proof against the request (RFC 9449
// §4.3 steps 3, 8, 9, 11 and 12): jti, htm, htu and iat present, a jti of bounded
// length, htm the method, htu the URL, iat within the window, and ath
// the hash of accessToken when there is one. It returns the normalised
// htu.
func checkClaims(claims *proofClaims, method, htu, accessToken string, now time.Time) (string, error) {
	switch {
	case claims.ID == "" || claims.HTM == "" || claims.HTU == "" || claims.IssuedAt == nil:
		return "", errors.New("the DPoP proof lacks one of the claims jti, htm, htu and iat")
	case len(claims.ID) > maxJTILen:
		return "", errors.New("the DPoP proof's jti is too long")
	case claims.HTM != method:
		return "", errors.New("the DPoP proof's htm does not match the request method")
	}
	want, ok := NormalizeHTU(htu)
	got, ok2 := NormalizeHTU(claims.HTU)
	if !ok || !ok2 || got != want {
		return "", errors.New("the DPoP proof's htu does not match the request URL")
	}
	switch iat := claims.IssuedAt.Time; {
	case iat.Before(now.Add(-ProofMaxAge - ProofLeeway)):
		return "", errors.New("the DPoP proof is too old (iat): make a new proof for each request")
	case iat.After(now.Add(ProofLeeway)):
		return "", errors.New("the DPoP proof's iat is in the future: check the client's clock")
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		if subtle.ConstantTimeCompare([]byte(claims.ATH), []byte(base64.RawURLEncoding.EncodeToString(sum[:]))) != 1 {
			return "", errors.New("the DPoP proof's ath does not match the access token")
		}
	}
	return got, nil
}

// proofKey turns the jwk header of a proof into the public key that
// verifies it in alg, and its RFC 7638 thumbprint. It refuses keys with
// private or symmetric members (RFC 9449 §4.3 step 7), keys of types
// other than EC, RSA (2048 to 4096 bits, exponent at most 65537) and OKP
// Ed25519, and an alg the key cannot have.
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
		return nil, "", errors.New("the DPoP proof's jwk is not a usable EC, RSA (2048 to 4096 bits, e at most 65537) or Ed25519 public key")
	case !pk.Allows(alg):
		return nil, "", errors.New("the DPoP proof's alg " + alg + " does not fit its jwk")
	}
	return pk.Key, jwk.Thumbprint(), nil
}

// NormalizeHTU reduces an http(s) URL to the form in which htu is
// compared (RFC 9449 §4.3, RFC 3986 §6.2.2 and §6.2.3): lowercase scheme
// and host, no default port, no query or fragment, percent-encoding
// normalised, dot segments removed, and "/" for an empty path. URLs with
// user information, or that are not absolute http(s) URLs, are refused.
func NormalizeHTU(raw string) (string, bool) {
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

// ReplayCache remembers the DPoP proofs accepted within the acceptance
// window, so that each is accepted once (RFC 9449 §11.1). A proof is
// remembered for a window after it is recorded, which outlasts its
// acceptance. It holds hashes only, at most capacity of them: when it is
// full the oldest is forgotten, so that a flood of proofs can delay no
// request (callers record only the proofs of requests that are otherwise
// valid, so filling it takes that many valid requests within a window).
type ReplayCache struct {
	mu       sync.Mutex
	window   time.Duration
	capacity int
	seen     map[[32]byte]struct{}
	// order holds what seen holds, oldest first from head: the queue of
	// expiry and eviction.
	order []replayEntry
	head  int
}

// replayEntry is a recorded proof: its hash and when it was recorded
// (Unix nanoseconds).
type replayEntry struct {
	key [32]byte
	at  int64
}

// NewReplayCache returns an empty replay cache.
func NewReplayCache() *ReplayCache {
	return &ReplayCache{window: ProofMaxAge + 2*ProofLeeway, capacity: replayCapacity}
}

// replayKey identifies a proof by its target URI, key and jti.
func replayKey(p *Proof) [32]byte {
	return sha256.Sum256([]byte(p.HTU + "\x00" + p.JKT + "\x00" + p.JTI))
}

// Seen reports whether a proof was recorded, without recording it: a
// request checks it first, and records the proof with FirstUse only
// once it is otherwise valid.
func (c *ReplayCache) Seen(p *Proof, now time.Time) bool {
	key := replayKey(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	_, seen := c.seen[key]
	return seen
}

// FirstUse records a proof and reports whether it is new. A proof is
// identified by its target URI, key and jti. When the cache is full the
// oldest proof is forgotten.
func (c *ReplayCache) FirstUse(p *Proof, now time.Time) bool {
	key := replayKey(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	if _, seen := c.seen[key]; seen {
		return false
	}
	for len(c.seen) >= c.capacity && c.head < len(c.order) {
		c.pop()
	}
	if c.seen == nil {
		c.seen = map[[32]byte]struct{}{}
	}
	c.seen[key] = struct{}{}
	c.order = append(c.order, replayEntry{key: key, at: now.UnixNano()})
	return true
}

// expire forgets the proofs recorded more than a window before now.
func (c *ReplayCache) expire(now time.Time) {
	for c.head < len(c.order) && now.UnixNano()-c.order[c.head].at > int64(c.window) {
		c.pop()
	}
}

// pop forgets the oldest proof. An empty cache gives its memory back; the
// queue is compacted once half of it is spent, so it holds at most about
// twice what seen holds.
func (c *ReplayCache) pop() {
	delete(c.seen, c.order[c.head].key)
	c.head++
	switch {
	case c.head == len(c.order):
		c.seen, c.order, c.head = nil, nil, 0
	case c.head >= 1024 && 2*c.head >= len(c.order):
		n := copy(c.order, c.order[c.head:])
		clear(c.order[n:])
		c.order, c.head = c.order[:n], 0
	}
}

// Nonce is the server nonce of a time slot (RFC 9449 §8): an HMAC of
// the slot and the issuer under the shared secret, so unpredictable
// without the secret, and the same on every instance.
func Nonce(secret []byte, issuer string, slot int64) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("caddymcp DPoP nonce\x00" + issuer + "\x00"))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(slot))
	mac.Write(b[:])
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:24])
}

// Slot is the slot of a time.
func Slot(t time.Time) int64 { return t.UnixNano() / int64(NonceSlot) }

// ValidNonce reports whether nonce is the nonce of the current slot or
// of the one before.
func ValidNonce(secret []byte, issuer, nonce string, now time.Time) bool {
	slot := Slot(now)
	ok := false
	for _, s := range []int64{slot, slot - 1} {
		if hmac.Equal([]byte(nonce), []byte(Nonce(secret, issuer, s))) {
			ok = true
		}
	}
	return ok
}
