//go:build e2e

package e2e

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testflow"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testpki"
)

// TestMutualTLS runs RFC 8705 against the real binary on
// Caddyfile.example, with the upstream login replaced and the site's TLS
// (Caddy's local CA, `tls internal`) verifying client certificates of a
// test CA when given: a tls_client_auth client registered with the DNS
// name of its certificate, certificate-bound access tokens at mcp_bearer
// with and without the certificate, and a public client whose refresh
// token is bound to its certificate.
func TestMutualTLS(t *testing.T) {
	op := startOIDC(t)
	ca := testpki.NewCA(t, "E2E client CA")
	caFile := filepath.Join(t.TempDir(), "client-ca.crt")
	testpki.WriteFile(t, caFile, ca.PEM())
	agent := ca.Client(t, &x509.Certificate{Subject: pkix.Name{CommonName: "agent"}, DNSNames: []string{"agent.example.com"}}, nil)
	other := ca.Client(t, &x509.Certificate{Subject: pkix.Name{CommonName: "other"}, DNSNames: []string{"other.example.com"}}, nil)

	config := withLogin(t, exampleText(t), op.Issuer)
	const site = "\nlocalhost {\n"
	if !strings.Contains(config, site) {
		t.Fatal("Caddyfile.example no longer has a localhost site")
	}
	config = strings.Replace(config, site, site+"\ttls internal {\n\t\tclient_auth {\n\t\t\tmode verify_if_given\n\t\t\ttrust_pool file "+
		caFile+"\n\t\t}\n\t}\n", 1)
	in := newInstance(t, config, "CADDYMCP_E2E_OP_SECRET=op-secret")
	in.start()
	base := in.base()

	var meta map[string]any
	in.getJSON("/.well-known/oauth-authorization-server", &meta)
	methods, _ := meta["token_endpoint_auth_methods_supported"].([]any)
	if meta["tls_client_certificate_bound_access_tokens"] != true || !containsAny(methods, "tls_client_auth") || !containsAny(methods, "none") {
		t.Fatalf("metadata: %v", meta)
	}

	roots := localRoots(t, in)
	b := testflow.NewBrowser(t, roots)
	with := func(cert *tls.Certificate) *testflow.Browser {
		c := testflow.NewBrowser(t, roots)
		if cert != nil {
			c.Client.Transport.(*http.Transport).TLSClientConfig.Certificates = []tls.Certificate{*cert}
		}
		return c
	}
	const redirect = "http://127.0.0.1:9/callback"
	token := func(cert *tls.Certificate, form url.Values) (int, map[string]any) {
		t.Helper()
		res, body := with(cert).PostForm(base+"/oauth/token", form)
		var m map[string]any
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatalf("token endpoint: %d %s", res.StatusCode, body)
		}
		return res.StatusCode, m
	}
	bound := func(what string, status int, m map[string]any, cert tls.Certificate) (string, string) {
		t.Helper()
		at, _ := m["access_token"].(string)
		rt, _ := m["refresh_token"].(string)
		parts := strings.Split(at, ".")
		if status != 200 || len(parts) != 3 {
			t.Fatalf("%s: %d %v", what, status, m)
		}
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var claims struct {
			Cnf map[string]string `json:"cnf"`
		}
		sum := sha256.Sum256(cert.Certificate[0])
		if json.Unmarshal(payload, &claims) != nil || claims.Cnf["x5t#S256"] != base64.RawURLEncoding.EncodeToString(sum[:]) {
			t.Fatalf("%s: cnf %v", what, claims.Cnf)
		}
		return at, rt
	}
	call := func(at string, cert *tls.Certificate) int {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
		req.Header.Set("Authorization", "Bearer "+at)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		res, _ := with(cert).Do(req)
		return res.StatusCode
	}
	codeForm := func(q *testflow.Request, code string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {q.Redirect},
			"client_id": {q.ClientID}, "code_verifier": {q.Verifier}, "resource": {q.Resource}}
	}

	// tls_client_auth with the DNS name of the certificate.
	res, body := b.PostJSON(base+"/oauth/register", `{"client_name":"E2E mTLS agent","redirect_uris":["`+redirect+
		`"],"grant_types":["authorization_code","refresh_token"],"token_endpoint_auth_method":"tls_client_auth","tls_client_auth_san_dns":"agent.example.com"}`)
	var reg struct {
		ClientID string `json:"client_id"`
	}
	if res.StatusCode != 201 || json.Unmarshal([]byte(body), &reg) != nil || strings.Contains(body, "client_secret") {
		t.Fatalf("registration: %d %s", res.StatusCode, body)
	}
	q := testflow.NewRequest(base, reg.ClientID, redirect, "booking:read product:read", base+"/mcp")
	code := b.Approve(q, b.ConsentPage(q))
	if status, m := token(&other, codeForm(q, code)); status != 401 || m["error"] != "invalid_client" {
		t.Fatalf("another certificate of the CA: %d %v", status, m)
	}
	if status, m := token(nil, codeForm(q, code)); status != 401 || m["error"] != "invalid_client" {
		t.Fatalf("no certificate: %d %v", status, m)
	}
	status, m := token(&agent, codeForm(q, code))
	at, _ := bound("tls_client_auth", status, m, agent)
	for _, tt := range []struct {
		cert *tls.Certificate
		want int
	}{{&agent, 200}, {nil, 401}, {&other, 401}} {
		if got := call(at, tt.cert); got != tt.want {
			t.Fatalf("bound token at /mcp: %d, want %d", got, tt.want)
		}
	}

	// A public client: its refresh token is bound to its certificate.
	pub := b.Register(base, "E2E public client", redirect)
	q = testflow.NewRequest(base, pub, redirect, "booking:read product:read", base+"/mcp")
	code = b.Approve(q, b.ConsentPage(q))
	status, m = token(&other, codeForm(q, code))
	_, rt := bound("public client", status, m, other)
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {pub}}
	if status, m := token(&agent, refresh); status != 400 || m["error"] != "invalid_grant" {
		t.Fatalf("bound refresh token over another certificate: %d %v", status, m)
	}
	status, m = token(&other, refresh)
	at, _ = bound("refresh", status, m, other)
	if got := call(at, &other); got != 200 {
		t.Fatalf("refreshed bound token: %d", got)
	}
}
