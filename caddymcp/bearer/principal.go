package bearer

// The principal: who a verified request acts for, carried in its context.

import (
	"context"
	"net/http"
	"slices"
	"time"
)

// Principal is who a verified access token speaks for.
type Principal struct {
	// Subject is the user id (sub).
	Subject string
	// ClientID is the client the token was issued to.
	ClientID string
	// Scopes are the granted scopes. The slice may be shared with other
	// principals of the same token: never modify it.
	Scopes []string
	// Scope is the granted scope as the token has it, space-separated.
	Scope string
	// Email is the user's email address if the token of an external
	// issuer carries a verified one (email_verified true, or an issuer
	// trusted with TrustEmail); empty otherwise. Local users' addresses
	// are looked up with Emails.
	Email string
	// Local is true for a token of the local authorization server (or a
	// legacy token): Subject is the id of a user in the local store.
	Local bool
	// Audience lists the resources the token is for.
	Audience []string
	// Issuer is the token's issuer.
	Issuer string
	// JTI is the token's id.
	JTI string
	// ExpiresAt is when the token expires.
	ExpiresAt time.Time
	// ResourceMetadata is the URL of the resource's metadata, for
	// challenges that handlers further down send (scope step-up).
	ResourceMetadata string
	// DPoPKey is the RFC 7638 thumbprint of the DPoP key the token is
	// bound to (its cnf.jkt, RFC 9449 §6.1), whose possession the request
	// proved; empty for a bearer token.
	DPoPKey string
}

// HasScope reports whether the principal holds a scope.
func (p *Principal) HasScope(scope string) bool { return slices.Contains(p.Scopes, scope) }

type principalKey struct{}

// WithPrincipal returns a context carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal a request was verified for.
func PrincipalFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}

// IsPreflight reports whether r is a CORS preflight request, which carries
// no credentials and must not be challenged.
func IsPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" &&
		r.Header.Get("Access-Control-Request-Method") != ""
}
