package doctor_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"
)

// host is a fake MCP host: an authorization server, the protected
// resource metadata and an MCP endpoint at /mcp, all well-behaved by
// default. Tests break one thing at a time through its fields before it
// starts.
type host struct {
	srv  *httptest.Server
	base string
	// mcpPath is the endpoint's path, /mcp by default.
	mcpPath string

	// unauthStatus answers an MCP request without a valid token.
	unauthStatus int
	// challenge is the WWW-Authenticate of that answer ("" for none).
	challenge     string
	challengeBody string
	challengeType string
	// exposeHeaders is Access-Control-Expose-Headers on the 401.
	exposeHeaders string
	// preflightStatus and allowHeaders answer the CORS preflight.
	preflightStatus int
	allowHeaders    string
	// metadataCORS sets Access-Control-Allow-Origin on documents.
	metadataCORS bool
	// docs are the JSON documents by path; contentType overrides their
	// Content-Type.
	docs        map[string]map[string]any
	contentType map[string]string

	// Registration.
	registerSecret bool
	registerEcho   bool
	strictPort     bool

	// MCP with a token.
	token     string
	tools     []map[string]any
	scopeGate bool
	stepUp    string // WWW-Authenticate of the 403

	mu         sync.Mutex
	registered map[string][]string // client_id → redirect URIs
	deleted    []string            // session ids ended
	requests   []string            // "METHOD path" of every request
}

func (h *host) prmPath() string  { return "/.well-known/oauth-protected-resource/mcp" }
func (h *host) prmRoot() string  { return "/.well-known/oauth-protected-resource" }
func (h *host) asPath() string   { return "/.well-known/oauth-authorization-server" }
func (h *host) endpoint() string { return h.base + h.mcpPath }

// fakeJWT returns an unsigned JWT with the claims (the doctor only reads
// them).
func fakeJWT(claims map[string]any) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "ES256", "typ": "at+jwt"}) + "." + enc(claims) + ".c2lnbmF0dXJl"
}

func readOnlyTool(name, scope string, readOnly bool) map[string]any {
	return map[string]any{"name": name, "inputSchema": map[string]any{"type": "object"},
		"annotations": map[string]any{"readOnlyHint": readOnly}, "_meta": map[string]any{"scope": scope}}
}

// newHost starts a fake host; mutate breaks it before it starts.
func newHost(t *testing.T, mutate func(h *host)) *host {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	h := &host{srv: srv, base: "https://" + srv.Listener.Addr().String(), mcpPath: "/mcp", registered: map[string][]string{}}
	prm := map[string]any{
		"resource":                 h.endpoint(),
		"authorization_servers":    []any{h.base},
		"scopes_supported":         []any{"read", "write"},
		"bearer_methods_supported": []any{"header"},
		"resource_name":            "fake",
	}
	h.unauthStatus = http.StatusUnauthorized
	h.challenge = `Bearer resource_metadata="` + h.base + h.prmPath() + `", scope="read write"`
	h.challengeBody = `{"error":"unauthorized"}`
	h.challengeType = "application/json"
	h.exposeHeaders = "WWW-Authenticate, Mcp-Session-Id"
	h.preflightStatus = http.StatusNoContent
	h.allowHeaders = "Authorization, Content-Type, MCP-Protocol-Version, Mcp-Session-Id"
	h.metadataCORS = true
	h.docs = map[string]map[string]any{
		h.prmPath(): prm,
		h.prmRoot(): clone(prm),
		h.asPath(): {
			"issuer":                                h.base,
			"authorization_endpoint":                h.base + "/authorize",
			"token_endpoint":                        h.base + "/token",
			"registration_endpoint":                 h.base + "/register",
			"jwks_uri":                              h.base + "/jwks",
			"scopes_supported":                      []any{"read", "write"},
			"response_types_supported":              []any{"code"},
			"grant_types_supported":                 []any{"authorization_code", "refresh_token"},
			"token_endpoint_auth_methods_supported": []any{"none", "client_secret_basic"},
			"code_challenge_methods_supported":      []any{"S256"},
		},
		"/jwks": {"keys": []any{map[string]any{"kty": "EC", "crv": "P-256", "kid": "k1", "x": "AAAA", "y": "BBBB", "use": "sig", "alg": "ES256"}}},
	}
	h.registerEcho = true
	h.token = fakeJWT(map[string]any{"iss": h.base, "aud": h.endpoint(), "scope": "read", "exp": time.Now().Add(time.Hour).Unix()})
	h.tools = []map[string]any{
		readOnlyTool("list_things", "read", true),
		readOnlyTool("delete_thing", "write", false),
		readOnlyTool("audit_log", "admin", true),
	}
	h.scopeGate = true
	h.stepUp = `Bearer error="insufficient_scope", scope="read admin", resource_metadata="` + h.base + h.prmPath() + `"`
	if mutate != nil {
		mutate(h)
	}
	srv.Config.Handler = h
	// The certificate check closes its connection after the handshake,
	// which the server would log.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return h
}

func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (h *host) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.requests = append(h.requests, r.Method+" "+r.URL.Path)
	h.mu.Unlock()
	if doc, ok := h.docs[r.URL.Path]; ok && r.Method == http.MethodGet {
		if h.metadataCORS && r.Header.Get("Origin") != "" {
			w.Header().Set("Access-Control-Allow-Origin", "*")
		}
		if doc == nil { // an empty 200, as Caddy sends when no handler matches
			return
		}
		if ct, ok := h.contentType[r.URL.Path]; ok {
			w.Header().Set("Content-Type", ct)
			_ = json.NewEncoder(w).Encode(doc)
			return
		}
		writeJSON(w, http.StatusOK, doc)
		return
	}
	switch r.URL.Path {
	case h.mcpPath:
		h.serveMCP(w, r)
	case "/register":
		h.serveRegister(w, r)
	case "/authorize":
		h.serveAuthorize(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (h *host) serveMCP(w http.ResponseWriter, r *http.Request) {
	if origin := r.Header.Get("Origin"); origin != "" {
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Set("Access-Control-Expose-Headers", h.exposeHeaders)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			w.Header().Set("Access-Control-Allow-Headers", h.allowHeaders)
			w.Header().Set("Access-Control-Allow-Methods", "GET, POST, DELETE")
			w.WriteHeader(h.preflightStatus)
			return
		}
	}
	if r.Header.Get("Authorization") != "Bearer "+h.token {
		if h.challenge != "" {
			w.Header().Set("WWW-Authenticate", h.challenge)
		}
		w.Header().Set("Content-Type", h.challengeType)
		w.WriteHeader(h.unauthStatus)
		_, _ = io.WriteString(w, h.challengeBody)
		return
	}
	if r.Method == http.MethodDelete {
		h.mu.Lock()
		h.deleted = append(h.deleted, r.Header.Get("Mcp-Session-Id"))
		h.mu.Unlock()
		w.WriteHeader(http.StatusOK)
		return
	}
	var msg struct {
		ID     any    `json:"id"`
		Method string `json:"method"`
		Params struct {
			Name string `json:"name"`
		} `json:"params"`
	}
	body, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(body, &msg)
	if msg.Method != "initialize" && r.Header.Get("Mcp-Session-Id") != "session-1" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "missing session"})
		return
	}
	reply := func(result any) {
		writeJSON(w, http.StatusOK, map[string]any{"jsonrpc": "2.0", "id": msg.ID, "result": result})
	}
	switch msg.Method {
	case "initialize":
		w.Header().Set("Mcp-Session-Id", "session-1")
		reply(map[string]any{"protocolVersion": "2025-11-25", "capabilities": map[string]any{}, "serverInfo": map[string]any{"name": "fake"}})
	case "notifications/initialized":
		w.WriteHeader(http.StatusAccepted)
	case "tools/list":
		// Answered as a server-sent event, as Streamable HTTP may.
		w.Header().Set("Content-Type", "text/event-stream")
		b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": msg.ID, "result": map[string]any{"tools": h.tools}})
		_, _ = io.WriteString(w, "event: message\ndata: "+string(b)+"\n\n")
	case "tools/call":
		for _, tl := range h.tools {
			meta, _ := tl["_meta"].(map[string]any)
			if tl["name"] == msg.Params.Name && h.scopeGate && meta["scope"] != "read" {
				w.Header().Set("WWW-Authenticate", h.stepUp)
				writeJSON(w, http.StatusForbidden, map[string]string{"error": "insufficient_scope"})
				return
			}
		}
		reply(map[string]any{"content": []any{map[string]any{"type": "text", "text": "ok"}}})
	default:
		writeJSON(w, http.StatusOK, map[string]any{"jsonrpc": "2.0", "id": msg.ID, "error": map[string]any{"code": -32601, "message": "no such method"}})
	}
}

func (h *host) serveRegister(w http.ResponseWriter, r *http.Request) {
	var req map[string]any
	if r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&req) != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_client_metadata"})
		return
	}
	var uris []string
	for _, u := range req["redirect_uris"].([]any) {
		uris = append(uris, u.(string))
	}
	h.mu.Lock()
	id := "client-" + string(rune('a'+len(h.registered)))
	h.registered[id] = uris
	h.mu.Unlock()
	resp := map[string]any{"client_id": id, "token_endpoint_auth_method": req["token_endpoint_auth_method"], "client_name": req["client_name"]}
	if h.registerEcho {
		resp["redirect_uris"] = uris
	}
	if h.registerSecret {
		resp["client_secret"] = "s3cret"
	}
	writeJSON(w, http.StatusCreated, resp)
}

// serveAuthorize checks client and redirect URI (the loopback port is
// free unless strictPort) and then shows a sign-in page, as a host with
// nobody signed in does.
func (h *host) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	h.mu.Lock()
	uris, ok := h.registered[q.Get("client_id")]
	h.mu.Unlock()
	if !ok {
		http.Error(w, "unknown client", http.StatusBadRequest)
		return
	}
	match := func(registered, got string) bool {
		if registered == got {
			return true
		}
		a, err1 := url.Parse(registered)
		b, err2 := url.Parse(got)
		return !h.strictPort && err1 == nil && err2 == nil && a.Scheme == "http" && a.Hostname() == "127.0.0.1" &&
			a.Hostname() == b.Hostname() && a.Path == b.Path && a.Scheme == b.Scheme
	}
	if !slices.ContainsFunc(uris, func(u string) bool { return match(u, q.Get("redirect_uri")) }) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, "<html><title>Invalid redirect</title>The redirect_uri is not registered.</html>")
		return
	}
	if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 || q.Get("resource") != h.endpoint() {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusFound)
}

// saw reports whether the host got a request.
func (h *host) saw(req string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Contains(h.requests, req)
}

func (h *host) sessionsEnded() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.deleted)
}

func (h *host) clients() map[string][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string][]string{}
	for k, v := range h.registered {
		out[k] = slices.Clone(v)
	}
	return out
}
