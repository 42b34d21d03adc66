package oauth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// AlgES256 is the JWS algorithm of caddymcp's signing keys: ECDSA on
// P-256 with SHA-256 (RFC 7518 §3.4).
const AlgES256 = "ES256"

// GenerateSigningKey makes a new ES256 key whose id is its RFC 7638
// thumbprint, reading randomness from random.
func GenerateSigningKey(random io.Reader, now time.Time) (*store.SigningKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), random)
	if err != nil {
		return nil, fmt.Errorf("generating ES256 key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encoding ES256 key: %w", err)
	}
	jwk, err := publicJWK(&priv.PublicKey, "")
	if err != nil {
		return nil, err
	}
	return &store.SigningKey{ID: jwk.thumbprint(), Algorithm: AlgES256, PrivateKey: der, CreatedAt: now}, nil
}

// JWK is a public JSON Web Key (RFC 7517 §4) of an EC P-256 key.
type JWK struct {
	// Kty is the key type, "EC".
	Kty string `json:"kty"`
	// Crv is the curve, "P-256".
	Crv string `json:"crv"`
	// X and Y are the base64url coordinates.
	X string `json:"x"`
	Y string `json:"y"`
	// Kid is the key id.
	Kid string `json:"kid,omitempty"`
	// Use is "sig".
	Use string `json:"use,omitempty"`
	// Alg is "ES256".
	Alg string `json:"alg,omitempty"`
}

// thumbprint is the RFC 7638 SHA-256 thumbprint: the hash of the required
// members in lexicographic order with no whitespace.
func (k JWK) thumbprint() string {
	canon := `{"crv":"` + k.Crv + `","kty":"` + k.Kty + `","x":"` + k.X + `","y":"` + k.Y + `"}`
	sum := sha256.Sum256([]byte(canon))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func publicJWK(pub *ecdsa.PublicKey, kid string) (JWK, error) {
	raw, err := pub.Bytes() // 0x04 || X || Y
	if err != nil || len(raw) != 65 || pub.Curve != elliptic.P256() {
		return JWK{}, errors.New("signing key is not a P-256 key")
	}
	return JWK{
		Kty: "EC", Crv: "P-256",
		X:   base64.RawURLEncoding.EncodeToString(raw[1:33]),
		Y:   base64.RawURLEncoding.EncodeToString(raw[33:65]),
		Kid: kid, Use: "sig", Alg: AlgES256,
	}, nil
}

// KeySet holds the key that signs new tokens and the public keys that
// still verify tokens. It is immutable.
type KeySet struct {
	signer  *ecdsa.PrivateKey
	kid     string
	public  []JWK
	byKid   map[string]*ecdsa.PublicKey
	jwksDoc []byte
}

// NewKeySet builds a key set from stored keys: the newest unretired key
// signs; it and every key retired less than keepRetired ago are published
// for verification.
func NewKeySet(keys []store.SigningKey, now time.Time, keepRetired time.Duration) (*KeySet, error) {
	ks := &KeySet{byKid: map[string]*ecdsa.PublicKey{}}
	var signerCreated time.Time
	for _, k := range keys {
		if k.Algorithm != AlgES256 {
			return nil, fmt.Errorf("signing key %s: unsupported algorithm %q", k.ID, k.Algorithm)
		}
		parsed, err := x509.ParsePKCS8PrivateKey(k.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", k.ID, err)
		}
		priv, ok := parsed.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("signing key %s: not an ECDSA key", k.ID)
		}
		// A key may be retired, or start signing, at a future time: it is
		// published ahead so that every verifier knows it in time.
		retired := !k.RetiredAt.IsZero() && !now.Before(k.RetiredAt)
		if retired && now.Sub(k.RetiredAt) >= keepRetired {
			continue
		}
		jwk, err := publicJWK(&priv.PublicKey, k.ID)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", k.ID, err)
		}
		ks.public = append(ks.public, jwk)
		ks.byKid[k.ID] = &priv.PublicKey
		if !retired && !k.CreatedAt.After(now) && (ks.signer == nil || k.CreatedAt.After(signerCreated)) {
			ks.signer, ks.kid, signerCreated = priv, k.ID, k.CreatedAt
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

// PublicKey returns the verification key with the given id.
func (ks *KeySet) PublicKey(kid string) (*ecdsa.PublicKey, bool) {
	k, ok := ks.byKid[kid]
	return k, ok
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
