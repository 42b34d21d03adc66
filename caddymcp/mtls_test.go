package caddymcp

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testflow"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testoidc"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testpki"
)

// mtlsSites are two sites of one authorization server and MCP endpoint:
// the main one, whose TLS verifies client certificates against a CA when
// given (for tls_client_auth), and the mutual-TLS alias, which only
// requests them (for self-signed certificates and certificate-bound
// tokens of public clients).
const mtlsSites = `{
	admin off
	skip_install_trust
	auto_https disable_redirects
	http_port %[1]d
	storage file_system %[2]s
	caddymcp {
		embedded_path %[2]s/caddymcp.db
		issuer https://localhost:%[3]d
	}
}

(mcp) {
	mcp_oauth {
		login oidc test {
			issuer %[5]s
			client_id caddymcp-test
			client_secret op-secret
		}
		allow email ada@example.com {
			scopes booking:read product:read
		}
		mtls {
			endpoint https://localhost:%[4]d
		}
		client local {
			name "Local agent"
			redirect_uris http://127.0.0.1:9/callback
			self_signed_tls_client_auth %[2]s/local.crt
		}
	}
	mcp_bearer /mcp* {
		scope booking:read
	}
	mcp_tools
}

https://localhost:%[3]d {
	tls %[2]s/server.crt %[2]s/server.key {
		client_auth {
			mode verify_if_given
			trust_pool file %[2]s/client-ca.crt
		}
	}
	import mcp
}

https://localhost:%[4]d {
	tls %[2]s/server.crt %[2]s/server.key {
		client_auth {
			mode request
		}
	}
	import mcp
}
`

// TestMutualTLSThroughCaddy runs RFC 8705 through an in-process Caddy
// whose TLS asks for client certificates: registration of both mutual-TLS
// methods, sign-in and consent, token requests with client certificates,
// certificate-bound tokens at mcp_bearer, the binding of a public
// client's refresh token, and every refusal.
func TestMutualTLSThroughCaddy(t *testing.T) {
	op := testoidc.Start(t, "caddymcp-test", "op-secret", testoidc.User{Subject: "ada-1", Email: "ada@example.com", EmailVerified: true, Name: "Ada"})
	dir := t.TempDir()
	serverCA, clientCA := testpki.NewCA(t, "Server CA"), testpki.NewCA(t, "Client CA")
	testpki.WriteFiles(t, dir, "server", serverCA.Server(t, "localhost"))
	testpki.WriteFile(t, filepath.Join(dir, "client-ca.crt"), clientCA.PEM())
	var (
		agent    = clientCA.Client(t, &x509.Certificate{Subject: pkix.Name{CommonName: "agent", Organization: []string{"Example, Inc."}}}, nil)
		wrongDN  = clientCA.Client(t, &x509.Certificate{Subject: pkix.Name{CommonName: "intruder", Organization: []string{"Example, Inc."}}}, nil)
		selfie   = testpki.SelfSigned(t, &x509.Certificate{Subject: pkix.Name{CommonName: "selfie"}}, nil)
		stranger = testpki.SelfSigned(t, &x509.Certificate{Subject: pkix.Name{CommonName: "selfie"}}, nil)
		local    = testpki.SelfSigned(t, &x509.Certificate{Subject: pkix.Name{CommonName: "local"}}, nil)
	)
	testpki.WriteFile(t, filepath.Join(dir, "local.crt"), testpki.CertPEM(local))

	portA, portB := testflow.FreePort(t), testflow.FreePort(t)
	baseA, baseB := fmt.Sprintf("https://localhost:%d", portA), fmt.Sprintf("https://localhost:%d", portB)
	startCaddyfile(t, fmt.Sprintf(mtlsSites, testflow.FreePort(t), dir, portA, portB, op.Issuer))

	b := testflow.NewBrowser(t, serverCA.Pool())
	// with is an HTTP client that presents cert (nil: none) on its own
	// connections.
	with := func(cert *tls.Certificate) *testflow.Browser {
		c := testflow.NewBrowser(t, serverCA.Pool())
		if cert != nil {
			c.Client.Transport.(*http.Transport).TLSClientConfig.Certificates = []tls.Certificate{*cert}
		}
		return c
	}

	var meta struct {
		Methods []string          `json:"token_endpoint_auth_methods_supported"`
		Bound   bool              `json:"tls_client_certificate_bound_access_tokens"`
		Aliases map[string]string `json:"mtls_endpoint_aliases"`
	}
	res, body := b.Follow(baseA+"/.well-known/oauth-authorization-server", "")
	if res.StatusCode != 200 || json.Unmarshal([]byte(body), &meta) != nil || !meta.Bound ||
		meta.Aliases["token_endpoint"] != baseB+"/oauth/token" || !strings.Contains(strings.Join(meta.Methods, " "), "none client_secret_basic client_secret_post tls_client_auth self_signed_tls_client_auth") {
		t.Fatalf("metadata: %d %s", res.StatusCode, body)
	}

	const redirect = "http://127.0.0.1:9/callback"
	register := func(md string) string {
		t.Helper()
		res, body := b.PostJSON(baseA+"/oauth/register", `{"client_name":"mTLS client","redirect_uris":["`+redirect+
			`"],"grant_types":["authorization_code","refresh_token"],`+md+`}`)
		var reg struct {
			ClientID string `json:"client_id"`
			Secret   string `json:"client_secret"`
		}
		if res.StatusCode != 201 || json.Unmarshal([]byte(body), &reg) != nil || reg.ClientID == "" || reg.Secret != "" {
			t.Fatalf("registration: %d %s", res.StatusCode, body)
		}
		return reg.ClientID
	}
	// authorize signs in, consents and returns the authorization request
	// and its code.
	authorize := func(clientID string) (*testflow.Request, string) {
		t.Helper()
		q := testflow.NewRequest(baseA, clientID, redirect, "booking:read product:read", baseA+"/mcp")
		return q, b.Approve(q, b.ConsentPage(q))
	}
	token := func(base string, cert *tls.Certificate, form url.Values) (*http.Response, map[string]any) {
		t.Helper()
		res, body := with(cert).PostForm(base+"/oauth/token", form)
		var m map[string]any
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatalf("token endpoint: %d %s", res.StatusCode, body)
		}
		return res, m
	}
	codeForm := func(q *testflow.Request, code string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {q.Redirect},
			"client_id": {q.ClientID}, "code_verifier": {q.Verifier}, "resource": {q.Resource}}
	}
	wantError := func(what string, res *http.Response, m map[string]any, status int, code string) {
		t.Helper()
		if res.StatusCode != status || m["error"] != code {
			t.Fatalf("%s: %d %v, want %d %s", what, res.StatusCode, m, status, code)
		}
	}
	// wantBound checks a token response whose access token is bound to
	// cert, and returns the tokens.
	wantBound := func(what string, res *http.Response, m map[string]any, cert tls.Certificate) (string, string) {
		t.Helper()
		at, _ := m["access_token"].(string)
		rt, _ := m["refresh_token"].(string)
		if res.StatusCode != 200 || at == "" || m["token_type"] != "Bearer" {
			t.Fatalf("%s: %d %v", what, res.StatusCode, m)
		}
		if got := cnfOf(t, at)["x5t#S256"]; got != thumbprintOf(cert) {
			t.Fatalf("%s: cnf.x5t#S256 = %v, want %s", what, got, thumbprintOf(cert))
		}
		return at, rt
	}
	call := func(base, at string, cert *tls.Certificate) (int, string) {
		t.Helper()
		res := callListProducts(t, with(cert), base+"/mcp", at)
		return res.StatusCode, res.Header.Get("WWW-Authenticate")
	}
	wantRefused := func(what string, status int, challenge string) {
		t.Helper()
		if status != 401 || !strings.HasPrefix(challenge, "Bearer ") || !strings.Contains(challenge, `error="invalid_token"`) {
			t.Fatalf("%s: %d %q, want 401 invalid_token", what, status, challenge)
		}
	}

	// tls_client_auth (RFC 8705 §2.1): the chain that Caddy verified, and
	// the registered subject DN.
	pki := register(`"token_endpoint_auth_method":"tls_client_auth","tls_client_auth_subject_dn":"CN=agent, O=Example\\, Inc."`)
	q, code := authorize(pki)
	res, m := token(baseA, nil, codeForm(q, code))
	wantError("tls_client_auth without a certificate", res, m, 401, "invalid_client")
	res, m = token(baseA, &wrongDN, codeForm(q, code))
	wantError("tls_client_auth with another subject", res, m, 401, "invalid_client")
	res, m = token(baseB, &agent, codeForm(q, code))
	wantError("tls_client_auth where Caddy does not verify the chain", res, m, 401, "invalid_client")
	res, m = token(baseA, &agent, codeForm(q, code))
	agentAT, agentRT := wantBound("tls_client_auth", res, m, agent)

	// The bound token at mcp_bearer: with its certificate on either site,
	// not without it or with another one.
	if status, ch := call(baseA, agentAT, &agent); status != 200 {
		t.Fatalf("bound token with its certificate: %d %q", status, ch)
	}
	if status, ch := call(baseB, agentAT, &agent); status != 200 {
		t.Fatalf("bound token with its certificate on the alias: %d %q", status, ch)
	}
	status, ch := call(baseA, agentAT, nil)
	wantRefused("bound token without a certificate", status, ch)
	status, ch = call(baseA, agentAT, &wrongDN)
	wantRefused("bound token with another certificate", status, ch)
	status, ch = call(baseB, agentAT, &stranger)
	wantRefused("bound token with a self-signed certificate", status, ch)
	// A confidential client's refresh authenticates it again.
	res, m = token(baseA, nil, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {agentRT}, "client_id": {pki}})
	wantError("tls_client_auth refresh without a certificate", res, m, 401, "invalid_client")
	res, m = token(baseA, &agent, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {agentRT}, "client_id": {pki}})
	wantBound("tls_client_auth refresh", res, m, agent)

	// self_signed_tls_client_auth (§2.2) at the alias, which only requests
	// certificates.
	jwk := selfSignedKey(t, selfie)
	self := register(`"token_endpoint_auth_method":"self_signed_tls_client_auth","jwks":{"keys":[` + jwk + `]}`)
	q, code = authorize(self)
	res, m = token(baseB, &stranger, codeForm(q, code))
	wantError("self-signed with a key not in jwks", res, m, 401, "invalid_client")
	res, m = token(baseB, nil, codeForm(q, code))
	wantError("self-signed without a certificate", res, m, 401, "invalid_client")
	res, m = token(baseB, &selfie, codeForm(q, code))
	selfAT, _ := wantBound("self_signed_tls_client_auth", res, m, selfie)
	if status, ch := call(baseB, selfAT, &selfie); status != 200 {
		t.Fatalf("self-signed bound token with its certificate: %d %q", status, ch)
	}
	status, ch = call(baseB, selfAT, nil)
	wantRefused("self-signed bound token without a certificate", status, ch)

	// A client block with a self-signed certificate file.
	q, code = authorize("local")
	res, m = token(baseB, &selfie, codeForm(q, code))
	wantError("client block with another certificate", res, m, 401, "invalid_client")
	res, m = token(baseB, &local, codeForm(q, code))
	wantBound("client block with its certificate", res, m, local)

	// A public client (§4): its access and refresh tokens are bound to the
	// certificate of its connection.
	pub := b.Register(baseA, "Public client", redirect)
	q, code = authorize(pub)
	res, m = token(baseB, &selfie, codeForm(q, code))
	pubAT, pubRT := wantBound("public client with a certificate", res, m, selfie)
	if status, ch := call(baseB, pubAT, &selfie); status != 200 {
		t.Fatalf("public client's bound token: %d %q", status, ch)
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {pubRT}, "client_id": {pub}}
	res, m = token(baseB, &stranger, refresh)
	wantError("bound refresh token over another certificate", res, m, 400, "invalid_grant")
	res, m = token(baseA, nil, refresh)
	wantError("bound refresh token without a certificate", res, m, 400, "invalid_grant")
	res, m = token(baseB, &selfie, refresh)
	nextAT, _ := wantBound("bound refresh token with its certificate", res, m, selfie)
	if status, ch := call(baseB, nextAT, &selfie); status != 200 {
		t.Fatalf("refreshed bound token: %d %q", status, ch)
	}
}

// thumbprintOf is the x5t#S256 of a certificate (RFC 8705 §3.1).
func thumbprintOf(c tls.Certificate) string {
	sum := sha256.Sum256(c.Certificate[0])
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// cnfOf reads the cnf claim of a JWT without verifying it.
func cnfOf(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Cnf map[string]any `json:"cnf"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims.Cnf
}

// selfSignedKey is the JWK of a self-signed certificate's P-256 key with
// the certificate in x5c (RFC 8705 §2.2.2), as JSON.
func selfSignedKey(t *testing.T, c tls.Certificate) string {
	t.Helper()
	pub, ok := c.Leaf.PublicKey.(interface{ Bytes() ([]byte, error) })
	if !ok {
		t.Fatalf("not an EC key: %T", c.Leaf.PublicKey)
	}
	raw, err := pub.Bytes()
	if err != nil || len(raw) != 65 {
		t.Fatalf("not a P-256 key: %v", err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	k, _ := json.Marshal(map[string]any{"kty": "EC", "crv": "P-256", "x": b64(raw[1:33]), "y": b64(raw[33:]),
		"x5c": []string{base64.StdEncoding.EncodeToString(c.Certificate[0])}})
	return string(k)
}
