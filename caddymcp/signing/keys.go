// Package signing owns the authorization server's signing keys: making
// them (ES256, RS256, EdDSA), sealing them for storage, the immutable set
// that signs new access tokens and publishes the keys that still verify
// them (KeySet), and verifying our own tokens with it.
//
// It imports store and jose; never oauth, bearer or Caddy.
package signing

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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/jose"
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
	return &store.SigningKey{ID: jwk.Thumbprint(), Algorithm: alg, PrivateKey: der, CreatedAt: now}, nil
}

// publicJWK encodes a signing key's public half, refusing a key its
// algorithm cannot use (ES256 needs P-256, RS256 an RSA key of 2048 to
// 4096 bits, EdDSA Ed25519).
func publicJWK(pub crypto.PublicKey, alg, kid string) (jose.JWK, error) {
	if ec, ok := pub.(*ecdsa.PublicKey); ok && alg == AlgES256 && ec.Curve != elliptic.P256() {
		return jose.JWK{}, errors.New("signing key is not a P-256 key for ES256")
	}
	j, err := jose.NewJWK(pub, alg, kid)
	if err != nil {
		return jose.JWK{}, fmt.Errorf("signing key does not fit %s: %w", alg, err)
	}
	return j, nil
}

// KeySet holds the key that signs new tokens and the public keys that
// still verify tokens. It is immutable.
type KeySet struct {
	signer  crypto.Signer
	alg     string
	kid     string
	public  []jose.JWK
	verify  *jose.KeySet
	jwksDoc []byte
}

// NewKeySet builds a key set from stored keys: the newest unretired key
// signs; it and every key retired less than keepRetired ago are published
// for verification.
func NewKeySet(keys []store.SigningKey, now time.Time, keepRetired time.Duration) (*KeySet, error) {
	ks := &KeySet{verify: jose.NewKeySet()}
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
		ks.verify.Add(k.ID, jose.PublicKey{Key: priv.Public(), Algs: []string{k.Algorithm}})
		if !retired && !k.CreatedAt.After(now) && (ks.signer == nil || k.CreatedAt.After(signerCreated)) {
			ks.signer, ks.alg, ks.kid, signerCreated = priv, k.Algorithm, k.ID, k.CreatedAt
		}
	}
	if ks.signer == nil {
		return nil, errors.New("no active signing key")
	}
	doc, err := json.Marshal(jose.JWKS{Keys: ks.public})
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
	sealed, err := SealGCM(kekKey(secret), der, []byte(sealedKeyPrefix), random)
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
	der, err := OpenGCM(kekKey(secret), sealed, []byte(sealedKeyPrefix))
	if err != nil {
		return nil, errors.New("cannot decrypt the signing keys: wrong key-encryption secret")
	}
	return der, nil
}

func kekKey(secret string) []byte {
	sum := sha256.Sum256([]byte("caddymcp key encryption\x00" + secret))
	return sum[:]
}

// Signer returns the private key that signs new tokens, for code that
// signs other JWTs with it (tests forging tokens under the real key).
// It is never published.
func (ks *KeySet) Signer() crypto.Signer { return ks.signer }

// SigningKeyID returns the id of the key that signs new tokens.
func (ks *KeySet) SigningKeyID() string { return ks.kid }

// SigningAlgorithm returns the algorithm of the key that signs new tokens.
func (ks *KeySet) SigningAlgorithm() string { return ks.alg }

// PublicKey returns the verification key with the given id.
func (ks *KeySet) PublicKey(kid string) (crypto.PublicKey, bool) {
	k, ok := ks.verify.Get(kid)
	return k.Key, ok
}

// JWKSDocument returns the JSON of the published key set, encoded once.
func (ks *KeySet) JWKSDocument() []byte { return ks.jwksDoc }

// PublicKeys returns the published keys.
func (ks *KeySet) PublicKeys() []jose.JWK { return append([]jose.JWK(nil), ks.public...) }

// KeySource yields the current key set. Implementations cache it; the
// first call may have to load or create the keys.
type KeySource interface {
	KeySet(ctx context.Context) (*KeySet, error)
}
