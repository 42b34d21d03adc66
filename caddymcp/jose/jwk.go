// Package jose is caddymcp's one implementation of the JSON Web Key and
// JSON Web Token rules every other package relies on: the JWK codec
// (RFC 7517, RFC 7518 §6, RFC 8037 §2, RFC 7638 thumbprints, x5c), the
// key sets published by remote servers (fetched on demand, refetched on
// an unknown kid at a bounded rate, kept while the server is down), and
// the verification policy of signed tokens (RFC 8725, RFC 9068 §4).
//
// It is used by the authorization server (its own keys, DPoP proofs,
// self-signed mutual-TLS clients), the resource server (local and
// external issuers' access tokens) and login (OpenID Connect ID tokens).
// It does no I/O of its own: whoever needs a remote key set passes the
// function that fetches it. It imports no other caddymcp package.
package jose

import (
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
	"math/big"
	"slices"
)

// Limits on RSA keys, wherever a JWK is accepted.
const (
	// MinRSABits is the smallest RSA modulus accepted anywhere (RFC 7518
	// §3.3 and §3.5 require 2048 bits or more).
	MinRSABits = 2048
	// MaxRSABits is the largest RSA modulus accepted anywhere. The cost
	// of verifying a signature grows with the modulus, and keys are
	// often the sender's choice (a DPoP proof's jwk, a client's JWK
	// Set): a 16,000-bit key would cost the server tens of times the
	// work of a 2048-bit one. 4096 bits is the largest size in common
	// use.
	MaxRSABits = 4096
	// MaxRSAExponent is the largest public exponent accepted anywhere:
	// 65537 (F4), the exponent of practically every RSA key. A larger
	// one makes each verification as costly as the sender wants.
	MaxRSAExponent = 65537
)

// JWK is a public JSON Web Key (RFC 7517 §4): EC (P-256, P-384, P-521),
// RSA or OKP Ed25519.
type JWK struct {
	// Kty is the key type: "EC", "RSA" or "OKP".
	Kty string `json:"kty"`
	// Crv is the curve of EC and OKP keys: "P-256", "P-384", "P-521" or
	// "Ed25519".
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
	// Use is the intended use; only "sig" (or none) verifies signatures.
	Use string `json:"use,omitempty"`
	// Alg is the one algorithm the key may be used with, when given.
	Alg string `json:"alg,omitempty"`
	// X5C is the key's certificate chain, each certificate standard
	// base64 (not base64url) DER, the key's own first (RFC 7517 §4.7).
	X5C []string `json:"x5c,omitempty"`
}

// JWKS is a JSON Web Key Set (RFC 7517 §5).
type JWKS struct {
	// Keys are the public keys.
	Keys []JWK `json:"keys"`
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of the key: the hash of
// its required members in lexicographic order with no whitespace.
func (k JWK) Thumbprint() string {
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

// Algorithm families by key type (RFC 7518 §3.1, RFC 8037 §3.1). HMAC
// and "none" have no public key and so never appear.
var (
	rsaAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	ecCurves      = map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}
	ecAlgorithms  = map[string]string{"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
)

// PublicKey is a verification key and the algorithms it may verify.
type PublicKey struct {
	// Key is an *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey.
	Key crypto.PublicKey
	// Algs are the algorithms the key may verify: its JWK's alg when it
	// names one, else every algorithm of its key type.
	Algs []string
}

// Allows reports whether the key may verify a signature in alg. The key
// fixes the algorithm: a token naming another one (say HS256 with the
// public key as the secret) is refused.
func (k PublicKey) Allows(alg string) bool { return slices.Contains(k.Algs, alg) }

// Errors of ParseJWK and ParsePublicJWK, for callers that word their
// own messages.
var (
	// ErrNotPublic: the key holds private or symmetric key material.
	ErrNotPublic = errors.New("the key holds private or symmetric key material")
	// ErrMalformed: the JSON is not a JWK.
	ErrMalformed = errors.New("the key is malformed")
	// ErrUnusable: not a signing key this package accepts (another use,
	// a symmetric or unknown key type, an RSA key of fewer than
	// MinRSABits or more than MaxRSABits bits or with an exponent other
	// than an odd one from 3 to MaxRSAExponent, a point off its curve,
	// an alg its type cannot have).
	ErrUnusable = errors.New("not a usable EC, RSA or Ed25519 public signing key")
)

// ParseJWK turns a published signing key into a public key and the
// algorithms it may verify. Keys for encryption, symmetric keys, RSA keys
// under MinRSABits or over MaxRSABits or with an exponent that is even,
// under 3 or over MaxRSAExponent, EC points off their curve and an alg
// the key type cannot have are refused with ErrUnusable. The limits are
// checked on the lengths first, so that an oversized key costs no more
// than its decoding.
func ParseJWK(j JWK) (PublicKey, error) {
	if j.Use != "" && j.Use != "sig" {
		return PublicKey{}, fmt.Errorf("%w: use %q", ErrUnusable, j.Use)
	}
	dec := base64.RawURLEncoding.DecodeString
	var pk PublicKey
	switch j.Kty {
	case "RSA":
		// Each base64url character is 6 bits: a modulus written in
		// more characters than MaxRSABits needs (leading zero bytes
		// included) is refused before it is decoded.
		if len(j.N) > (MaxRSABits/8+1)*4/3+1 {
			return PublicKey{}, fmt.Errorf("%w: RSA key of more than %d bits", ErrUnusable, MaxRSABits)
		}
		n, err1 := dec(j.N)
		e, err2 := dec(j.E)
		if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 {
			return PublicKey{}, fmt.Errorf("%w: malformed RSA key", ErrUnusable)
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		switch bits := pub.N.BitLen(); {
		case bits < MinRSABits:
			return PublicKey{}, fmt.Errorf("%w: RSA key of fewer than %d bits", ErrUnusable, MinRSABits)
		case bits > MaxRSABits:
			return PublicKey{}, fmt.Errorf("%w: RSA key of more than %d bits", ErrUnusable, MaxRSABits)
		case pub.E < 3 || pub.E%2 == 0:
			return PublicKey{}, fmt.Errorf("%w: weak RSA exponent", ErrUnusable)
		case pub.E > MaxRSAExponent:
			return PublicKey{}, fmt.Errorf("%w: RSA exponent over %d", ErrUnusable, MaxRSAExponent)
		}
		pk = PublicKey{Key: pub, Algs: rsaAlgorithms}
	case "EC":
		curve, ok := ecCurves[j.Crv]
		if !ok {
			return PublicKey{}, fmt.Errorf("%w: curve %q", ErrUnusable, j.Crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		x, err1 := dec(j.X)
		y, err2 := dec(j.Y)
		if err1 != nil || err2 != nil || len(x) != size || len(y) != size {
			return PublicKey{}, fmt.Errorf("%w: malformed EC key", ErrUnusable)
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
		if err != nil {
			return PublicKey{}, fmt.Errorf("%w: EC point off its curve", ErrUnusable)
		}
		pk = PublicKey{Key: pub, Algs: []string{ecAlgorithms[j.Crv]}}
	case "OKP":
		x, err := dec(j.X)
		if j.Crv != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
			return PublicKey{}, fmt.Errorf("%w: not an Ed25519 key", ErrUnusable)
		}
		pk = PublicKey{Key: ed25519.PublicKey(x), Algs: []string{"EdDSA"}}
	default:
		return PublicKey{}, fmt.Errorf("%w: key type %q", ErrUnusable, j.Kty)
	}
	if j.Alg != "" {
		if !pk.Allows(j.Alg) {
			return PublicKey{}, fmt.Errorf("%w: alg %q for a %s key", ErrUnusable, j.Alg, j.Kty)
		}
		pk.Algs = []string{j.Alg}
	}
	return pk, nil
}

// privateMembers are the JWK members that hold private or symmetric key
// material (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// ParsePublicJWK decodes a JWK that a client sent (a DPoP proof's jwk
// header, a client's registered JWK Set): it must be a JSON object with
// no private or symmetric members (ErrNotPublic), decode as a JWK
// (ErrMalformed) and be a usable signing key (ErrUnusable; the decoded
// JWK is still returned with that error).
func ParsePublicJWK(raw []byte) (JWK, PublicKey, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil || members == nil {
		return JWK{}, PublicKey{}, ErrMalformed
	}
	for _, name := range privateMembers {
		if _, ok := members[name]; ok {
			return JWK{}, PublicKey{}, ErrNotPublic
		}
	}
	var j JWK
	if err := json.Unmarshal(raw, &j); err != nil {
		return JWK{}, PublicKey{}, ErrMalformed
	}
	pk, err := ParseJWK(j)
	if err != nil {
		return j, PublicKey{}, err
	}
	return j, pk, nil
}

// NewJWK encodes a public key as a JWK with the given alg and kid (either
// may be empty; use is "sig" when alg is given). It refuses keys this
// package would not parse back, and an alg the key cannot have.
func NewJWK(pub crypto.PublicKey, alg, kid string) (JWK, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	var j JWK
	switch key := pub.(type) {
	case *ecdsa.PublicKey:
		crv := ""
		for name, c := range ecCurves {
			if key.Curve == c {
				crv = name
			}
		}
		raw, err := key.Bytes() // 0x04 || X || Y
		if crv == "" || err != nil {
			return JWK{}, errors.New("EC key on an unsupported curve")
		}
		size := (len(raw) - 1) / 2
		j = JWK{Kty: "EC", Crv: crv, X: b64(raw[1 : 1+size]), Y: b64(raw[1+size:])}
	case *rsa.PublicKey:
		if bits := key.N.BitLen(); bits < MinRSABits || bits > MaxRSABits || key.E > MaxRSAExponent {
			return JWK{}, fmt.Errorf("RSA key outside %d to %d bits or with an exponent over %d", MinRSABits, MaxRSABits, MaxRSAExponent)
		}
		j = JWK{Kty: "RSA", N: b64(key.N.Bytes()), E: b64(big.NewInt(int64(key.E)).Bytes())}
	case ed25519.PublicKey:
		j = JWK{Kty: "OKP", Crv: "Ed25519", X: b64(key)}
	default:
		return JWK{}, errors.New("not an EC, RSA or Ed25519 key")
	}
	if alg != "" {
		pk, err := ParseJWK(j)
		if err != nil || !pk.Allows(alg) {
			return JWK{}, fmt.Errorf("a %s key cannot sign %s", j.Kty, alg)
		}
		j.Alg, j.Use = alg, "sig"
	}
	j.Kid = kid
	return j, nil
}

// Certificate returns the first certificate of the key's x5c and checks
// that it holds the key's own public key.
func (k JWK) Certificate() (*x509.Certificate, error) {
	if len(k.X5C) == 0 {
		return nil, errors.New("no x5c certificate")
	}
	der, err := base64.StdEncoding.DecodeString(k.X5C[0])
	if err != nil {
		return nil, errors.New("x5c is not base64")
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, errors.New("x5c is not an X.509 certificate")
	}
	pk, err := ParseJWK(JWK{Kty: k.Kty, Crv: k.Crv, X: k.X, Y: k.Y, N: k.N, E: k.E})
	if err != nil {
		return nil, err
	}
	if !PublicKeysEqual(pk.Key, cert.PublicKey) {
		return nil, errors.New("the key differs from the public key of its x5c certificate")
	}
	return cert, nil
}

// PublicKeysEqual reports whether two public keys are the same key.
func PublicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if e, ok := a.(equaler); ok {
		return e.Equal(b)
	}
	return false
}

// CertificateThumbprint is the x5t#S256 of a certificate: the base64url
// SHA-256 of its DER encoding (RFC 8705 §3.1).
func CertificateThumbprint(der []byte) string {
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
