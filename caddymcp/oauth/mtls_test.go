package oauth_test

// Mutual TLS (RFC 8705) over real TLS connections: client authentication
// with tls_client_auth and self_signed_tls_client_auth, certificate-bound
// access and refresh tokens, the resource server's certificate check,
// registration metadata, static clients, the metadata and its mTLS
// endpoint aliases.

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddymcp/caddymcp/caddymcp/bearer"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testkeys"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testpki"
	"github.com/caddymcp/caddymcp/caddymcp/oauth"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// mtlsEnv is an authorization server behind two TLS servers: one that
// verifies client certificates against a CA when given (as Caddy's
// client_auth mode verify_if_given with a trust_pool), one that only
// requests them (mode request).
type mtlsEnv struct {
	f                   *flow
	ca                  *testpki.CA
	verified, requested *httptest.Server
}

func newMTLSEnv(t *testing.T, opts ...func(*oauth.Config)) *mtlsEnv {
	t.Helper()
	e := &mtlsEnv{f: newFlow(t, opts...), ca: testpki.NewCA(t, "Test Client CA")}
	e.verified = startTLS(t, e.f.srv, &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: e.ca.Pool()})
	e.requested = startTLS(t, e.f.srv, &tls.Config{ClientAuth: tls.RequestClientCert})
	return e
}

// startTLS serves h over TLS with cfg's client authentication.
func startTLS(t *testing.T, h http.Handler, cfg *tls.Config) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = cfg
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// tlsClient is an HTTP client of srv that presents cert (nil: none).
func tlsClient(srv *httptest.Server, cert *tls.Certificate) *http.Client {
	tr := srv.Client().Transport.(*http.Transport).Clone()
	if cert != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: tr}
}

// send sends r to srv with cert and returns the answer as a recorder, so
// that the checks of the other tests apply.
func send(t *testing.T, srv *httptest.Server, cert *tls.Certificate, r *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	u, err := url.Parse(srv.URL + r.URL.RequestURI())
	if err != nil {
		t.Fatal(err)
	}
	r.URL, r.Host, r.RequestURI = u, u.Host, ""
	hc := tlsClient(srv, cert)
	defer hc.CloseIdleConnections()
	res, err := hc.Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.URL, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	w := httptest.NewRecorder()
	w.Code, w.HeaderMap, w.Body = res.StatusCode, res.Header, bytes.NewBuffer(body)
	return w
}

// post posts a form to path of srv as client c with cert.
func (e *mtlsEnv) post(t *testing.T, srv *httptest.Server, cert *tls.Certificate, path string, form url.Values, c testClient, proofs ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := postFormRequest(path, form, &c)
	for _, p := range proofs {
		r.Header.Add("DPoP", p)
	}
	return send(t, srv, cert, r)
}

// authenticates reports whether client c with cert gets through client
// authentication at srv, asking the revocation endpoint (which shares it
// with the token endpoint) to revoke an unknown token.
func (e *mtlsEnv) authenticates(t *testing.T, srv *httptest.Server, cert *tls.Certificate, c testClient) bool {
	t.Helper()
	w := e.post(t, srv, cert, oauth.RevokePath, url.Values{"token": {"no-such-token"}}, c)
	switch w.Code {
	case http.StatusOK:
		return true
	case http.StatusUnauthorized:
		wantOAuthError(t, w, http.StatusUnauthorized, "invalid_client")
		return false
	}
	t.Fatalf("revocation: status %d: %s", w.Code, w.Body)
	return false
}

// thumbprint is the x5t#S256 of a certificate, computed here.
func thumbprint(c tls.Certificate) string {
	sum := sha256.Sum256(c.Certificate[0])
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// selfSignedJWKS is the jwks a self-signed client registers: each
// certificate's public key with the certificate in x5c.
func selfSignedJWKS(t *testing.T, certs ...tls.Certificate) map[string]any {
	t.Helper()
	var keys []any
	for _, c := range certs {
		k := map[string]any{"x5c": []string{base64.StdEncoding.EncodeToString(c.Certificate[0])}}
		for name, v := range testkeys.JWKOf(t, c.Leaf.PublicKey, "", "") {
			k[name] = v
		}
		keys = append(keys, k)
	}
	return map[string]any{"keys": keys}
}

// wantCertBound checks that an access token is bound to cert (and to no
// DPoP key).
func wantCertBound(t *testing.T, f *flow, tb tokenBody, cert tls.Certificate) {
	t.Helper()
	c := f.verify(tb.AccessToken)
	if c.Cnf == nil || c.Cnf.X5TS256 != thumbprint(cert) || c.Cnf.JKT != "" {
		t.Fatalf("cnf = %+v, want x5t#S256 %s", c.Cnf, thumbprint(cert))
	}
	if cnf, _ := jwtPart(t, tb.AccessToken, 1)["cnf"].(map[string]any); cnf["x5t#S256"] != thumbprint(cert) || len(cnf) != 1 {
		t.Fatalf("cnf claim = %v", cnf)
	}
	if tb.TokenType != "Bearer" {
		t.Fatalf("token_type = %q, want Bearer (RFC 8705 §3)", tb.TokenType)
	}
}

// refreshBinding reads the certificate binding of a refresh token.
func refreshBinding(t *testing.T, st store.Store, rt string) string {
	t.Helper()
	r, err := st.GetRefreshToken(context.Background(), rt, flowStart)
	if err != nil {
		t.Fatal(err)
	}
	return r.CertThumbprint
}

var (
	agentSubject = pkix.Name{CommonName: "agent-7", Organization: []string{"Example, Inc."}, Country: []string{"DE"}}
	otherSubject = pkix.Name{CommonName: "agent-8", Organization: []string{"Example, Inc."}, Country: []string{"DE"}}
)

func TestMTLSMetadata(t *testing.T) {
	t.Parallel()
	m := testkeys.DecodeJSON(t, newFlow(t).get(oauth.ASMetadataPath, nil))
	for _, key := range []string{"token_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported"} {
		got := strList(m, key)
		for _, want := range []string{"none", "client_secret_basic", "client_secret_post", "tls_client_auth", "self_signed_tls_client_auth"} {
			if !slices.Contains(got, want) {
				t.Errorf("%s = %v, lacks %s", key, got, want)
			}
		}
	}
	if got := strList(m, "introspection_endpoint_auth_methods_supported"); slices.Contains(got, "none") || !slices.Contains(got, "tls_client_auth") {
		t.Errorf("introspection_endpoint_auth_methods_supported = %v", got)
	}
	if m["tls_client_certificate_bound_access_tokens"] != true {
		t.Errorf("tls_client_certificate_bound_access_tokens = %v", m["tls_client_certificate_bound_access_tokens"])
	}
	if _, ok := m["mtls_endpoint_aliases"]; ok {
		t.Errorf("mtls_endpoint_aliases without an mTLS endpoint: %v", m["mtls_endpoint_aliases"])
	}

	m = testkeys.DecodeJSON(t, newFlow(t, func(c *oauth.Config) { c.MTLS.Endpoint = "https://mtls.mcp.example.com" }).get(oauth.ASMetadataPath, nil))
	aliases, _ := m["mtls_endpoint_aliases"].(map[string]any)
	for key, want := range map[string]string{
		"token_endpoint":         "https://mtls.mcp.example.com/oauth/token",
		"revocation_endpoint":    "https://mtls.mcp.example.com/oauth/revoke",
		"introspection_endpoint": "https://mtls.mcp.example.com/oauth/introspect",
	} {
		if aliases[key] != want {
			t.Errorf("mtls_endpoint_aliases.%s = %v, want %s", key, aliases[key], want)
		}
	}
	if m["token_endpoint"] != flowIssuer+"/oauth/token" {
		t.Errorf("token_endpoint = %v", m["token_endpoint"])
	}

	m = testkeys.DecodeJSON(t, newFlow(t, func(c *oauth.Config) {
		c.MTLS = oauth.MTLSConfig{Disabled: true, Endpoint: "https://mtls.mcp.example.com"}
	}).get(oauth.ASMetadataPath, nil))
	for _, key := range []string{"tls_client_certificate_bound_access_tokens", "mtls_endpoint_aliases"} {
		if v, ok := m[key]; ok {
			t.Errorf("%s = %v with mutual TLS off", key, v)
		}
	}
	if got := strList(m, "token_endpoint_auth_methods_supported"); slices.Contains(got, "tls_client_auth") || !slices.Contains(got, "none") {
		t.Errorf("token_endpoint_auth_methods_supported with mutual TLS off = %v", got)
	}
}

func TestMTLSConfigErrors(t *testing.T) {
	t.Parallel()
	for name, mod := range map[string]func(*oauth.Config){
		"endpoint without an issuer":     func(c *oauth.Config) { c.Issuer, c.MTLS.Endpoint = "", "https://mtls.example.com" },
		"endpoint over http":             func(c *oauth.Config) { c.MTLS.Endpoint = "http://mtls.example.com" },
		"endpoint with a slash":          func(c *oauth.Config) { c.MTLS.Endpoint = "https://mtls.example.com/" },
		"endpoint with a query":          func(c *oauth.Config) { c.MTLS.Endpoint = "https://mtls.example.com/x?y=1" },
		"endpoint that is no URL":        func(c *oauth.Config) { c.MTLS.Endpoint = "mtls.example.com" },
		"secret and tls_client_auth":     staticClient(oauth.StaticClient{Secret: "s", TLSClientAuth: store.CertificateSubject{Kind: oauth.SANDNS, Value: "a.example"}}),
		"invalid subject DN":             staticClient(oauth.StaticClient{TLSClientAuth: store.CertificateSubject{Kind: oauth.SubjectDN, Value: "CN"}}),
		"unknown subject kind":           staticClient(oauth.StaticClient{TLSClientAuth: store.CertificateSubject{Kind: "san_x400", Value: "x"}}),
		"empty subject":                  staticClient(oauth.StaticClient{TLSClientAuth: store.CertificateSubject{Kind: oauth.SANIP}}),
		"invalid IP":                     staticClient(oauth.StaticClient{TLSClientAuth: store.CertificateSubject{Kind: oauth.SANIP, Value: "300.1.1.1"}}),
		"mTLS client with mTLS off":      withMTLSOff(staticClient(oauth.StaticClient{TLSClientAuth: store.CertificateSubject{Kind: oauth.SANDNS, Value: "a.example"}})),
		"bound tokens with mTLS off":     withMTLSOff(staticClient(oauth.StaticClient{CertificateBoundTokens: true})),
		"tls_client_auth and jwks":       staticClient(oauth.StaticClient{TLSClientAuth: store.CertificateSubject{Kind: oauth.SANDNS, Value: "a.example"}, SelfSignedCertificates: []*x509.Certificate{testpki.SelfSigned(t, &x509.Certificate{Subject: agentSubject}, nil).Leaf}}),
		"secret and self-signed":         staticClient(oauth.StaticClient{Secret: "s", SelfSignedCertificates: []*x509.Certificate{testpki.SelfSigned(t, &x509.Certificate{Subject: agentSubject}, nil).Leaf}}),
		"certificate of an unusable key": staticClient(oauth.StaticClient{SelfSignedCertificates: []*x509.Certificate{{PublicKey: "not a key"}}}),
	} {
		t.Run(name, func(t *testing.T) {
			cfg := newFlow(t).cfg
			mod(&cfg)
			if _, err := oauth.New(cfg); err == nil {
				t.Fatal("New accepted the configuration")
			}
		})
	}
}

// staticClient sets one static client, with a redirect URI added.
func staticClient(sc oauth.StaticClient) func(*oauth.Config) {
	return func(c *oauth.Config) {
		sc.ID, sc.RedirectURIs = "static", []string{flowRedirect}
		c.StaticClients = []oauth.StaticClient{sc}
	}
}

func withMTLSOff(mod func(*oauth.Config)) func(*oauth.Config) {
	return func(c *oauth.Config) {
		mod(c)
		c.MTLS.Disabled = true
	}
}

// TestMTLSRegistration checks the mutual-TLS client metadata of dynamic
// registration (RFC 8705 §2.1.2, §2.2.2, §3.4): what is accepted, stored
// and echoed, and every refusal.
func TestMTLSRegistration(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	cert := testpki.SelfSigned(t, &x509.Certificate{Subject: agentSubject}, nil)
	other := testpki.SelfSigned(t, &x509.Certificate{Subject: otherSubject}, nil)
	good := selfSignedJWKS(t, cert)
	withKey := func(mod func(k map[string]any)) map[string]any {
		k := map[string]any{}
		for name, v := range good["keys"].([]any)[0].(map[string]any) {
			k[name] = v
		}
		mod(k)
		return map[string]any{"keys": []any{k}}
	}

	t.Run("accepted", func(t *testing.T) {
		for _, tt := range []struct {
			name      string
			md        map[string]any
			method    string
			subject   store.CertificateSubject
			jwks      bool
			boundOnly bool
		}{
			{"subject DN", map[string]any{"tls_client_auth_subject_dn": "CN=agent-7, O=Example\\, Inc., C=DE"}, "tls_client_auth",
				store.CertificateSubject{Kind: "subject_dn", Value: "CN=agent-7, O=Example\\, Inc., C=DE"}, false, false},
			{"SAN DNS", map[string]any{"tls_client_auth_san_dns": "agent.example.com"}, "tls_client_auth",
				store.CertificateSubject{Kind: "san_dns", Value: "agent.example.com"}, false, false},
			{"SAN URI", map[string]any{"tls_client_auth_san_uri": "spiffe://example.com/agent"}, "tls_client_auth",
				store.CertificateSubject{Kind: "san_uri", Value: "spiffe://example.com/agent"}, false, false},
			{"SAN IP", map[string]any{"tls_client_auth_san_ip": "2001:db8::7"}, "tls_client_auth",
				store.CertificateSubject{Kind: "san_ip", Value: "2001:db8::7"}, false, false},
			{"SAN email", map[string]any{"tls_client_auth_san_email": "agent@example.com", "tls_client_certificate_bound_access_tokens": true},
				"tls_client_auth", store.CertificateSubject{Kind: "san_email", Value: "agent@example.com"}, false, true},
			{"self-signed", map[string]any{"jwks": selfSignedJWKS(t, cert, other)}, "self_signed_tls_client_auth", store.CertificateSubject{}, true, false},
			{"public client asking for bound tokens", map[string]any{"tls_client_certificate_bound_access_tokens": true,
				// Parameters of other methods are dropped.
				"tls_client_auth_san_dns": "agent.example.com", "jwks": good}, "none", store.CertificateSubject{}, false, true},
		} {
			t.Run(tt.name, func(t *testing.T) {
				md := map[string]any{"redirect_uris": []string{flowRedirect}, "token_endpoint_auth_method": tt.method}
				for k, v := range tt.md {
					md[k] = v
				}
				w := f.serve(registerRequest(mustJSON(t, md)))
				if w.Code != http.StatusCreated {
					t.Fatalf("status %d: %s", w.Code, w.Body)
				}
				resp := testkeys.DecodeJSON(t, w)
				if _, ok := resp["client_secret"]; ok {
					t.Errorf("a client without a secret method got one: %v", resp)
				}
				if resp["token_endpoint_auth_method"] != tt.method {
					t.Errorf("token_endpoint_auth_method = %v", resp["token_endpoint_auth_method"])
				}
				c, err := f.store.GetClient(context.Background(), resp["client_id"].(string))
				if err != nil {
					t.Fatal(err)
				}
				if c.TLSSubject != tt.subject || (c.JWKS != nil) != tt.jwks || c.CertificateBoundTokens != tt.boundOnly || c.SecretHash != nil {
					t.Fatalf("stored client %+v", c)
				}
				if tt.subject.Kind != "" && resp["tls_client_auth_"+tt.subject.Kind] != tt.subject.Value {
					t.Errorf("answer does not echo the subject: %v", resp)
				}
				if _, ok := resp["jwks"]; ok != tt.jwks {
					t.Errorf("answer jwks present %v, want %v", ok, tt.jwks)
				}
				if tt.method == "none" {
					if _, ok := resp["tls_client_auth_san_dns"]; ok {
						t.Errorf("a public client's answer keeps tls_client_auth_san_dns: %v", resp)
					}
				}
				if (resp["tls_client_certificate_bound_access_tokens"] == true) != tt.boundOnly {
					t.Errorf("tls_client_certificate_bound_access_tokens = %v", resp["tls_client_certificate_bound_access_tokens"])
				}
			})
		}
	})

	t.Run("refused", func(t *testing.T) {
		for _, tt := range []struct {
			name, method string
			md           map[string]any
			mention      string
		}{
			{"no subject", "tls_client_auth", nil, "exactly one"},
			{"two subjects", "tls_client_auth", map[string]any{"tls_client_auth_san_dns": "a.example", "tls_client_auth_san_ip": "192.0.2.1"}, "exactly one"},
			{"DN without '='", "tls_client_auth", map[string]any{"tls_client_auth_subject_dn": "agent-7"}, "RFC 4514"},
			{"DN with an unknown attribute", "tls_client_auth", map[string]any{"tls_client_auth_subject_dn": "XYZ=1"}, "RFC 4514"},
			{"DN with an unescaped quote", "tls_client_auth", map[string]any{"tls_client_auth_subject_dn": `CN=a"b`}, "RFC 4514"},
			{"DN with a bad escape", "tls_client_auth", map[string]any{"tls_client_auth_subject_dn": `CN=a\zz`}, "RFC 4514"},
			{"DN with an empty value", "tls_client_auth", map[string]any{"tls_client_auth_subject_dn": `CN=,O=x`}, "RFC 4514"},
			{"DN with a bad hex value", "tls_client_auth", map[string]any{"tls_client_auth_subject_dn": `CN=#0c`}, "RFC 4514"},
			{"DN too long", "tls_client_auth", map[string]any{"tls_client_auth_subject_dn": "CN=" + strings.Repeat("a", 1100)}, "too long"},
			{"SAN DNS with a space", "tls_client_auth", map[string]any{"tls_client_auth_san_dns": "a b.example"}, "DNS name"},
			{"SAN URI relative", "tls_client_auth", map[string]any{"tls_client_auth_san_uri": "/agent"}, "absolute URI"},
			{"SAN IP with a zone", "tls_client_auth", map[string]any{"tls_client_auth_san_ip": "fe80::1%eth0"}, "IPv4 or IPv6"},
			{"SAN email without @", "tls_client_auth", map[string]any{"tls_client_auth_san_email": "agent.example.com"}, "email"},
			{"self-signed without jwks", "self_signed_tls_client_auth", nil, "jwks"},
			{"self-signed with jwks_uri", "self_signed_tls_client_auth", map[string]any{"jwks_uri": "https://app.example.com/jwks"}, "jwks_uri"},
			{"self-signed with null jwks", "self_signed_tls_client_auth", map[string]any{"jwks": nil, "tls_client_auth_san_dns": "x"}, "jwks"},
			{"jwks not a set", "self_signed_tls_client_auth", map[string]any{"jwks": []any{}}, "JWK Set"},
			{"jwks without keys", "self_signed_tls_client_auth", map[string]any{"jwks": map[string]any{"keys": []any{}}}, "no keys"},
			{"jwks with a private key", "self_signed_tls_client_auth", map[string]any{"jwks": withKey(func(k map[string]any) { k["d"] = "AAAA" })}, "private"},
			{"jwks with a symmetric key", "self_signed_tls_client_auth", map[string]any{"jwks": map[string]any{"keys": []any{map[string]any{"kty": "oct", "k": "AAAA"}}}}, "private"},
			{"jwks key without x5c", "self_signed_tls_client_auth", map[string]any{"jwks": withKey(func(k map[string]any) { delete(k, "x5c") })}, "x5c"},
			{"x5c in base64url", "self_signed_tls_client_auth", map[string]any{"jwks": withKey(func(k map[string]any) {
				k["x5c"] = []string{base64.RawURLEncoding.EncodeToString(cert.Certificate[0]) + "_-"}
			})}, "base64"},
			{"x5c not a certificate", "self_signed_tls_client_auth", map[string]any{"jwks": withKey(func(k map[string]any) { k["x5c"] = []string{"AAAA"} })}, "X.509"},
			{"x5c of another key", "self_signed_tls_client_auth", map[string]any{"jwks": withKey(func(k map[string]any) {
				k["x5c"] = []string{base64.StdEncoding.EncodeToString(other.Certificate[0])}
			})}, "differs"},
			{"key for encryption", "self_signed_tls_client_auth", map[string]any{"jwks": withKey(func(k map[string]any) { k["use"] = "enc" })}, "usable"},
			{"unknown method", "tls_client_auth_v2", nil, "self_signed_tls_client_auth"},
			{"bound tokens not a boolean", "none", map[string]any{"tls_client_certificate_bound_access_tokens": "yes"}, "JSON object"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				md := map[string]any{"redirect_uris": []string{flowRedirect}, "token_endpoint_auth_method": tt.method}
				for k, v := range tt.md {
					md[k] = v
				}
				w := f.serve(registerRequest(mustJSON(t, md)))
				wantOAuthError(t, w, http.StatusBadRequest, "invalid_client_metadata")
				wantDescription(t, w, tt.mention)
			})
		}
	})

	t.Run("mutual TLS off", func(t *testing.T) {
		off := newFlow(t, func(c *oauth.Config) { c.MTLS.Disabled = true })
		for _, method := range []string{"tls_client_auth", "self_signed_tls_client_auth"} {
			w := off.serve(registerRequest(mustJSON(t, map[string]any{"redirect_uris": []string{flowRedirect},
				"token_endpoint_auth_method": method, "tls_client_auth_san_dns": "a.example", "jwks": good})))
			wantOAuthError(t, w, http.StatusBadRequest, "invalid_client_metadata")
		}
		// No bound tokens here: the answer leaves the parameter out.
		w := off.serve(registerRequest(mustJSON(t, map[string]any{"redirect_uris": []string{flowRedirect},
			"token_endpoint_auth_method": "none", "tls_client_certificate_bound_access_tokens": true})))
		if w.Code != http.StatusCreated || strings.Contains(w.Body.String(), "tls_client_certificate_bound_access_tokens") {
			t.Fatalf("registration with mutual TLS off: %d %s", w.Code, w.Body)
		}
	})
}

// TestMTLSClientAuthPKI authenticates tls_client_auth clients (RFC 8705
// §2.1): a chain the TLS server verified, and the registered subject DN
// or SAN; the code flow issues a certificate-bound access token.
func TestMTLSClientAuthPKI(t *testing.T) {
	t.Parallel()
	e := newMTLSEnv(t)
	f := e.f
	agent := e.ca.Client(t, &x509.Certificate{Subject: agentSubject}, nil)
	c := f.register("tls_client_auth", map[string]any{"tls_client_auth_subject_dn": agent.Leaf.Subject.String()})

	code, verifier := f.authorizeCode(c, nil)
	// Every refusal leaves the code usable: client authentication comes
	// first.
	for _, tt := range []struct {
		name string
		srv  *httptest.Server
		cert *tls.Certificate
	}{
		{"no certificate", e.verified, nil},
		{"another subject of the same CA", e.verified, ptr(e.ca.Client(t, &x509.Certificate{Subject: otherSubject}, nil))},
		{"the right subject, chain not verified", e.requested, &agent},
		{"a self-signed certificate with the subject", e.requested, ptr(testpki.SelfSigned(t, &x509.Certificate{Subject: agentSubject}, nil))},
		{"another CA's certificate with the subject", e.requested, ptr(testpki.NewCA(t, "Other CA").Client(t, &x509.Certificate{Subject: agentSubject}, nil))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := e.post(t, tt.srv, tt.cert, oauth.TokenPath, codeForm(c, code, verifier), c)
			wantOAuthError(t, w, http.StatusUnauthorized, "invalid_client")
		})
	}
	t.Run("a secret instead", func(t *testing.T) {
		form := codeForm(c, code, verifier)
		form.Set("client_secret", "guess")
		wantOAuthError(t, e.post(t, e.verified, &agent, oauth.TokenPath, form, c), http.StatusUnauthorized, "invalid_client")
		w := e.post(t, e.verified, &agent, oauth.TokenPath, codeForm(c, code, verifier),
			testClient{ID: c.ID, Secret: "guess", Method: "client_secret_basic"})
		wantOAuthError(t, w, http.StatusUnauthorized, "invalid_client")
		if !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("WWW-Authenticate = %q after Basic authentication", w.Header().Get("WWW-Authenticate"))
		}
	})

	tb := wantToken(t, e.post(t, e.verified, &agent, oauth.TokenPath, codeForm(c, code, verifier), c))
	wantCertBound(t, f, tb, agent)
	// A confidential client's refresh token is bound to its credentials,
	// not to the certificate (RFC 8705 §7.1)...
	if got := refreshBinding(t, f.store, tb.RefreshToken); got != "" {
		t.Errorf("a tls_client_auth client's refresh token is bound to %q", got)
	}
	// ...which the refresh authenticates again.
	wantOAuthError(t, e.post(t, e.verified, nil, oauth.TokenPath, refreshForm(tb.RefreshToken), c), http.StatusUnauthorized, "invalid_client")
	next := wantToken(t, e.post(t, e.verified, &agent, oauth.TokenPath, refreshForm(tb.RefreshToken), c))
	wantCertBound(t, f, next, agent)

	// Introspection accepts the client's certificate as its credentials
	// and reports the binding (RFC 8705 §3.2).
	m := testkeys.DecodeJSON(t, e.post(t, e.verified, &agent, oauth.IntrospectPath, url.Values{"token": {next.AccessToken}}, c))
	cnf, _ := m["cnf"].(map[string]any)
	if m["active"] != true || m["token_type"] != "Bearer" || cnf["x5t#S256"] != thumbprint(agent) {
		t.Fatalf("introspection %v", m)
	}
	wantOAuthError(t, e.post(t, e.requested, &agent, oauth.IntrospectPath, url.Values{"token": {next.AccessToken}}, c),
		http.StatusUnauthorized, "invalid_client")
}

// TestMTLSSubjectKinds authenticates tls_client_auth clients by each kind
// of registered subject (RFC 8705 §2.1.2), against certificates that
// carry it and certificates that do not.
func TestMTLSSubjectKinds(t *testing.T) {
	t.Parallel()
	e := newMTLSEnv(t)
	spiffe, _ := url.Parse("spiffe://example.com/agent")
	cert := e.ca.Client(t, &x509.Certificate{
		Subject:        pkix.Name{CommonName: "  Agent   Seven ", Organization: []string{"Example, Inc."}, OrganizationalUnit: []string{"ops", "mcp"}, Country: []string{"DE"}},
		DNSNames:       []string{"agent.example.com", "alt.example.com"},
		URIs:           []*url.URL{spiffe},
		IPAddresses:    []net.IP{net.ParseIP("192.0.2.7"), net.ParseIP("2001:db8::7")},
		EmailAddresses: []string{"Agent@Example.COM"},
	}, nil)
	for _, tt := range []struct {
		param, value string
		ok           bool
	}{
		{"tls_client_auth_subject_dn", cert.Leaf.Subject.String(), true},
		// distinguishedNameMatch ignores case and insignificant spaces.
		{"tls_client_auth_subject_dn", "cn=agent seven,ou=mcp+ou=ops, o=EXAMPLE\\, INC.,c=de", true},
		{"tls_client_auth_subject_dn", "2.5.4.3=Agent Seven,OU=ops+OU=mcp,O=Example\\2C Inc.,C=DE", true},
		// The value as its DER PrintableString, hex-encoded (RFC 4514 §2.4).
		{"tls_client_auth_subject_dn", "CN=Agent Seven,OU=ops+OU=mcp,O=Example\\, Inc.,C=#13024445", true},
		{"tls_client_auth_subject_dn", "CN=Agent Seven,OU=ops+OU=mcp,O=Example\\, Inc.,C=#0c024445", false}, // a UTF8String
		{"tls_client_auth_subject_dn", "CN=Agent Seven,OU=ops,O=Example\\, Inc.,C=DE", false},
		{"tls_client_auth_subject_dn", "C=DE,O=Example\\, Inc.,OU=ops+OU=mcp,CN=Agent Seven", false}, // reversed
		{"tls_client_auth_subject_dn", "CN=Agent Seven,OU=ops+OU=mcp,O=Example Inc.,C=DE", false},
		{"tls_client_auth_subject_dn", "CN=Agent Sevenx,OU=ops+OU=mcp,O=Example\\, Inc.,C=DE", false},
		{"tls_client_auth_subject_dn", "CN=Agent Seven,OU=ops+OU=mcp,O=Example\\, Inc.", false},
		{"tls_client_auth_san_dns", "agent.example.com", true},
		{"tls_client_auth_san_dns", "ALT.example.com.", true},
		{"tls_client_auth_san_dns", "other.example.com", false},
		{"tls_client_auth_san_uri", "spiffe://example.com/agent", true},
		{"tls_client_auth_san_uri", "spiffe://example.com/other", false},
		{"tls_client_auth_san_ip", "192.0.2.7", true},
		{"tls_client_auth_san_ip", "::ffff:192.0.2.7", true}, // compared in binary form
		{"tls_client_auth_san_ip", "2001:0db8:0:0::7", true},
		{"tls_client_auth_san_ip", "192.0.2.8", false},
		{"tls_client_auth_san_email", "Agent@example.com", true},
		{"tls_client_auth_san_email", "agent@example.com", false}, // the local part is exact
		// A DNS name is not an email address, nor the other way round.
		{"tls_client_auth_san_email", "agent.example.com", false},
	} {
		t.Run(tt.param+"="+tt.value, func(t *testing.T) {
			md := map[string]any{tt.param: tt.value}
			w := e.f.serve(registerRequest(mustJSON(t, map[string]any{"redirect_uris": []string{flowRedirect},
				"token_endpoint_auth_method": "tls_client_auth", tt.param: tt.value})))
			if w.Code != http.StatusCreated {
				if !tt.ok {
					return // refused at registration, which is also a refusal
				}
				t.Fatalf("register %v: %d %s", md, w.Code, w.Body)
			}
			c := testClient{ID: testkeys.DecodeJSON(t, w)["client_id"].(string), Method: "tls_client_auth"}
			if got := e.authenticates(t, e.verified, &cert, c); got != tt.ok {
				t.Fatalf("authenticated = %v, want %v", got, tt.ok)
			}
		})
	}
}

// TestMTLSSelfSigned authenticates self_signed_tls_client_auth clients
// (RFC 8705 §2.2): the presented certificate's public key must be one of
// the registered jwks; the chain is not verified.
func TestMTLSSelfSigned(t *testing.T) {
	t.Parallel()
	e := newMTLSEnv(t)
	f := e.f
	key := testpki.NewKey(t)
	registered := testpki.SelfSigned(t, &x509.Certificate{Subject: agentSubject}, key)
	second := testpki.SelfSigned(t, &x509.Certificate{Subject: agentSubject}, nil)
	c := f.register("self_signed_tls_client_auth", map[string]any{"jwks": selfSignedJWKS(t, registered, second)})

	for _, tt := range []struct {
		name string
		cert *tls.Certificate
		ok   bool
	}{
		{"the registered certificate", &registered, true},
		{"its second certificate", &second, true},
		// The key is what counts: a renewed certificate of the same key
		// works, the same subject with another key does not.
		{"a new certificate of the same key", ptr(testpki.SelfSigned(t, &x509.Certificate{Subject: otherSubject}, key)), true},
		{"the same subject, another key", ptr(testpki.SelfSigned(t, &x509.Certificate{Subject: agentSubject}, nil)), false},
		{"a CA-signed certificate of another key", ptr(e.ca.Client(t, &x509.Certificate{Subject: agentSubject}, nil)), false},
		{"no certificate", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := e.authenticates(t, e.requested, tt.cert, c); got != tt.ok {
				t.Fatalf("authenticated = %v, want %v", got, tt.ok)
			}
		})
	}

	tb := f.tokensOver(t, e, e.requested, &registered, c)
	wantCertBound(t, f, tb, registered)
	if got := refreshBinding(t, f.store, tb.RefreshToken); got != "" {
		t.Errorf("a self-signed client's refresh token is bound to %q", got)
	}
	// A refresh with its other registered certificate is fine: the
	// client is authenticated, and the new access token is bound to the
	// certificate of this connection.
	next := wantToken(t, e.post(t, e.requested, &second, oauth.TokenPath, refreshForm(tb.RefreshToken), c))
	wantCertBound(t, f, next, second)
}

// tokensOver runs the code flow for c and redeems the code over srv with
// cert.
func (f *flow) tokensOver(t *testing.T, e *mtlsEnv, srv *httptest.Server, cert *tls.Certificate, c testClient, proofs ...string) tokenBody {
	t.Helper()
	code, verifier := f.authorizeCode(c, nil)
	return wantToken(t, e.post(t, srv, cert, oauth.TokenPath, codeForm(c, code, verifier), c, proofs...))
}

// TestMTLSPublicClientBinding binds the tokens of a public client to the
// certificate of its connection (RFC 8705 §4): the access token, and the
// refresh token, which then works only over a connection with that
// certificate, on both stores.
func TestMTLSPublicClientBinding(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, f *flow, st store.Store) {
		e := &mtlsEnv{f: f}
		e.requested = startTLS(t, f.srv, &tls.Config{ClientAuth: tls.RequestClientCert})
		mine := testpki.SelfSigned(t, &x509.Certificate{Subject: agentSubject}, nil)
		theirs := testpki.SelfSigned(t, &x509.Certificate{Subject: agentSubject}, nil)
		c := f.register("none", nil)

		tb := f.tokensOver(t, e, e.requested, &mine, c)
		wantCertBound(t, f, tb, mine)
		if got := refreshBinding(t, st, tb.RefreshToken); got != thumbprint(mine) {
			t.Fatalf("refresh token bound to %q, want %s", got, thumbprint(mine))
		}
		// Refusals rotate nothing.
		for _, tt := range []struct {
			name string
			cert *tls.Certificate
			desc string
		}{
			{"another certificate", &theirs, "not the one"},
			{"no certificate", nil, "mutual TLS"},
		} {
			w := e.post(t, e.requested, tt.cert, oauth.TokenPath, refreshForm(tb.RefreshToken), c)
			wantOAuthError(t, w, http.StatusBadRequest, "invalid_grant")
			wantDescription(t, w, tt.desc)
		}
		wantOAuthError(t, f.tokenCall(c, refreshForm(tb.RefreshToken)), http.StatusBadRequest, "invalid_grant")

		next := wantToken(t, e.post(t, e.requested, &mine, oauth.TokenPath, refreshForm(tb.RefreshToken), c))
		wantCertBound(t, f, next, mine)
		if got := refreshBinding(t, st, next.RefreshToken); got != thumbprint(mine) {
			t.Fatalf("the new refresh token is bound to %q", got)
		}
		// The rotated token again, with another certificate: refused, and
		// the grant lives on (whoever sends it cannot use it, so must not
		// end it either).
		wantOAuthError(t, e.post(t, e.requested, &theirs, oauth.TokenPath, refreshForm(tb.RefreshToken), c), http.StatusBadRequest, "invalid_grant")
		// Within the grace period, with the certificate: the same answer.
		again := wantToken(t, e.post(t, e.requested, &mine, oauth.TokenPath, refreshForm(tb.RefreshToken), c))
		if again.RefreshToken != next.RefreshToken {
			t.Fatal("a concurrent refresh with the certificate did not get the same answer")
		}
		last := wantToken(t, e.post(t, e.requested, &mine, oauth.TokenPath, refreshForm(next.RefreshToken), c))
		wantCertBound(t, f, last, mine)

		// Without a certificate a public client gets unbound tokens.
		code, verifier := f.authorizeCode(c, nil)
		plain := wantBearerToken(t, f, f.exchange(c, code, verifier, nil))
		if got := refreshBinding(t, st, plain.RefreshToken); got != "" {
			t.Fatalf("refresh token of a request without a certificate bound to %q", got)
		}
	})
}

// TestMTLSConfidentialClientBinding: a client with a secret that comes
// over mutual TLS gets a certificate-bound access token, and its refresh
// token stays bound to its secret alone (RFC 8705 §3, §7.1).
func TestMTLSConfidentialClientBinding(t *testing.T) {
	t.Parallel()
	e := newMTLSEnv(t)
	f := e.f
	cert := testpki.SelfSigned(t, &x509.Certificate{Subject: agentSubject}, nil)
	c := f.register("client_secret_basic", nil)
	tb := f.tokensOver(t, e, e.requested, &cert, c)
	wantCertBound(t, f, tb, cert)
	if got := refreshBinding(t, f.store, tb.RefreshToken); got != "" {
		t.Fatalf("a confidential client's refresh token is bound to %q", got)
	}
	wantBearerToken(t, f, f.refresh(c, tb.RefreshToken, nil))
}

// TestMTLSBindOnRequest: with BindOnRequest, only clients that registered
// tls_client_certificate_bound_access_tokens get bound tokens, and they
// get no others (RFC 8705 §3.4).
func TestMTLSBindOnRequest(t *testing.T) {
	t.Parallel()
	e := newMTLSEnv(t, func(c *oauth.Config) { c.MTLS.BindOnRequest = true })
	f := e.f
	cert := testpki.SelfSigned(t, &x509.Certificate{Subject: agentSubject}, nil)

	plain := f.register("none", nil)
	tb := f.tokensOver(t, e, e.requested, &cert, plain)
	if c := f.verify(tb.AccessToken); c.Cnf != nil {
		t.Fatalf("a client that did not ask got cnf %+v", c.Cnf)
	}
	if got := refreshBinding(t, f.store, tb.RefreshToken); got != "" {
		t.Fatalf("refresh token bound to %q", got)
	}

	bound := f.register("none", map[string]any{"tls_client_certificate_bound_access_tokens": true})
	code, verifier := f.authorizeCode(bound, nil)
	w := f.exchange(bound, code, verifier, nil)
	wantOAuthError(t, w, http.StatusBadRequest, "invalid_request")
	wantDescription(t, w, "tls_client_certificate_bound_access_tokens")
	// The code was not used up.
	tb = wantToken(t, e.post(t, e.requested, &cert, oauth.TokenPath, codeForm(bound, code, verifier), bound))
	wantCertBound(t, f, tb, cert)
	wantOAuthError(t, f.refresh(bound, tb.RefreshToken, nil), http.StatusBadRequest, "invalid_request")
	wantCertBound(t, f, wantToken(t, e.post(t, e.requested, &cert, oauth.TokenPath, refreshForm(tb.RefreshToken), bound)), cert)
}

// TestMTLSDisabled: with mutual TLS off, certificates change nothing.
func TestMTLSDisabled(t *testing.T) {
	t.Parallel()
	e := newMTLSEnv(t, func(c *oauth.Config) { c.MTLS.Disabled = true })
	cert := testpki.SelfSigned(t, &x509.Certificate{Subject: agentSubject}, nil)
	c := e.f.register("none", nil)
	tb := e.f.tokensOver(t, e, e.requested, &cert, c)
	if cl := e.f.verify(tb.AccessToken); cl.Cnf != nil {
		t.Fatalf("cnf %+v with mutual TLS off", cl.Cnf)
	}
	wantToken(t, e.f.refresh(c, tb.RefreshToken, nil))
}

// TestMTLSWithDPoP binds a token both to a DPoP key and to a
// certificate: the token endpoint says DPoP, the resource needs both,
// and so does the refresh token of a public client.
func TestMTLSWithDPoP(t *testing.T) {
	t.Parallel()
	e := newMTLSEnv(t)
	f := e.f
	key := newDPoPKey(t, "ES256")
	cert := testpki.SelfSigned(t, &x509.Certificate{Subject: agentSubject}, nil)
	other := testpki.SelfSigned(t, &x509.Certificate{Subject: agentSubject}, nil)
	c := f.register("none", nil)
	code, verifier := f.authorizeCode(c, nil)
	w := e.post(t, e.requested, &cert, oauth.TokenPath, codeForm(c, code, verifier), c, f.tokenProof(key))
	if w.Code != http.StatusOK {
		t.Fatalf("token: %d %s", w.Code, w.Body)
	}
	var tb tokenBody
	_ = json.Unmarshal(w.Body.Bytes(), &tb)
	cl := f.verify(tb.AccessToken)
	if tb.TokenType != "DPoP" || cl.Cnf == nil || cl.Cnf.JKT != key.jkt || cl.Cnf.X5TS256 != thumbprint(cert) {
		t.Fatalf("token_type %s, cnf %+v", tb.TokenType, cl.Cnf)
	}
	rt, err := f.store.GetRefreshToken(context.Background(), tb.RefreshToken, f.clock.Now())
	if err != nil || rt.DPoPJKT != key.jkt || rt.CertThumbprint != thumbprint(cert) {
		t.Fatalf("refresh token %+v, %v", rt, err)
	}

	rs := resourceFor(t, f, nil)
	at := tb.AccessToken
	check := func(scheme string, cert *tls.Certificate, proof bool) *bearer.Failure {
		var proofs []string
		if proof {
			proofs = append(proofs, key.proof(t, "POST", flowResource, f.clock.Now(), withATH(at)))
		}
		r := resourceRequest("POST", flowResource, scheme, at, proofs...)
		if cert != nil {
			r.TLS.PeerCertificates = []*x509.Certificate{cert.Leaf}
		}
		_, fail := rs.Check(r)
		return fail
	}
	if fail := check("DPoP", &cert, true); fail != nil {
		t.Fatalf("proof and certificate: %+v", fail)
	}
	wantRefused(t, check("DPoP", nil, true), 401, "DPoP", "invalid_token")
	wantRefused(t, check("DPoP", &other, true), 401, "DPoP", "invalid_token")
	wantRefused(t, check("Bearer", &cert, false), 401, "Bearer", "invalid_token")

	// The refresh needs the key and the certificate.
	wantOAuthError(t, e.post(t, e.requested, &cert, oauth.TokenPath, refreshForm(tb.RefreshToken), c), http.StatusBadRequest, "invalid_grant")
	wantOAuthError(t, e.post(t, e.requested, nil, oauth.TokenPath, refreshForm(tb.RefreshToken), c, f.tokenProof(key)), http.StatusBadRequest, "invalid_grant")
	if w := e.post(t, e.requested, &cert, oauth.TokenPath, refreshForm(tb.RefreshToken), c, f.tokenProof(key)); w.Code != http.StatusOK {
		t.Fatalf("refresh with both: %d %s", w.Code, w.Body)
	}
}

// TestMTLSResource checks certificate-bound tokens at the resource server
// over real TLS connections (RFC 8705 §3): accepted with the certificate,
// refused without it or with another one, on every request whatever is
// cached.
func TestMTLSResource(t *testing.T) {
	t.Parallel()
	e := newMTLSEnv(t)
	f := e.f
	mine := testpki.SelfSigned(t, &x509.Certificate{Subject: agentSubject}, nil)
	theirs := testpki.SelfSigned(t, &x509.Certificate{Subject: agentSubject}, nil)
	c := f.register("none", nil)
	bound := f.tokensOver(t, e, e.requested, &mine, c).AccessToken
	unbound := f.tokens(c, nil).AccessToken

	rs := resourceFor(t, f, nil)
	api := startTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The resource's public URL, whatever the test server's address.
		r.Host = "mcp.example.com"
		if _, fail := rs.Check(r); fail != nil {
			fail.Write(w)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}), &tls.Config{ClientAuth: tls.RequestClientCert})
	call := func(token string, cert *tls.Certificate) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/mcp", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		return send(t, api, cert, r)
	}
	for i, tt := range []struct {
		token  string
		cert   *tls.Certificate
		status int
		desc   string
	}{
		{bound, &mine, http.StatusNoContent, ""},
		// Now cached: the certificate is still compared.
		{bound, nil, http.StatusUnauthorized, "mutual TLS"},
		{bound, &theirs, http.StatusUnauthorized, "not the one"},
		{bound, &mine, http.StatusNoContent, ""},
		// An unbound token does not care about certificates.
		{unbound, &theirs, http.StatusNoContent, ""},
		{unbound, nil, http.StatusNoContent, ""},
	} {
		w := call(tt.token, tt.cert)
		if w.Code != tt.status {
			t.Fatalf("call %d: status %d, want %d: %s", i, w.Code, tt.status, w.Body)
		}
		if tt.status == http.StatusUnauthorized {
			if ch := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer ") || !strings.Contains(ch, `error="invalid_token"`) {
				t.Errorf("call %d: WWW-Authenticate %q", i, ch)
			}
			wantDescription(t, w, tt.desc)
		}
	}
}

// TestMTLSRemoteIssuer checks certificate-bound tokens of an external
// issuer: cnf x5t#S256 is checked like a local token's, with cnf.jkt too
// when both are present.
func TestMTLSRemoteIssuer(t *testing.T) {
	e := testkeys.NewRemoteEnv(t, "/realms/mcp", nil)
	e.IdP.AddKey(t, "k1", testkeys.ECKey(t, elliptic.P256()), "ES256")
	mine := testpki.SelfSigned(t, &x509.Certificate{Subject: agentSubject}, nil)
	theirs := testpki.SelfSigned(t, &x509.Certificate{Subject: agentSubject}, nil)
	key := newDPoPKey(t, "ES256")
	certBound := e.IdP.Sign(t, "k1", "ES256", "at+jwt", e.Claims(func(c jwt.MapClaims) {
		c["cnf"] = map[string]any{"x5t#S256": thumbprint(mine)}
	}))
	both := e.IdP.Sign(t, "k1", "ES256", "at+jwt", e.Claims(func(c jwt.MapClaims) {
		c["jti"] = "remote-2"
		c["cnf"] = map[string]any{"x5t#S256": thumbprint(mine), "jkt": key.jkt}
	}))
	req := func(scheme, token string, cert *tls.Certificate, proofs ...string) *http.Request {
		r := resourceRequest("POST", testkeys.RemoteResource, scheme, token, proofs...)
		if cert != nil {
			r.TLS.PeerCertificates = []*x509.Certificate{cert.Leaf}
		}
		return r
	}
	if p, fail := e.RS.Check(req("Bearer", certBound, &mine)); fail != nil || p.Issuer != e.IdP.Issuer {
		t.Fatalf("external certificate-bound token: %+v, %+v", p, fail)
	}
	_, fail := e.RS.Check(req("Bearer", certBound, nil))
	wantRefused(t, fail, 401, "Bearer", "invalid_token")
	_, fail = e.RS.Check(req("Bearer", certBound, &theirs))
	wantRefused(t, fail, 401, "Bearer", "invalid_token")
	// A certificate-bound token is not DPoP-bound.
	_, fail = e.RS.Check(req("DPoP", certBound, &mine, key.proof(t, "POST", testkeys.RemoteResource, e.Now, withATH(certBound))))
	wantRefused(t, fail, 401, "DPoP", "invalid_token")

	if _, fail := e.RS.Check(req("DPoP", both, &mine, key.proof(t, "POST", testkeys.RemoteResource, e.Now, withATH(both)))); fail != nil {
		t.Fatalf("token bound both ways, with both: %+v", fail)
	}
	_, fail = e.RS.Check(req("DPoP", both, nil, key.proof(t, "POST", testkeys.RemoteResource, e.Now, withATH(both))))
	wantRefused(t, fail, 401, "DPoP", "invalid_token")
	_, fail = e.RS.Check(req("Bearer", both, &mine))
	wantRefused(t, fail, 401, "Bearer", "invalid_token")
}

// TestMTLSEndpointAlias serves the token endpoint at the mutual-TLS alias
// (RFC 8705 §5), where DPoP proofs name the alias.
func TestMTLSEndpointAlias(t *testing.T) {
	t.Parallel()
	const alias = "https://mcp.example.com/mtls"
	f := newFlow(t, func(c *oauth.Config) { c.MTLS.Endpoint = alias })
	for path, handled := range map[string]bool{
		"/mtls/oauth/token": true, "/mtls/oauth/revoke": true, "/mtls/oauth/introspect": true,
		"/mtls/oauth/authorize": false, "/mtls/oauth/register": false, "/oauth/token": true,
	} {
		if f.srv.Handles(path) != handled {
			t.Errorf("Handles(%s) = %v, want %v", path, !handled, handled)
		}
	}
	// Without an alias (or with mutual TLS off), nothing is served
	// outside the issuer's path.
	for _, mtls := range []oauth.MTLSConfig{{}, {Disabled: true, Endpoint: alias}} {
		tenant := newFlow(t, func(c *oauth.Config) { c.Issuer, c.MTLS = flowIssuer+"/tenant", mtls })
		if tenant.srv.Handles("/oauth/token") || tenant.srv.Handles("/mtls/oauth/token") || !tenant.srv.Handles("/tenant/oauth/token") {
			t.Errorf("routes of an issuer with a path, %+v", mtls)
		}
	}
	key := newDPoPKey(t, "ES256")
	cert := testpki.SelfSigned(t, &x509.Certificate{Subject: agentSubject}, nil)
	c := f.register("none", nil)
	code, verifier := f.authorizeCode(c, nil)
	call := func(htu string) *httptest.ResponseRecorder {
		r := postFormRequest(oauth.TokenPath, codeForm(c, code, verifier), &c)
		r.URL.Path = "/mtls" + oauth.TokenPath
		r.TLS.PeerCertificates = []*x509.Certificate{cert.Leaf}
		r.Header.Set("DPoP", key.proof(t, "POST", htu, f.clock.Now()))
		return f.serve(r)
	}
	// A proof for the regular endpoint is not one for the alias.
	wantOAuthError(t, call(tokenURL), http.StatusBadRequest, "invalid_dpop_proof")
	w := call(alias + oauth.TokenPath)
	if w.Code != http.StatusOK {
		t.Fatalf("token at the alias: %d %s", w.Code, w.Body)
	}
	var tb tokenBody
	_ = json.Unmarshal(w.Body.Bytes(), &tb)
	if cl := f.verify(tb.AccessToken); cl.Issuer != flowIssuer || cl.Cnf == nil || cl.Cnf.X5TS256 != thumbprint(cert) || cl.Cnf.JKT != key.jkt {
		t.Fatalf("token from the alias: %+v", cl)
	}
}

// TestMTLSStaticClients authenticates clients declared in the
// configuration with tls_client_auth and self-signed certificates.
func TestMTLSStaticClients(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "Static CA")
	pki := ca.Client(t, &x509.Certificate{Subject: agentSubject, DNSNames: []string{"agent.example.com"}}, nil)
	self := testpki.SelfSigned(t, &x509.Certificate{Subject: agentSubject}, nil)
	e := &mtlsEnv{ca: ca, f: newFlow(t, func(c *oauth.Config) {
		c.StaticClients = []oauth.StaticClient{
			{ID: "pki", RedirectURIs: []string{flowRedirect}, TLSClientAuth: store.CertificateSubject{Kind: oauth.SANDNS, Value: "agent.example.com"}},
			{ID: "self", RedirectURIs: []string{flowRedirect}, SelfSignedCertificates: []*x509.Certificate{self.Leaf}, CertificateBoundTokens: true},
		}
	})}
	e.verified = startTLS(t, e.f.srv, &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: ca.Pool()})
	e.requested = startTLS(t, e.f.srv, &tls.Config{ClientAuth: tls.RequestClientCert})
	pkiClient := testClient{ID: "pki", RedirectURI: flowRedirect, Method: "tls_client_auth"}
	selfClient := testClient{ID: "self", RedirectURI: flowRedirect, Method: "self_signed_tls_client_auth"}
	for _, tt := range []struct {
		name string
		srv  *httptest.Server
		cert *tls.Certificate
		c    testClient
		ok   bool
	}{
		{"tls_client_auth", e.verified, &pki, pkiClient, true},
		{"tls_client_auth, chain not verified", e.requested, &pki, pkiClient, false},
		{"tls_client_auth with the self-signed certificate", e.requested, &self, pkiClient, false},
		{"self-signed", e.requested, &self, selfClient, true},
		{"self-signed with the CA-signed certificate", e.verified, &pki, selfClient, false},
		{"self-signed without a certificate", e.requested, nil, selfClient, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := e.authenticates(t, tt.srv, tt.cert, tt.c); got != tt.ok {
				t.Fatalf("authenticated = %v, want %v", got, tt.ok)
			}
		})
	}
	tb := e.f.tokensOver(t, e, e.requested, &self, selfClient)
	wantCertBound(t, e.f, tb, self)
}
