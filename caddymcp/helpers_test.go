package caddymcp

// Helpers shared by this package's tests: a free port, an in-process
// Caddy started from a Caddyfile, table cases that want an error, plain
// HTTP calls, and signed access tokens with a next handler that records
// what mcp_bearer passes on.

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/golang-jwt/jwt/v5"

	"github.com/caddymcp/caddymcp/caddymcp/bearer"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testflow"
	"github.com/caddymcp/caddymcp/caddymcp/internal/teststore"
	"github.com/caddymcp/caddymcp/caddymcp/jose"
	"github.com/caddymcp/caddymcp/caddymcp/signing"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

func load(t testing.TB, cfg []byte) error {
	t.Helper()
	return caddy.Load(cfg, true)
}

func stopCaddy(t testing.TB) {
	t.Helper()
	if err := caddy.Stop(); err != nil {
		t.Errorf("stopping: %v", err)
	}
}

// adaptCaddyfile adapts a Caddyfile to JSON, which must succeed without
// a warning (an unformatted text is one).
func adaptCaddyfile(t testing.TB, src string) []byte {
	t.Helper()
	cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), nil)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("adapting: %v %v", err, warnings)
	}
	return cfg
}

// startCaddyfile runs a Caddyfile in the in-process Caddy until the test
// ends.
func startCaddyfile(t testing.TB, src string) {
	t.Helper()
	if err := load(t, adaptCaddyfile(t, src)); err != nil {
		t.Fatalf("loading: %v", err)
	}
	t.Cleanup(func() { stopCaddy(t) })
}

// migratedStore is a migrated embedded store, closed when the test ends.
func migratedStore(t *testing.T) store.Store {
	return teststore.Embedded(t, filepath.Join(t.TempDir(), "caddymcp.db"))
}

// startSite runs, until the test ends, a Caddyfile of one plain-HTTP
// site on a free loopback port with the admin endpoint off, only errors
// logged and Caddy's data in a folder of the test's own. global goes into
// the global options and site into the site block, their lines indented
// by a tab. It returns the site's address.
func startSite(t *testing.T, global, site string) string {
	t.Helper()
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	base := fmt.Sprintf("http://127.0.0.1:%d", testflow.FreePort(t))
	startCaddyfile(t, "{\n\tadmin off\n\tlog {\n\t\tlevel ERROR\n\t}\n"+global+"}\n"+base+" {\n"+site+"}\n")
	return base
}

// validateErr provisions a JSON config as `caddy validate` does.
func validateErr(cfgJSON []byte) error {
	var cfg caddy.Config
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		return err
	}
	return caddy.Validate(&cfg)
}

// checkErr checks the error of a table case that wants one containing
// wantErr, or none when wantErr is empty. It reports whether the case
// wanted an error: then it has nothing more to check.
func checkErr(t *testing.T, err error, wantErr string) bool {
	t.Helper()
	if wantErr == "" {
		if err != nil {
			t.Fatal(err)
		}
		return false
	}
	if err == nil || !strings.Contains(err.Error(), wantErr) {
		t.Fatalf("error = %v, want it to contain %q", err, wantErr)
	}
	return true
}

func getJSON(t *testing.T, rawURL string, v any) int {
	t.Helper()
	res, err := http.Get(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if v != nil && res.StatusCode == 200 {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("%s: %v: %s", rawURL, err, body)
		}
	}
	return res.StatusCode
}

// answer is what an HTTP request got back.
type answer struct {
	status int
	body   string
	header http.Header
}

// fetch sends a request with headers and a body (none when empty) and
// reads the whole answer.
func fetch(t *testing.T, method, u, body string, hdr map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return answer{status: res.StatusCode, body: string(b), header: res.Header}
}

// postBearer POSTs to u with a bearer token (none when empty) and returns
// the status, the body and the WWW-Authenticate challenge.
func postBearer(t *testing.T, u, token string) (status int, body, challenge string) {
	t.Helper()
	var hdr map[string]string
	if token != "" {
		hdr = map[string]string{"Authorization": "Bearer " + token}
	}
	a := fetch(t, "POST", u, "", hdr)
	return a.status, a.body, a.header.Get("WWW-Authenticate")
}

// listProductsCall is a JSON-RPC tools/call of products_list.
const listProductsCall = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"products_list","arguments":{}}}`

// callListProducts calls products_list at an MCP endpoint through b with
// a bearer token; a 200 must carry the tool's structured result.
func callListProducts(t *testing.T, b *testflow.Browser, endpoint, token string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", endpoint, strings.NewReader(listProductsCall))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	res, body := b.Do(req)
	if res.StatusCode == 200 && !strings.Contains(body, `"structuredContent"`) {
		t.Errorf("tools/call answered %s", body)
	}
	return res
}

// newKeySet is a key set with one fresh signing key.
func newKeySet(t *testing.T) *signing.KeySet {
	t.Helper()
	key, err := signing.GenerateSigningKey(rand.Reader, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ks, err := signing.NewKeySet([]store.SigningKey{*key}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// keysOf serves a fixed key set to a bearer.Resource.
type keysOf struct{ ks *signing.KeySet }

func (k keysOf) KeySet(context.Context) (*signing.KeySet, error) { return k.ks, nil }

// signAccess signs an hour's access token of https://h.example for
// user-1 and client-1 with booking:read, for the audience aud, with the
// token id jti and the confirmation cnf (nil: not bound to a key).
func signAccess(t *testing.T, ks *signing.KeySet, aud, jti string, cnf *jose.Confirmation) string {
	t.Helper()
	now := time.Now()
	tok, err := ks.Sign(&jose.AccessClaims{RegisteredClaims: jwt.RegisteredClaims{Issuer: "https://h.example", Subject: "user-1",
		Audience: jwt.ClaimStrings{aud}, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)), ID: jti},
		ClientID: "client-1", Scope: "booking:read", Cnf: cnf})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// requestRecorder is a next handler that keeps what it was given: that
// it ran, the request's headers and its principal.
type requestRecorder struct {
	called bool
	header http.Header
	p      *bearer.Principal
}

func (n *requestRecorder) ServeHTTP(_ http.ResponseWriter, r *http.Request) error {
	n.called = true
	n.header = r.Header.Clone()
	n.p, _ = bearer.PrincipalFrom(r.Context())
	return nil
}
