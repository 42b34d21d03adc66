package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/jose"
	"github.com/golang-jwt/jwt/v5"
)

const testHTU = "https://mcp.example.com/oauth/token"

var testNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// testProof is a proof's header and claims, before signing.
type testProof struct {
	header, claims map[string]any
}

// newTestProof is a valid POST proof for testHTU at testNow, made with
// the key whose public JWK is jwk, in alg.
func newTestProof(alg string, jwk any) testProof {
	return testProof{
		header: map[string]any{"typ": ProofType, "alg": alg, "jwk": jwk},
		claims: map[string]any{"jti": "jti-1", "htm": "POST", "htu": testHTU, "iat": testNow.Unix()},
	}
}

// sign signs the proof with key.
func (p testProof) sign(t testing.TB, key crypto.Signer) string {
	t.Helper()
	alg, _ := p.header["alg"].(string)
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(alg), jwt.MapClaims(p.claims))
	tok.Header = p.header
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// withSignature encodes the proof with sig as its signature, whatever
// key it names.
func (p testProof) withSignature(t testing.TB, sig []byte) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(p.header) + "." + enc(p.claims) + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func testECKey(t testing.TB) (*ecdsa.PrivateKey, jose.JWK) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	j, err := jose.NewJWK(k.Public(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	return k, j
}

// oversizedRSA is the key of the review's finding: 19,456 bits with
// e = 2³¹−1, about 18 ms per verification, and a signature of its size
// that verifies with nothing.
func oversizedRSA() (jwk map[string]any, sig []byte) {
	const bits = 19456
	n := new(big.Int).Lsh(big.NewInt(1), bits-1)
	n.Add(n, big.NewInt(12345))
	e := big.NewInt(1<<31 - 1)
	b64 := base64.RawURLEncoding.EncodeToString
	sig = new(big.Int).Sub(n, big.NewInt(2)).Bytes()
	return map[string]any{"kty": "RSA", "n": b64(n.Bytes()), "e": b64(e.Bytes())}, sig
}

// TestCheckProofOversizedRSAKey: a proof whose RSA key is over the
// limits is refused for its key, before its signature is verified (the
// signature here verifies with nothing, so an answer about the key shows
// that no verification ran).
func TestCheckProofOversizedRSAKey(t *testing.T) {
	jwk, sig := oversizedRSA()
	proof := newTestProof("RS256", jwk).withSignature(t, sig)
	_, err := CheckProof([]string{proof}, "POST", testHTU, "", testNow)
	if err == nil || !strings.Contains(err.Error(), "jwk is not a usable") || !strings.Contains(err.Error(), "4096 bits") {
		t.Fatalf("CheckProof = %v, want the key refused for its size, before the signature", err)
	}

	// Within the limits, the same shape of proof reaches the signature.
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	j, _ := jose.NewJWK(k.Public(), "", "")
	p := newTestProof("RS256", j)
	if _, err := CheckProof([]string{p.sign(t, k)}, "POST", testHTU, "", testNow); err != nil {
		t.Fatalf("a 2048-bit RSA proof is refused: %v", err)
	}
	_, err = CheckProof([]string{p.withSignature(t, make([]byte, 256))}, "POST", testHTU, "", testNow)
	if err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("a bad signature with a usable key: %v, want the signature refused", err)
	}
}

// TestCheckProofClaimsBeforeSignature: a proof that is wrong in a claim
// is refused for that claim, before its signature is looked at: a proof
// with a bad signature and a wrong htm (or htu, iat, ath, jti) reports
// the claim.
func TestCheckProofClaimsBeforeSignature(t *testing.T) {
	key, jwk := testECKey(t)
	good := newTestProof("ES256", jwk)
	if _, err := CheckProof([]string{good.sign(t, key)}, "POST", testHTU, "", testNow); err != nil {
		t.Fatalf("a valid proof is refused: %v", err)
	}
	badSig := make([]byte, 64) // an ES256 signature of the right size that verifies nothing
	tests := []struct {
		name        string
		claim       string
		value       any
		accessToken string
		want        string
	}{
		{"htm", "htm", "GET", "", "htm"},
		{"htu", "htu", "https://other.example.com/oauth/token", "", "htu"},
		{"iat too old", "iat", testNow.Add(-time.Hour).Unix(), "", "too old"},
		{"iat in the future", "iat", testNow.Add(time.Hour).Unix(), "", "future"},
		{"no jti", "jti", nil, "", "lacks"},
		{"jti too long", "jti", strings.Repeat("j", maxJTILen+1), "", "jti is too long"},
		{"ath", "ath", "wrong", "an access token", "ath"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestProof("ES256", jwk)
			p.claims = map[string]any{}
			for k, v := range good.claims {
				p.claims[k] = v
			}
			if tt.value == nil {
				delete(p.claims, tt.claim)
			} else {
				p.claims[tt.claim] = tt.value
			}
			_, err := CheckProof([]string{p.withSignature(t, badSig)}, "POST", testHTU, tt.accessToken, testNow)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("CheckProof = %v, want the %s refused before the signature", err, tt.want)
			}
		})
	}
	// With the claims right, the bad signature is what is refused.
	_, err := CheckProof([]string{good.withSignature(t, badSig)}, "POST", testHTU, "", testNow)
	if err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("CheckProof = %v, want the signature refused", err)
	}
}

// BenchmarkCheckProof compares a valid ES256 proof, a valid 2048-bit and
// 4096-bit RSA proof, and the refusal of the 19,456-bit key with
// e = 2³¹−1 the review measured at ~18 ms per request; "oversized key,
// if verified" is what verifying that key's signature costs, which the
// refusal avoids.
func BenchmarkCheckProof(b *testing.B) {
	run := func(b *testing.B, proof string, wantOK bool) {
		b.Helper()
		b.ReportAllocs()
		for b.Loop() {
			_, err := CheckProof([]string{proof}, "POST", testHTU, "", testNow)
			if (err == nil) != wantOK {
				b.Fatal(err)
			}
		}
	}
	ec, ecJWK := testECKey(b)
	b.Run("ES256 valid", func(b *testing.B) { run(b, newTestProof("ES256", ecJWK).sign(b, ec), true) })
	for _, bits := range []int{2048, 4096} {
		b.Run(fmt.Sprintf("RS256 %d valid", bits), func(b *testing.B) {
			k, err := rsa.GenerateKey(rand.Reader, bits)
			if err != nil {
				b.Fatal(err)
			}
			j, _ := jose.NewJWK(k.Public(), "", "")
			run(b, newTestProof("RS256", j).sign(b, k), true)
		})
	}
	jwk, sig := oversizedRSA()
	b.Run("oversized key refused", func(b *testing.B) { run(b, newTestProof("RS256", jwk).withSignature(b, sig), false) })
	b.Run("oversized key, if verified", func(b *testing.B) {
		n, _ := base64.RawURLEncoding.DecodeString(jwk["n"].(string))
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 1<<31 - 1}
		digest := make([]byte, 32)
		for b.Loop() {
			_ = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest, sig)
		}
	})
}
