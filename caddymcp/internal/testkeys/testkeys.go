// Package testkeys gives the tests of the authorization server, the
// resource server and the login the same signing keys and token claims: a
// fixed clock, a key source over a fixed key set, claims that a co-located
// resource accepts, test keys and their JWKs, and a JSON response decoder.
package testkeys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddymcp/caddymcp/caddymcp/jose"
	"github.com/caddymcp/caddymcp/caddymcp/signing"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// T0 is the tests' fixed "now".
var T0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Static is a key source that always yields the same set, or error.
type Static struct {
	// KS is the key set returned.
	KS *signing.KeySet
	// Err is the error returned.
	Err error
}

// KeySet returns s.KS, s.Err.
func (s Static) KeySet(context.Context) (*signing.KeySet, error) { return s.KS, s.Err }

// NewKeySet builds a key set at T0 from keys, or from one new ES256 key.
func NewKeySet(t testing.TB, keys ...store.SigningKey) *signing.KeySet {
	t.Helper()
	return NewKeySetAt(t, T0, keys...)
}

// NewKeySetAt builds a key set at now from keys, or from one ES256 key
// created at now; retired keys stay published for an hour.
func NewKeySetAt(t testing.TB, now time.Time, keys ...store.SigningKey) *signing.KeySet {
	t.Helper()
	if len(keys) == 0 {
		k, err := signing.GenerateSigningKey(rand.Reader, now)
		if err != nil {
			t.Fatal(err)
		}
		keys = []store.SigningKey{*k}
	}
	ks, err := signing.NewKeySet(keys, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// SignToken signs claims as an access token (typ at+jwt, naming kid) with
// method and key, whichever key kid names: tests forge with it the tokens
// a verifier must refuse. edit, if given, changes the header before it is
// signed.
func SignToken(t testing.TB, method jwt.SigningMethod, kid string, claims jwt.Claims, key any, edit ...func(header map[string]any)) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["typ"], tok.Header["kid"] = "at+jwt", kid
	for _, e := range edit {
		e(tok.Header)
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// ValidClaims are the claims of a token the resource
// https://mcp.example.com/mcp accepts at T0 from issuer
// https://mcp.example.com.
func ValidClaims() *jose.AccessClaims {
	return &jose.AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{Issuer: "https://mcp.example.com", Subject: "u1",
			Audience: jwt.ClaimStrings{"https://mcp.example.com/mcp"}, IssuedAt: jwt.NewNumericDate(T0),
			ExpiresAt: jwt.NewNumericDate(T0.Add(time.Hour)), ID: "jti-1"},
		ClientID: "c1", Scope: "booking:read product:read",
	}
}

// Tamper widens the scope in a token's payload without re-signing it: a
// forged token whose signature no longer matches.
func Tamper(tok string) string {
	parts := strings.Split(tok, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	payload = []byte(strings.Replace(string(payload), `"booking:read`, `"booking:write booking:read`, 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}

// JWKOf is the public JWK of pub as a JSON object, with kid (omitted
// when empty) and alg (likewise).
func JWKOf(t *testing.T, pub crypto.PublicKey, kid, alg string) map[string]string {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	m := map[string]string{"kid": kid, "use": "sig"}
	if alg != "" {
		m["alg"] = alg
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", b64(k.N.Bytes()), b64(big.NewInt(int64(k.E)).Bytes())
	case *ecdsa.PublicKey:
		raw, _ := k.Bytes()
		size := (len(raw) - 1) / 2
		m["kty"], m["crv"], m["x"], m["y"] = "EC", k.Curve.Params().Name, b64(raw[1:1+size]), b64(raw[1+size:])
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", b64(k)
	default:
		t.Fatalf("unsupported key %T", pub)
	}
	if kid == "" {
		delete(m, "kid")
	}
	return m
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

// RSAKey is generated once: RSA generation is slow under -race.
func RSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	rsaOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return rsaKey
}

// ECKey makes a new key on curve c.
func ECKey(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// SignerFor makes a key that signs in the JWS algorithm alg: a new EC or
// Ed25519 key, or the shared RSA key of RSAKey for the RS and PS
// algorithms.
func SignerFor(t *testing.T, alg string) crypto.Signer {
	t.Helper()
	switch alg {
	case "ES256":
		return ECKey(t, elliptic.P256())
	case "ES384":
		return ECKey(t, elliptic.P384())
	case "ES512":
		return ECKey(t, elliptic.P521())
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return RSAKey(t)
	case "EdDSA":
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return priv
	}
	t.Fatalf("no key for %s", alg)
	return nil
}

// DecodeJSON decodes a JSON object response, failing the test unless its
// Content-Type is application/json.
func DecodeJSON(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, body %s", ct, w.Body)
	}
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	return m
}
