// Package tools is caddymcp's MCP server: the booking, product, order and
// form tools on mcp-go's Streamable HTTP transport, each gated by the
// scope it declares, and a REST view of the same tools.
//
// The package does not import Caddy. Its API carries no stability promise
// outside this module.
package tools

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/caddymcp/caddymcp/caddymcp/oauth"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// maxBody bounds a request body.
const maxBody = 1 << 20

// Config configures the MCP server.
type Config struct {
	// Shop is the back office the tools work on.
	Shop store.Shop
	// Path is the MCP endpoint's path. Default: /mcp. The REST view lives
	// at Path + "/tools".
	Path string
	// AllowedOrigins lists browser origins allowed besides the endpoint's
	// own origin and loopback origins; a request from any other Origin
	// gets 403 (MCP transport security).
	AllowedOrigins []string
	// Version is reported in serverInfo.
	Version string
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Logger receives the transport's logs. Default: discard.
	Logger *slog.Logger
}

// Server is the MCP endpoint and the REST view.
type Server struct {
	cfg    Config
	tools  []*Tool
	byName map[string]*Tool
	http   *server.StreamableHTTPServer
}

// New builds the server and registers every tool.
func New(cfg Config) (*Server, error) {
	if cfg.Shop == nil {
		return nil, errors.New("tools: no store")
	}
	if cfg.Path == "" {
		cfg.Path = "/mcp"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Version == "" {
		cfg.Version = "1"
	}
	s := &Server{cfg: cfg, byName: map[string]*Tool{}}
	s.addProducts()
	s.addBookings()
	s.addOrders()
	s.addForms()
	m := server.NewMCPServer("caddymcp", cfg.Version,
		server.WithToolCapabilities(false),
		server.WithRecovery(),
		server.WithInstructions("Back-office tools for bookings, products, orders and forms. Each tool needs the scope named in its description and in _meta.scope."),
	)
	for _, t := range s.tools {
		s.byName[t.Name] = t
		m.AddTool(t.mcp, s.handler(t))
	}
	s.http = server.NewStreamableHTTPServer(m,
		server.WithStateLess(true),
		server.WithEndpointPath(cfg.Path),
		server.WithStreamableHTTPLogger(cfg.Logger),
	)
	return s, nil
}

// Tools returns the tool descriptions.
func (s *Server) Tools() []*Tool { return slices.Clone(s.tools) }

// ScopeTools maps each scope to the names of the tools it unlocks.
func (s *Server) ScopeTools() map[string][]string {
	out := map[string][]string{}
	for _, t := range s.tools {
		out[t.Scope] = append(out[t.Scope], t.Name)
	}
	return out
}

// Handles reports whether the server answers requests for path.
func (s *Server) Handles(path string) bool {
	return path == s.cfg.Path || path == s.cfg.Path+"/tools" || strings.HasPrefix(path, s.cfg.Path+"/tools/")
}

// Close releases the transport.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.http.Shutdown(ctx)
}

// ServeHTTP answers the MCP endpoint and the REST view. Every request
// needs a verified principal on its context (set by mcp_bearer): without
// one it gets 401 and never data.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.originAllowed(r) {
		writeJSONError(w, http.StatusForbidden, "forbidden", "requests from this Origin are not allowed")
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Expose-Headers", oauth.CORSExposeHeaders)
		if oauth.IsPreflight(r) {
			// Preflights carry no credentials and are answered here.
			h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", oauth.CORSAllowHeaders)
			h.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	p, ok := oauth.PrincipalFrom(r.Context())
	if !ok {
		writeJSONError(w, http.StatusUnauthorized, "unauthorized", "this endpoint needs a verified access token")
		return
	}
	if r.URL.Path != s.cfg.Path {
		s.serveREST(w, r, p)
		return
	}
	if r.Method == http.MethodPost {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			writeJSONError(w, http.StatusRequestEntityTooLarge, "too_large", "the request body exceeds 1 MiB")
			return
		}
		// The scope gate runs before any tool: a call the token may not
		// make is answered 403 with a step-up challenge.
		if name := calledTool(body); name != "" {
			if t, ok := s.byName[name]; ok && !p.HasScope(t.Scope) {
				f := oauth.InsufficientScope(p, t.Scope)
				f.Write(w)
				return
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	s.http.ServeHTTP(w, r)
}

// calledTool returns the tool a JSON-RPC tools/call message (or any
// message of a batch) names, or "".
func calledTool(body []byte) string {
	type call struct {
		Method string `json:"method"`
		Params struct {
			Name string `json:"name"`
		} `json:"params"`
	}
	var one call
	if json.Unmarshal(body, &one) == nil {
		if one.Method == string(mcp.MethodToolsCall) {
			return one.Params.Name
		}
		return ""
	}
	var batch []call
	if json.Unmarshal(body, &batch) == nil {
		for _, c := range batch {
			if c.Method == string(mcp.MethodToolsCall) {
				return c.Params.Name
			}
		}
	}
	return ""
}

// originAllowed applies the MCP transport's Origin check: requests with
// no Origin (non-browser clients), from the endpoint's own origin, from a
// loopback origin or from a configured one pass.
func (s *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || slices.Contains(s.cfg.AllowedOrigins, origin) {
		return true
	}
	if own, err := oauth.RequestOrigin(r); err == nil && strings.EqualFold(own, origin) {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && oauth.IsLoopbackHost(u.Hostname())
}

// handler adapts a tool to mcp-go: the principal comes from the request
// context, business errors become tool errors (isError) naming what is
// wrong, and other failures become JSON-RPC errors.
func (s *Server) handler(t *Tool) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		p, ok := oauth.PrincipalFrom(ctx)
		if !ok {
			return nil, errors.New("no verified principal")
		}
		if !p.HasScope(t.Scope) { // also enforced before the call
			return mcp.NewToolResultError("this tool needs the " + t.Scope + " scope"), nil
		}
		raw, err := json.Marshal(req.GetRawArguments())
		if err != nil {
			return mcp.NewToolResultError("invalid argument arguments: must be a JSON object"), nil
		}
		out, err := t.run(ctx, p, raw)
		if err != nil {
			if msg, ok := toolError(err); ok {
				return mcp.NewToolResultError(msg), nil
			}
			s.cfg.Logger.Error("tool failed", "tool", t.Name, "error", err.Error())
			if errors.Is(err, store.ErrUnavailable) {
				return nil, errors.New("the database is temporarily unavailable; retry shortly")
			}
			return nil, errors.New("the tool failed")
		}
		// Encoded once: the same JSON is the structured content and, for
		// clients that only read text, the text content.
		text, err := json.Marshal(out)
		if err != nil {
			return nil, err
		}
		return mcp.NewToolResultStructured(json.RawMessage(text), string(text)), nil
	}
}

// newID returns a random id with a prefix, e.g. "prd_…".
func newID(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + "_" + base64.RawURLEncoding.EncodeToString(b)
}

// audit is the Audit of a new row created by p at now.
func audit(p *oauth.Principal, now time.Time) store.Audit {
	return store.Audit{CreatedAt: now, UpdatedAt: now, CreatedBy: p.Subject, UpdatedBy: p.Subject}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeJSONError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}
