package jose

import (
	"crypto"
	"errors"
	"fmt"
	"slices"
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

// ErrInvalidToken wraps every reason a token is refused.
var ErrInvalidToken = errors.New("invalid token")

// Algorithms are the only algorithms a token may name: never "none",
// never HMAC (RFC 8725 §3.1).
var Algorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Type lists of Rules.Types.
var (
	// AccessTokenTypes are the typ values of an RFC 9068 access token
	// (§2.1; the media type form too, RFC 7515 §4.1.9).
	AccessTokenTypes = []string{AccessTokenType, "application/" + AccessTokenType}
	// LegacyAccessTokenTypes add "JWT" and no typ at all, as identity
	// providers that predate RFC 9068 issue.
	LegacyAccessTokenTypes = []string{AccessTokenType, "application/" + AccessTokenType, "JWT", ""}
)

// Rules say what a valid token looks like to Verify.
type Rules struct {
	// Issuers are the accepted iss values (at least one).
	Issuers []string
	// Audiences: the token's aud must name one of them. None: aud is not
	// checked.
	Audiences []string
	// Types are the accepted typ header values, compared without regard
	// to case; "" accepts a token without typ. nil accepts any typ.
	Types []string
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Leeway tolerates clock skew on exp, nbf and iat.
	Leeway time.Duration
	// Key returns the public key for a token's kid and alg, or an error
	// when that pair is not acceptable. It is called only for an alg of
	// Algorithms, so it never sees "none" or HMAC.
	Key func(kid, alg string) (crypto.PublicKey, error)
}

// Verify verifies raw into claims under rules (RFC 8725 §3, RFC 9068
// §4): an asymmetric algorithm the key allows, the signature, typ, iss,
// aud, and exp (required), nbf and iat (not in the future). Every error
// wraps ErrInvalidToken.
func Verify(raw string, claims jwt.Claims, rules Rules) error {
	if len(rules.Issuers) == 0 {
		return fmt.Errorf("%w: no issuer to check against", ErrInvalidToken)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(Algorithms),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(rules.Leeway),
		// One token, one encoding: no variants in the unused bits of
		// the last base64url character (RFC 7515 §2, RFC 4648 §3.5).
		jwt.WithStrictDecoding(),
	}
	if len(rules.Issuers) == 1 {
		opts = append(opts, jwt.WithIssuer(rules.Issuers[0]))
	}
	if len(rules.Audiences) > 0 {
		opts = append(opts, jwt.WithAudience(rules.Audiences...))
	}
	if rules.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(rules.Now))
	}
	_, err := jwt.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		if rules.Types != nil {
			typ, _ := t.Header["typ"].(string) // not a string: as if absent
			if !slices.ContainsFunc(rules.Types, func(want string) bool { return strings.EqualFold(typ, want) }) {
				return nil, errors.New("not an access token (typ)")
			}
		}
		kid, _ := t.Header["kid"].(string)
		return rules.Key(kid, t.Method.Alg())
	}, opts...)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if len(rules.Issuers) > 1 {
		iss, _ := claims.GetIssuer()
		if !slices.Contains(rules.Issuers, iss) {
			return fmt.Errorf("%w: %v", ErrInvalidToken, jwt.ErrTokenInvalidIssuer)
		}
	}
	return nil
}

// SigningMethod maps an algorithm of Algorithms to golang-jwt's method,
// or nil.
func SigningMethod(alg string) jwt.SigningMethod {
	if !slices.Contains(Algorithms, alg) {
		return nil
	}
	return jwt.GetSigningMethod(alg)
}
