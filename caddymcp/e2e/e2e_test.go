//go:build e2e

// Package e2e drives a real Caddy binary, built with xcaddy from this
// checkout, over real HTTP. scripts/test.sh builds the binary and passes
// its path in CADDYMCP_CADDY_BIN.
package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testflow"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testoidc"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testpg"
	"github.com/caddymcp/caddymcp/migrations"
)

func caddyBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("CADDYMCP_CADDY_BIN")
	if bin == "" {
		t.Fatal("CADDYMCP_CADDY_BIN is not set; run scripts/test.sh, which builds the binary with xcaddy")
	}
	return bin
}

func repoFile(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// instance is one Caddy host: its folders, ports and environment.
type instance struct {
	t                          *testing.T
	bin, dir, config           string
	httpPort, httpsPort, admin int
	env                        []string
	proc                       *exec.Cmd
	out                        *syncBuffer
	done                       chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newInstance prepares a host that runs config (the text of a Caddyfile).
func newInstance(t *testing.T, config string, extraEnv ...string) *instance {
	t.Helper()
	dir := t.TempDir()
	in := &instance{t: t, bin: caddyBin(t), dir: dir, config: filepath.Join(dir, "Caddyfile"),
		httpPort: testflow.FreePort(t), httpsPort: testflow.FreePort(t), admin: testflow.FreePort(t)}
	if err := os.WriteFile(in.config, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	in.env = append(os.Environ(),
		"HOME="+dir,
		"XDG_DATA_HOME="+filepath.Join(dir, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		fmt.Sprintf("CADDYMCP_HTTP_PORT=%d", in.httpPort),
		fmt.Sprintf("CADDYMCP_HTTPS_PORT=%d", in.httpsPort),
		fmt.Sprintf("CADDYMCP_ADMIN=localhost:%d", in.admin),
	)
	in.env = append(in.env, extraEnv...)
	return in
}

func (in *instance) base() string { return fmt.Sprintf("https://localhost:%d", in.httpsPort) }

// run executes a caddy subcommand to completion.
func (in *instance) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, in.bin, args...)
	cmd.Env = in.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// launch runs `caddy run` without waiting for the host to answer; the
// process is stopped when the test ends.
func (in *instance) launch() {
	in.t.Helper()
	in.out = &syncBuffer{}
	in.proc = exec.Command(in.bin, "run", "--config", in.config, "--adapter", "caddyfile")
	in.proc.Env = in.env
	in.proc.Stdout, in.proc.Stderr = in.out, in.out
	if err := in.proc.Start(); err != nil {
		in.t.Fatal(err)
	}
	in.done = make(chan error, 1)
	go func() { in.done <- in.proc.Wait() }()
	in.t.Cleanup(in.stop)
}

// await calls answered every 100 ms until it reports true, failing the
// test when Caddy exits first or when within has passed; where, if not
// empty, says where Caddy was to answer.
func (in *instance) await(within time.Duration, where string, answered func() bool) {
	in.t.Helper()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		select {
		case err := <-in.done:
			in.t.Fatalf("caddy exited early (%v):\n%s", err, in.out)
		default:
		}
		if answered() {
			return
		}
	}
	if where != "" {
		where = " at " + where
	}
	in.t.Fatalf("caddy did not answer%s within %v:\n%s", where, within, in.out)
}

// start runs `caddy run` and waits until the host answers over HTTPS.
func (in *instance) start() {
	in.t.Helper()
	in.launch()
	in.await(30*time.Second, "", func() bool {
		c := in.client()
		if c == nil {
			return false
		}
		res, err := c.Get(in.base() + "/.well-known/oauth-authorization-server")
		if err != nil {
			return false
		}
		res.Body.Close()
		return true
	})
}

// startWith writes config as the host's Caddyfile and starts it. When
// the test fails, the end of Caddy's output is logged.
func (in *instance) startWith(config string) {
	in.t.Helper()
	if err := os.WriteFile(in.config, []byte(config), 0o600); err != nil {
		in.t.Fatal(err)
	}
	in.start()
	in.t.Cleanup(func() {
		if in.t.Failed() {
			lines := strings.Split(strings.TrimSpace(in.out.String()), "\n")
			in.t.Logf("caddy output (last %d of %d lines):\n%s", min(40, len(lines)), len(lines),
				strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})
}

// stop ends the process gracefully and waits for it.
func (in *instance) stop() {
	if in.proc == nil || in.proc.Process == nil {
		return
	}
	_ = in.proc.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.done:
	case <-time.After(15 * time.Second):
		_ = in.proc.Process.Kill()
		<-in.done
	}
	in.proc = nil
}

// rootCA is the file of the host's local CA certificate.
func (in *instance) rootCA() string {
	return filepath.Join(in.dir, "data", "caddy", "pki", "authorities", "local", "root.crt")
}

// roots is the certificate pool of the host's local CA; nil until the CA
// exists.
func (in *instance) roots() *x509.CertPool {
	pem, err := os.ReadFile(in.rootCA())
	if err != nil {
		return nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil
	}
	return pool
}

// stopProcess ends a process gracefully: SIGTERM, a kill when it has not
// ended after grace, and in either case it waits until done is closed.
func stopProcess(p *os.Process, done <-chan struct{}, grace time.Duration) {
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		_ = p.Kill()
		<-done
	}
}

// client trusts the host's local CA; nil until the CA exists.
func (in *instance) client() *http.Client {
	pool := in.roots()
	if pool == nil {
		return nil
	}
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// do sends a request and logs the exchange, so a failure shows the trace.
func (in *instance) do(method, path string, hdr map[string]string) (*http.Response, []byte) {
	in.t.Helper()
	return in.send(method, path, hdr, "")
}

// send is do with a request body.
func (in *instance) send(method, path string, hdr map[string]string, payload string) (*http.Response, []byte) {
	in.t.Helper()
	var rd io.Reader
	if payload != "" {
		rd = strings.NewReader(payload)
	}
	req, err := http.NewRequest(method, in.base()+path, rd)
	if err != nil {
		in.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := in.client()
	if c == nil {
		in.t.Fatal("no local CA certificate")
	}
	res, err := c.Do(req)
	if err != nil {
		in.t.Fatalf("%s %s: %v\ncaddy output:\n%s", method, path, err, in.out)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	in.t.Logf("%s %s -> %d %s\n\tWWW-Authenticate: %s\n\t%s", method, path, res.StatusCode, res.Header.Get("Content-Type"),
		res.Header.Get("WWW-Authenticate"), body)
	return res, body
}

func (in *instance) getJSON(path string, v any) {
	in.t.Helper()
	res, body := in.do("GET", path, nil)
	if res.StatusCode != 200 {
		in.t.Fatalf("GET %s: status %d", path, res.StatusCode)
	}
	if err := json.Unmarshal(body, v); err != nil {
		in.t.Fatalf("GET %s: %v", path, err)
	}
}

func (in *instance) kid() string {
	in.t.Helper()
	var jwks struct {
		Keys []struct {
			Kty, Crv, Kid, Alg, Use, X, Y string
			D                             string `json:"d"`
		} `json:"keys"`
	}
	in.getJSON("/oauth/jwks", &jwks)
	if len(jwks.Keys) != 1 {
		in.t.Fatalf("JWKS has %d keys, want 1", len(jwks.Keys))
	}
	k := jwks.Keys[0]
	if k.Kty != "EC" || k.Crv != "P-256" || k.Alg != "ES256" || k.Use != "sig" || k.Kid == "" || k.X == "" || k.D != "" {
		in.t.Fatalf("JWKS key = %+v", k)
	}
	return k.Kid
}

// checkSlice asserts the metadata, JWKS and challenge of a running host
// and returns the key id.
func (in *instance) checkSlice() string {
	in.t.Helper()
	issuer := in.base()
	var meta map[string]any
	in.getJSON("/.well-known/oauth-authorization-server", &meta)
	if meta["issuer"] != issuer || meta["jwks_uri"] != issuer+"/oauth/jwks" {
		in.t.Errorf("metadata issuer %v, jwks_uri %v; want %s", meta["issuer"], meta["jwks_uri"], issuer)
	}
	if m, _ := meta["code_challenge_methods_supported"].([]any); len(m) != 1 || m[0] != "S256" {
		in.t.Errorf("code_challenge_methods_supported = %v", meta["code_challenge_methods_supported"])
	}
	if s, _ := meta["scopes_supported"].([]any); len(s) != 8 {
		in.t.Errorf("scopes_supported = %v", meta["scopes_supported"])
	}
	for field, path := range map[string]string{"authorization_endpoint": "/oauth/authorize", "token_endpoint": "/oauth/token",
		"registration_endpoint": "/oauth/register", "revocation_endpoint": "/oauth/revoke", "introspection_endpoint": "/oauth/introspect"} {
		if meta[field] != issuer+path {
			in.t.Errorf("%s = %v, want %s", field, meta[field], issuer+path)
		}
	}
	if meta["authorization_response_iss_parameter_supported"] != true {
		in.t.Errorf("authorization_response_iss_parameter_supported = %v", meta["authorization_response_iss_parameter_supported"])
	}
	kid := in.kid()
	in.checkRegistrationAndToken()

	// Protected resource metadata: the same document at both URLs.
	var prmPath, prmRoot map[string]any
	in.getJSON("/.well-known/oauth-protected-resource/mcp", &prmPath)
	in.getJSON("/.well-known/oauth-protected-resource", &prmRoot)
	if fmt.Sprint(prmPath) != fmt.Sprint(prmRoot) {
		in.t.Errorf("PRM differs between the two URLs:\n%v\n%v", prmPath, prmRoot)
	}
	if prmPath["resource"] != issuer+"/mcp" {
		in.t.Errorf("PRM resource = %v", prmPath["resource"])
	}
	if as, _ := prmPath["authorization_servers"].([]any); len(as) != 1 || as[0] != issuer {
		in.t.Errorf("PRM authorization_servers = %v, want [%s] byte for byte", prmPath["authorization_servers"], issuer)
	}

	// No token: 401, the challenge first and the seed's JSON body.
	res, body := in.do("POST", "/mcp", map[string]string{"Content-Type": "application/json"})
	if res.StatusCode != 401 {
		in.t.Fatalf("POST /mcp without a token: %d", res.StatusCode)
	}
	wantChallenge := `Bearer resource_metadata="` + issuer + `/.well-known/oauth-protected-resource/mcp"`
	if ch := res.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, wantChallenge) {
		in.t.Errorf("WWW-Authenticate = %q, want it to start with %q", ch, wantChallenge)
	}
	const wantBody = `{"error":"unauthorized","error_description":"Bearer token required. See WWW-Authenticate header for authentication details."}`
	if string(body) != wantBody {
		in.t.Errorf("401 body = %s", body)
	}
	if res.Header.Get("Content-Type") != "application/json" {
		in.t.Errorf("401 Content-Type = %q", res.Header.Get("Content-Type"))
	}
	return kid
}

// checkRegistrationAndToken registers a client over HTTP and checks the
// token and authorization endpoints' answers to bad requests.
func (in *instance) checkRegistrationAndToken() {
	in.t.Helper()
	res, body := in.send("POST", "/oauth/register", map[string]string{"Content-Type": "application/json"},
		`{"client_name":"e2e","redirect_uris":["http://127.0.0.1:33418/cb"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]}`)
	var reg map[string]any
	if res.StatusCode != 201 || json.Unmarshal(body, &reg) != nil || reg["client_id"] == "" || reg["client_secret"] != nil {
		in.t.Fatalf("registration: %d %s", res.StatusCode, body)
	}
	if res.Header.Get("Cache-Control") != "no-store" {
		in.t.Errorf("registration Cache-Control = %q", res.Header.Get("Cache-Control"))
	}
	clientID, _ := reg["client_id"].(string)
	res, body = in.send("POST", "/oauth/register", map[string]string{"Content-Type": "application/json"},
		`{"redirect_uris":["javascript:alert(1)"]}`)
	if res.StatusCode != 400 || !strings.Contains(string(body), "invalid_redirect_uri") {
		in.t.Errorf("hostile redirect URI: %d %s", res.StatusCode, body)
	}
	res, body = in.send("POST", "/oauth/token", map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
		"grant_type=authorization_code&code=nope&client_id="+clientID+"&code_verifier="+strings.Repeat("a", 43))
	if res.StatusCode != 400 || !strings.Contains(string(body), `"invalid_grant"`) || res.Header.Get("Cache-Control") != "no-store" {
		in.t.Errorf("unknown code: %d %s", res.StatusCode, body)
	}
	res, body = in.send("POST", "/oauth/token", map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
		"grant_type=password&username=a&password=b")
	if res.StatusCode != 400 || !strings.Contains(string(body), `"unsupported_grant_type"`) {
		in.t.Errorf("password grant: %d %s", res.StatusCode, body)
	}
	res, _ = in.do("GET", "/oauth/authorize?client_id=unknown&response_type=code", nil)
	if res.StatusCode != 400 || res.Header.Get("Location") != "" || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		in.t.Errorf("unknown client at authorize: %d, Location %q", res.StatusCode, res.Header.Get("Location"))
	}
	res, _ = in.do("OPTIONS", "/oauth/token", map[string]string{"Origin": "http://localhost:6274", "Access-Control-Request-Method": "POST"})
	if res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Origin") == "" {
		in.t.Errorf("token preflight: %d %v", res.StatusCode, res.Header)
	}
}

func TestListModules(t *testing.T) {
	in := newInstance(t, "")
	out, err := in.run("list-modules")
	if err != nil {
		t.Fatalf("list-modules: %v\n%s", err, out)
	}
	for _, m := range []string{"caddymcp", "http.handlers.mcp_oauth", "http.handlers.mcp_bearer", "http.handlers.mcp_tools"} {
		if !strings.Contains("\n"+out, "\n"+m+"\n") {
			t.Errorf("list-modules lacks %s", m)
		}
	}
}

func TestExampleValidates(t *testing.T) {
	in := newInstance(t, "")
	out, err := in.run("adapt", "--config", repoFile(t, "Caddyfile.example"), "--validate")
	if err != nil {
		t.Fatalf("caddy adapt --validate Caddyfile.example: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(in.dir, "data", "caddy", "caddymcp")); !os.IsNotExist(err) {
		t.Errorf("validating created the store (err %v)", err)
	}
	broken := filepath.Join(in.dir, "Broken.caddyfile")
	if err := os.WriteFile(broken, []byte("localhost {\n\tmcp_bearer /mcp* {\n\t\tscopez booking:read\n\t}\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = in.run("adapt", "--config", broken, "--validate")
	if err == nil || !strings.Contains(out, "Broken.caddyfile:3") || !strings.Contains(out, "unrecognized subdirective 'scopez'") {
		t.Errorf("broken Caddyfile: err %v, output:\n%s", err, out)
	}
}

func exampleText(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(repoFile(t, "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// withPostgres turns on the example's commented-out database line.
func withPostgres(t *testing.T, example string) string {
	t.Helper()
	const line = "# database {env.CADDYMCP_DATABASE_URL}"
	if !strings.Contains(example, line) {
		t.Fatalf("Caddyfile.example no longer has the line %q", line)
	}
	return strings.Replace(example, line, "database {env.CADDYMCP_DATABASE_URL}", 1)
}

// TestExampleServes runs Caddyfile.example on both stores: the first
// slice answers over real HTTPS, and the signing key survives a reload
// and a restart.
func TestExampleServes(t *testing.T) {
	t.Run("embedded", func(t *testing.T) {
		in := newInstance(t, exampleText(t))
		in.start()
		kid := in.checkSlice()
		db := filepath.Join(in.dir, "data", "caddy", "caddymcp", "caddymcp.db")
		if fi, err := os.Stat(db); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("embedded store %s: %v", db, err)
		}
		reloadAndRestart(t, in, kid)
	})
	t.Run("postgres", func(t *testing.T) {
		in := newInstance(t, withPostgres(t, exampleText(t)), "CADDYMCP_DATABASE_URL="+testpg.Schema(t))
		in.start()
		kid := in.checkSlice()
		if _, err := os.Stat(filepath.Join(in.dir, "data", "caddy", "caddymcp")); !os.IsNotExist(err) {
			t.Errorf("the PostgreSQL host created an embedded store (err %v)", err)
		}
		reloadAndRestart(t, in, kid)
	})
}

func reloadAndRestart(t *testing.T, in *instance, kid string) {
	t.Helper()
	out, err := in.run("reload", "--config", in.config, "--adapter", "caddyfile", "--address", fmt.Sprintf("localhost:%d", in.admin), "--force")
	if err != nil {
		t.Fatalf("caddy reload: %v\n%s", err, out)
	}
	if got := in.kid(); got != kid {
		t.Errorf("kid changed across reload: %s -> %s", kid, got)
	}
	in.stop()
	in.start()
	if got := in.checkSlice(); got != kid {
		t.Errorf("kid changed across restart: %s -> %s", kid, got)
	}
}

// TestRefusesToStartOnBadDatabase: a wrong password stops Caddy at start
// with a clear message that does not contain the password.
func TestRefusesToStartOnBadDatabase(t *testing.T) {
	good := testpg.URL(t)
	const secret = "Wr0ng-Secret-Value"
	bad := strings.Replace(good, "@", ":"+secret+"@", 1)
	if i := strings.Index(good, "://"); i >= 0 {
		if at := strings.Index(good, "@"); at > i {
			user := good[i+3 : at]
			if c := strings.Index(user, ":"); c >= 0 {
				user = user[:c]
			}
			bad = good[:i+3] + user + ":" + secret + good[at:]
		}
	}
	in := newInstance(t, withPostgres(t, exampleText(t)), "CADDYMCP_DATABASE_URL="+bad)
	start := time.Now()
	out, err := in.run("run", "--config", in.config, "--adapter", "caddyfile")
	if err == nil {
		t.Fatal("caddy started with a wrong database password")
	}
	if !strings.Contains(out, "password authentication failed") {
		t.Errorf("output does not explain the failure:\n%s", out)
	}
	if strings.Contains(out, secret) {
		t.Errorf("output reveals the password:\n%s", out)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("refusing took %v", d)
	}
}

// TestMigrateCommand applies the migrations by hand on both stores; a
// second run finds nothing to do and reports the same version.
func TestMigrateCommand(t *testing.T) {
	all, err := migrations.List("sqlite")
	if err != nil {
		t.Fatal(err)
	}
	version := fmt.Sprintf("schema version %d", len(all))
	in := newInstance(t, "")
	path := filepath.Join(in.dir, "by-hand", "caddymcp.db")
	for range 2 {
		out, err := in.run("mcp-migrate", "--embedded-path", path)
		if err != nil || !strings.Contains(out, "embedded store "+path+": "+version) {
			t.Fatalf("mcp-migrate (embedded): %v\n%s", err, out)
		}
	}
	pg := newInstance(t, "", "CADDYMCP_DATABASE_URL="+testpg.Schema(t))
	for range 2 {
		out, err := pg.run("mcp-migrate")
		if err != nil || !strings.Contains(out, "PostgreSQL store: "+version) {
			t.Fatalf("mcp-migrate (postgres): %v\n%s", err, out)
		}
	}
	bad := newInstance(t, "", "CADDYMCP_DATABASE_URL=postgres://u:Secr3tPw@127.0.0.1:1/db?connect_timeout=2")
	out, err := bad.run("mcp-migrate", "--timeout", "5s")
	if err == nil || strings.Contains(out, "Secr3tPw") || !strings.Contains(out, "PostgreSQL store") {
		t.Errorf("mcp-migrate against nothing: %v\n%s", err, out)
	}
}

// replaceOAuth replaces a site's mcp_oauth — a bare line, or a block such
// as the example's with its development sign-in and policy — with block,
// which starts with "\tmcp_oauth" and ends with a newline.
func replaceOAuth(t *testing.T, config, block string) string {
	t.Helper()
	const line, open, end = "\n\tmcp_oauth\n", "\n\tmcp_oauth {\n", "\n\t}\n"
	if i := strings.Index(config, line); i >= 0 {
		return config[:i+1] + block + config[i+len(line):]
	}
	i := strings.Index(config, open)
	if i < 0 {
		t.Fatalf("the configuration has no mcp_oauth line or block:\n%s", config)
	}
	j := strings.Index(config[i+len(open)-1:], end)
	if j < 0 {
		t.Fatalf("the mcp_oauth block does not end:\n%s", config)
	}
	return config[:i+1] + block + config[i+len(open)-1+j+len(end):]
}

// withLogin replaces the example's mcp_oauth (its development sign-in and
// policy) with one that signs users in through a local OpenID provider
// (standing in for Google) and lets one address in with two scopes.
func withLogin(t *testing.T, example, issuer string) string {
	t.Helper()
	block := "\tmcp_oauth {\n\t\tlogin oidc test {\n\t\t\tissuer " + issuer +
		"\n\t\t\tclient_id caddymcp-e2e\n\t\t\tclient_secret {env.CADDYMCP_E2E_OP_SECRET}\n\t\t}\n" +
		"\t\tallow email ada@example.com {\n\t\t\tscopes booking:read product:read\n\t\t}\n\t}\n"
	return replaceOAuth(t, example, block)
}

// startOIDC starts the local OpenID provider that stands in for Google,
// with the one user that withLogin and resilOAuth let in.
func startOIDC(t *testing.T) *testoidc.Provider {
	t.Helper()
	return testoidc.Start(t, resilOPClient, resilOPSecret, resilUser)
}

// startLoginHost starts Caddyfile.example with sign-in through the local
// OpenID provider (withLogin), and returns it with a browser that trusts
// its local CA.
func startLoginHost(t *testing.T) (*instance, *testflow.Browser) {
	t.Helper()
	op := startOIDC(t)
	in := newInstance(t, withLogin(t, exampleText(t), op.Issuer), "CADDYMCP_E2E_OP_SECRET="+resilOPSecret)
	in.start()
	return in, testflow.NewBrowser(t, localRoots(t, in))
}

// TestFullFlowOverHTTPS runs the whole authorization flow against the real
// binary over HTTPS, with Caddyfile.example changed only in its upstream
// login: registration, sign-in, consent, token, MCP calls with mcp-go's
// client, a refused write (no scope), refresh and revocation.
func TestFullFlowOverHTTPS(t *testing.T) {
	in, b := startLoginHost(t)
	base := in.base()
	clientID := b.Register(base, "E2E client", resilRedirect)
	q := testflow.NewRequest(base, clientID, resilRedirect, "booking:read product:read product:write", base+"/mcp")
	page := b.ConsentPage(q)
	if !strings.Contains(page, "E2E client") || strings.Contains(page, "Manage your products") {
		t.Fatalf("consent page (product:write must not be offered):\n%s", page)
	}
	tokens := b.Redeem(q, b.Approve(q, page))
	if tokens.Scope != "booking:read product:read" {
		t.Fatalf("granted scope %q", tokens.Scope)
	}
	testflow.MCPClientCalls(t, base+"/mcp", tokens.AccessToken, b.Client)

	refreshed := b.Exchange(base, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tokens.RefreshToken}, "client_id": {clientID}})
	res, _ := b.PostForm(base+"/oauth/revoke", url.Values{"token": {refreshed.RefreshToken}, "client_id": {clientID}})
	if res.StatusCode != 200 {
		t.Fatalf("revoke: %d", res.StatusCode)
	}
	req, _ := http.NewRequest("POST", base+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	req.Header.Set("Authorization", "Bearer "+refreshed.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	if res, _ := b.Do(req); res.StatusCode != 401 {
		t.Fatalf("revoked token: %d", res.StatusCode)
	}
}
