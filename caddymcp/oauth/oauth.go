// Package oauth implements caddymcp's OAuth 2.1 authorization server on
// plain net/http: metadata (RFC 8414), dynamic client registration (RFC
// 7591, RFC 7592), client ID metadata documents, the authorization
// endpoint with PKCE and resource indicators, consent, the token,
// revocation and introspection endpoints, DPoP and mutual-TLS bound
// tokens, and the JWKS of its signing keys.
//
// It imports store, signing, jose, internal/dpop, internal/web and
// internal/page; never the resource server (bearer), tools or Caddy. Its
// API carries no stability promise outside this module.
package oauth

// Well-known paths.
const (
	// ASMetadataPath is where RFC 8414 metadata lives (plus the issuer's
	// path, if it has one).
	ASMetadataPath = "/.well-known/oauth-authorization-server"
)
