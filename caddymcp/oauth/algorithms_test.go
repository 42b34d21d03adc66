package oauth_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testkeys"
	"github.com/caddymcp/caddymcp/caddymcp/signing"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// TestAlgorithms signs and verifies with each selectable algorithm, and
// checks the published key and its RFC 7638 thumbprint.
func TestAlgorithms(t *testing.T) {
	for _, tt := range []struct {
		alg, kty string
		members  []string // the RFC 7638 required members
	}{
		{signing.AlgES256, "EC", []string{"crv", "kty", "x", "y"}},
		{signing.AlgRS256, "RSA", []string{"e", "kty", "n"}},
		{signing.AlgEdDSA, "OKP", []string{"crv", "kty", "x"}},
	} {
		t.Run(tt.alg, func(t *testing.T) {
			k, err := signing.GenerateKey(tt.alg, rand.Reader, t0)
			if err != nil {
				t.Fatal(err)
			}
			ks, err := signing.NewKeySet([]store.SigningKey{*k}, t0, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if ks.SigningAlgorithm() != tt.alg {
				t.Errorf("SigningAlgorithm = %s", ks.SigningAlgorithm())
			}
			jwks := ks.PublicKeys()
			raw, _ := json.Marshal(jwks[0])
			var m map[string]string
			_ = json.Unmarshal(raw, &m)
			if m["kty"] != tt.kty || m["alg"] != tt.alg || m["kid"] != k.ID || m["d"] != "" || m["p"] != "" {
				t.Fatalf("JWK %s", raw)
			}
			canon := map[string]string{}
			for _, name := range tt.members {
				canon[name] = m[name]
			}
			c, _ := json.Marshal(canon) // encoding/json sorts map keys
			sum := sha256.Sum256(c)
			if k.ID != base64.RawURLEncoding.EncodeToString(sum[:]) {
				t.Errorf("kid %s is not the RFC 7638 thumbprint", k.ID)
			}
			tok, err := ks.Sign(testkeys.ValidClaims())
			if err != nil {
				t.Fatal(err)
			}
			header, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
			if !strings.Contains(string(header), `"alg":"`+tt.alg+`"`) {
				t.Errorf("header %s", header)
			}
			if _, err := ks.Verify(tok, signing.VerifyOptions{Issuer: "https://mcp.example.com", Now: func() time.Time { return t0 }}); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
	if _, err := signing.GenerateKey("HS256", rand.Reader, t0); err == nil {
		t.Error("HS256 keys can be generated")
	}
}

// TestAlgorithmFixedByKey: a token whose header names another algorithm
// than its key's is refused, even when its signature is valid for that
// algorithm.
func TestAlgorithmFixedByKey(t *testing.T) {
	rsaKey, _ := signing.GenerateKey(signing.AlgRS256, rand.Reader, t0)
	ecKey, _ := signing.GenerateKey(signing.AlgES256, rand.Reader, t0.Add(-time.Minute))
	ks, err := signing.NewKeySet([]store.SigningKey{*rsaKey, *ecKey}, t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ecOnly, _ := signing.NewKeySet([]store.SigningKey{*ecKey}, t0, time.Hour)
	// An ES256 token signed by the EC key but naming the RSA key's kid.
	s := testkeys.SignToken(t, jwt.SigningMethodES256, rsaKey.ID, testkeys.ValidClaims(), ecOnly.Signer())
	if _, err := ks.Verify(s, signing.VerifyOptions{Issuer: "https://mcp.example.com", Now: func() time.Time { return t0 }}); err == nil {
		t.Fatal("a token naming another key's kid with its own algorithm verified")
	}
}
