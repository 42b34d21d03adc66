// Package web holds the HTTP and OAuth syntax rules shared by the
// authorization server, the resource server, login and the tools: the
// origin a request was addressed to, issuer and resource identifiers,
// OAuth JSON errors (RFC 6749 §5.2), the CORS headers of public
// documents, scope tokens (RFC 6749 §3.3), access tokens in the
// Authorization header and WWW-Authenticate challenges (RFC 6750), and
// bounded fetches of JSON documents.
//
// It imports no other caddymcp package.
package web

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// DefaultScopes are the scopes offered when none are configured.
var DefaultScopes = []string{
	"booking:read", "booking:write",
	"product:read", "product:write",
	"order:read", "order:write",
	"form:read", "form:write",
}

// maxHostLen bounds the Host header used to derive an origin.
const maxHostLen = 255

// RequestOrigin returns the origin ("https://host[:port]") a request was
// addressed to: https when it came over TLS, the Host header lowercased,
// and the default port dropped. It rejects hosts that are not a plain
// DNS name, IPv4 address or bracketed IPv6 address with an optional port.
func RequestOrigin(r *http.Request) (string, error) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := strings.ToLower(r.Host)
	if host == "" || len(host) > maxHostLen {
		return "", errors.New("missing or oversized Host header")
	}
	name, port := host, ""
	if h, p, err := net.SplitHostPort(host); err == nil {
		name, port = h, p
		if strings.Contains(h, ":") {
			name = "[" + h + "]"
		}
	} else if strings.HasPrefix(host, "[") && !strings.HasSuffix(host, "]") {
		return "", errors.New("malformed Host header")
	}
	if !validHostName(name) || !ValidPort(port) {
		return "", errors.New("malformed Host header")
	}
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		return scheme + "://" + name + ":" + port, nil
	}
	return scheme + "://" + name, nil
}

func validHostName(h string) bool {
	if strings.HasPrefix(h, "[") {
		ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"))
		return strings.HasSuffix(h, "]") && ip != nil && ip.To4() == nil
	}
	if h == "" || strings.HasPrefix(h, ".") || strings.HasPrefix(h, "-") {
		return false
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func ValidPort(p string) bool {
	if p == "" {
		return true
	}
	if len(p) > 5 {
		return false
	}
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n > 0 && n < 65536
}

// ValidateIssuer checks an issuer identifier (RFC 8414 §2): an absolute
// https URL without query or fragment (http is allowed for loopback hosts,
// for development), and without a trailing slash, so that it compares
// byte for byte with what clients build from it.
func ValidateIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil {
		return fmt.Errorf("issuer %q is not a URL: %w", issuer, err)
	}
	if err := CheckHTTPSURL(issuer, u, "issuer"); err != nil {
		return err
	}
	if strings.HasSuffix(issuer, "/") {
		return fmt.Errorf("issuer %q must not end with '/': clients compare issuers byte for byte", issuer)
	}
	return nil
}

// ValidateResource checks a protected resource identifier (RFC 8707 §2,
// RFC 9728 §1.2): an absolute https URL (http on loopback) without a
// fragment or query.
func ValidateResource(resource string) error {
	u, err := url.Parse(resource)
	if err != nil {
		return fmt.Errorf("resource %q is not a URL: %w", resource, err)
	}
	return CheckHTTPSURL(resource, u, "resource")
}

func CheckHTTPSURL(raw string, u *url.URL, what string) error {
	switch {
	case !u.IsAbs() || u.Host == "":
		return fmt.Errorf("%s %q must be an absolute URL", what, u)
	case u.Scheme != "https" && !(u.Scheme == "http" && IsLoopbackHost(u.Hostname())):
		return fmt.Errorf("%s %q must use https (http is allowed only for localhost)", what, u)
	case u.RawQuery != "" || u.ForceQuery:
		return fmt.Errorf("%s %q must not have a query", what, u)
	case u.Fragment != "" || strings.Contains(u.String(), "#"):
		return fmt.Errorf("%s %q must not have a fragment", what, u)
	case u.User != nil:
		return fmt.Errorf("%s %q must not contain user information", what, u)
	case !strings.HasPrefix(raw, u.Scheme+"://") || u.Host != strings.ToLower(u.Host):
		return fmt.Errorf("%s %q must have a lowercase scheme and host", what, u)
	}
	return nil
}

// IsLoopbackHost reports whether host (without port or brackets) is
// localhost or a loopback IP address.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// WriteJSON writes v as a JSON response.
func WriteJSON(w http.ResponseWriter, status int, v any, cacheControl string) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", cacheControl)
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// ErrorBody is the JSON error object of RFC 6749 §5.2.
type ErrorBody struct {
	// Error is the error code.
	Error string `json:"error"`
	// Description is a human-readable explanation.
	Description string `json:"error_description,omitempty"`
}

// WriteError writes an RFC 6749 §5.2 JSON error, never cached.
func WriteError(w http.ResponseWriter, status int, code, description string) {
	WriteJSON(w, status, ErrorBody{Error: code, Description: description}, "no-store")
}

// CORS headers shared by the public endpoints (metadata, JWKS). Browser
// clients such as MCP Inspector fetch them cross-origin.
const (
	// CORSAllowHeaders are the request headers browser clients may send.
	CORSAllowHeaders = "Authorization, Content-Type, MCP-Protocol-Version, Mcp-Session-Id, Mcp-Method, Mcp-Name, Last-Event-ID, DPoP"
	// CORSExposeHeaders are the response headers browser clients may read.
	CORSExposeHeaders = "WWW-Authenticate, Mcp-Session-Id, MCP-Protocol-Version, DPoP-Nonce, Retry-After"
)

// SetCORS allows any origin to read a public, credential-free response.
func SetCORS(w http.ResponseWriter, methods string) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", methods)
	h.Set("Access-Control-Allow-Headers", CORSAllowHeaders)
	h.Set("Access-Control-Expose-Headers", CORSExposeHeaders)
	h.Set("Access-Control-Max-Age", "86400")
}

// ServePublicGet handles CORS preflight and method checks for a public,
// read-only document. It returns false when it has answered the request.
func ServePublicGet(w http.ResponseWriter, r *http.Request) bool {
	SetCORS(w, "GET, HEAD, OPTIONS")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return true
	case http.MethodOptions:
		w.WriteHeader(http.StatusNoContent)
		return false
	default:
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		WriteError(w, http.StatusMethodNotAllowed, "invalid_request", "method "+r.Method+" is not allowed here")
		return false
	}
}

// ValidScopeToken reports whether s is a scope token (RFC 6749 §3.3):
// printable ASCII except space, '"' and '\'.
func ValidScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// IsBase64URL reports whether every byte of s is in the base64url
// alphabet (RFC 4648 §5: letters, digits, '-' and '_'; no padding), as in
// the random values this server hands out and in S256 code challenges.
// The empty string is; callers check the length they expect.
func IsBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ClientCertificate returns the certificate the client presented in the
// TLS handshake of r's connection, or nil.
func ClientCertificate(r *http.Request) *x509.Certificate {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil
	}
	return r.TLS.PeerCertificates[0]
}

// UnionScope merges two space-separated scope strings (RFC 6749 §3.3), keeping the order of first use.
func UnionScope(a, b string) string {
	out := strings.Fields(a)
	for _, sc := range strings.Fields(b) {
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return strings.Join(out, " ")
}
