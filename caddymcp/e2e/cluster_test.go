//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testflow"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testpg"
	"github.com/caddymcp/caddymcp/migrations"
)

// propagationBound is how soon a revocation made on one instance must be
// enforced by every other (each reads new revocations every 2 s).
const propagationBound = 5 * time.Second

// routeTransport sends the load balancer's requests to the instance named
// by route ("a", "b"), or to each in turn with "alternate", and records
// which instance answered each request.
type routeTransport struct {
	base   http.RoundTripper
	lbHost string

	mu     sync.Mutex
	route  string
	next   int
	served []string // "<path> <wanted> <served-by>"
}

func (rt *routeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != rt.lbHost {
		return rt.base.RoundTrip(req)
	}
	rt.mu.Lock()
	route := rt.route
	if r, ok := strings.CutPrefix(route, "alternate"); ok {
		route = []string{"a", "b"}[rt.next%2] + r
		rt.next++
	}
	rt.mu.Unlock()
	req = req.Clone(req.Context())
	req.Header.Set("X-Route", route)
	res, err := rt.base.RoundTrip(req)
	if err == nil {
		rt.mu.Lock()
		rt.served = append(rt.served, req.Method+" "+req.URL.Path+" "+route+" "+strings.ToLower(res.Header.Get("X-Served-By")))
		rt.mu.Unlock()
	}
	return res, err
}

func (rt *routeTransport) set(route string) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.route = route
}

// TestClusterBehindLoadBalancer runs two Caddy instances on one
// PostgreSQL database behind a third Caddy's reverse_proxy over HTTPS, with
// the load balancer's origin as the issuer in the caddymcp global option.
// Both start at the same moment on an empty database: one schema, one
// signing key, and no error for a request that comes while it is being
// made. The authorization flow, tokens, sessions and tools work whichever
// instance answers each request; a refresh token rotated on one is
// replayed on the other (the same answer within the grace window, the
// grant revoked after it); a revocation on one is enforced by the other
// within 5 seconds; and a sign-in works through a proxy that terminates
// TLS and passes plain HTTP to the instances.
func TestClusterBehindLoadBalancer(t *testing.T) {
	dsn := testpg.Schema(t)
	op := startOIDC(t)
	lb := newInstance(t, "")
	issuer := lb.base()

	// Each instance serves the example's site over HTTPS, as the example
	// does, and the same site over plain HTTP for a proxy that
	// terminates TLS; the issuer is the load balancer's.
	backend := func(name string) *instance {
		c := withProbe(t, resilOAuth(t, withPostgres(t, exampleText(t)), op.Issuer))
		const dbLine = "database {env.CADDYMCP_DATABASE_URL}"
		const site = "\nlocalhost {\n"
		i := strings.Index(c, site)
		if !strings.Contains(c, dbLine) || i < 0 {
			t.Fatalf("Caddyfile.example no longer has %q and %q", dbLine, site)
		}
		c = strings.Replace(c, dbLine, dbLine+"\n\t\tissuer "+issuer, 1)
		c = strings.Replace(c, site, site+"\theader X-Served-By "+name+"\n", 1)
		plain := strings.Replace(c[strings.Index(c, site):], site, "\nhttp://localhost:{$CADDYMCP_HTTP_PORT} {\n", 1)
		return newInstance(t, c+plain, "CADDYMCP_E2E_OP_SECRET="+resilOPSecret, "CADDYMCP_DATABASE_URL="+dsn)
	}
	a, b := backend("A"), backend("B")

	// Both instances start at the same moment on an empty database.
	a.launch()
	b.launch()
	// Each registers a client as soon as it accepts connections, while
	// the schema may still be in the making.
	var early sync.WaitGroup
	earlyAnswers := make([][]httpReply, 2)
	for i, in := range []*instance{a, b} {
		early.Go(func() { earlyAnswers[i] = registerEarly(in) })
	}
	for _, in := range []*instance{a, b} {
		waitBackend(t, in)
	}
	early.Wait()
	// The load balancer: X-Route picks an instance (a, b over HTTPS;
	// a-http, b-http over plain HTTP), else round robin over HTTPS.
	upstream := func(in *instance) string {
		return fmt.Sprintf("reverse_proxy https://127.0.0.1:%d {\n\t\t\theader_up Host {hostport}\n\t\t\ttransport http {\n\t\t\t\ttls_server_name localhost\n"+
			"\t\t\t\ttls_trust_pool file %s\n\t\t\t}\n\t\t}", in.httpsPort, in.rootCA())
	}
	lbConfig := fmt.Sprintf(`{
	http_port {$CADDYMCP_HTTP_PORT}
	https_port {$CADDYMCP_HTTPS_PORT}
	admin {$CADDYMCP_ADMIN}
	skip_install_trust
}

localhost {
	@a header X-Route a
	handle @a {
		%[1]s
	}
	@b header X-Route b
	handle @b {
		%[2]s
	}
	@ahttp header X-Route a-http
	handle @ahttp {
		reverse_proxy 127.0.0.1:%[3]d
	}
	@bhttp header X-Route b-http
	handle @bhttp {
		reverse_proxy 127.0.0.1:%[4]d
	}
	handle {
		reverse_proxy https://127.0.0.1:%[5]d https://127.0.0.1:%[6]d {
			lb_policy round_robin
			header_up Host {hostport}
			transport http {
				tls_server_name localhost
				tls_trust_pool file %[7]s %[8]s
			}
		}
	}
}
`, upstream(a), upstream(b), a.httpPort, b.httpPort, a.httpsPort, b.httpsPort, a.rootCA(), b.rootCA())
	lb.startWith(lbConfig)
	roots := localRoots(t, lb)
	c := loadClient(roots, true)
	via := func(route string, hdr map[string]string) map[string]string {
		out := map[string]string{"X-Route": route}
		for k, v := range hdr {
			out[k] = v
		}
		return out
	}
	servedBy := func(r httpReply) string { return strings.ToLower(r.header.Get("X-Served-By")) }

	t.Run("simultaneous start", func(t *testing.T) {
		db := pgConn(t, dsn)
		ctx := context.Background()
		all, err := migrations.List("postgres")
		if err != nil {
			t.Fatal(err)
		}
		var versions []int
		rows, err := db.Query(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			versions = append(versions, v)
		}
		if len(versions) != len(all) || versions[0] != 1 || versions[len(versions)-1] != len(all) {
			t.Errorf("schema_migrations holds versions %v; want 1…%d once each", versions, len(all))
		}
		var keys int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM signing_keys`).Scan(&keys); err != nil || keys != 1 {
			t.Errorf("%d signing keys (%v); want one", keys, err)
		}
		var kids []string
		for _, route := range []string{"a", "b"} {
			r := httpCall(c, "GET", issuer+"/oauth/jwks", via(route, nil), "")
			if r.status != 200 || servedBy(r) != route {
				t.Fatalf("JWKS through %s: %v (served by %q)", route, r, servedBy(r))
			}
			kids = append(kids, jwksKids(r.body))
		}
		if kids[0] == "" || strings.Contains(kids[0], " ") || kids[0] != kids[1] {
			t.Errorf("JWKS key ids: A %q, B %q; want the same single key", kids[0], kids[1])
		}
		// Requests that came before the database was ready wait for it or
		// get a 503 with Retry-After, never a server error.
		for i, answers := range earlyAnswers {
			name := []string{"A", "B"}[i]
			var statuses []int
			for _, r := range answers {
				statuses = append(statuses, r.status)
			}
			t.Logf("registrations on %s as it started: %v", name, statuses)
			for _, r := range answers {
				if r.status != 201 && !oauthUnavailable(r) {
					t.Errorf("registration on %s as it started: %v; want 201, or 503 temporarily_unavailable until the database is ready", name, r)
				}
			}
			if len(answers) == 0 || answers[len(answers)-1].status != 201 {
				t.Errorf("registration on %s as it started never succeeded: %v", name, answers)
			}
		}
	})

	// One browser whose every request to the load balancer goes to the
	// other instance than the one before.
	br := testflow.NewBrowser(t, roots)
	route := &routeTransport{base: br.Client.Transport, lbHost: strings.TrimPrefix(issuer, "https://"), route: "alternate"}
	br.Client.Transport = route
	clientID := br.Register(issuer, "Cluster client", resilRedirect)
	f := &authFlow{t: t, b: br, base: issuer, clientID: clientID}
	first := f.tokens(resilScopes)
	second := f.tokens(resilScopes) // consent remembered: straight back with a code

	t.Run("flow across instances", func(t *testing.T) {
		route.mu.Lock()
		served := slices.Clone(route.served)
		route.mu.Unlock()
		t.Logf("requests through the load balancer:\n\t%s", strings.Join(served, "\n\t"))
		seen := map[string]bool{}
		for _, s := range served {
			fields := strings.Fields(s)
			if fields[2] != fields[3] {
				t.Errorf("%s: sent to %s, answered by %q", s, fields[2], fields[3])
			}
			seen[fields[3]] = true
		}
		if !seen["a"] || !seen["b"] || len(served) < 8 {
			t.Errorf("the flow did not use both instances: %v", served)
		}
		// Tokens, session and tools on both.
		for _, rt := range []string{"a", "b"} {
			r := httpCall(c, "GET", issuer+"/mcp/probe", via(rt, map[string]string{"Authorization": "Bearer " + first.AccessToken}), "")
			if r.status != 200 || servedBy(r) != rt {
				t.Errorf("access token on %s: %v", rt, r)
			}
			route.set(rt)
			r = httpCall(br.Client, "GET", issuer+"/auth/me", nil, "")
			if r.status != 200 || !strings.Contains(string(r.body), "ada@example.com") {
				t.Errorf("session on %s: %v", rt, r)
			}
		}
		route.set("alternate")
		r, out, ok := callTool(loadClient(roots, true), issuer+"/mcp", first.AccessToken, "products_create",
			map[string]any{"sku": "CLUSTER-1", "name": "Made on one", "price_minor": 100, "currency": "EUR", "stock": 3})
		if !ok {
			t.Fatalf("products_create: %v %+v", r, out)
		}
		id := jsonString(out.Result.StructuredContent, "id")
		for _, rt := range []string{"a", "b"} {
			msg := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"products_get","arguments":{"id":"` + id + `"}}}`
			r := httpCall(c, "POST", issuer+"/mcp", via(rt, map[string]string{"Authorization": "Bearer " + first.AccessToken,
				"Content-Type": "application/json", "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}), msg)
			if r.status != 200 || !strings.Contains(string(r.body), "Made on one") || servedBy(r) != rt {
				t.Errorf("products_get on %s: %v", rt, r)
			}
		}
		// Without a route the load balancer spreads requests over both.
		spread := map[string]int{}
		for range 6 {
			spread[servedBy(httpCall(c, "GET", issuer+"/.well-known/oauth-authorization-server", nil, ""))]++
		}
		if spread["a"] == 0 || spread["b"] == 0 {
			t.Errorf("round robin answered by %v", spread)
		}
	})

	// A refresh on A, replayed on B at once: the same answer.
	form := func(rt string) string {
		return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID}}.Encode()
	}
	tokenHdr := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	rotated := httpCall(c, "POST", issuer+"/oauth/token", via("a", tokenHdr), form(first.RefreshToken))
	rotatedAt := time.Now()
	if rotated.status != 200 || servedBy(rotated) != "a" {
		t.Fatalf("refresh on A: %v", rotated)
	}
	t.Run("replay within the grace window", func(t *testing.T) {
		r := httpCall(c, "POST", issuer+"/oauth/token", via("b", tokenHdr), form(first.RefreshToken))
		t.Logf("replayed %v after the rotation", time.Since(rotatedAt).Round(time.Millisecond))
		if r.status != 200 || servedBy(r) != "b" {
			t.Fatalf("replay on B within the grace window: %v; want 200 with the same tokens", r)
		}
		for _, k := range []string{"access_token", "refresh_token"} {
			if jsonString(r.body, k) != jsonString(rotated.body, k) {
				t.Errorf("replay on B within the grace window returned another %s", k)
			}
		}
	})

	t.Run("revocation reaches the other instance", func(t *testing.T) {
		for _, dir := range [][2]string{{"a", "b"}, {"b", "a"}} {
			q, code := f.code("product:read")
			tokens := br.Redeem(q, code)
			probe := func() httpReply {
				return httpCall(c, "GET", issuer+"/mcp/probe", via(dir[1], map[string]string{"Authorization": "Bearer " + tokens.AccessToken}), "")
			}
			if r := probe(); r.status != 200 { // also in that instance's verified-token cache now
				t.Fatalf("token on %s before revocation: %v", dir[1], r)
			}
			r := httpCall(c, "POST", issuer+"/oauth/revoke", via(dir[0], tokenHdr),
				url.Values{"token": {tokens.AccessToken}, "client_id": {clientID}}.Encode())
			revokedAt := time.Now()
			if r.status != 200 || servedBy(r) != dir[0] {
				t.Fatalf("revoke on %s: %v", dir[0], r)
			}
			for {
				r := probe()
				if r.status == 401 {
					t.Logf("revoked on %s, refused on %s after %v", dir[0], dir[1], time.Since(revokedAt).Round(time.Millisecond))
					break
				}
				if time.Since(revokedAt) > propagationBound {
					t.Errorf("token revoked on %s still accepted on %s after %v: %v", dir[0], dir[1], propagationBound, r)
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	})

	t.Run("reuse after the grace window", func(t *testing.T) {
		// The grace window is 10 s (refresh_grace's default).
		if d := time.Until(rotatedAt.Add(11 * time.Second)); d > 0 {
			time.Sleep(d)
		}
		r := httpCall(c, "POST", issuer+"/oauth/token", via("b", tokenHdr), form(first.RefreshToken))
		if r.status != 400 || jsonString(r.body, "error") != "invalid_grant" || servedBy(r) != "b" {
			t.Fatalf("reuse on B of the token rotated on A: %v; want 400 invalid_grant", r)
		}
		reusedAt := time.Now()
		// The whole grant is revoked: the rotated token fails on A, and
		// the access token issued with it is refused on A within 5 s.
		r = httpCall(c, "POST", issuer+"/oauth/token", via("a", tokenHdr), form(jsonString(rotated.body, "refresh_token")))
		if r.status != 400 || jsonString(r.body, "error") != "invalid_grant" {
			t.Errorf("the successor token on A after the reuse: %v; want 400 invalid_grant", r)
		}
		at := jsonString(rotated.body, "access_token")
		for {
			r := httpCall(c, "GET", issuer+"/mcp/probe", via("a", map[string]string{"Authorization": "Bearer " + at}), "")
			if r.status == 401 {
				break
			}
			if time.Since(reusedAt) > propagationBound {
				t.Errorf("access token of a grant revoked on B still accepted on A after %v: %v", propagationBound, r)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		// Another grant of the same client is untouched.
		if r := httpCall(c, "GET", issuer+"/mcp/probe", via("a", map[string]string{"Authorization": "Bearer " + second.AccessToken}), ""); r.status != 200 {
			t.Errorf("a token of another grant: %v", r)
		}
	})

	t.Run("sign-in through a proxy that terminates TLS", func(t *testing.T) {
		// The same flow with each request to the other instance's
		// plain-HTTP site: the issuer set in the caddymcp option names
		// the https origin the browser sees.
		hb := testflow.NewBrowser(t, roots)
		hr := &routeTransport{base: hb.Client.Transport, lbHost: route.lbHost, route: "alternate-http"}
		hb.Client.Transport = hr
		id := hb.Register(issuer, "Cluster client over HTTP", resilRedirect)
		q := testflow.NewRequest(issuer, id, resilRedirect, "product:read", issuer+"/mcp")
		u := q.URL()
		for range 10 {
			r := httpCall(hb.Client, "GET", u, nil, "")
			loc := r.header.Get("Location")
			if r.err != nil || r.status < 300 || r.status > 399 || loc == "" {
				break
			}
			next, err := url.Parse(u)
			if err == nil {
				next, err = next.Parse(loc)
			}
			if err != nil {
				t.Fatal(err)
			}
			if next.String() == u {
				t.Errorf("GET %s redirects to itself behind a proxy that terminates TLS (issuer %s): the sign-in cannot start", u, issuer)
				return
			}
			if strings.HasPrefix(next.String(), resilRedirect) {
				break
			}
			u = next.String()
		}
		hf := &authFlow{t: t, b: hb, base: issuer, clientID: id}
		tokens := hf.tokens("product:read")
		if r := httpCall(c, "GET", issuer+"/mcp/probe", via("b-http", map[string]string{"Authorization": "Bearer " + tokens.AccessToken}), ""); r.status != 200 {
			t.Errorf("token obtained through the plain-HTTP sites: %v", r)
		}
	})

	t.Run("revocation on the account page reaches the other instance", func(t *testing.T) {
		q, code := f.code("product:read")
		tokens := br.Redeem(q, code)
		probe := func() httpReply {
			return httpCall(c, "GET", issuer+"/mcp/probe", via("b", map[string]string{"Authorization": "Bearer " + tokens.AccessToken}), "")
		}
		if r := probe(); r.status != 200 {
			t.Fatalf("token on B before revocation: %v", r)
		}
		// The account page on A lists the newest grant first: this one.
		route.set("a")
		defer route.set("alternate")
		res, page := br.Follow(issuer+"/auth/account", "")
		if res.StatusCode != 200 || !strings.Contains(page, "Cluster client") || !strings.Contains(page, "This session") {
			t.Fatalf("account page on A: %d\n%s", res.StatusCode, page)
		}
		field := func(name string) string {
			_, rest, ok := strings.Cut(page, `name="`+name+`" value="`)
			value, _, _ := strings.Cut(rest, `"`)
			if !ok || value == "" {
				t.Fatalf("no %s in the account page:\n%s", name, page)
			}
			return value
		}
		res, body := br.PostForm(issuer+"/auth/account", url.Values{"csrf_token": {field("csrf_token")},
			"action": {"revoke_application"}, "grant": {field("grant")}})
		revokedAt := time.Now()
		if res.StatusCode != 303 || res.Header.Get("X-Served-By") != "A" {
			t.Fatalf("revoking on A: %d (served by %q)\n%s", res.StatusCode, res.Header.Get("X-Served-By"), body)
		}
		for {
			r := probe()
			if r.status == 401 {
				t.Logf("revoked on the account page of A, refused on B after %v", time.Since(revokedAt).Round(time.Millisecond))
				break
			}
			if time.Since(revokedAt) > propagationBound {
				t.Errorf("token revoked on the account page of A still accepted on B after %v: %v", propagationBound, r)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		// The consent is forgotten on every instance: B asks again.
		route.set("b")
		q = testflow.NewRequest(issuer, clientID, resilRedirect, "product:read", issuer+"/mcp")
		res, body = br.Follow(q.URL(), q.Redirect)
		if res.StatusCode != 200 || !strings.Contains(body, `name="csrf_token"`) {
			t.Errorf("the next authorization after revoking: %d %q; want the consent page", res.StatusCode, res.Header.Get("Location"))
		}
	})

	for name, in := range map[string]*instance{"A": a, "B": b, "load balancer": lb} {
		for line := range strings.Lines(in.out.String()) {
			if strings.Contains(line, `"level":"error"`) {
				t.Errorf("%s logged an error: %s", name, strings.TrimSpace(line))
			}
		}
	}
}

// registerEarly registers a client on an instance's plain-HTTP site as
// soon as it accepts connections, retrying until it gets 201 (at most 15
// answers, within the default registration rate limit); it returns every
// answer.
func registerEarly(in *instance) []httpReply {
	c := &http.Client{Timeout: 3 * latencyBound}
	u := fmt.Sprintf("http://127.0.0.1:%d/oauth/register", in.httpPort)
	body := `{"client_name":"early","redirect_uris":["` + resilRedirect + `"],"token_endpoint_auth_method":"none"}`
	var answers []httpReply
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline) && len(answers) < 15; {
		req, _ := http.NewRequest("POST", u, strings.NewReader(body))
		req.Host = "localhost"
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		res, err := c.Do(req)
		if err != nil { // not listening yet
			time.Sleep(10 * time.Millisecond)
			continue
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		answers = append(answers, httpReply{status: res.StatusCode, header: res.Header, body: b, took: time.Since(start)})
		if res.StatusCode == 201 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return answers
}

// waitBackend waits until a launched instance answers on its plain-HTTP
// port and, with its local CA's certificate, on its HTTPS port.
func waitBackend(t *testing.T, in *instance) {
	t.Helper()
	plain := &http.Client{Timeout: 5 * time.Second}
	in.await(60*time.Second, "", func() bool {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/.well-known/oauth-authorization-server", in.httpPort), nil)
		req.Host = "localhost"
		res, err := plain.Do(req)
		if err != nil {
			return false
		}
		res.Body.Close()
		tc := in.client()
		if res.StatusCode != 200 || tc == nil {
			return false
		}
		res, err = tc.Get(in.base() + "/.well-known/oauth-authorization-server")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})
}
