package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddymcp/caddymcp/caddymcp/internal/web"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// staticClient turns a configured client into a client record.
func staticClient(sc StaticClient, mtlsDisabled bool) (*store.Client, error) {
	if sc.ID == "" {
		return nil, errors.New("a static client needs an id")
	}
	if len(sc.RedirectURIs) == 0 {
		return nil, fmt.Errorf("client %q: at least one redirect URI is needed", sc.ID)
	}
	for _, u := range sc.RedirectURIs {
		if err := checkRedirectURI(u); err != nil {
			return nil, fmt.Errorf("client %q: %w", sc.ID, err)
		}
	}
	c := &store.Client{
		ID: sc.ID, Name: sc.Name, RedirectURIs: sc.RedirectURIs, Scope: strings.Join(sc.Scopes, " "),
		GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
		TokenEndpointAuthMethod: "none",
	}
	methods := 0
	if sc.Secret != "" {
		c.SecretHash = store.Hash(sc.Secret)
		c.TokenEndpointAuthMethod = "client_secret_basic"
		methods++
	}
	if sc.TLSClientAuth != (store.CertificateSubject{}) {
		if err := CheckCertificateSubject(sc.TLSClientAuth); err != nil {
			return nil, fmt.Errorf("client %q: %w", sc.ID, err)
		}
		c.TokenEndpointAuthMethod, c.TLSSubject = TLSClientAuth, sc.TLSClientAuth
		methods++
	}
	if len(sc.SelfSignedCertificates) > 0 {
		jwks, err := certificatesJWKS(sc.SelfSignedCertificates)
		if err != nil {
			return nil, fmt.Errorf("client %q: self-signed certificates: %w", sc.ID, err)
		}
		c.TokenEndpointAuthMethod, c.JWKS = SelfSignedTLSClientAuth, jwks
		methods++
	}
	switch {
	case methods > 1:
		return nil, fmt.Errorf("client %q: a secret, tls_client_auth and self-signed certificates exclude each other", sc.ID)
	case mtlsDisabled && (mtlsClient(c) || sc.CertificateBoundTokens):
		return nil, fmt.Errorf("client %q uses mutual TLS, which is turned off", sc.ID)
	}
	c.CertificateBoundTokens = sc.CertificateBoundTokens
	return c, nil
}

// client returns a client by id: a static one, else the one an https
// client_id's metadata document describes (a *documentError when it
// cannot be used; staleOK as for clientDocument), else a registered one.
func (s *Server) client(ctx context.Context, id string, staleOK bool) (*store.Client, error) {
	if c, ok := s.static[id]; ok {
		return c, nil
	}
	if s.cfg.Store == nil {
		return nil, store.ErrNotFound
	}
	if isDocumentURL(id) {
		return s.clientDocument(ctx, id, staleOK)
	}
	return s.cfg.Store.GetClient(ctx, id)
}

// authenticateClient identifies and authenticates the client of a token,
// revocation or introspection request (RFC 6749 §2.3, OAuth 2.1 §2.4):
// client_secret_basic, client_secret_post, tls_client_auth and
// self_signed_tls_client_auth (RFC 8705 §2), or none for public clients.
// A store failure is returned as err.
func (s *Server) authenticateClient(r *http.Request, form map[string]string) (*store.Client, *oauthError, error) {
	id, secret, usedBasic := form["client_id"], form["client_secret"], false
	if hdr := r.Header.Get("Authorization"); hdr != "" {
		user, pass, ok := r.BasicAuth()
		if !ok {
			return nil, &oauthError{Status: http.StatusUnauthorized, Code: "invalid_client", Description: "malformed Authorization header", basicChallenge: true}, nil
		}
		// RFC 6749 §2.3.1: both parts are form-urlencoded.
		u, err1 := url.QueryUnescape(user)
		p, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return nil, &oauthError{Status: http.StatusUnauthorized, Code: "invalid_client", Description: "malformed client credentials", basicChallenge: true}, nil
		}
		if secret != "" {
			return nil, badRequest("invalid_request", "use one client authentication method, not two"), nil
		}
		if id != "" && id != u {
			return nil, badRequest("invalid_request", "client_id differs from the authenticated client"), nil
		}
		id, secret, usedBasic = u, p, true
	}
	invalid := &oauthError{Status: http.StatusUnauthorized, Code: "invalid_client", Description: "client authentication failed", basicChallenge: usedBasic}
	if id == "" {
		// RFC 6749 §5.2: no client authentication at all is invalid_client.
		invalid.Description = "client authentication is missing (client_id or Authorization: Basic)"
		return nil, invalid, nil
	}
	c, err := s.client(r.Context(), id, true)
	if errors.Is(err, store.ErrNotFound) {
		// A deleted client gets 401 invalid_client, so that it registers again.
		invalid.Description = "unknown client; register again"
		return nil, invalid, nil
	}
	var docErr *documentError
	if errors.As(err, &docErr) {
		if docErr.transient {
			// Its host is down: try later, and keep the tokens meanwhile.
			return nil, &oauthError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable",
				Description: "the client's metadata document cannot be fetched now: " + docErr.reason}, nil
		}
		invalid.Description = "the client's metadata document cannot be used: " + docErr.reason
		return nil, invalid, nil
	}
	if err != nil {
		return nil, nil, err
	}
	switch {
	case mtlsClient(c) && secret != "":
		invalid.Description = "this client authenticates with its TLS client certificate, not a secret"
		return nil, invalid, nil
	case mtlsClient(c):
		if oe := s.authenticateCertificate(r, c, invalid); oe != nil {
			return nil, oe, nil
		}
		return c, nil, nil
	case c.SecretHash == nil && secret != "":
		invalid.Description = "this client is public and has no secret"
		return nil, invalid, nil
	case c.SecretHash != nil && !store.SecretMatches(c.SecretHash, secret):
		return nil, invalid, nil
	case c.SecretHash != nil && !c.SecretExpiresAt.IsZero() && !s.cfg.Now().Before(c.SecretExpiresAt):
		invalid.Description = "the client secret has expired"
		return nil, invalid, nil
	}
	return c, nil, nil
}

// checkRedirectURI applies the redirect URI policy: https; http only to a
// loopback host (RFC 8252 §7.3); private-use schemes for native apps
// (RFC 8252 §7.1); never a fragment, and never a scheme that runs or
// reads content in the browser.
func checkRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case uriHasControlChar(raw):
		return fmt.Errorf("redirect URI %+q contains a control or bidirectional formatting character", raw)
	case err != nil || !u.IsAbs():
		return fmt.Errorf("redirect URI %+q is not an absolute URI", raw)
	case strings.Contains(raw, "#"):
		return fmt.Errorf("redirect URI %+q must not contain a fragment", raw)
	case u.User != nil:
		return fmt.Errorf("redirect URI %+q must not contain user information", raw)
	}
	switch scheme := strings.ToLower(u.Scheme); scheme {
	case "https":
		if u.Host == "" {
			return fmt.Errorf("redirect URI %+q has no host", raw)
		}
	case "http":
		if !web.IsLoopbackHost(u.Hostname()) {
			return fmt.Errorf("redirect URI %+q: http is allowed only for localhost, 127.0.0.1 and [::1]", raw)
		}
	case "javascript", "data", "file", "vbscript", "about", "blob", "filesystem", "ws", "wss", "ftp", "mailto", "tel", "view-source":
		return fmt.Errorf("redirect URI %+q: the %s scheme is not allowed", raw, scheme)
	default:
		// A private-use scheme of a native app, e.g. cursor://…
		if u.Host == "" && u.Path == "" && u.Opaque == "" {
			return fmt.Errorf("redirect URI %+q is empty after its scheme", raw)
		}
	}
	return nil
}

// matchRedirectURI reports whether requested is one of the registered
// redirect URIs: exact string comparison, except that the port of a
// loopback http URI may differ (RFC 8252 §7.3, OAuth 2.1 §4.1.1). A
// fragment or user information is refused before any comparison, so no
// branch of the comparison can let one through (OAuth 2.1 §2.3.1).
func matchRedirectURI(registered []string, requested string) bool {
	ru, err := url.Parse(requested)
	if err != nil || strings.Contains(requested, "#") || ru.User != nil || uriHasControlChar(requested) {
		return false
	}
	for _, r := range registered {
		if r == requested {
			return true
		}
	}
	if ru.Scheme != "http" || !web.IsLoopbackHost(ru.Hostname()) {
		return false
	}
	for _, r := range registered {
		gu, err := url.Parse(r)
		if err != nil || gu.Scheme != "http" {
			continue
		}
		if gu.Hostname() == ru.Hostname() && gu.EscapedPath() == ru.EscapedPath() && gu.RawQuery == ru.RawQuery &&
			strings.HasPrefix(r, "http://"+gu.Host) && strings.HasPrefix(requested, "http://"+ru.Host) {
			return true
		}
	}
	return false
}
