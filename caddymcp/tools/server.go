// Package tools is caddymcp's MCP server: the booking, product, order and
// form tools on mcp-go's Streamable HTTP transport, each gated by the
// scope it declares, and a REST view of the same tools.
//
// It imports store, bearer (the caller's Principal and the step-up
// challenge) and internal/web; never the authorization server (oauth) or
// Caddy. Its API carries no stability promise outside this module.
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

	"github.com/caddymcp/caddymcp/caddymcp/bearer"
	"github.com/caddymcp/caddymcp/caddymcp/internal/web"
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

	// Sessions turns on MCP sessions: initialize returns an
	// Mcp-Session-Id that the client sends with every later request
	// (protocol versions up to 2025-11-25; 2026-07-28 has no sessions).
	// A session belongs to the user (token issuer and subject) who
	// started it; for anyone else it does not exist (404). A user holds
	// at most MaxSessionsPerUser. Sessions live in this server's memory,
	// so several instances behind a load balancer need sticky routing.
	// Default: off (stateless: any instance answers any request, and GET
	// gets 405).
	Sessions bool
	// SessionIdleTimeout ends a session that has had no request for this
	// long. Default: DefaultSessionIdleTimeout.
	SessionIdleTimeout time.Duration
	// Random is the source of session ids. Default: crypto/rand.
	Random io.Reader
	// Observe, when set, is told of every tool call: the tool, its
	// outcome ("ok", "tool_error", "invalid", "forbidden", "unavailable"
	// or "failed") and how long it ran (zero when it did not run).
	Observe func(tool, outcome string, d time.Duration)
}

// Server is the MCP endpoint and the REST view.
type Server struct {
	cfg      Config
	tools    []*Tool
	byName   map[string]*Tool
	http     *server.StreamableHTTPServer
	sessions *sessionTable // nil when stateless
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
	if cfg.SessionIdleTimeout < 0 {
		return nil, errors.New("tools: negative session idle timeout")
	}
	if cfg.SessionIdleTimeout == 0 {
		cfg.SessionIdleTimeout = DefaultSessionIdleTimeout
	}
	if cfg.Random == nil {
		cfg.Random = rand.Reader
	}
	s := &Server{cfg: cfg, byName: map[string]*Tool{}}
	s.register()
	m := server.NewMCPServer("caddymcp", cfg.Version,
		server.WithToolCapabilities(false),
		server.WithRecovery(),
		server.WithInstructions("Back-office tools for bookings, products, orders and forms. Each tool needs the scope named in its description and in _meta.scope."),
	)
	for _, t := range s.tools {
		s.byName[t.Name] = t
		m.AddTool(t.mcp, s.handler(t))
	}
	opts := []server.StreamableHTTPOption{
		server.WithEndpointPath(cfg.Path),
		server.WithStreamableHTTPLogger(cfg.Logger),
		// mcp-go refuses (403) a request that arrives on a loopback
		// socket with a Host other than localhost or a loopback address,
		// to keep DNS rebinding off unauthenticated local servers. Here
		// that refuses every MCP call behind a tunnel, TLS terminator,
		// sidecar or load balancer on the same machine (cloudflared
		// sends the public Host to 127.0.0.1), while the OAuth endpoints
		// on the same site work. mcp-go can only turn the check off (it
		// takes no list of allowed hosts), and it adds nothing here:
		//   - Caddy's site matching already decides which Host values
		//     reach this handler (a site named mcp.example.com or
		//     localhost never serves a rebound evil.example);
		//   - every request needs a verified bearer token (401
		//     otherwise), which a browser never attaches on its own, so
		//     a rebound page has no credential to ride on;
		//   - originAllowed still refuses browser requests from foreign
		//     Origins before anything else runs.
		server.WithDisableLocalhostProtection(true),
	}
	if cfg.Sessions {
		// mcp-go asks the table to create, check and end sessions; its
		// sweeper reclaims the transport state of idle ones (and stops
		// in Close).
		s.sessions = newSessionTable(cfg.Now, cfg.Random, cfg.SessionIdleTimeout)
		opts = append(opts, server.WithSessionIdManagerResolver(s.sessions),
			server.WithSessionIdleTTL(cfg.SessionIdleTimeout))
	} else {
		// Without sessions the server never sends a message of its own,
		// so there is nothing to listen for: GET gets 405.
		opts = append(opts, server.WithStateLess(true), server.WithDisableStreaming(true))
	}
	s.http = server.NewStreamableHTTPServer(m, opts...)
	return s, nil
}

// register adds every tool family. It is the tool registry: New serves
// what it adds, and ByScope describes it.
func (s *Server) register() {
	s.addProducts()
	s.addBookings()
	s.addOrders()
	s.addForms()
}

// ScopeTool names a tool that a scope unlocks.
type ScopeTool struct {
	// Name is the tool's name, as MCP clients call it.
	Name string
	// Title is its human-readable title.
	Title string
}

// ByScope returns, for every scope a tool declares, the tools that need
// it — name and title, in registration order — for the consent page of
// the authorization server (oauth.Config.ScopeTools). It reads the same
// registry New serves, so what a person approves cannot drift from the
// tools a token unlocks.
func ByScope() map[string][]ScopeTool {
	// The tools' run functions are never called here: the store is
	// only there to be captured.
	s := &Server{cfg: Config{Shop: noShop{}, Now: time.Now}}
	s.register()
	out := map[string][]ScopeTool{}
	for _, t := range s.tools {
		out[t.Scope] = append(out[t.Scope], ScopeTool{Name: t.Name, Title: t.mcp.Title})
	}
	return out
}

// noShop is the store of the registry ByScope reads; no tool runs on it.
type noShop struct{ store.Shop }

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

// Sessions returns the number of live sessions (0 when stateless).
func (s *Server) Sessions() int {
	if s.sessions == nil {
		return 0
	}
	return s.sessions.len()
}

// Close ends every session (closing their open streams) and releases the
// transport.
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
		h.Set("Access-Control-Expose-Headers", web.CORSExposeHeaders)
		if bearer.IsPreflight(r) {
			// Preflights carry no credentials and are answered here.
			h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", web.CORSAllowHeaders)
			h.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	p, ok := bearer.PrincipalFrom(r.Context())
	if !ok {
		writeJSONError(w, http.StatusUnauthorized, "unauthorized", "this endpoint needs a verified access token")
		return
	}
	if r.URL.Path != s.cfg.Path {
		s.serveREST(w, r, p)
		return
	}
	var method string
	if r.Method == http.MethodPost {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			writeJSONError(w, http.StatusRequestEntityTooLarge, "too_large", "the request body exceeds 1 MiB")
			return
		}
		var name string
		method, name = rpcHead(body)
		// The scope gate runs before any tool: a call the token may not
		// make is answered 403 with a step-up challenge.
		if name != "" {
			if t, ok := s.byName[name]; ok && !p.HasScope(t.Scope) {
				s.observe(t.Name, "forbidden", time.Time{})
				f := bearer.InsufficientScope(p, t.Scope)
				f.Write(w)
				return
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	if s.sessions != nil && !s.sessionGate(w, r, p, method) {
		return
	}
	if _, ok := w.(http.Flusher); !ok {
		w = flushWriter{w, http.NewResponseController(w)}
	}
	s.http.ServeHTTP(w, r)
}

// flushWriter makes a ResponseWriter that flushes only through
// http.ResponseController (as Caddy's do) an http.Flusher, which is how
// mcp-go tells that it may stream: without it, a GET listening stream
// gets 405 and no response is ever sent as SSE.
type flushWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
}

func (w flushWriter) Flush() { _ = w.rc.Flush() }

// Unwrap gives http.ResponseController the writer underneath.
func (w flushWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// rpcHead returns the method of a JSON-RPC message and, for tools/call,
// the tool it names. In a batch, a tools/call message's tool is returned
// with no method.
func rpcHead(body []byte) (method, tool string) {
	type call struct {
		Method string `json:"method"`
		Params struct {
			Name string `json:"name"`
		} `json:"params"`
	}
	var one call
	if json.Unmarshal(body, &one) == nil {
		if one.Method == string(mcp.MethodToolsCall) {
			return one.Method, one.Params.Name
		}
		return one.Method, ""
	}
	var batch []call
	if json.Unmarshal(body, &batch) == nil {
		for _, c := range batch {
			if c.Method == string(mcp.MethodToolsCall) {
				return "", c.Params.Name
			}
		}
	}
	return "", ""
}

// sessionGate applies the session rules before mcp-go sees a request, and
// reports whether it may go on: initialize is refused (429) to a user who
// holds MaxSessionsPerUser sessions; any other request needs the
// Mcp-Session-Id of a live session of the same user (400 without one,
// 404 for an unknown, ended, idle or other user's session, as the MCP
// transport answers for a session it does not know). mcp-go checks the id
// again through the session table.
func (s *Server) sessionGate(w http.ResponseWriter, r *http.Request, p *bearer.Principal, method string) bool {
	id := r.Header.Get(server.HeaderKeySessionID)
	switch {
	case mcp.IsModernProtocol(r.Header.Get(mcp.HeaderProtocolVersion)):
		return true // 2026-07-28 has no sessions; mcp-go ignores the header
	case r.Method != http.MethodPost && r.Method != http.MethodGet && r.Method != http.MethodDelete:
		return true
	case r.Method == http.MethodPost && method == string(mcp.MethodInitialize):
		if s.sessions.full(ownerOf(p)) {
			writeJSONError(w, http.StatusTooManyRequests, "too_many_sessions",
				"this user holds the most sessions allowed; end one (DELETE) or let one idle out")
			return false
		}
		return true
	case id == "" && r.Method == http.MethodPost && method == "":
		return true // not a JSON-RPC request or notification: mcp-go answers
	case id == "":
		writeJSONError(w, http.StatusBadRequest, "missing_session", "send the Mcp-Session-Id header that initialize returned")
		return false
	case !s.sessions.use(id, ownerOf(p)):
		writeJSONError(w, http.StatusNotFound, "session_not_found", "no such session; start a new one with initialize")
		return false
	}
	return true
}

// originAllowed applies the MCP transport's Origin check: requests with
// no Origin (non-browser clients), from the endpoint's own origin, from a
// loopback origin or from a configured one pass.
func (s *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || slices.Contains(s.cfg.AllowedOrigins, origin) {
		return true
	}
	if own, err := web.RequestOrigin(r); err == nil && strings.EqualFold(own, origin) {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && web.IsLoopbackHost(u.Hostname())
}

// handler adapts a tool to mcp-go: the principal comes from the request
// context, business errors become tool errors (isError) naming what is
// wrong, and other failures become JSON-RPC errors.
func (s *Server) handler(t *Tool) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		p, ok := bearer.PrincipalFrom(ctx)
		if !ok {
			return nil, errors.New("no verified principal")
		}
		if !p.HasScope(t.Scope) { // also enforced before the call
			return mcp.NewToolResultError("this tool needs the " + t.Scope + " scope"), nil
		}
		// mcp-go keeps the arguments as sent; only a request built in
		// process may lack them.
		raw := req.Params.RawArguments
		if len(raw) == 0 && req.Params.Arguments != nil {
			var err error
			if raw, err = json.Marshal(req.Params.Arguments); err != nil {
				return mcp.NewToolResultError("invalid argument arguments: must be a JSON object"), nil
			}
		}
		start := time.Now()
		out, err := t.run(ctx, p, raw)
		s.observe(t.Name, outcome(err), start)
		if err != nil {
			if msg, ok := toolError(err); ok {
				return mcp.NewToolResultError(msg), nil
			}
			if errors.Is(err, store.ErrUnavailable) {
				s.cfg.Logger.Warn("tool failed: database unavailable", "tool", t.Name, "error", err.Error())
				return nil, errors.New("the database is temporarily unavailable; retry shortly")
			}
			s.cfg.Logger.Error("tool failed", "tool", t.Name, "error", err.Error())
			return nil, errors.New("the tool failed")
		}
		// The text content, for clients that only read text, is the
		// structured content as JSON. mcp-go encodes the structured
		// content itself with the response; handing it encoded bytes
		// instead would only add a pass that checks them.
		var text strings.Builder
		enc := json.NewEncoder(&text)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(out); err != nil {
			return nil, err
		}
		return mcp.NewToolResultStructured(out, strings.TrimSuffix(text.String(), "\n")), nil
	}
}

// newID returns a random id with a prefix, e.g. "prd_…".
func newID(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + "_" + base64.RawURLEncoding.EncodeToString(b)
}

// audit is the Audit of a new row created by p at now.
func audit(p *bearer.Principal, now time.Time) store.Audit {
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

// observe reports a tool call to Config.Observe; a zero start means the
// tool did not run.
func (s *Server) observe(tool, outcome string, start time.Time) {
	if s.cfg.Observe == nil {
		return
	}
	var d time.Duration
	if !start.IsZero() {
		d = time.Since(start)
	}
	s.cfg.Observe(tool, outcome, d)
}

// outcome classifies the result of a tool for Config.Observe.
func outcome(err error) string {
	var ve *store.ValidationError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &ve):
		return "invalid"
	case errors.Is(err, store.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, store.ErrNotFound):
		return "tool_error"
	}
	if _, ok := toolError(err); ok {
		return "tool_error"
	}
	return "failed"
}
