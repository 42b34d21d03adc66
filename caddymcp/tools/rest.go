package tools

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/bearer"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// serveREST answers the REST view of the tools:
//
//	GET  <path>/tools                    every tool
//	GET  <path>/tools/{family}           one family's tools
//	POST <path>/tools/{family}/{action}  call a tool with a JSON object of arguments
func (s *Server) serveREST(w http.ResponseWriter, r *http.Request, p *bearer.Principal) {
	rest := strings.Trim(strings.TrimPrefix(r.URL.Path, s.cfg.Path+"/tools"), "/")
	family, action, _ := strings.Cut(rest, "/")
	if action == "" {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET")
			writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET to list tools")
			return
		}
		var list []*Tool
		for _, t := range s.tools {
			if family == "" || t.Family == family {
				list = append(list, t)
			}
		}
		if len(list) == 0 {
			writeJSONError(w, http.StatusNotFound, "not_found", "no tool family "+family)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"tools": list})
		return
	}
	var tool *Tool
	for _, t := range s.tools {
		if t.Family == family && t.Action == action {
			tool = t
		}
	}
	switch {
	case tool == nil:
		writeJSONError(w, http.StatusNotFound, "not_found", "no tool "+family+"/"+action)
		return
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", "POST")
		writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST to call a tool")
		return
	case !p.HasScope(tool.Scope):
		s.observe(tool.Name, "forbidden", time.Time{})
		bearer.InsufficientScope(p, tool.Scope).Write(w)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeJSONError(w, http.StatusRequestEntityTooLarge, "too_large", "the request body exceeds 1 MiB")
		return
	}
	start := time.Now()
	out, err := tool.run(r.Context(), p, body)
	s.observe(tool.Name, outcome(err), start)
	if err == nil {
		writeJSON(w, http.StatusOK, out)
		return
	}
	var ve *store.ValidationError
	switch {
	case errors.As(err, &ve):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_argument", "field": ve.Field, "error_description": ve.Message})
	case errors.Is(err, store.ErrNotFound):
		writeJSONError(w, http.StatusNotFound, "not_found", "not found")
	case errors.Is(err, store.ErrUnavailable):
		w.Header().Set("Retry-After", "5")
		writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the database is temporarily unavailable")
	default:
		if msg, ok := toolError(err); ok {
			writeJSONError(w, http.StatusConflict, "conflict", msg)
			return
		}
		s.cfg.Logger.Error("tool failed", "tool", tool.Name, "error", err.Error())
		writeJSONError(w, http.StatusInternalServerError, "server_error", "the tool failed")
	}
}
