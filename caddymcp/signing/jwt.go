package signing

import (
	"crypto"
	"fmt"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/jose"
	"github.com/golang-jwt/jwt/v5"
)

// Sign signs an access token with the key set's signing key.
func (ks *KeySet) Sign(c *jose.AccessClaims) (string, error) {
	tok := jwt.NewWithClaims(signingMethod(ks.alg), c)
	tok.Header["typ"] = jose.AccessTokenType
	tok.Header["kid"] = ks.kid
	s, err := tok.SignedString(ks.signer)
	if err != nil {
		return "", fmt.Errorf("signing access token: %w", err)
	}
	return s, nil
}

// VerifyOptions say what a valid access token looks like.
type VerifyOptions struct {
	// Issuer is the exact expected iss.
	Issuer string
	// Audience, when set, must be among the token's aud.
	Audience string
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Leeway tolerates clock skew on exp, nbf and iat.
	Leeway time.Duration
}

// Verify checks an access token's signature (with the key of this set
// its kid names, in that key's algorithm), its typ, and its iss, aud,
// exp, nbf and iat claims.
func (ks *KeySet) Verify(raw string, o VerifyOptions) (*jose.AccessClaims, error) {
	var aud []string
	if o.Audience != "" {
		aud = []string{o.Audience}
	}
	claims := new(jose.AccessClaims)
	err := jose.Verify(raw, claims, jose.Rules{Issuers: []string{o.Issuer}, Audiences: aud, Types: jose.AccessTokenTypes,
		Now: o.Now, Leeway: o.Leeway,
		Key: func(kid, alg string) (crypto.PublicKey, error) {
			// The key fixes the algorithm: a token naming another one
			// (say HS256 with the public key as secret) is refused.
			if kid == "" {
				return nil, jose.ErrUnknownKey
			}
			k, err := ks.verify.Lookup(kid, alg)
			return k.Key, err
		}})
	if err != nil {
		return nil, err
	}
	if claims.Subject == "" || claims.ClientID == "" || claims.ID == "" {
		return nil, fmt.Errorf("%w: missing sub, client_id or jti", jose.ErrInvalidToken)
	}
	return claims, nil
}

// signingMethod maps a signing algorithm to golang-jwt's method.
func signingMethod(alg string) jwt.SigningMethod { return jose.SigningMethod(alg) }
