//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testflow"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testpg"
)

// reloadStep is one config of TestReloadUnderLoad: which database URL it
// names (each with its own application_name, so that the connections of
// each pool can be told apart in pg_stat_activity) and its pool size.
type reloadStep struct {
	version  int
	db       string // "A" or "B"
	maxConns int
}

// TestReloadUnderLoad runs `caddy reload` several times, each with a
// changed config, while concurrent clients refresh tokens, call tools and
// read metadata: no request fails, the signing key, the session and the
// tokens survive every reload, a reload that keeps the database settings
// keeps the pool and its connections, and one that changes them closes the
// old pool without leaking a connection.
func TestReloadUnderLoad(t *testing.T) {
	schemaURL := testpg.Schema(t)
	tagBytes := make([]byte, 4)
	_, _ = rand.Read(tagBytes)
	tag := "cmcp-reload-" + hex.EncodeToString(tagBytes)
	dsn := func(db string) string {
		u, err := url.Parse(schemaURL)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("application_name", tag+"-"+db)
		u.RawQuery = q.Encode()
		return u.String()
	}
	op := startOIDC(t)
	base := withProbe(t, resilOAuth(t, withPostgres(t, exampleText(t)), op.Issuer))
	const dbLine = "database {env.CADDYMCP_DATABASE_URL}"
	if !strings.Contains(base, dbLine) {
		t.Fatalf("config lacks %q", dbLine)
	}
	config := func(s reloadStep) string {
		c := strings.Replace(base, dbLine, fmt.Sprintf("database {env.CADDYMCP_DB_%s}\n\t\tmax_conns %d", s.db, s.maxConns), 1)
		// A visible change in every version.
		return strings.Replace(c, "\n\tmcp_tools\n", fmt.Sprintf("\n\tmcp_tools\n\theader X-Config-Version v%d\n", s.version), 1)
	}
	steps := []reloadStep{
		{1, "A", 16},
		{2, "A", 16}, // same database settings: the pool is kept
		{3, "B", 8},  // another URL and size: a new pool, the old one closed
		{4, "B", 8},
		{5, "A", 16}, // back
	}
	in := newInstance(t, config(steps[0]), "CADDYMCP_E2E_OP_SECRET="+resilOPSecret,
		"CADDYMCP_DB_A="+dsn("A"), "CADDYMCP_DB_B="+dsn("B"))
	in.start()
	t.Cleanup(func() { logCaddyErrors(t, in) })
	issuer, roots := in.base(), localRoots(t, in)
	kid := in.kid()

	// Sign in once; that browser's session must survive every reload.
	f := newAuthFlow(t, issuer, roots, "Reload client")
	grants := []testflow.Tokens{f.tokens(resilScopes), f.tokens(resilScopes), f.tokens(resilScopes)}
	early := f.tokens("product:read") // issued before any reload, used after the last
	if h := jwtHeader(early.AccessToken); h["kid"] != kid {
		t.Fatalf("token kid %v, JWKS kid %s", h["kid"], kid)
	}
	me := func() string {
		r := httpCall(f.b.Client, "GET", issuer+"/auth/me", nil, "")
		if r.status != 200 {
			t.Fatalf("/auth/me: %v", r)
		}
		return string(r.body)
	}
	meBefore := me()

	activity := pgConn(t, testpg.URL(t))
	counts := func() map[string]int { return connCounts(t, activity, tag) }
	before := counts()
	t.Logf("connections before the load: %v", before)

	// The load, all over HTTP/2 as browsers and HTTP libraries speak to a
	// TLS server; every answer must be a success.
	rec := &loadRecorder{}
	load := startLoad(t, roots)
	var versionsMu sync.Mutex
	versions := map[string]int{}
	for i, g := range grants[:2] {
		// A refresh chain, within the token endpoint's default rate limit.
		load.refreshChain(rec, issuer, f.clientID, g.RefreshToken, 250*time.Millisecond, func(_ httpReply, ts testflow.Tokens, ok bool) string {
			return outcomeOf(ok && jwtHeader(ts.AccessToken)["kid"] == kid, false)
		})
		load.every(100*time.Millisecond, func(lc *http.Client, n int) { // tool calls, MCP and REST
			start := time.Now()
			switch n % 3 {
			case 0:
				r, _, ok := callTool(lc, issuer+"/mcp", g.AccessToken, "products_list", map[string]any{"limit": 5})
				rec.add("products_list", true, start, r, outcomeOf(ok, false))
			case 1:
				r, _, ok := callTool(lc, issuer+"/mcp", g.AccessToken, "bookings_create", map[string]any{
					"resource": fmt.Sprintf("room-%d", i), "customer": "load",
					"start": time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Hour).Format(time.RFC3339),
					"end":   time.Date(2031, 1, 1, 0, 30, 0, 0, time.UTC).Add(time.Duration(n) * time.Hour).Format(time.RFC3339)})
				rec.add("bookings_create", true, start, r, outcomeOf(ok, false))
			default:
				r := httpCall(lc, "POST", issuer+"/mcp/tools/order/list", map[string]string{"Authorization": "Bearer " + g.AccessToken,
					"Content-Type": "application/json"}, `{"limit":2}`)
				rec.add("rest_orders", true, start, r, outcomeOf(r.err == nil && r.status == 200, false))
				versionsMu.Lock()
				versions[r.header.Get("X-Config-Version")]++
				versionsMu.Unlock()
			}
		})
	}
	load.every(50*time.Millisecond, func(lc *http.Client, n int) { // metadata, keys and a guarded route that needs no database
		start := time.Now()
		switch n % 4 {
		case 0:
			r := httpCall(lc, "GET", issuer+"/.well-known/oauth-authorization-server", nil, "")
			rec.add("metadata", false, start, r, outcomeOf(r.err == nil && r.status == 200 && jsonString(r.body, "issuer") == issuer, false))
		case 1:
			r := httpCall(lc, "GET", issuer+"/.well-known/oauth-protected-resource/mcp", nil, "")
			rec.add("prm", false, start, r, outcomeOf(r.err == nil && r.status == 200 && jsonString(r.body, "resource") == issuer+"/mcp", false))
		case 2:
			r := httpCall(lc, "GET", issuer+"/oauth/jwks", nil, "")
			rec.add("jwks", false, start, r, outcomeOf(r.err == nil && r.status == 200 && jwksKids(r.body) == kid, false))
		default:
			r := httpCall(lc, "GET", issuer+"/mcp/probe", map[string]string{"Authorization": "Bearer " + grants[2].AccessToken}, "")
			rec.add("bearer_probe", false, start, r, outcomeOf(r.err == nil && r.status == 200, false))
		}
	})

	vc := loadClient(roots, true)
	serving := func(version int) {
		t.Helper()
		want := fmt.Sprintf("v%d", version)
		deadline := time.Now().Add(30 * time.Second)
		for {
			r := httpCall(vc, "GET", issuer+"/mcp/probe", map[string]string{"Authorization": "Bearer " + grants[2].AccessToken}, "")
			if r.status == 200 && r.header.Get("X-Config-Version") == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("config %s not served within 30s: %v", want, r)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	serving(1)
	time.Sleep(1500 * time.Millisecond)
	slowRT := grants[2].RefreshToken
	type inFlightResult struct {
		what string
		r    httpReply
		ok   bool
	}
	var inFlight []inFlightResult
	for _, s := range steps[1:] {
		pids := backendPIDs(t, activity, tag+"-A")
		// Requests that the old config starts and finishes after the
		// reload: their body arrives in two halves, around the reload.
		var slowRefresh, slowTool *slowRequest
		if s.version <= 3 {
			slowRefresh = startSlow(loadClient(roots, true), issuer+"/oauth/token", formHdr,
				url.Values{"grant_type": {"refresh_token"}, "refresh_token": {slowRT}, "client_id": {f.clientID}}.Encode())
			msg, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call",
				"params": map[string]any{"name": "products_list", "arguments": map[string]any{"limit": 1}}})
			slowTool = startSlow(loadClient(roots, true), issuer+"/mcp", map[string]string{"Authorization": "Bearer " + grants[2].AccessToken,
				"Content-Type": "application/json", "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}, string(msg))
			time.Sleep(300 * time.Millisecond) // the old config's handlers are reading the bodies
		}
		if err := os.WriteFile(in.config, []byte(config(s)), 0o600); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		out, err := in.run("reload", "--config", in.config, "--adapter", "caddyfile", "--address", fmt.Sprintf("localhost:%d", in.admin))
		if err != nil {
			t.Fatalf("caddy reload to v%d: %v\n%s", s.version, err, out)
		}
		serving(s.version)
		t.Logf("reloaded to v%d (database %s, max_conns %d) in %v", s.version, s.db, s.maxConns, time.Since(start).Round(time.Millisecond))
		if slowRefresh != nil {
			what := "keeps the database settings"
			if s.db != steps[s.version-2].db {
				what = "replaces the database pool"
			}
			r := slowRefresh.finish()
			if r.err == nil && r.status == 200 {
				slowRT = jsonString(r.body, "refresh_token")
			}
			inFlight = append(inFlight, inFlightResult{"a refresh in flight across a reload that " + what, r,
				r.err == nil && r.status == 200})
			r = slowTool.finish()
			inFlight = append(inFlight, inFlightResult{"a tool call in flight across a reload that " + what, r,
				r.err == nil && r.status == 200 && strings.Contains(string(r.body), `"structuredContent"`)})
		}
		if s.version == 2 {
			// The same database settings: the same pool, whose
			// connections all stay open.
			after := backendPIDs(t, activity, tag+"-A")
			for _, p := range pids {
				if !slices.Contains(after, p) {
					t.Errorf("connection %d of the pool was closed by a reload that kept the database settings (before %v, after %v)", p, pids, after)
				}
			}
		}
		time.Sleep(1500 * time.Millisecond)
		if s.version == 4 {
			// Pool A was released at v3: none of its connections remain.
			if n := settleCount(t, activity, tag+"-A", 0); n != 0 {
				t.Errorf("%d connections of the pool replaced at v3 are still open", n)
			}
		}
	}
	load.end()
	ss := rec.all()
	t.Logf("load: %d requests%s\n\tanswers per config version: %v", len(ss), loadSummary(ss), versions)

	t.Run("no failed request", func(t *testing.T) {
		for _, s := range ss {
			if s.outcome != outOK {
				t.Errorf("%s at %s failed: %s", s.kind, s.start.Format("15:04:05.000"), s.detail)
			}
		}
		worst, which := slowestSample(ss)
		t.Logf("slowest request: %s in %v", which.kind, worst.Round(time.Millisecond))
		if worst > latencyBound {
			t.Errorf("a %s request took %v", which.kind, worst)
		}
		for _, v := range []string{"v1", "v3", "v5"} {
			if versions[v] == 0 {
				t.Errorf("no request was answered by config %s: %v", v, versions)
			}
		}
	})

	t.Run("requests in flight across a reload", func(t *testing.T) {
		// Caddy does not wait for the old config's requests before
		// cleaning it up on a reload; they must still complete.
		for _, f := range inFlight {
			if !f.ok {
				t.Errorf("%s: %v; want it to complete normally", f.what, f.r)
			}
		}
	})

	t.Run("keys, session and tokens unchanged", func(t *testing.T) {
		if got := in.kid(); got != kid {
			t.Errorf("signing key id changed: %s -> %s", kid, got)
		}
		if got := me(); got != meBefore {
			t.Errorf("/auth/me changed: %s -> %s", meBefore, got)
		}
		// Consent and session both remembered: straight back with a code.
		q := testflow.NewRequest(issuer, f.clientID, resilRedirect, "product:read", issuer+"/mcp")
		r := httpCall(f.b.Client, "GET", q.URL(), nil, "")
		if r.status != 302 || !strings.HasPrefix(r.header.Get("Location"), resilRedirect) {
			t.Errorf("authorize with the session from before the reloads: %v (Location %s)", r, r.header.Get("Location"))
		}
		r = httpCall(vc, "GET", issuer+"/mcp/probe", map[string]string{"Authorization": "Bearer " + early.AccessToken}, "")
		if r.status != 200 {
			t.Errorf("access token issued before the reloads: %v", r)
		}
		if r, _ := refreshGrant(vc, issuer, f.clientID, early.RefreshToken); r.status != 200 {
			t.Errorf("refresh token issued before the reloads: %v", r)
		}
	})

	t.Run("compromised key replaced at reload", func(t *testing.T) {
		// `mcp-keys rotate --compromised`, then `caddy reload` for the
		// immediate switch the command and the README promise.
		if out, err := in.run("mcp-keys", "rotate", "--compromised", "--database-env", "CADDYMCP_DB_A"); err != nil {
			t.Fatalf("mcp-keys rotate --compromised: %v\n%s", err, out)
		}
		if out, err := in.run("reload", "--config", in.config, "--adapter", "caddyfile", "--address", fmt.Sprintf("localhost:%d", in.admin), "--force"); err != nil {
			t.Fatalf("caddy reload: %v\n%s", err, out)
		}
		r := httpCall(vc, "GET", issuer+"/oauth/jwks", nil, "")
		if kids := jwksKids(r.body); r.status != 200 || kids == "" || strings.Contains(kids, kid) {
			t.Errorf("JWKS after a compromised-key rotation and caddy reload: key ids %q (withdrawn %s); want only the new key", kids, kid)
		}
		r = httpCall(vc, "GET", issuer+"/mcp/probe", map[string]string{"Authorization": "Bearer " + grants[2].AccessToken}, "")
		if r.status != 401 {
			t.Errorf("a token signed by the withdrawn key after caddy reload: %v; want 401", r)
		}
		tokens := f.tokens("product:read")
		if h := jwtHeader(tokens.AccessToken); h["kid"] == kid {
			t.Errorf("a token issued after the rotation and caddy reload is signed by the withdrawn key %s", kid)
		}
	})

	t.Run("no leaked connections", func(t *testing.T) {
		if n := settleCount(t, activity, tag+"-B", 0); n != 0 {
			t.Errorf("%d connections of the pool replaced at v5 are still open", n)
		}
		after := counts()
		t.Logf("connections before %v, after %v", before, after)
		if after[tag+"-A"] > 16 {
			t.Errorf("%d connections for a pool of 16", after[tag+"-A"])
		}
	})
}

// pgConn opens a connection for checks, closed when the test ends.
func pgConn(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting to PostgreSQL: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// connCounts counts the server's connections per application_name that
// starts with prefix.
func connCounts(t *testing.T, c *pgx.Conn, prefix string) map[string]int {
	t.Helper()
	rows, err := c.Query(context.Background(), `SELECT application_name, count(*) FROM pg_stat_activity
		WHERE starts_with(application_name, $1) GROUP BY 1`, prefix)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for rows.Next() {
		var name string
		var n int
		if err := rows.Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		out[name] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// backendPIDs lists the server processes of the connections named app.
func backendPIDs(t *testing.T, c *pgx.Conn, app string) []int32 {
	t.Helper()
	rows, err := c.Query(context.Background(), `SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid`, app)
	if err != nil {
		t.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	return pids
}

// settleCount waits up to 20 s for the connections named app to number
// want (a closed pool's connections end asynchronously) and returns the
// last count.
func settleCount(t *testing.T, c *pgx.Conn, app string, want int) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		n := connCounts(t, c, app)[app]
		if n == want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// jwtHeader decodes a JWT's header, unverified.
func jwtHeader(token string) map[string]any {
	h, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	var m map[string]any
	if err != nil || json.Unmarshal(b, &m) != nil {
		return nil
	}
	return m
}

// jwksKids joins the key ids of a JWKS.
func jwksKids(body []byte) string {
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if json.Unmarshal(body, &set) != nil {
		return ""
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return strings.Join(kids, " ")
}

// slowRequest is a POST whose body arrives in two parts: the headers and
// the first half at once, the rest when finish is called.
type slowRequest struct {
	pw   *io.PipeWriter
	rest string
	done chan httpReply
}

func startSlow(c *http.Client, u string, hdr map[string]string, body string) *slowRequest {
	pr, pw := io.Pipe()
	s := &slowRequest{pw: pw, rest: body[len(body)/2:], done: make(chan httpReply, 1)}
	req, err := http.NewRequest("POST", u, pr)
	if err != nil {
		s.done <- httpReply{err: err}
		_ = pw.Close()
		return s
	}
	req.ContentLength = int64(len(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	go func() {
		start := time.Now()
		res, err := c.Do(req)
		if err != nil {
			_ = pr.CloseWithError(err)
			s.done <- httpReply{err: err, took: time.Since(start)}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		s.done <- httpReply{status: res.StatusCode, header: res.Header, body: b, err: err, took: time.Since(start)}
	}()
	// Returns once the transport has taken the first half.
	_, _ = pw.Write([]byte(body[:len(body)/2]))
	return s
}

// finish sends the rest of the body and waits for the answer.
func (s *slowRequest) finish() httpReply {
	_, _ = s.pw.Write([]byte(s.rest))
	_ = s.pw.Close()
	return <-s.done
}
