package oauth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// AccessTokenType is the JWT "typ" of access tokens (RFC 9068 §2.1).
const AccessTokenType = "at+jwt"

// AccessClaims are the claims of an access token (RFC 9068 §2.2).
type AccessClaims struct {
	jwt.RegisteredClaims
	// ClientID is the client the token was issued to.
	ClientID string `json:"client_id"`
	// Scope is the space-separated granted scope.
	Scope string `json:"scope,omitempty"`
}

// Sign signs an access token with the key set's signing key.
func (ks *KeySet) Sign(c *AccessClaims) (string, error) {
	tok := jwt.NewWithClaims(signingMethod(ks.alg), c)
	tok.Header["typ"] = AccessTokenType
	tok.Header["kid"] = ks.kid
	s, err := tok.SignedString(ks.signer)
	if err != nil {
		return "", fmt.Errorf("signing access token: %w", err)
	}
	return s, nil
}

// ErrInvalidToken wraps every reason a token is refused.
var ErrInvalidToken = errors.New("invalid token")

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
func (ks *KeySet) Verify(raw string, o VerifyOptions) (*AccessClaims, error) {
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(Algorithms),
		jwt.WithIssuer(o.Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(o.Leeway),
	}
	if o.Audience != "" {
		opts = append(opts, jwt.WithAudience(o.Audience))
	}
	if o.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(o.Now))
	}
	claims := new(AccessClaims)
	_, err := jwt.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); typ != AccessTokenType && typ != "application/"+AccessTokenType {
			return nil, errors.New("not an access token (typ)")
		}
		kid, _ := t.Header["kid"].(string)
		v, ok := ks.byKid[kid]
		if !ok {
			return nil, errors.New("unknown signing key")
		}
		// The key fixes the algorithm: a token naming another one (say
		// HS256 with the public key as secret) is refused.
		if t.Method.Alg() != v.alg {
			return nil, errors.New("algorithm does not match the key")
		}
		return v.key, nil
	}, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if claims.Subject == "" || claims.ClientID == "" || claims.ID == "" {
		return nil, fmt.Errorf("%w: missing sub, client_id or jti", ErrInvalidToken)
	}
	return claims, nil
}

// signingMethod maps an algorithm name to golang-jwt's method.
func signingMethod(alg string) jwt.SigningMethod {
	switch alg {
	case AlgRS256:
		return jwt.SigningMethodRS256
	case AlgEdDSA:
		return jwt.SigningMethodEdDSA
	}
	return jwt.SigningMethodES256
}
