package jose

import (
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestVerify walks the policy's rules, one refusal per rule.
func TestVerify(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	ec := ecKey(t, elliptic.P256())
	rs := rsaKey(t, 2048)
	ed := edKey(t)
	keys := NewKeySet()
	for kid, pub := range map[string]crypto.PublicKey{"ec": ec.Public(), "rs": rs.Public(), "ed": ed.Public()} {
		pk, err := ParseJWK(mustJWK(t, pub, "", kid))
		if err != nil {
			t.Fatal(err)
		}
		keys.Add(kid, pk)
	}
	rules := Rules{
		Issuers: []string{"https://as.example"}, Audiences: []string{"https://rs.example/mcp"},
		Types: AccessTokenTypes, Now: func() time.Time { return now }, Leeway: 5 * time.Second,
		Key: func(kid, alg string) (crypto.PublicKey, error) {
			k, err := keys.Lookup(kid, alg)
			return k.Key, err
		},
	}
	claims := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": "https://as.example", "aud": "https://rs.example/mcp", "sub": "u1",
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	}
	sign := func(method jwt.SigningMethod, kid, typ string, key any, c jwt.MapClaims) string {
		tok := jwt.NewWithClaims(method, c)
		tok.Header["kid"] = kid
		if typ == "-" {
			delete(tok.Header, "typ")
		} else {
			tok.Header["typ"] = typ
		}
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	with := func(f func(jwt.MapClaims)) jwt.MapClaims { c := claims(); f(c); return c }
	pubDER, _ := x509.MarshalPKIXPublicKey(rs.Public())
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	good := sign(jwt.SigningMethodES256, "ec", "at+jwt", ec, claims())
	// The last base64url character of a 64-byte ES256 signature carries
	// 2 bits and 4 unused ones: a token differing only in those is
	// another encoding of the same bytes.
	alt := strings.IndexByte("AQgw", good[len(good)-1])
	if alt < 0 {
		t.Fatalf("the signature's last character %q has unused bits set", good[len(good)-1])
	}
	malleable := good[:len(good)-1] + string("BRhx"[alt])
	tests := []struct {
		name  string
		token string
		rules func(*Rules)
		why   string // "" when valid
	}{
		{"ES256", good, nil, ""},
		{"RS256", sign(jwt.SigningMethodRS256, "rs", "at+jwt", rs, claims()), nil, ""},
		{"PS384", sign(jwt.SigningMethodPS384, "rs", "at+jwt", rs, claims()), nil, ""},
		{"EdDSA", sign(jwt.SigningMethodEdDSA, "ed", "application/AT+JWT", ed, claims()), nil, ""},
		{"expired within leeway", sign(jwt.SigningMethodES256, "ec", "at+jwt", ec, with(func(c jwt.MapClaims) { c["exp"] = now.Add(-4 * time.Second).Unix() })), nil, ""},
		{"alg none", none, nil, "signing method none is invalid"},
		{"HS256 with the public key", sign(jwt.SigningMethodHS256, "rs", "at+jwt", pubDER, claims()), nil, "signing method HS256 is invalid"},
		{"RS256 header on the EC key", sign(jwt.SigningMethodRS256, "ec", "at+jwt", rs, claims()), nil, "algorithm does not match the key"},
		{"unknown kid", sign(jwt.SigningMethodES256, "nope", "at+jwt", ec, claims()), nil, "unknown signing key"},
		{"signed by another key", sign(jwt.SigningMethodES256, "ec", "at+jwt", ecKey(t, elliptic.P256()), claims()), nil, "verification error"},
		{"typ JWT", sign(jwt.SigningMethodES256, "ec", "JWT", ec, claims()), nil, "typ"},
		{"no typ", sign(jwt.SigningMethodES256, "ec", "-", ec, claims()), nil, "typ"},
		{"typ JWT, legacy types", sign(jwt.SigningMethodES256, "ec", "JWT", ec, claims()), func(r *Rules) { r.Types = LegacyAccessTokenTypes }, ""},
		{"no typ, legacy types", sign(jwt.SigningMethodES256, "ec", "-", ec, claims()), func(r *Rules) { r.Types = LegacyAccessTokenTypes }, ""},
		{"typ dpop+jwt, legacy types", sign(jwt.SigningMethodES256, "ec", "dpop+jwt", ec, claims()), func(r *Rules) { r.Types = LegacyAccessTokenTypes }, "typ"},
		{"any typ", sign(jwt.SigningMethodES256, "ec", "dpop+jwt", ec, claims()), func(r *Rules) { r.Types = nil }, ""},
		{"wrong iss", sign(jwt.SigningMethodES256, "ec", "at+jwt", ec, with(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })), nil, "invalid issuer"},
		{"second of two issuers", sign(jwt.SigningMethodES256, "ec", "at+jwt", ec, with(func(c jwt.MapClaims) { c["iss"] = "as.example" })), func(r *Rules) { r.Issuers = []string{"https://as.example", "as.example"} }, ""},
		{"none of two issuers", sign(jwt.SigningMethodES256, "ec", "at+jwt", ec, with(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })), func(r *Rules) { r.Issuers = []string{"https://as.example", "as.example"} }, "invalid issuer"},
		{"no issuer configured", good, func(r *Rules) { r.Issuers = nil }, "no issuer"},
		{"wrong aud", sign(jwt.SigningMethodES256, "ec", "at+jwt", ec, with(func(c jwt.MapClaims) { c["aud"] = "https://other.example" })), nil, "invalid audience"},
		{"aud not checked", sign(jwt.SigningMethodES256, "ec", "at+jwt", ec, with(func(c jwt.MapClaims) { c["aud"] = "https://other.example" })), func(r *Rules) { r.Audiences = nil }, ""},
		{"expired", sign(jwt.SigningMethodES256, "ec", "at+jwt", ec, with(func(c jwt.MapClaims) { c["exp"] = now.Add(-6 * time.Second).Unix() })), nil, "token is expired"},
		{"no exp", sign(jwt.SigningMethodES256, "ec", "at+jwt", ec, with(func(c jwt.MapClaims) { delete(c, "exp") })), nil, "exp claim is required"},
		{"nbf in the future", sign(jwt.SigningMethodES256, "ec", "at+jwt", ec, with(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Minute).Unix() })), nil, "token is not valid yet"},
		{"iat in the future", sign(jwt.SigningMethodES256, "ec", "at+jwt", ec, with(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Minute).Unix() })), nil, "used before issued"},
		{"not a JWT", "a.b.c", nil, "malformed"},
		{"padded base64", good[:strings.IndexByte(good, '.')] + "=" + good[strings.IndexByte(good, '.'):], nil, "malformed"},
		{"non-canonical base64url", malleable, nil, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rules
			if tt.rules != nil {
				tt.rules(&r)
			}
			var c jwt.RegisteredClaims
			err := Verify(tt.token, &c, r)
			if tt.why == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("Verify = %v, want ErrInvalidToken saying %q", err, tt.why)
			}
		})
	}
}

// TestSigningMethod maps exactly the accepted algorithms.
func TestSigningMethod(t *testing.T) {
	for _, alg := range Algorithms {
		if m := SigningMethod(alg); m == nil || m.Alg() != alg {
			t.Errorf("SigningMethod(%s) = %v", alg, m)
		}
	}
	for _, alg := range []string{"none", "HS256", "", "es256"} {
		if m := SigningMethod(alg); m != nil {
			t.Errorf("SigningMethod(%q) = %v", alg, m.Alg())
		}
	}
}
