package tools_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/caddymcp/caddymcp/caddymcp/bearer"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testpg"
	"github.com/caddymcp/caddymcp/caddymcp/internal/teststore"
	"github.com/caddymcp/caddymcp/caddymcp/store"
	"github.com/caddymcp/caddymcp/caddymcp/tools"
)

var allScopes = []string{"booking:read", "booking:write", "product:read", "product:write", "order:read", "order:write", "form:read", "form:write"}

// env is an MCP endpoint on a real store, with the principal a test
// chooses per request.
type env struct {
	t   *testing.T
	srv *tools.Server
	h   http.Handler
}

func stores(t *testing.T) map[string]func(t *testing.T) store.Store {
	return map[string]func(t *testing.T) store.Store{
		"embedded": func(t *testing.T) store.Store {
			return embeddedStore(t, filepath.Join(t.TempDir(), "tools.db"))
		},
		"postgres": func(t *testing.T) store.Store { return teststore.Postgres(t, testpg.Schema(t)) },
	}
}

// embeddedStore is a migrated embedded store at path, closed when the
// test ends.
func embeddedStore(tb testing.TB, path string) *store.Embedded { return teststore.Embedded(tb, path) }

func forEach(t *testing.T, fn func(t *testing.T, e *env)) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			srv, err := tools.New(tools.Config{Shop: s})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = srv.Close() })
			fn(t, &env{t: t, srv: srv, h: srv})
		})
	}
}

// principalHeader carries the test's principal: "user|scope scope…".
const principalHeader = "X-Test-Principal"

func (e *env) request(method, path, body string, scopes []string, hdr map[string]string) *httptest.ResponseRecorder {
	e.t.Helper()
	r := httptest.NewRequest(method, "https://mcp.example.com"+path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	if scopes != nil {
		r = r.WithContext(bearer.WithPrincipal(r.Context(), &bearer.Principal{Subject: "user-1", ClientID: "c1", Scopes: scopes,
			ResourceMetadata: "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"}))
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

// rpc sends one JSON-RPC request and decodes the response (JSON or a
// single SSE event).
func (e *env) rpc(method string, params any, scopes []string) (result map[string]any, rpcErr map[string]any, status int) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	w := e.request("POST", "/mcp", string(body), scopes, nil)
	return decodeRPC(e.t, w)
}

func decodeRPC(t *testing.T, w *httptest.ResponseRecorder) (map[string]any, map[string]any, int) {
	t.Helper()
	raw := w.Body.Bytes()
	if strings.HasPrefix(w.Header().Get("Content-Type"), "text/event-stream") {
		for _, line := range strings.Split(string(raw), "\n") {
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				raw = []byte(data)
			}
		}
	}
	if w.Code != 200 && !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		return nil, nil, w.Code
	}
	var msg struct {
		Result map[string]any `json:"result"`
		Error  map[string]any `json:"error"`
	}
	if err := json.Unmarshal(raw, &msg); err != nil {
		if w.Code != 200 {
			return nil, nil, w.Code
		}
		t.Fatalf("response %q: %v", raw, err)
	}
	return msg.Result, msg.Error, w.Code
}

// call runs a tool and returns its structured result, or the tool error
// text.
func (e *env) call(name string, args any, scopes []string) (map[string]any, string) {
	e.t.Helper()
	res, rpcErr, status := e.rpc("tools/call", map[string]any{"name": name, "arguments": args}, scopes)
	if status != 200 || rpcErr != nil {
		e.t.Fatalf("%s: status %d, JSON-RPC error %v", name, status, rpcErr)
	}
	if res["isError"] == true {
		content, _ := res["content"].([]any)
		if len(content) > 0 {
			text, _ := content[0].(map[string]any)["text"].(string)
			return nil, text
		}
		return nil, "error"
	}
	sc, _ := res["structuredContent"].(map[string]any)
	return sc, ""
}

func (e *env) mustCall(name string, args any) map[string]any {
	e.t.Helper()
	out, errText := e.call(name, args, allScopes)
	if errText != "" {
		e.t.Fatalf("%s: %s", name, errText)
	}
	return out
}

func TestProtocol(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		for _, v := range []string{"2025-06-18", "2025-11-25"} {
			res, rpcErr, _ := e.rpc("initialize", map[string]any{"protocolVersion": v, "capabilities": map[string]any{},
				"clientInfo": map[string]any{"name": "test", "version": "1"}}, allScopes)
			if rpcErr != nil || res["protocolVersion"] != v {
				t.Errorf("initialize %s: %v %v", v, res, rpcErr)
			}
		}
		if _, rpcErr, _ := e.rpc("ping", map[string]any{}, allScopes); rpcErr != nil {
			t.Errorf("ping: %v", rpcErr)
		}
		res, _, _ := e.rpc("tools/list", map[string]any{}, []string{"product:read"})
		list, _ := res["tools"].([]any)
		if len(list) != 20 {
			t.Fatalf("tools/list: %d tools", len(list))
		}
		for _, raw := range list {
			tool := raw.(map[string]any)
			meta, _ := tool["_meta"].(map[string]any)
			ann, _ := tool["annotations"].(map[string]any)
			if meta["scope"] == nil || ann == nil || tool["outputSchema"] == nil || tool["inputSchema"] == nil || tool["description"] == "" {
				t.Errorf("tool %v lacks scope, annotations or schemas", tool["name"])
			}
		}
		// Bad input: JSON-RPC errors.
		w := e.request("POST", "/mcp", `{"jsonrpc":"2.0","id":1,`, allScopes, nil)
		if _, rpcErr, _ := decodeRPC(t, w); rpcErr == nil || rpcErr["code"] != float64(-32700) {
			t.Errorf("invalid JSON: %v", rpcErr)
		}
		if _, rpcErr, _ := e.rpc("no/such/method", map[string]any{}, allScopes); rpcErr == nil || rpcErr["code"] != float64(-32601) {
			t.Errorf("unknown method: %v", rpcErr)
		}
		if _, rpcErr, _ := e.rpc("tools/call", map[string]any{"name": "nope"}, allScopes); rpcErr == nil {
			t.Error("unknown tool: no error")
		}
		if w := e.request("POST", "/mcp", `{"x":"`+strings.Repeat("a", 1<<20)+`"}`, allScopes, nil); w.Code != 413 {
			t.Errorf("oversized body: %d", w.Code)
		}
	})
}

func TestGuards(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		// No principal: 401, never data.
		if w := e.request("POST", "/mcp", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil, nil); w.Code != 401 {
			t.Errorf("no principal: %d", w.Code)
		}
		if w := e.request("GET", "/mcp/tools", "", nil, nil); w.Code != 401 {
			t.Errorf("REST without principal: %d", w.Code)
		}
		// A read token calling a write tool: 403 with a step-up challenge,
		// before the tool runs.
		body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"products_create","arguments":{"sku":"A","name":"A","price_minor":1,"currency":"EUR"}}}`
		w := e.request("POST", "/mcp", body, []string{"product:read"}, nil)
		ch := w.Header().Get("WWW-Authenticate")
		if w.Code != 403 || !strings.HasPrefix(ch, "Bearer ") || !strings.Contains(ch, `error="insufficient_scope"`) ||
			!strings.Contains(ch, `scope="product:read product:write"`) || !strings.Contains(ch, "resource_metadata=") {
			t.Fatalf("step-up: %d %q", w.Code, ch)
		}
		if list, _ := e.call("products_list", map[string]any{}, []string{"product:read"}); len(list["products"].([]any)) != 0 {
			t.Fatal("the refused call created a product")
		}
		// A browser preflight is answered without a token, and responses
		// let the allowed origin read them.
		w = e.request("OPTIONS", "/mcp", "", nil, map[string]string{"Origin": "http://localhost:6274", "Access-Control-Request-Method": "POST"})
		if w.Code != 204 || w.Header().Get("Access-Control-Allow-Origin") != "http://localhost:6274" ||
			!strings.Contains(w.Header().Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Errorf("preflight: %d %v", w.Code, w.Header())
		}
		w = e.request("POST", "/mcp", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, allScopes, map[string]string{"Origin": "http://localhost:6274"})
		if w.Header().Get("Access-Control-Allow-Origin") != "http://localhost:6274" || !strings.Contains(w.Header().Get("Access-Control-Expose-Headers"), "WWW-Authenticate") {
			t.Errorf("CORS on a response: %v", w.Header())
		}
		// Origins: foreign ones are refused, loopback and own pass.
		for origin, want := range map[string]int{"https://evil.example": 403, "http://localhost:6274": 200, "https://mcp.example.com": 200} {
			w := e.request("POST", "/mcp", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, allScopes, map[string]string{"Origin": origin})
			if w.Code != want {
				t.Errorf("Origin %s: %d, want %d", origin, w.Code, want)
			}
		}
	})
}

// TestHostBehindLocalProxy: a request that reaches the endpoint on a
// loopback socket with a public Host — as from cloudflared, a local TLS
// terminator or a sidecar on the same machine — gets its tool call
// answered (Caddy's site matching decides which hosts are served), and
// the Origin check still refuses a foreign browser origin.
func TestHostBehindLocalProxy(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r = r.WithContext(bearer.WithPrincipal(r.Context(), &bearer.Principal{Subject: "user-1", ClientID: "c1", Scopes: allScopes}))
			e.srv.ServeHTTP(w, r)
		}))
		defer ts.Close()
		const call = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"products_list","arguments":{}}}`
		for _, tc := range []struct {
			name, host, origin string
			status             int
		}{
			{"loopback Host", "", "", 200},
			{"public Host", "mcp.example.com", "", 200},
			{"public Host with a port", "mcp.example.com:8443", "", 200},
			{"public Host, own Origin", "mcp.example.com", "http://mcp.example.com", 200},
			{"public Host, foreign Origin", "mcp.example.com", "https://evil.example", 403},
		} {
			t.Run(tc.name, func(t *testing.T) {
				req, err := http.NewRequest("POST", ts.URL+"/mcp", strings.NewReader(call))
				if err != nil {
					t.Fatal(err)
				}
				if tc.host != "" {
					req.Host = tc.host
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				if tc.origin != "" {
					req.Header.Set("Origin", tc.origin)
				}
				res, err := ts.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				body, _ := io.ReadAll(res.Body)
				if res.StatusCode != tc.status {
					t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body)
				}
				if tc.status == 403 {
					if !strings.Contains(string(body), `"forbidden"`) {
						t.Errorf("refused by something other than the Origin check: %s", body)
					}
					return
				}
				var msg struct {
					Result struct {
						IsError           bool           `json:"isError"`
						StructuredContent map[string]any `json:"structuredContent"`
					} `json:"result"`
				}
				if err := json.Unmarshal(body, &msg); err != nil || msg.Result.IsError || msg.Result.StructuredContent["products"] == nil {
					t.Errorf("tool call: %v %s", err, body)
				}
			})
		}
	})
}

func TestProductsAndOrders(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		p := e.mustCall("products_create", map[string]any{"sku": "MUG-1", "name": "Mug", "price_minor": 1299, "currency": "EUR", "stock": 5})
		id := p["id"].(string)
		if p["created_by"] != "user-1" || p["price_minor"] != float64(1299) {
			t.Fatalf("created %v", p)
		}
		if _, errText := e.call("products_create", map[string]any{"sku": "MUG-1", "name": "Again", "price_minor": 1, "currency": "EUR"}, allScopes); !strings.Contains(errText, "conflict") {
			t.Errorf("duplicate SKU: %q", errText)
		}
		if _, errText := e.call("products_create", map[string]any{"sku": "X", "name": "X", "price_minor": "12", "currency": "EUR"}, allScopes); !strings.Contains(errText, "price_minor") {
			t.Errorf("wrong type: %q", errText)
		}
		if _, errText := e.call("products_create", map[string]any{"sku": "X", "name": "X", "price_minor": 1, "currency": "EUR", "colour": "red"}, allScopes); !strings.Contains(errText, "colour") {
			t.Errorf("unknown argument: %q", errText)
		}
		// Orders: prices from the catalogue, stock taken, never below zero.
		o := e.mustCall("orders_create", map[string]any{"customer": "Ada", "items": []map[string]any{{"product_id": id, "quantity": 2}}})
		if o["total_minor"] != float64(2598) || o["status"] != "pending" {
			t.Fatalf("order %v", o)
		}
		if _, errText := e.call("orders_create", map[string]any{"customer": "Ada", "items": []map[string]any{{"product_id": id, "quantity": 4}}}, allScopes); !strings.Contains(errText, "insufficient stock") {
			t.Errorf("too many: %q", errText)
		}
		if got := e.mustCall("products_get", map[string]any{"id": id}); got["stock"] != float64(3) {
			t.Errorf("stock = %v, want 3", got["stock"])
		}
		if _, errText := e.call("orders_update_status", map[string]any{"id": o["id"], "status": "delivered"}, allScopes); !strings.Contains(errText, "transition") {
			t.Errorf("pending → delivered: %q", errText)
		}
		e.mustCall("orders_update_status", map[string]any{"id": o["id"], "status": "cancelled"})
		if got := e.mustCall("products_get", map[string]any{"id": id}); got["stock"] != float64(5) {
			t.Errorf("stock after cancel = %v, want 5", got["stock"])
		}
		// Parallel orders never oversell.
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				if out, _ := e.call("orders_create", map[string]any{"customer": "C", "items": []map[string]any{{"product_id": id, "quantity": 1}}}, allScopes); out != nil {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 5 {
			t.Errorf("%d orders succeeded with stock 5", wins.Load())
		}
		if got := e.mustCall("products_get", map[string]any{"id": id}); got["stock"] != float64(0) {
			t.Errorf("stock = %v, want 0", got["stock"])
		}
	})
}

func TestBookingsNeverDoubleBooked(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		slot := map[string]any{"resource": "room-1", "customer": "Ada", "start": "2026-12-01T10:00:00+01:00", "end": "2026-12-01T11:00:00+01:00"}
		var wins, taken atomic.Int32
		var wg sync.WaitGroup
		for range 100 {
			wg.Go(func() {
				out, errText := e.call("bookings_create", slot, allScopes)
				switch {
				case out != nil:
					wins.Add(1)
				case strings.Contains(errText, "already booked"):
					taken.Add(1)
				default:
					t.Errorf("unexpected: %q", errText)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 || taken.Load() != 99 {
			t.Fatalf("%d bookings and %d refusals, want 1 and 99", wins.Load(), taken.Load())
		}
		next := map[string]any{"resource": "room-1", "customer": "Bob", "start": "2026-12-01T11:00:00+01:00", "end": "2026-12-01T12:00:00+01:00"}
		b := e.mustCall("bookings_create", next)
		if b["start"] != "2026-12-01T10:00:00Z" {
			t.Errorf("start = %v, want UTC", b["start"])
		}
		if _, errText := e.call("bookings_create", map[string]any{"resource": "r", "customer": "c", "start": "tomorrow", "end": "2026-12-01T12:00:00Z"}, allScopes); !strings.Contains(errText, "start") {
			t.Errorf("bad time: %q", errText)
		}
		e.mustCall("bookings_cancel", map[string]any{"id": b["id"]})
		e.mustCall("bookings_create", next) // the cancelled slot is free again
		list := e.mustCall("bookings_list", map[string]any{"from": "2026-12-01T00:00:00Z", "to": "2026-12-02T00:00:00Z", "status": "confirmed"})
		if n := len(list["bookings"].([]any)); n != 2 {
			t.Errorf("%d confirmed bookings listed, want 2", n)
		}
	})
}

func TestForms(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		f := e.mustCall("forms_create", map[string]any{"title": "Feedback", "fields": []map[string]any{
			{"name": "email", "label": "Email", "type": "email", "required": true},
			{"name": "score", "label": "Score", "type": "number", "min": 1, "max": 5},
			{"name": "visit", "label": "Visit date", "type": "date"},
			{"name": "topic", "label": "Topic", "type": "choice", "choices": []string{"food", "service"}},
		}})
		id := f["id"]
		for name, tc := range map[string]struct {
			values map[string]any
			field  string
		}{
			"missing required": {map[string]any{"score": 3}, "email"},
			"bad email":        {map[string]any{"email": "nope"}, "email"},
			"out of range":     {map[string]any{"email": "a@example.com", "score": 9}, "score"},
			"bad date":         {map[string]any{"email": "a@example.com", "visit": "31/12/2026"}, "visit"},
			"bad choice":       {map[string]any{"email": "a@example.com", "topic": "price"}, "topic"},
			"unknown field":    {map[string]any{"email": "a@example.com", "age": 3}, "age"},
		} {
			if _, errText := e.call("forms_submit", map[string]any{"form_id": id, "values": tc.values}, allScopes); !strings.Contains(errText, tc.field) {
				t.Errorf("%s: %q does not name %s", name, errText, tc.field)
			}
		}
		e.mustCall("forms_submit", map[string]any{"form_id": id, "values": map[string]any{"email": "a@example.com", "score": 5, "visit": "2026-12-31", "topic": "food"}})
		subs := e.mustCall("forms_list_submissions", map[string]any{"form_id": id})
		if n := len(subs["submissions"].([]any)); n != 1 {
			t.Errorf("%d submissions, want 1 (invalid ones must not be stored)", n)
		}
	})
}

func TestREST(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		w := e.request("GET", "/mcp/tools", "", []string{"product:read"}, nil)
		var all struct{ Tools []tools.Tool }
		if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &all) != nil || len(all.Tools) != 20 {
			t.Fatalf("GET /mcp/tools: %d %s", w.Code, w.Body)
		}
		w = e.request("GET", "/mcp/tools/booking", "", []string{"product:read"}, nil)
		if w.Code != 200 || strings.Contains(w.Body.String(), "products_") {
			t.Errorf("GET /mcp/tools/booking: %d", w.Code)
		}
		for _, tc := range []struct {
			method, path, body string
			scopes             []string
			want               int
		}{
			{"POST", "/mcp/tools/product/create", `{"sku":"R1","name":"Rest","price_minor":100,"currency":"USD"}`, allScopes, 200},
			{"POST", "/mcp/tools/product/create", `{"sku":"R2","name":"Rest","price_minor":100,"currency":"usd"}`, allScopes, 400},
			{"POST", "/mcp/tools/product/create", `{"sku":"R3"`, allScopes, 400},
			{"POST", "/mcp/tools/product/create", `{"sku":"R4","name":"x","price_minor":1,"currency":"USD"}`, []string{"product:read"}, 403},
			{"POST", "/mcp/tools/product/get", `{"id":"prd_nope"}`, allScopes, 404},
			{"POST", "/mcp/tools/product/fly", `{}`, allScopes, 404},
			{"GET", "/mcp/tools/product/list", ``, allScopes, 405},
			{"GET", "/mcp/tools/nothing", ``, allScopes, 404},
		} {
			w := e.request(tc.method, tc.path, tc.body, tc.scopes, nil)
			if w.Code != tc.want {
				t.Errorf("%s %s %s: %d, want %d: %s", tc.method, tc.path, tc.body, w.Code, tc.want, w.Body)
			}
		}
	})
}

func TestScopeTools(t *testing.T) {
	srv, err := tools.New(tools.Config{Shop: nilShop{}})
	if err != nil {
		t.Fatal(err)
	}
	got := srv.ScopeTools()
	for _, scope := range allScopes {
		if len(got[scope]) == 0 {
			t.Errorf("no tool needs %s", scope)
		}
	}
	if len(got) != len(allScopes) {
		t.Errorf("scopes %v", got)
	}
}

// TestByScope checks that every tool the server serves is listed under
// the scope it declares, with its title, and that no scope lists a tool
// that does not need it.
func TestByScope(t *testing.T) {
	srv, err := tools.New(tools.Config{Shop: nilShop{}})
	if err != nil {
		t.Fatal(err)
	}
	got := tools.ByScope()
	listed := 0
	for _, ts := range got {
		listed += len(ts)
	}
	served := srv.Tools()
	if listed != len(served) {
		t.Errorf("%d tools listed by scope, %d served", listed, len(served))
	}
	for _, tool := range served {
		i := slices.IndexFunc(got[tool.Scope], func(st tools.ScopeTool) bool { return st.Name == tool.Name })
		if i < 0 {
			t.Errorf("scope %s does not list %s", tool.Scope, tool.Name)
			continue
		}
		if got[tool.Scope][i].Title == "" {
			t.Errorf("%s has no title", tool.Name)
		}
	}
	for scope, names := range srv.ScopeTools() {
		if len(got[scope]) != len(names) {
			t.Errorf("scope %s: %d tools listed, %d served", scope, len(got[scope]), len(names))
		}
	}
	for _, scope := range allScopes {
		if len(got[scope]) == 0 {
			t.Errorf("scope %s lists no tool", scope)
		}
	}
}

// nilShop satisfies store.Shop for tests that never call a tool.
type nilShop struct{ store.Shop }
