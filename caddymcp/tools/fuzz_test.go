package tools_test

// A native fuzz target (go test -fuzz) of the MCP endpoint and its REST
// view. Its seeds, and any input kept under testdata/fuzz/FuzzMCP/, run
// as ordinary tests.
//
//	go test -run '^$' -fuzz '^FuzzMCP$' -fuzztime 2m ./caddymcp/tools/

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/bearer"
	"github.com/caddymcp/caddymcp/caddymcp/store"
	"github.com/caddymcp/caddymcp/caddymcp/tools"
)

// shopTables are the tables the tools write.
var shopTables = []string{"products", "bookings", "orders", "order_items", "forms", "form_submissions"}

// fuzzShop is an MCP server on an embedded store with a known set of
// records (the fixture), and a second connection that reads the tables
// back to tell whether a request changed anything.
type fuzzShop struct {
	st    *store.Embedded
	raw   *sql.DB
	srv   *tools.Server
	tools []*tools.Tool
	logs  *recordedLogs
}

// recordedLogs keeps the messages of the records logged at level Error.
type recordedLogs struct {
	mu   sync.Mutex
	msgs []string
}

func (l *recordedLogs) Enabled(_ context.Context, level slog.Level) bool {
	return level >= slog.LevelError
}
func (l *recordedLogs) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		msg += " " + a.String()
		return true
	})
	l.msgs = append(l.msgs, msg)
	return nil
}
func (l *recordedLogs) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *recordedLogs) WithGroup(string) slog.Handler      { return l }

// take returns and forgets the recorded messages.
func (l *recordedLogs) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.msgs
	l.msgs = nil
	return m
}

func newFuzzShop(tb testing.TB) *fuzzShop {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "fuzz.db")
	st := embeddedStore(tb, path)
	raw, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = raw.Close() })
	s := &fuzzShop{st: st, raw: raw, logs: &recordedLogs{}}
	if s.srv, err = tools.New(tools.Config{Shop: st, Logger: slog.New(s.logs)}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.srv.Close() })
	s.tools = s.srv.Tools()
	s.reset(tb)
	return s
}

// Fixture ids, which inputs name.
const (
	fixProduct      = "prd_fix"
	fixOtherProduct = "prd_usd"
	fixBooking      = "bkg_fix"
	fixForm         = "frm_fix"
	fixOrder        = "ord_fix"
)

// reset empties the shop tables and creates the fixture.
func (s *fuzzShop) reset(tb testing.TB) {
	tb.Helper()
	ctx := context.Background()
	for _, table := range slices.Backward(shopTables) {
		if _, err := s.raw.ExecContext(ctx, "DELETE FROM "+table); err != nil {
			tb.Fatal(err)
		}
	}
	now := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	a := store.Audit{CreatedAt: now, CreatedBy: "fixture"}
	one, five := 1.0, 5.0
	steps := []error{
		s.st.CreateProduct(ctx, &store.Product{ID: fixProduct, SKU: "MUG-1", Name: "Mug", PriceMinor: 1299, Currency: "EUR", Stock: 5, Audit: a}),
		s.st.CreateProduct(ctx, &store.Product{ID: fixOtherProduct, SKU: "CAP-1", Name: "Cap", PriceMinor: 500, Currency: "USD", Stock: 1, Audit: a}),
		s.st.CreateBooking(ctx, &store.Booking{ID: fixBooking, Resource: "room-1", Customer: "Ada", Start: now.Add(24 * time.Hour),
			End: now.Add(25 * time.Hour), Status: store.BookingConfirmed, Audit: a}),
		s.st.CreateForm(ctx, &store.Form{ID: fixForm, Title: "Feedback", Audit: a, Fields: []store.FormField{
			{Name: "email", Label: "Email", Type: store.FieldEmail, Required: true},
			{Name: "score", Label: "Score", Type: store.FieldNumber, Min: &one, Max: &five},
			{Name: "visit", Label: "Visit", Type: store.FieldDate},
			{Name: "topic", Label: "Topic", Type: store.FieldChoice, Choices: []string{"food", "service"}},
			{Name: "note", Label: "Note", Type: store.FieldText, MaxLength: 20},
		}}),
	}
	_, err := s.st.CreateOrder(ctx, fixOrder, "Ada", []store.OrderLine{{ProductID: fixProduct, Quantity: 1}}, "fixture", now)
	steps = append(steps, err)
	for _, err := range steps {
		if err != nil {
			tb.Fatalf("creating the fixture: %v", err)
		}
	}
}

// snapshot returns the number of rows of the shop tables and a hash of
// their content.
func (s *fuzzShop) snapshot(tb testing.TB) (int, [32]byte) {
	tb.Helper()
	h := sha256.New()
	n := 0
	for _, table := range shopTables {
		rows, err := s.raw.Query("SELECT * FROM " + table + " ORDER BY 1")
		if err != nil {
			tb.Fatal(err)
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		fmt.Fprintf(h, "%s\n", table)
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				tb.Fatal(err)
			}
			fmt.Fprintf(h, "%q\n", vals)
			n++
		}
		if err := rows.Err(); err != nil {
			tb.Fatal(err)
		}
		rows.Close()
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return n, sum
}

// rpcMessage is a JSON-RPC 2.0 message as the fuzzer reads it: its
// members, raw.
type rpcMessage map[string]json.RawMessage

// str returns a string member, and whether it is one.
func (m rpcMessage) str(key string) (string, bool) {
	var v string
	raw, ok := m[key]
	return v, ok && json.Unmarshal(raw, &v) == nil
}

// standardCode reports whether code is a JSON-RPC 2.0 error code: a
// predefined one, or one of the range reserved for server errors.
func standardCode(code int64) bool {
	switch code {
	case -32700, -32600, -32601, -32602, -32603:
		return true
	}
	return code >= -32099 && code <= -32000
}

// FuzzMCP posts arbitrary bodies, as a principal holding an arbitrary
// set of scopes, to the MCP endpoint (with arbitrary Content-Type,
// Accept and MCP-Protocol-Version) or to a tool of the REST view. Inputs
// name the records of a fixture, so calls reach the store. Invariants:
// never 5xx; a 200 carries JSON-RPC 2.0 responses (jsonrpc "2.0", the
// request's id, a result or an error with a standard code), a 202 no
// body, other answers a JSON body when they say JSON; a tool result only
// for a principal holding the tool's scope, and a 403 step-up challenge
// only for one that does not; no internal tool failure; and nothing
// written unless a write tool succeeded.
func FuzzMCP(f *testing.F) {
	s := newFuzzShop(f)
	call := func(name, args string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + name + `","arguments":` + args + `}}`
	}
	const all, none = uint8(0xff), uint8(0)
	type seed struct {
		route, scopes, hdr uint8
		version, body      string
	}
	seeds := []seed{
		{0, all, 0, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"fuzz","version":"1"}}}`},
		{0, all, 0, "2025-06-18", `{"jsonrpc":"2.0","id":"a","method":"ping"}`},
		{0, all, 0, "2025-11-25", `{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"cursor":"x"}}`},
		{0, all, 0, "", `{"jsonrpc":"2.0","method":"notifications/initialized"}`},
		{0, all, 0, "", `{"jsonrpc":"2.0","id":7,"result":{}}`},
		{0, all, 0, "", `{"jsonrpc":"2.0","id":7,"error":{"code":-1,"message":"no"}}`},
		{0, all, 0, "", `[{"jsonrpc":"2.0","id":1,"method":"ping"},` + call("products_create", `{"sku":"B","name":"B","price_minor":1,"currency":"EUR"}`) + `]`},
		{0, all, 0, "", `{"jsonrpc":"2.0","id":1,`},
		{0, all, 0, "", `{"jsonrpc":"1.0","id":1,"method":"ping"}`},
		{0, all, 0, "", `{"id":1,"method":"ping"}`},
		{0, all, 0, "", `{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}`},
		{0, all, 0, "", `{"jsonrpc":"2.0","id":null,"method":"ping"}`},
		{0, all, 0, "", `{"jsonrpc":"2.0","id":1.5,"method":"ping"}`},
		{0, all, 0, "", `{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"ping"}`},
		{0, all, 0, "", `{"jsonrpc":"2.0","id":1,"method":"no/such/method"}`},
		{0, all, 0, "", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[]}`},
		{0, all, 0, "", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"nope"}}`},
		{0, all, 0, "", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"products_list"}}`},
		{0, all, 0, "", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"products_list","arguments":"x"}}`},
		{0, all, 0, "", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"products_list","arguments":[1]}}`},
		{0, all, 0, "", `{"jsonrpc":"2.0","id":1,"method":"resources/list"}`},
		{0, all, 0, "", `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"x"}}`},
		{0, all, 0, "", `{"jsonrpc":"2.0","id":1,"method":"logging/setLevel","params":{"level":"debug"}}`},
		{0, all, 0, "", `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{}}`},
		{0, all, 1, "", `{"jsonrpc":"2.0","id":1,"method":"ping"}`},
		{0, all, 2, "", `{"jsonrpc":"2.0","id":1,"method":"ping"}`},
		{0, all, 0, "1999-01-01", `{"jsonrpc":"2.0","id":1,"method":"ping"}`},
		{0, all, 0, "2026-07-28", `{"jsonrpc":"2.0","id":1,"method":"ping"}`},
		{0, all, 0, "2026-07-28", `{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{}}`},
		{0, all, 0, "", ``},
		{0, all, 0, "", `null`},
		{0, all, 0, "", `"x"`},
		// The scope gate, and ways around it.
		{0, uint8(1 << 2), 0, "", call("products_create", `{"sku":"G","name":"G","price_minor":1,"currency":"EUR"}`)},
		{0, uint8(1 << 2), 0, "", `{"jsonrpc":"2.0","id":1,"METHOD":"tools/call","params":{"Name":"products_create","arguments":{"sku":"G","name":"G","price_minor":1,"currency":"EUR"}}}`},
		{0, uint8(1 << 2), 0, "", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"products_list","name":"products_create","arguments":{"sku":"G","name":"G","price_minor":1,"currency":"EUR"}}}`},
		{0, uint8(1 << 2), 0, "", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"products_create","arguments":{"sku":"G","name":"G","price_minor":1,"currency":"EUR"}},"params":{"name":"products_list"}}`},
		{0, uint8(1 << 2), 0, "", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"products_create","_meta":1,"arguments":{"sku":"G","name":"G","price_minor":1,"currency":"EUR"}}}`},
		{0, none, 0, "", call("orders_list", `{}`)},
	}
	for _, c := range []struct{ name, args string }{
		{"products_list", `{"query":"mug","include_deleted":true,"limit":100}`},
		{"products_list", `{"cursor":"not-a-cursor"}`},
		{"products_list", `{"limit":-1}`},
		{"products_get", `{"id":"` + fixProduct + `"}`},
		{"products_get", `{"id":""}`},
		{"products_create", `{"sku":"MUG-2","name":"Mug 2","price_minor":1,"currency":"EUR","stock":3,"description":"d"}`},
		{"products_create", `{"sku":"MUG-1","name":"Again","price_minor":1,"currency":"EUR"}`},
		{"products_create", `{"sku":"X","name":"X","price_minor":1e30,"currency":"EUR"}`},
		{"products_create", `{"sku":"X","name":"X","price_minor":-1,"currency":"eur"}`},
		{"products_create", `{"sku":"X\u0000","name":"\u202e","price_minor":1,"currency":"EUR"}`},
		{"products_create", `{"sku":"X","name":"X","price_minor":1,"currency":"EUR","colour":"red"}`},
		{"products_update", `{"id":"` + fixProduct + `","price_minor":1500,"name":"Big mug"}`},
		{"products_update", `{"id":"` + fixProduct + `","sku":"CAP-1"}`},
		{"products_delete", `{"id":"` + fixOtherProduct + `"}`},
		{"products_adjust_stock", `{"id":"` + fixProduct + `","delta":-6}`},
		{"products_adjust_stock", `{"id":"` + fixProduct + `","delta":9223372036854775807}`},
		{"bookings_list", `{"from":"2026-11-01T00:00:00Z","to":"2026-12-01T00:00:00Z","status":"confirmed","resource":"room-1"}`},
		{"bookings_get", `{"id":"` + fixBooking + `"}`},
		{"bookings_create", `{"resource":"room-1","customer":"Bob","start":"2026-11-02T09:30:00Z","end":"2026-11-02T10:30:00Z"}`},
		{"bookings_create", `{"resource":"room-2","customer":"Bob","start":"0000-01-01T00:00:00Z","end":"9999-12-31T23:59:59Z"}`},
		{"bookings_create", `{"resource":"room-2","customer":"Bob","start":"2026-11-02T10:00:00+14:00","end":"2026-11-02T10:00:00-12:00"}`},
		{"bookings_update", `{"id":"` + fixBooking + `","start":"2026-11-02T12:00:00Z","end":"2026-11-02T11:00:00Z"}`},
		{"bookings_update", `{"id":"` + fixBooking + `","notes":"window seat"}`},
		{"bookings_cancel", `{"id":"` + fixBooking + `"}`},
		{"orders_list", `{"status":"pending"}`},
		{"orders_get", `{"id":"` + fixOrder + `"}`},
		{"orders_create", `{"customer":"Bo","items":[{"product_id":"` + fixProduct + `","quantity":2}]}`},
		{"orders_create", `{"customer":"Bo","items":[{"product_id":"` + fixProduct + `","quantity":2},{"product_id":"` + fixOtherProduct + `","quantity":1}]}`},
		{"orders_create", `{"customer":"Bo","items":[{"product_id":"` + fixProduct + `","quantity":4},{"product_id":"` + fixProduct + `","quantity":4}]}`},
		{"orders_create", `{"customer":"Bo","items":[]}`},
		{"orders_update_status", `{"id":"` + fixOrder + `","status":"cancelled"}`},
		{"orders_update_status", `{"id":"` + fixOrder + `","status":"delivered"}`},
		{"forms_list", `{"limit":1}`},
		{"forms_get", `{"id":"` + fixForm + `"}`},
		{"forms_create", `{"title":"T","fields":[{"name":"a","label":"A","type":"number","min":5,"max":1}]}`},
		{"forms_create", `{"title":"T","fields":[{"name":"a","label":"A","type":"choice","choices":[]},{"name":"a","label":"B","type":"text"}]}`},
		{"forms_submit", `{"form_id":"` + fixForm + `","values":{"email":"a@example.com","score":5,"visit":"2026-12-31","topic":"food","note":"ok"}}`},
		{"forms_submit", `{"form_id":"` + fixForm + `","values":{"email":"a@example.com","score":1e309}}`},
		{"forms_submit", `{"form_id":"` + fixForm + `","values":{"email":"a@example.com","visit":"2026-02-30","note":"` + strings.Repeat("é", 21) + `"}}`},
		{"forms_submit", `{"form_id":"` + fixForm + `","values":{"email":["a@example.com"],"score":"3"}}`},
		{"forms_list_submissions", `{"form_id":"` + fixForm + `"}`},
	} {
		seeds = append(seeds, seed{0, all, 0, "", call(c.name, c.args)})
		for i, t := range s.tools {
			if t.Name == c.name {
				seeds = append(seeds, seed{uint8(2*i + 1), all, 0, "", c.args})
			}
		}
	}
	seeds = append(seeds, seed{3, all, 0, "", `{"id":"` + fixProduct + `"} {"id":"x"}`},
		seed{0, all, 0, "", `{"x":"` + strings.Repeat("a", 1<<20) + `"}`})
	for _, sd := range seeds {
		f.Add(sd.route, sd.scopes, sd.hdr, sd.version, sd.body)
	}

	f.Fuzz(func(t *testing.T, route, scopeBits, hdr uint8, version, body string) {
		if n, _ := s.snapshot(t); n > 60 {
			s.reset(t)
		}
		_, before := s.snapshot(t)
		s.logs.take()

		var scopes []string
		for i, sc := range allScopes {
			if scopeBits&(1<<i) != 0 {
				scopes = append(scopes, sc)
			}
		}
		p := &bearer.Principal{Subject: "user-1", ClientID: "c1", Scopes: scopes,
			ResourceMetadata: "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"}
		path, rest := "/mcp", (*tools.Tool)(nil)
		if route%2 == 1 {
			rest = s.tools[int(route/2)%len(s.tools)]
			path = "/mcp/tools/" + rest.Family + "/" + rest.Action
		}
		r := httptest.NewRequest(http.MethodPost, "https://mcp.example.com"+path, strings.NewReader(body))
		r.Header.Set("Content-Type", map[bool]string{false: "application/json", true: "text/plain"}[hdr&1 != 0])
		r.Header.Set("Accept", map[bool]string{false: "application/json, text/event-stream", true: "application/json"}[hdr&2 != 0])
		if version != "" {
			r.Header.Set("MCP-Protocol-Version", version)
		}
		r = r.WithContext(bearer.WithPrincipal(r.Context(), p))
		w := httptest.NewRecorder()
		s.srv.ServeHTTP(w, r)

		if w.Code >= 500 {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		if msgs := s.logs.take(); slices.ContainsFunc(msgs, func(m string) bool { return strings.HasPrefix(m, "tool failed") }) {
			t.Fatalf("an input made a tool fail inside (%q): %d %s", msgs, w.Code, w.Body)
		}
		ct := w.Header().Get("Content-Type")
		if strings.HasPrefix(ct, "application/json") && !json.Valid(w.Body.Bytes()) {
			t.Fatalf("status %d: a JSON Content-Type with the body %q", w.Code, w.Body)
		}
		wrote := false          // whether a write tool succeeded
		var tool *tools.Tool    // the tool called, if one is
		var lacking *tools.Tool // a tool called without its scope
		if rest != nil {
			tool = rest
			if !p.HasScope(rest.Scope) {
				lacking = rest
			}
			if !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("REST answer %d with Content-Type %q", w.Code, ct)
			}
			if w.Code == http.StatusOK {
				wrote = !rest.ReadOnly
				// Arguments are one JSON object (or nothing).
				if b := bytes.TrimSpace([]byte(body)); len(b) > 0 && !json.Valid(b) {
					t.Fatalf("REST tool %s ran with arguments that are not one JSON value: %q", rest.Name, body)
				}
			}
		} else {
			called, reqID, isCall := requestHead(body)
			for _, tl := range s.tools {
				if isCall && tl.Name == called[0] {
					tool = tl
				}
				if slices.Contains(called, tl.Name) && !p.HasScope(tl.Scope) {
					lacking = tl // a 403 step-up is due
				}
			}
			wrote = checkRPCAnswer(t, w, reqID, tool)
		}
		switch {
		case w.Code == http.StatusForbidden:
			ch := w.Header().Get("WWW-Authenticate")
			if lacking == nil || !strings.Contains(ch, `error="insufficient_scope"`) || !strings.Contains(ch, `scope="`) {
				t.Fatalf("403 with scopes %v for %q: challenge %q", scopes, body, ch)
			}
		case w.Code == http.StatusOK && rest != nil && !p.HasScope(rest.Scope):
			t.Fatalf("REST tool %s ran without the %s scope", rest.Name, rest.Scope)
		}
		if wrote && (tool == nil || !p.HasScope(tool.Scope)) {
			t.Fatalf("a write succeeded without the scope (tool %v, scopes %v): %s", tool, scopes, w.Body)
		}
		if _, after := s.snapshot(t); !wrote && after != before {
			t.Fatalf("status %d: a request that wrote nothing successfully changed the tables: %s", w.Code, w.Body)
		}
	})
}

// requestHead reads a request body as one JSON-RPC message, or a batch
// of them: the tools the tools/call messages name and, for one message,
// its id and whether it is a tools/call.
func requestHead(body string) (called []string, id *json.RawMessage, isCall bool) {
	type message struct {
		ID     *json.RawMessage `json:"id"`
		Method string           `json:"method"`
		Params struct {
			Name string `json:"name"`
		} `json:"params"`
	}
	var m message
	if json.Unmarshal([]byte(body), &m) == nil {
		if m.Method == "tools/call" {
			return []string{m.Params.Name}, m.ID, true
		}
		return nil, m.ID, false
	}
	var batch []message
	_ = json.Unmarshal([]byte(body), &batch)
	for _, m := range batch {
		if m.Method == "tools/call" {
			called = append(called, m.Params.Name)
		}
	}
	return called, nil, false
}

// checkRPCAnswer checks an answer of the MCP endpoint and reports
// whether it holds a successful call of a write tool.
func checkRPCAnswer(t *testing.T, w *httptest.ResponseRecorder, reqID *json.RawMessage, tool *tools.Tool) bool {
	t.Helper()
	ct := w.Header().Get("Content-Type")
	switch {
	case w.Code == http.StatusAccepted:
		if w.Body.Len() != 0 {
			t.Fatalf("202 with a body %q", w.Body)
		}
		return false
	case w.Code != http.StatusOK && !strings.HasPrefix(ct, "application/json"):
		if w.Code < 400 {
			t.Fatalf("status %d: %q", w.Code, w.Body)
		}
		return false // a plain-text 4xx from the transport
	}
	var msgs []rpcMessage
	raw := w.Body.Bytes()
	switch {
	case strings.HasPrefix(ct, "text/event-stream"):
		for _, line := range strings.Split(string(raw), "\n") {
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				var m rpcMessage
				if err := strictJSON([]byte(data), &m); err != nil {
					t.Fatalf("SSE event %q: %v", data, err)
				}
				msgs = append(msgs, m)
			}
		}
	case strings.HasPrefix(ct, "application/json"):
		var m rpcMessage
		if err := strictJSON(raw, &m); err != nil {
			var batch []rpcMessage
			if strictJSON(raw, &batch) != nil || len(batch) == 0 {
				t.Fatalf("status %d: body %q is neither a JSON object nor a batch: %v", w.Code, raw, err)
			}
			msgs = batch
		} else if _, rpc := m["jsonrpc"]; !rpc && w.Code != http.StatusOK {
			// The endpoint's own refusals (403 step-up, 413) are OAuth-style.
			if code, ok := m.str("error"); !ok || code == "" {
				t.Fatalf("status %d: error body %q", w.Code, raw)
			}
			return false
		} else {
			msgs = []rpcMessage{m}
		}
	default:
		t.Fatalf("status %d with Content-Type %q: %q", w.Code, ct, raw)
	}
	wrote := false
	responses := 0
	for _, m := range msgs {
		if v, ok := m.str("jsonrpc"); !ok || v != "2.0" {
			t.Fatalf("message without jsonrpc 2.0: %s", raw)
		}
		if _, ok := m["method"]; ok {
			continue // a notification or request from the server
		}
		responses++
		id, hasID := m["id"]
		result, hasResult := m["result"]
		rpcErr, hasError := m["error"]
		if !hasID || hasResult == hasError {
			t.Fatalf("response without id, or not exactly one of result and error: %s", raw)
		}
		if reqID != nil && isPlainID(*reqID) && !sameJSON(*reqID, id) {
			t.Fatalf("response id %s for request id %s", id, *reqID)
		}
		if hasError {
			var e struct {
				Code    *json.Number `json:"code"`
				Message *string      `json:"message"`
			}
			if json.Unmarshal(rpcErr, &e) != nil || e.Code == nil || e.Message == nil {
				t.Fatalf("error without code or message: %s", raw)
			}
			code, err := e.Code.Int64()
			if err != nil || !standardCode(code) {
				t.Fatalf("error code %s is not a JSON-RPC one: %s", *e.Code, raw)
			}
			continue
		}
		if w.Code != http.StatusOK {
			t.Fatalf("status %d with a result: %s", w.Code, raw)
		}
		var res struct {
			IsError bool `json:"isError"`
		}
		_ = json.Unmarshal(result, &res)
		if tool != nil && !res.IsError && !tool.ReadOnly {
			wrote = true
		}
	}
	if w.Code == http.StatusOK && responses == 0 && reqID != nil {
		t.Fatalf("a request got no response: %s", raw)
	}
	return wrote
}

// strictJSON decodes one JSON value that fills data.
func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() || !json.Valid(bytes.TrimSpace(data)) {
		return fmt.Errorf("trailing data")
	}
	return nil
}

// isPlainID reports whether a request id is a string or a number of
// less than 2^53 in magnitude (JSON-RPC 2.0 §4: ids are strings or
// numbers).
func isPlainID(id json.RawMessage) bool {
	var v any
	if json.Unmarshal(id, &v) != nil {
		return false
	}
	switch x := v.(type) {
	case string:
		return true
	case float64:
		return math.Abs(x) < 1<<53
	}
	return false
}

// sameJSON reports whether two JSON values are equal.
func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
