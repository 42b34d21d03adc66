package oauth

import (
	"crypto"
	"errors"
	"fmt"
	"strings"
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
	// Email is the user's email address, when the issuer puts it in its
	// tokens (external issuers such as Keycloak do; caddymcp does not, so
	// that clients cannot read it from the token).
	Email string `json:"email,omitempty"`
	// Cnf binds the token to a key (RFC 7800): with a jkt member, to a
	// DPoP key (RFC 9449 §6.1); with x5t#S256, to a TLS client
	// certificate (RFC 8705 §3.1). nil for an unbound bearer token.
	Cnf *Confirmation `json:"cnf,omitempty"`
}

// Confirmation is the cnf claim of a sender-constrained token (RFC 7800
// §3.1). A token with both members is bound both ways and must satisfy
// both; a cnf with neither binds the token by a method caddymcp cannot
// check, and such a token is refused.
type Confirmation struct {
	// JKT is the base64url SHA-256 JWK thumbprint (RFC 7638) of the DPoP
	// key the token is bound to (RFC 9449 §6.1).
	JKT string `json:"jkt,omitempty"`
	// X5TS256 is the base64url SHA-256 thumbprint of the DER encoding of
	// the TLS client certificate the token is bound to (RFC 8705 §3.1):
	// it is accepted only over a connection with that certificate.
	X5TS256 string `json:"x5t#S256,omitempty"`
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
	var aud []string
	if o.Audience != "" {
		aud = []string{o.Audience}
	}
	claims := new(AccessClaims)
	err := parseJWT(raw, claims, jwtRules{issuer: o.Issuer, audiences: aud, now: o.Now, leeway: o.Leeway,
		key: func(kid, alg string) (crypto.PublicKey, error) {
			v, ok := ks.byKid[kid]
			if !ok {
				return nil, errors.New("unknown signing key")
			}
			// The key fixes the algorithm: a token naming another one
			// (say HS256 with the public key as secret) is refused.
			if alg != v.alg {
				return nil, errors.New("algorithm does not match the key")
			}
			return v.key, nil
		}})
	if err != nil {
		return nil, err
	}
	if claims.Subject == "" || claims.ClientID == "" || claims.ID == "" {
		return nil, fmt.Errorf("%w: missing sub, client_id or jti", ErrInvalidToken)
	}
	return claims, nil
}

// jwtRules say what a valid access token looks like to parseJWT.
type jwtRules struct {
	issuer    string
	audiences []string // any one of them; none: aud is not checked
	// anyType also accepts typ "JWT" or no typ, as identity providers
	// that predate RFC 9068 issue.
	anyType bool
	now     func() time.Time
	leeway  time.Duration
	// key returns the public key for a kid and the token's alg, or an
	// error when that pair is not acceptable.
	key func(kid, alg string) (crypto.PublicKey, error)
}

// asymmetricAlgorithms are the only algorithms a token may name: never
// "none", never HMAC (RFC 8725 §3.1).
var asymmetricAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// parseJWT verifies raw into claims under rules (RFC 9068 §4).
func parseJWT(raw string, claims jwt.Claims, rules jwtRules) error {
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(asymmetricAlgorithms),
		jwt.WithIssuer(rules.issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(rules.leeway),
		// One token, one encoding: no variants in the unused bits of
		// the last base64url character (RFC 7515 §2, RFC 4648 §3.5).
		jwt.WithStrictDecoding(),
	}
	if len(rules.audiences) > 0 {
		opts = append(opts, jwt.WithAudience(rules.audiences...))
	}
	if rules.now != nil {
		opts = append(opts, jwt.WithTimeFunc(rules.now))
	}
	_, err := jwt.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		typ, present := t.Header["typ"].(string)
		switch {
		case strings.EqualFold(typ, AccessTokenType) || strings.EqualFold(typ, "application/"+AccessTokenType):
		case rules.anyType && (!present || strings.EqualFold(typ, "JWT")):
		default:
			return nil, errors.New("not an access token (typ)")
		}
		kid, _ := t.Header["kid"].(string)
		return rules.key(kid, t.Method.Alg())
	}, opts...)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	return nil
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
