package oauth

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
)

// Endpoint paths of the authorization server, relative to the issuer.
const (
	JWKSPath = "/oauth/jwks"
)

// Config configures the authorization server.
type Config struct {
	// Issuer is the issuer identifier. Empty means: the origin of each
	// request (see RequestOrigin), which suits a site with one host name.
	Issuer string
	// Scopes are the scopes offered (scopes_supported).
	Scopes []string
	// Keys yields the signing keys.
	Keys KeySource
	// Logger receives internal errors. Default: discard.
	Logger *slog.Logger
}

// Server is the authorization server: an http.Handler for the paths
// Handles reports.
type Server struct {
	issuer     string
	issuerPath string
	scopes     []string
	keys       KeySource
	log        *slog.Logger
}

// New checks cfg and returns a server.
func New(cfg Config) (*Server, error) {
	s := &Server{issuer: cfg.Issuer, scopes: cfg.Scopes, keys: cfg.Keys, log: cfg.Logger}
	if cfg.Issuer != "" {
		if err := ValidateIssuer(cfg.Issuer); err != nil {
			return nil, err
		}
		u, _ := url.Parse(cfg.Issuer) // validated above
		s.issuerPath = u.EscapedPath()
	}
	if cfg.Keys == nil {
		return nil, errors.New("oauth server: no key source")
	}
	if s.scopes == nil {
		s.scopes = DefaultScopes
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// route names the endpoint a path belongs to, or "" if it is not ours.
func (s *Server) route(path string) string {
	switch path {
	case ASMetadataPath + s.issuerPath:
		return "metadata"
	case s.issuerPath + JWKSPath:
		return "jwks"
	}
	return ""
}

// Handles reports whether the server answers requests for path; others
// should go to the next handler.
func (s *Server) Handles(path string) bool { return s.route(path) != "" }

// Issuer returns the issuer for a request: the configured one, or the
// request's origin.
func (s *Server) Issuer(r *http.Request) (string, error) {
	if s.issuer != "" {
		return s.issuer, nil
	}
	return RequestOrigin(r)
}

// ServeHTTP answers the server's endpoints; other paths get 404.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	route := s.route(r.URL.Path)
	if route == "" {
		WriteError(w, http.StatusNotFound, "invalid_request", "no such endpoint")
		return
	}
	issuer, err := s.Issuer(r)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	switch route {
	case "metadata":
		s.serveMetadata(w, r, issuer)
	case "jwks":
		serveJWKS(w, r, s.keys)
	}
}

// ASMetadata is the authorization server metadata (RFC 8414 §2).
type ASMetadata struct {
	// Issuer is the issuer identifier, byte-identical to the one the
	// metadata URL was built from (RFC 8414 §3.3).
	Issuer string `json:"issuer"`
	// JWKSURI is the URL of the JSON Web Key Set.
	JWKSURI string `json:"jwks_uri"`
	// ScopesSupported lists the scopes clients may request.
	ScopesSupported []string `json:"scopes_supported"`
	// ResponseTypesSupported is ["code"]: OAuth 2.1 has no implicit flow.
	ResponseTypesSupported []string `json:"response_types_supported"`
	// CodeChallengeMethodsSupported is ["S256"] (RFC 7636); MCP clients
	// refuse a server that does not publish it.
	CodeChallengeMethodsSupported []string `json:"code_challenge_methods_supported"`
}

// Metadata returns the metadata document for an issuer.
func (s *Server) Metadata(issuer string) ASMetadata {
	return ASMetadata{
		Issuer:                        issuer,
		JWKSURI:                       issuer + JWKSPath,
		ScopesSupported:               s.scopes,
		ResponseTypesSupported:        []string{"code"},
		CodeChallengeMethodsSupported: []string{"S256"},
	}
}

func (s *Server) serveMetadata(w http.ResponseWriter, r *http.Request, issuer string) {
	if !servePublicGet(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, s.Metadata(issuer), "public, max-age=300")
}
