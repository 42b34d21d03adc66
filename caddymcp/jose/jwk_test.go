package jose

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustKey[K crypto.Signer](t *testing.T, k K, err error) K {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ecKey(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	return mustKey(t, k, err)
}

func rsaKey(t *testing.T, bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	return mustKey(t, k, err)
}

func edKey(t *testing.T) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	return mustKey(t, k, err)
}

func mustJWK(t *testing.T, pub crypto.PublicKey, alg, kid string) JWK {
	t.Helper()
	j, err := NewJWK(pub, alg, kid)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// TestJWKRoundTrip: every supported key encodes and parses back to the
// same key, with the algorithms its type allows.
func TestJWKRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		key  crypto.Signer
		algs []string
	}{
		{"P-256", ecKey(t, elliptic.P256()), []string{"ES256"}},
		{"P-384", ecKey(t, elliptic.P384()), []string{"ES384"}},
		{"P-521", ecKey(t, elliptic.P521()), []string{"ES512"}},
		{"RSA 2048", rsaKey(t, 2048), rsaAlgorithms},
		{"Ed25519", edKey(t), []string{"EdDSA"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := mustJWK(t, tt.key.Public(), "", "k1")
			raw, err := json.Marshal(j)
			if err != nil {
				t.Fatal(err)
			}
			back, pk, err := ParsePublicJWK(raw)
			if err != nil {
				t.Fatalf("ParsePublicJWK(%s) = %v", raw, err)
			}
			if back.Kid != "k1" || !PublicKeysEqual(pk.Key, tt.key.Public()) || !slices.Equal(pk.Algs, tt.algs) {
				t.Fatalf("parsed %+v with %v, want the same key with %v", back, pk.Algs, tt.algs)
			}
			if back.Thumbprint() != j.Thumbprint() || len(j.Thumbprint()) != 43 {
				t.Fatalf("thumbprint %q", j.Thumbprint())
			}
			for _, alg := range tt.algs {
				withAlg := mustJWK(t, tt.key.Public(), alg, "")
				if withAlg.Use != "sig" || withAlg.Alg != alg {
					t.Errorf("NewJWK(%s) = %+v", alg, withAlg)
				}
				if pk, err := ParseJWK(withAlg); err != nil || !slices.Equal(pk.Algs, []string{alg}) {
					t.Errorf("a key with alg %s allows %v (%v)", alg, pk.Algs, err)
				}
			}
		})
	}
}

// TestThumbprintRFC7638 checks the example of RFC 7638 §3.1.
func TestThumbprintRFC7638(t *testing.T) {
	j := JWK{Kty: "RSA", E: "AQAB", N: "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}
	if got := j.Thumbprint(); got != "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" {
		t.Fatalf("thumbprint = %s", got)
	}
}

// TestParseJWKRefuses: what is not a usable public signing key is
// refused, each for its reason.
func TestParseJWKRefuses(t *testing.T) {
	b64 := base64.RawURLEncoding.EncodeToString
	ec := mustJWK(t, ecKey(t, elliptic.P256()).Public(), "", "ec")
	rs := mustJWK(t, rsaKey(t, 2048).Public(), "", "rs")
	small := rsaKey(t, 1024)
	with := func(base JWK, f func(*JWK)) JWK { f(&base); return base }
	tests := []struct {
		name string
		key  JWK
	}{
		{"encryption key", with(ec, func(j *JWK) { j.Use = "enc" })},
		{"EC with RS256", with(ec, func(j *JWK) { j.Alg = "RS256" })},
		{"EC with HS256", with(ec, func(j *JWK) { j.Alg = "HS256" })},
		{"RSA with ES256", with(rs, func(j *JWK) { j.Alg = "ES256" })},
		{"RSA with none", with(rs, func(j *JWK) { j.Alg = "none" })},
		{"RSA 1024", with(rs, func(j *JWK) { j.N, j.E = b64(small.N.Bytes()), b64(big.NewInt(int64(small.E)).Bytes()) })},
		{"RSA even exponent", with(rs, func(j *JWK) { j.E = b64([]byte{2}) })},
		{"RSA exponent 1", with(rs, func(j *JWK) { j.E = b64([]byte{1}) })},
		{"RSA huge exponent", with(rs, func(j *JWK) { j.E = b64([]byte{1, 0, 0, 0, 1}) })},
		{"RSA modulus not base64url", with(rs, func(j *JWK) { j.N = "+/+/" })},
		{"EC point off the curve", with(ec, func(j *JWK) { j.Y = b64(make([]byte, 32)) })},
		{"EC short coordinate", with(ec, func(j *JWK) { j.X = b64(make([]byte, 31)) })},
		{"EC P-256 coordinates named P-384", with(ec, func(j *JWK) { j.Crv = "P-384" })},
		{"EC secp256k1", with(ec, func(j *JWK) { j.Crv = "secp256k1" })},
		{"OKP X25519", JWK{Kty: "OKP", Crv: "X25519", X: b64(make([]byte, 32))}},
		{"OKP short", JWK{Kty: "OKP", Crv: "Ed25519", X: b64(make([]byte, 31))}},
		{"symmetric", JWK{Kty: "oct"}},
		{"no kty", JWK{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if pk, err := ParseJWK(tt.key); !errors.Is(err, ErrUnusable) {
				t.Errorf("ParseJWK = %v, %v; want ErrUnusable", pk.Algs, err)
			}
		})
	}
}

// modulus is an odd number of exactly bits bits: ParseJWK judges an RSA
// key by its size and exponent, so no real key (slow to make at these
// sizes) is needed.
func modulus(bits int) string {
	n := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
	n.SetBit(n, 0, 1)
	return base64.RawURLEncoding.EncodeToString(n.Bytes())
}

// TestParseJWKRSALimits: RSA keys over MaxRSABits bits or with an
// exponent over MaxRSAExponent are refused wherever a JWK is accepted, so
// that no sender can make a signature as costly to verify as it likes.
func TestParseJWKRSALimits(t *testing.T) {
	b64 := base64.RawURLEncoding.EncodeToString
	exp := func(e int64) string { return b64(big.NewInt(e).Bytes()) }
	tests := []struct {
		name string
		n, e string
		ok   bool
		why  string
	}{
		{"2048 bits, e 65537", modulus(2048), exp(65537), true, ""},
		{"4096 bits, e 65537", modulus(4096), exp(65537), true, ""},
		{"4096 bits, e 3", modulus(4096), exp(3), true, ""},
		{"4096 bits with a leading zero byte", b64(append([]byte{0}, base64Decode(t, modulus(4096))...)), exp(65537), true, ""},
		{"4097 bits", modulus(4097), exp(65537), false, "more than 4096 bits"},
		{"8192 bits", modulus(8192), exp(65537), false, "more than 4096 bits"},
		{"19456 bits, e 2^31-1", modulus(19456), exp(1<<31 - 1), false, "more than 4096 bits"},
		{"e 65539", modulus(2048), exp(65539), false, "exponent over 65537"},
		{"e 2^31-1", modulus(2048), exp(1<<31 - 1), false, "exponent over 65537"},
		{"e 2^32-1", modulus(4096), exp(1<<32 - 1), false, "exponent over 65537"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pk, err := ParseJWK(JWK{Kty: "RSA", N: tt.n, E: tt.e})
			switch {
			case tt.ok && err != nil:
				t.Fatalf("refused: %v", err)
			case !tt.ok && !errors.Is(err, ErrUnusable):
				t.Fatalf("ParseJWK = %v, %v; want ErrUnusable", pk.Algs, err)
			case !tt.ok && !strings.Contains(err.Error(), tt.why):
				t.Fatalf("error %q, want it to say %q", err, tt.why)
			}
		})
	}
	// A client's JWK Set and a DPoP proof's jwk go through the same check.
	raw, _ := json.Marshal(JWK{Kty: "RSA", N: modulus(8192), E: exp(65537)})
	if _, _, err := ParsePublicJWK(raw); !errors.Is(err, ErrUnusable) {
		t.Errorf("ParsePublicJWK of an 8192-bit key: %v, want ErrUnusable", err)
	}
	// And no key outside the limits is ever published.
	large := &rsa.PublicKey{N: new(big.Int).SetBytes(base64Decode(t, modulus(4097))), E: 65537}
	if _, err := NewJWK(large, "", ""); err == nil {
		t.Error("NewJWK encoded a 4097-bit key")
	}
}

func base64Decode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParsePublicJWK: what a client sends must be a public key.
func TestParsePublicJWK(t *testing.T) {
	ec := mustJWK(t, ecKey(t, elliptic.P256()).Public(), "", "")
	raw, _ := json.Marshal(ec)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	for _, member := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
		m2 := map[string]any{member: "AAAA"}
		for k, v := range m {
			m2[k] = v
		}
		b, _ := json.Marshal(m2)
		if _, _, err := ParsePublicJWK(b); !errors.Is(err, ErrNotPublic) {
			t.Errorf("with %q: %v, want ErrNotPublic", member, err)
		}
	}
	for _, bad := range []string{`[]`, `null`, `"x"`, `{"kty":5}`, `{`} {
		if _, _, err := ParsePublicJWK([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", bad, err)
		}
	}
	if j, _, err := ParsePublicJWK([]byte(`{"kty":"oct","kid":"x"}`)); !errors.Is(err, ErrUnusable) || j.Kid != "x" {
		t.Errorf("symmetric key: %+v %v, want the decoded JWK and ErrUnusable", j, err)
	}
}

func selfSigned(t *testing.T, key crypto.Signer) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCertificate: x5c must hold the key's own certificate.
func TestCertificate(t *testing.T) {
	key, other := ecKey(t, elliptic.P256()), ecKey(t, elliptic.P256())
	cert := selfSigned(t, key)
	std := base64.StdEncoding.EncodeToString
	j := mustJWK(t, key.Public(), "", "")
	tests := []struct {
		name string
		x5c  []string
		pub  crypto.PublicKey
		ok   bool
	}{
		{"its own certificate", []string{std(cert.Raw)}, key.Public(), true},
		{"another key's certificate", []string{std(selfSigned(t, other).Raw)}, key.Public(), false},
		{"no x5c", nil, key.Public(), false},
		{"base64url instead of base64", []string{base64.RawURLEncoding.EncodeToString(cert.Raw)}, key.Public(), false},
		{"not a certificate", []string{std([]byte("hello"))}, key.Public(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jj := j
			jj.X5C = tt.x5c
			got, err := jj.Certificate()
			if tt.ok != (err == nil) || tt.ok && !got.Equal(cert) {
				t.Fatalf("Certificate() = %v, %v; want ok %v", got != nil, err, tt.ok)
			}
		})
	}
	if CertificateThumbprint(cert.Raw) == CertificateThumbprint(selfSigned(t, key).Raw) {
		t.Error("two certificates share a thumbprint")
	}
}

// TestNewJWKRefuses: keys and algorithms that could not be parsed back.
func TestNewJWKRefuses(t *testing.T) {
	tests := []struct {
		name string
		pub  crypto.PublicKey
		alg  string
	}{
		{"RSA 1024", rsaKey(t, 1024).Public(), ""},
		{"P-256 for ES384", ecKey(t, elliptic.P256()).Public(), "ES384"},
		{"P-384 for ES256", ecKey(t, elliptic.P384()).Public(), "ES256"},
		{"Ed25519 for ES256", edKey(t).Public(), "ES256"},
		{"RSA for HS256", rsaKey(t, 2048).Public(), "HS256"},
		{"a symmetric key", []byte("secret"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if j, err := NewJWK(tt.pub, tt.alg, ""); err == nil {
				t.Fatalf("NewJWK = %+v", j)
			}
		})
	}
}
