package oauth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// Signing algorithms of access tokens (RFC 7518 §3, RFC 8037).
const (
	// AlgES256 is ECDSA on P-256 with SHA-256, the default.
	AlgES256 = "ES256"
	// AlgRS256 is RSASSA-PKCS1-v1_5 with SHA-256, on a 3072-bit key.
	AlgRS256 = "RS256"
	// AlgEdDSA is EdDSA on Ed25519.
	AlgEdDSA = "EdDSA"
)

// Algorithms lists the supported signing algorithms.
var Algorithms = []string{AlgES256, AlgRS256, AlgEdDSA}

// rsaBits is the size of generated RSA keys.
const rsaBits = 3072

// GenerateSigningKey makes a new ES256 key; see GenerateKey.
func GenerateSigningKey(random io.Reader, now time.Time) (*store.SigningKey, error) {
	return GenerateKey(AlgES256, random, now)
}

// GenerateKey makes a new signing key for alg whose id is its RFC 7638
// thumbprint, reading randomness from random.
func GenerateKey(alg string, random io.Reader, now time.Time) (*store.SigningKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case AlgES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), random)
	case AlgRS256:
		priv, err = rsa.GenerateKey(random, rsaBits)
	case AlgEdDSA:
		_, priv, err = ed25519.GenerateKey(random)
	default:
		return nil, fmt.Errorf("unsupported signing algorithm %q (use ES256, RS256 or EdDSA)", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("generating %s key: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encoding %s key: %w", alg, err)
	}
	jwk, err := publicJWK(priv.Public(), alg, "")
	if err != nil {
		return nil, err
	}
	return &store.SigningKey{ID: jwk.thumbprint(), Algorithm: alg, PrivateKey: der, CreatedAt: now}, nil
}

// JWK is a public JSON Web Key (RFC 7517 §4): EC P-256, RSA or OKP
// Ed25519.
type JWK struct {
	// Kty is the key type: "EC", "RSA" or "OKP".
	Kty string `json:"kty"`
	// Crv is the curve of EC and OKP keys: "P-256" or "Ed25519".
	Crv string `json:"crv,omitempty"`
	// X and Y are the base64url coordinates of an EC key; X alone is an
	// OKP key's public key.
	X string `json:"x,omitempty"`
	Y string `json:"y,omitempty"`
	// N and E are the base64url modulus and exponent of an RSA key.
	N string `json:"n,omitempty"`
	E string `json:"e,omitempty"`
	// Kid is the key id.
	Kid string `json:"kid,omitempty"`
	// Use is "sig".
	Use string `json:"use,omitempty"`
	// Alg is the signing algorithm.
	Alg string `json:"alg,omitempty"`
}

// thumbprint is the RFC 7638 SHA-256 thumbprint: the hash of the required
// members in lexicographic order with no whitespace.
func (k JWK) thumbprint() string {
	var canon string
	switch k.Kty {
	case "EC":
		canon = `{"crv":"` + k.Crv + `","kty":"EC","x":"` + k.X + `","y":"` + k.Y + `"}`
	case "RSA":
		canon = `{"e":"` + k.E + `","kty":"RSA","n":"` + k.N + `"}`
	case "OKP":
		canon = `{"crv":"` + k.Crv + `","kty":"OKP","x":"` + k.X + `"}`
	}
	sum := sha256.Sum256([]byte(canon))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func publicJWK(pub crypto.PublicKey, alg, kid string) (JWK, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	switch key := pub.(type) {
	case *ecdsa.PublicKey:
		raw, err := key.Bytes() // 0x04 || X || Y
		if err != nil || len(raw) != 65 || key.Curve != elliptic.P256() || alg != AlgES256 {
			return JWK{}, errors.New("signing key is not a P-256 key for ES256")
		}
		return JWK{Kty: "EC", Crv: "P-256", X: b64(raw[1:33]), Y: b64(raw[33:65]), Kid: kid, Use: "sig", Alg: alg}, nil
	case *rsa.PublicKey:
		if key.N.BitLen() < 2048 || alg != AlgRS256 {
			return JWK{}, errors.New("signing key is not an RSA key of at least 2048 bits for RS256")
		}
		return JWK{Kty: "RSA", N: b64(key.N.Bytes()), E: b64(big.NewInt(int64(key.E)).Bytes()), Kid: kid, Use: "sig", Alg: alg}, nil
	case ed25519.PublicKey:
		if alg != AlgEdDSA {
			return JWK{}, errors.New("signing key is not an Ed25519 key for EdDSA")
		}
		return JWK{Kty: "OKP", Crv: "Ed25519", X: b64(key), Kid: kid, Use: "sig", Alg: alg}, nil
	}
	return JWK{}, errors.New("unsupported signing key type")
}

// verifier is a published key and the one algorithm it may verify.
type verifier struct {
	key crypto.PublicKey
	alg string
}

// KeySet holds the key that signs new tokens and the public keys that
// still verify tokens. It is immutable.
type KeySet struct {
	signer  crypto.Signer
	alg     string
	kid     string
	public  []JWK
	byKid   map[string]verifier
	jwksDoc []byte
}

// NewKeySet builds a key set from stored keys: the newest unretired key
// signs; it and every key retired less than keepRetired ago are published
// for verification.
func NewKeySet(keys []store.SigningKey, now time.Time, keepRetired time.Duration) (*KeySet, error) {
	ks := &KeySet{byKid: map[string]verifier{}}
	var signerCreated time.Time
	for _, k := range keys {
		parsed, err := x509.ParsePKCS8PrivateKey(k.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", k.ID, err)
		}
		priv, ok := parsed.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("signing key %s: not a signing key", k.ID)
		}
		// A key may be retired, or start signing, at a future time: it is
		// published ahead so that every verifier knows it in time.
		retired := !k.RetiredAt.IsZero() && !now.Before(k.RetiredAt)
		if retired && now.Sub(k.RetiredAt) >= keepRetired {
			continue
		}
		jwk, err := publicJWK(priv.Public(), k.Algorithm, k.ID)
		if err != nil {
			return nil, fmt.Errorf("signing key %s (%s): %w", k.ID, k.Algorithm, err)
		}
		ks.public = append(ks.public, jwk)
		ks.byKid[k.ID] = verifier{key: priv.Public(), alg: k.Algorithm}
		if !retired && !k.CreatedAt.After(now) && (ks.signer == nil || k.CreatedAt.After(signerCreated)) {
			ks.signer, ks.alg, ks.kid, signerCreated = priv, k.Algorithm, k.ID, k.CreatedAt
		}
	}
	if ks.signer == nil {
		return nil, errors.New("no active signing key")
	}
	doc, err := json.Marshal(JWKS{Keys: ks.public})
	if err != nil {
		return nil, fmt.Errorf("encoding JWKS: %w", err)
	}
	ks.jwksDoc = doc
	return ks, nil
}

// sealedKeyPrefix marks a private key encrypted with a key-encryption key.
const sealedKeyPrefix = "caddymcp-sealed-v1:"

// IsSealedKey reports whether a stored private key is encrypted with a
// key-encryption key (see SealKey).
func IsSealedKey(stored []byte) bool { return bytes.HasPrefix(stored, []byte(sealedKeyPrefix)) }

// SealKey encrypts a private key for storage with AES-256-GCM under a key
// derived from secret, so that a copy of the database alone does not
// reveal it.
func SealKey(secret string, der []byte, random io.Reader) ([]byte, error) {
	sealed, err := sealGCM(kekKey(secret), der, []byte(sealedKeyPrefix), random)
	if err != nil {
		return nil, fmt.Errorf("sealing signing key: %w", err)
	}
	return append([]byte(sealedKeyPrefix), sealed...), nil
}

// OpenKey reverses SealKey. A key stored without sealing is returned as
// it is; a sealed key without the secret, or with a wrong one, is an
// error.
func OpenKey(secret string, stored []byte) ([]byte, error) {
	sealed, ok := bytes.CutPrefix(stored, []byte(sealedKeyPrefix))
	if !ok {
		return stored, nil
	}
	if secret == "" {
		return nil, errors.New("the signing keys are encrypted: configure the key-encryption secret")
	}
	der, err := openGCM(kekKey(secret), sealed, []byte(sealedKeyPrefix))
	if err != nil {
		return nil, errors.New("cannot decrypt the signing keys: wrong key-encryption secret")
	}
	return der, nil
}

func kekKey(secret string) []byte {
	sum := sha256.Sum256([]byte("caddymcp key encryption\x00" + secret))
	return sum[:]
}

// JWKS is a JSON Web Key Set (RFC 7517 §5).
type JWKS struct {
	// Keys are the public keys.
	Keys []JWK `json:"keys"`
}

// SigningKeyID returns the id of the key that signs new tokens.
func (ks *KeySet) SigningKeyID() string { return ks.kid }

// SigningAlgorithm returns the algorithm of the key that signs new tokens.
func (ks *KeySet) SigningAlgorithm() string { return ks.alg }

// PublicKey returns the verification key with the given id.
func (ks *KeySet) PublicKey(kid string) (crypto.PublicKey, bool) {
	v, ok := ks.byKid[kid]
	return v.key, ok
}

// PublicKeys returns the published keys.
func (ks *KeySet) PublicKeys() []JWK { return append([]JWK(nil), ks.public...) }

// KeySource yields the current key set. Implementations cache it; the
// first call may have to load or create the keys.
type KeySource interface {
	KeySet(ctx context.Context) (*KeySet, error)
}

// serveJWKS answers GET /oauth/jwks.
func serveJWKS(w http.ResponseWriter, r *http.Request, keys KeySource) {
	if !servePublicGet(w, r) {
		return
	}
	ks, err := keys.KeySet(r.Context())
	if err != nil {
		w.Header().Set("Retry-After", "5")
		WriteError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "signing keys are not available yet")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	// Short enough that a rotated key reaches verifiers well within an
	// access token's lifetime.
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(ks.jwksDoc)
}
