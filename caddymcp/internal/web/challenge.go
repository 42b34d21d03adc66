package web

import (
	"errors"
	"net/http"
	"strings"
)

// dpopScheme is the authentication scheme of DPoP-bound access tokens
// (RFC 9449 §7.1).
const dpopScheme = "DPoP"

// ErrNoToken means the request carried no bearer token.
var ErrNoToken = errors.New("no bearer token")

// maxTokenLen bounds an access token; larger headers are refused.
const maxTokenLen = 8 << 10

// BearerToken extracts the token of an "Authorization: Bearer" header
// (RFC 6750 §2.1). Tokens are never taken from the query string or the
// body. It returns ErrNoToken when there is no Authorization header or it
// uses another scheme, and another error when the header is malformed.
func BearerToken(r *http.Request) (string, error) {
	scheme, token, err := AccessToken(r)
	if scheme == dpopScheme {
		return "", ErrNoToken
	}
	return token, err
}

// AccessToken extracts the access token of an "Authorization: Bearer"
// (RFC 6750 §2.1) or "Authorization: DPoP" (RFC 9449 §7.1) header, with
// its scheme: "Bearer" or "DPoP". Tokens are never taken from the query
// string or the body. It returns ErrNoToken when there is no
// Authorization header or it uses another scheme, and another error (with
// the scheme, when it is known) when the header is malformed.
func AccessToken(r *http.Request) (scheme, token string, err error) {
	if scheme, token, err = AccessTokenHeader(r); err != nil {
		return scheme, "", err
	}
	if err := TokenSyntax(scheme, token); err != nil {
		return scheme, "", err
	}
	return scheme, token, nil
}

// AccessTokenHeader is AccessToken without the check of the token's
// syntax (TokenSyntax), for callers that check it later.
func AccessTokenHeader(r *http.Request) (scheme, token string, err error) {
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		return "", "", ErrNoToken
	}
	if len(values) > 1 {
		return "", "", errors.New("more than one Authorization header")
	}
	name, token, _ := strings.Cut(values[0], " ")
	switch {
	case strings.EqualFold(name, "Bearer"):
		scheme = "Bearer"
	case strings.EqualFold(name, dpopScheme):
		scheme = dpopScheme
	default:
		return "", "", ErrNoToken
	}
	token = strings.TrimLeft(token, " ")
	switch {
	case token == "":
		return scheme, "", errors.New("the " + scheme + " scheme needs a token")
	case len(token) > maxTokenLen:
		return scheme, "", errors.New(tokenWhat(scheme) + " is too long")
	}
	return scheme, token, nil
}

// TokenSyntax checks a token's characters: token68 of RFC 9110 §11.2, the
// same syntax for both schemes (RFC 6750 §2.1).
func TokenSyntax(scheme, token string) error {
	if !isB64Token(token) {
		return errors.New(tokenWhat(scheme) + " contains characters RFC 6750 does not allow")
	}
	return nil
}

// tokenWhat names the token of a scheme in error messages.
func tokenWhat(scheme string) string {
	if scheme == dpopScheme {
		return "the DPoP-bound access token"
	}
	return "the bearer token"
}

// isB64Token checks the b64token syntax of RFC 6750 §2.1:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		if !b64TokenChar[body[i]] {
			return false
		}
	}
	return true
}

// b64TokenChar marks the bytes isB64Token allows before the padding.
var b64TokenChar = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
	}
	return t
}()

// ChallengeParams are the auth-params of a WWW-Authenticate challenge
// (RFC 6750 §3, RFC 9728 §5.1). Empty values are left out.
type ChallengeParams struct {
	// ResourceMetadata is the URL of the protected resource metadata.
	ResourceMetadata string
	// Scope is the space-separated scope needed.
	Scope string
	// Error is the error code.
	Error string
	// Description is a human-readable explanation.
	Description string
	// Algs lists the algorithms accepted for DPoP proofs, space-separated
	// (the algs parameter of a DPoP challenge, RFC 9449 §7.1).
	Algs string
}

// Challenge builds a WWW-Authenticate challenge for scheme ("Bearer" or
// "DPoP").
// Values are quoted strings (RFC 9110 §11.2); characters a quoted string
// cannot hold (controls, non-ASCII) are dropped, and '"' and '\' are
// escaped.
func Challenge(scheme string, p ChallengeParams) string {
	var b strings.Builder
	b.WriteString(scheme)
	sep := " "
	add := func(name, value string) {
		if value == "" {
			return
		}
		b.WriteString(sep)
		b.WriteString(name)
		b.WriteString(`="`)
		b.WriteString(quote(value))
		b.WriteString(`"`)
		sep = ", "
	}
	add("resource_metadata", p.ResourceMetadata)
	add("scope", p.Scope)
	add("error", p.Error)
	add("error_description", p.Description)
	add("algs", p.Algs)
	return b.String()
}

func quote(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\t' || (c >= 0x20 && c < 0x7f):
			b.WriteByte(c)
		}
	}
	return b.String()
}
