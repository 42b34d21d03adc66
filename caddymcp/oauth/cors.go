package oauth

import (
	"net/http"
	"slices"
	"strings"

	"github.com/caddymcp/caddymcp/caddymcp/internal/web"
)

// preflight sets the CORS headers of an endpoint, answers a CORS
// preflight (OPTIONS) and refuses methods not in methods. It returns false
// when it has answered the request. Preflights never need authentication.
func (s *Server) preflight(w http.ResponseWriter, r *http.Request, methods string) bool {
	h := w.Header()
	origin := r.Header.Get("Origin")
	switch {
	case len(s.cfg.AllowedOrigins) == 0:
		h.Set("Access-Control-Allow-Origin", "*")
	case origin != "" && slices.Contains(s.cfg.AllowedOrigins, origin):
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
	default:
		h.Add("Vary", "Origin")
	}
	h.Set("Access-Control-Allow-Methods", methods)
	h.Set("Access-Control-Allow-Headers", web.CORSAllowHeaders)
	h.Set("Access-Control-Expose-Headers", web.CORSExposeHeaders)
	h.Set("Access-Control-Max-Age", "86400")
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return false
	}
	for _, m := range strings.Split(methods, ", ") {
		if r.Method == m {
			return true
		}
	}
	h.Set("Allow", methods)
	web.WriteError(w, http.StatusMethodNotAllowed, "invalid_request", "method "+r.Method+" is not allowed here")
	return false
}

// readForm parses an application/x-www-form-urlencoded body of at most
// maxBodyBytes. Parameters may not repeat (RFC 6749 §3.1). It returns an
// OAuth error description on failure.
func readForm(w http.ResponseWriter, r *http.Request) (map[string]string, *oauthError) {
	ct := r.Header.Get("Content-Type")
	if mt, _, _ := strings.Cut(ct, ";"); !strings.EqualFold(strings.TrimSpace(mt), "application/x-www-form-urlencoded") {
		return nil, badRequest("invalid_request", "the body must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		if strings.Contains(err.Error(), "too large") {
			return nil, &oauthError{Status: http.StatusRequestEntityTooLarge, Code: "invalid_request", Description: "the request body is too large"}
		}
		return nil, badRequest("invalid_request", "the body is not a valid form")
	}
	out := make(map[string]string, len(r.PostForm))
	for k, vs := range r.PostForm {
		if len(vs) > 1 {
			// The name is echoed only when it is plain: error_description
			// allows no quotes, backslashes, controls or non-ASCII
			// (RFC 6749 §5.2).
			if !plainParamName(k) {
				return nil, badRequest("invalid_request", "a parameter is repeated")
			}
			return nil, badRequest("invalid_request", "parameter "+k+" is repeated")
		}
		out[k] = vs[0]
	}
	return out, nil
}

// plainParamName reports whether a parameter name is short and made of
// letters, digits, '_', '-', '.' and ':' only.
func plainParamName(k string) bool {
	if k == "" || len(k) > 64 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_-.:", c) >= 0) {
			return false
		}
	}
	return true
}

// oauthError is an RFC 6749 §5.2 error response.
type oauthError struct {
	Status      int
	Code        string
	Description string
	// basicChallenge adds WWW-Authenticate: Basic (RFC 6749 §5.2, for
	// invalid_client when the client used the Authorization header).
	basicChallenge bool
}

func badRequest(code, description string) *oauthError {
	return &oauthError{Status: http.StatusBadRequest, Code: code, Description: description}
}

func (e *oauthError) write(w http.ResponseWriter) {
	if e.basicChallenge {
		w.Header().Set("WWW-Authenticate", `Basic realm="oauth", charset="UTF-8"`)
	}
	web.WriteError(w, e.Status, e.Code, e.Description)
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }
