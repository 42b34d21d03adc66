package doctor_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/doctor"
)

// run runs the doctor against h, trusting its certificate, without the
// HTTP redirect probe.
func run(t *testing.T, h *host, edit func(o *doctor.Options)) *doctor.Report {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(h.srv.Certificate())
	opts := doctor.Options{Endpoint: h.endpoint(), RootCAs: pool, HTTPPort: -1, Timeout: 5 * time.Second}
	if edit != nil {
		edit(&opts)
	}
	rep, err := doctor.Run(context.Background(), opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rep
}

// severities maps each check ID to its severity.
func severities(t *testing.T, rep *doctor.Report) map[string]doctor.Severity {
	t.Helper()
	out := map[string]doctor.Severity{}
	for _, c := range rep.Checks {
		if prev, dup := out[c.ID]; dup && prev != c.Severity {
			t.Fatalf("check %s reported twice with different severities", c.ID)
		}
		out[c.ID] = c.Severity
	}
	return out
}

func dump(rep *doctor.Report) string {
	var b bytes.Buffer
	_ = rep.WriteText(&b, false)
	return b.String()
}

const absent doctor.Severity = ""

// goodBaseline is what a well-behaved host gets.
var goodBaseline = map[string]doctor.Severity{
	"tls.certificate":              doctor.SeverityPass,
	"challenge.status":             doctor.SeverityPass,
	"challenge.www_authenticate":   doctor.SeverityPass,
	"challenge.resource_metadata":  doctor.SeverityPass,
	"challenge.scope":              doctor.SeverityPass,
	"challenge.body":               doctor.SeverityPass,
	"cors.preflight":               doctor.SeverityPass,
	"cors.expose_www_authenticate": doctor.SeverityPass,
	"cors.metadata":                doctor.SeverityPass,
	"prm.header":                   doctor.SeverityPass,
	"prm.path":                     doctor.SeverityPass,
	"prm.root":                     doctor.SeverityPass,
	"prm.consistent":               doctor.SeverityPass,
	"prm.resource":                 doctor.SeverityPass,
	"prm.authorization_servers":    doctor.SeverityPass,
	"prm.bearer_methods":           doctor.SeverityPass,
	"prm.scopes":                   doctor.SeverityPass,
	"as.metadata":                  doctor.SeverityPass,
	"as.oidc":                      doctor.SeverityInfo,
	"as.issuer":                    doctor.SeverityPass,
	"as.endpoints":                 doctor.SeverityPass,
	"as.pkce":                      doctor.SeverityPass,
	"as.response_types":            doctor.SeverityPass,
	"as.grant_types":               doctor.SeverityPass,
	"as.auth_method_none":          doctor.SeverityPass,
	"as.registration":              doctor.SeverityPass,
	"as.cimd":                      doctor.SeverityInfo,
	"as.scopes":                    doctor.SeverityPass,
	"as.jwks":                      doctor.SeverityPass,
	"register.skipped":             doctor.SeverityInfo,
	"token.skipped":                doctor.SeverityInfo,
}

// asChecks are the checks of one authorization server's metadata.
var asChecks = []string{"as.oidc", "as.issuer", "as.endpoints", "as.pkce", "as.response_types", "as.grant_types",
	"as.auth_method_none", "as.registration", "as.cimd", "as.scopes", "as.jwks"}

// expect compares a report with the baseline changed by want: every
// check not in want must keep its baseline severity.
func expect(t *testing.T, rep *doctor.Report, baseline, want map[string]doctor.Severity) {
	t.Helper()
	got := severities(t, rep)
	all := map[string]bool{}
	for id := range baseline {
		all[id] = true
	}
	for id := range want {
		all[id] = true
	}
	for id := range got {
		all[id] = true
	}
	ids := make([]string, 0, len(all))
	for id := range all {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	bad := false
	for _, id := range ids {
		exp, ok := want[id]
		if !ok {
			exp = baseline[id]
		}
		if got[id] != exp {
			t.Errorf("%s = %q, want %q", id, got[id], exp)
			bad = true
		}
	}
	if bad {
		t.Logf("report:\n%s", dump(rep))
	}
}

func TestGoodHost(t *testing.T) {
	h := newHost(t, nil)
	rep := run(t, h, nil)
	expect(t, rep, goodBaseline, nil)
	if rep.Failed() || rep.Count(doctor.SeverityWarn) != 0 {
		t.Errorf("a good host got failures or warnings:\n%s", dump(rep))
	}
	if h.saw("POST /register") {
		t.Error("the doctor registered a client without Register")
	}
	if c := rep.Find("as.issuer"); len(c) != 1 || c[0].Subject != h.base {
		t.Errorf("as.issuer = %+v, want one check about %s", c, h.base)
	}
}

func TestBrokenHosts(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(h *host)
		want   map[string]doctor.Severity
		// inDetail is text the failing check's summary or detail must hold.
		inDetail map[string]string
	}{
		{
			name:     "issuer with a trailing slash",
			mutate:   func(h *host) { h.docs[h.asPath()]["issuer"] = h.base + "/" },
			want:     map[string]doctor.Severity{"as.issuer": doctor.SeverityFail},
			inDetail: map[string]string{"as.issuer": "has a trailing slash"},
		},
		{
			name: "issuer on another host",
			mutate: func(h *host) {
				h.docs[h.asPath()]["issuer"] = strings.Replace(h.base, "127.0.0.1", "localhost", 1)
			},
			want:     map[string]doctor.Severity{"as.issuer": doctor.SeverityFail},
			inDetail: map[string]string{"as.issuer": "has host localhost, not 127.0.0.1"},
		},
		{
			name: "protected resource metadata only at the root",
			mutate: func(h *host) {
				delete(h.docs, h.prmPath())
				h.challenge = `Bearer resource_metadata="` + h.base + h.prmRoot() + `", scope="read write"`
			},
			want: map[string]doctor.Severity{"prm.path": doctor.SeverityFail, "prm.consistent": doctor.SeverityInfo},
		},
		{
			name:   "challenge names a metadata URL that is missing",
			mutate: func(h *host) { delete(h.docs, h.prmPath()) },
			want: map[string]doctor.Severity{"prm.header": doctor.SeverityFail, "prm.path": doctor.SeverityFail,
				"prm.consistent": doctor.SeverityInfo},
		},
		{
			name: "metadata URL answered with an empty 200",
			mutate: func(h *host) {
				h.docs[h.prmPath()] = nil
			},
			want:     map[string]doctor.Severity{"prm.header": doctor.SeverityFail, "prm.path": doctor.SeverityFail, "prm.consistent": doctor.SeverityInfo},
			inDetail: map[string]string{"prm.path": "empty body"},
		},
		{
			name:     "root metadata served as text",
			mutate:   func(h *host) { h.contentType = map[string]string{h.prmRoot(): "text/plain"} },
			want:     map[string]doctor.Severity{"prm.root": doctor.SeverityWarn},
			inDetail: map[string]string{"prm.root": "text/plain"},
		},
		{
			name:   "no metadata at the root",
			mutate: func(h *host) { delete(h.docs, h.prmRoot()) },
			want:   map[string]doctor.Severity{"prm.root": doctor.SeverityWarn, "prm.consistent": doctor.SeverityInfo},
		},
		{
			name:   "no protected resource metadata at all",
			mutate: func(h *host) { delete(h.docs, h.prmRoot()); delete(h.docs, h.prmPath()) },
			want: func() map[string]doctor.Severity {
				w := map[string]doctor.Severity{"prm.header": doctor.SeverityFail, "prm.path": doctor.SeverityFail,
					"prm.root": doctor.SeverityWarn, "prm.consistent": absent, "prm.resource": absent,
					"prm.authorization_servers": absent, "prm.bearer_methods": absent, "prm.scopes": absent,
					"as.metadata": absent, "cors.metadata": absent, "as.skipped": doctor.SeverityInfo}
				for _, id := range asChecks {
					w[id] = absent
				}
				return w
			}(),
		},
		{
			name:     "S256 missing",
			mutate:   func(h *host) { h.docs[h.asPath()]["code_challenge_methods_supported"] = []any{"plain"} },
			want:     map[string]doctor.Severity{"as.pkce": doctor.SeverityFail},
			inDetail: map[string]string{"as.pkce": "lacks S256"},
		},
		{
			name:     "code_challenge_methods_supported absent",
			mutate:   func(h *host) { delete(h.docs[h.asPath()], "code_challenge_methods_supported") },
			want:     map[string]doctor.Severity{"as.pkce": doctor.SeverityFail},
			inDetail: map[string]string{"as.pkce": "is missing"},
		},
		{
			name: "none missing",
			mutate: func(h *host) {
				h.docs[h.asPath()]["token_endpoint_auth_methods_supported"] = []any{"client_secret_basic", "client_secret_post"}
			},
			want:     map[string]doctor.Severity{"as.auth_method_none": doctor.SeverityFail},
			inDetail: map[string]string{"as.auth_method_none": "lacks none"},
		},
		{
			name:   "token_endpoint_auth_methods_supported absent",
			mutate: func(h *host) { delete(h.docs[h.asPath()], "token_endpoint_auth_methods_supported") },
			want:   map[string]doctor.Severity{"as.auth_method_none": doctor.SeverityFail},
		},
		{
			name: "challenge without resource_metadata",
			mutate: func(h *host) {
				h.challenge = `Bearer scope="read write"`
			},
			want: map[string]doctor.Severity{"challenge.resource_metadata": doctor.SeverityFail, "prm.header": absent},
		},
		{
			name:     "challenge with a relative resource_metadata",
			mutate:   func(h *host) { h.challenge = `Bearer resource_metadata="/.well-known/oauth-protected-resource/mcp"` },
			want:     map[string]doctor.Severity{"challenge.resource_metadata": doctor.SeverityFail, "challenge.scope": doctor.SeverityWarn, "prm.header": absent},
			inDetail: map[string]string{"challenge.resource_metadata": "not an absolute URL"},
		},
		{
			name:   "challenge without scope",
			mutate: func(h *host) { h.challenge = `Bearer resource_metadata="` + h.base + h.prmPath() + `"` },
			want:   map[string]doctor.Severity{"challenge.scope": doctor.SeverityWarn},
		},
		{
			name: "Basic before Bearer",
			mutate: func(h *host) {
				h.challenge = `Basic realm="shop", Bearer resource_metadata="` + h.base + h.prmPath() + `", scope="read write"`
			},
			want: map[string]doctor.Severity{"challenge.www_authenticate": doctor.SeverityFail},
		},
		{
			name:   "no WWW-Authenticate",
			mutate: func(h *host) { h.challenge = "" },
			want: map[string]doctor.Severity{"challenge.www_authenticate": doctor.SeverityFail,
				"challenge.resource_metadata": absent, "challenge.scope": absent, "challenge.body": absent,
				"cors.expose_www_authenticate": absent, "prm.header": absent},
		},
		{
			name:   "401 body not JSON",
			mutate: func(h *host) { h.challengeBody, h.challengeType = "Unauthorized", "text/plain" },
			want:   map[string]doctor.Severity{"challenge.body": doctor.SeverityWarn},
		},
		{
			name:   "endpoint not protected",
			mutate: func(h *host) { h.unauthStatus = http.StatusOK },
			want: map[string]doctor.Severity{"challenge.status": doctor.SeverityFail,
				"challenge.www_authenticate": absent, "challenge.resource_metadata": absent, "challenge.scope": absent,
				"challenge.body": absent, "cors.expose_www_authenticate": absent, "prm.header": absent},
		},
		{
			name:     "WWW-Authenticate not exposed",
			mutate:   func(h *host) { h.exposeHeaders = "Mcp-Session-Id" },
			want:     map[string]doctor.Severity{"cors.expose_www_authenticate": doctor.SeverityFail},
			inDetail: map[string]string{"cors.expose_www_authenticate": "Access-Control-Expose-Headers: Mcp-Session-Id"},
		},
		{
			name:   "preflight challenged",
			mutate: func(h *host) { h.preflightStatus = http.StatusUnauthorized },
			want:   map[string]doctor.Severity{"cors.preflight": doctor.SeverityFail},
		},
		{
			name:     "preflight allows headers with a wildcard, which never covers Authorization",
			mutate:   func(h *host) { h.allowHeaders = "*" },
			want:     map[string]doctor.Severity{"cors.preflight": doctor.SeverityFail},
			inDetail: map[string]string{"cors.preflight": "authorization"},
		},
		{
			name:   "metadata not readable cross-origin",
			mutate: func(h *host) { h.metadataCORS = false },
			want:   map[string]doctor.Severity{"cors.metadata": doctor.SeverityFail},
		},
		{
			name: "wrong resource",
			mutate: func(h *host) {
				h.docs[h.prmPath()]["resource"] = h.base + "/api"
				h.docs[h.prmRoot()]["resource"] = h.base + "/api"
			},
			want:     map[string]doctor.Severity{"prm.resource": doctor.SeverityFail},
			inDetail: map[string]string{"prm.resource": "has path /api, not /mcp"},
		},
		{
			name: "resource with a trailing slash on a path",
			mutate: func(h *host) {
				h.docs[h.prmPath()]["resource"] = h.endpoint() + "/"
				h.docs[h.prmRoot()]["resource"] = h.endpoint() + "/"
			},
			want:     map[string]doctor.Severity{"prm.resource": doctor.SeverityFail},
			inDetail: map[string]string{"prm.resource": "trailing slash"},
		},
		{
			name: "resource is the origin",
			mutate: func(h *host) {
				h.docs[h.prmPath()]["resource"] = h.base
				h.docs[h.prmRoot()]["resource"] = h.base
			},
			want:     map[string]doctor.Severity{"prm.resource": doctor.SeverityFail},
			inDetail: map[string]string{"prm.resource": "prefix"},
		},
		{
			name: "resource differs in letter case only",
			mutate: func(h *host) {
				h.docs[h.prmPath()]["resource"] = "HTTPS" + strings.TrimPrefix(h.endpoint(), "https")
				h.docs[h.prmRoot()]["resource"] = "HTTPS" + strings.TrimPrefix(h.endpoint(), "https")
			},
			want: map[string]doctor.Severity{"prm.resource": doctor.SeverityWarn},
		},
		{
			name:     "root document describes the origin",
			mutate:   func(h *host) { h.docs[h.prmRoot()]["resource"] = h.base },
			want:     map[string]doctor.Severity{"prm.consistent": doctor.SeverityWarn},
			inDetail: map[string]string{"prm.consistent": "describes the origin"},
		},
		{
			name:   "root document names another resource",
			mutate: func(h *host) { h.docs[h.prmRoot()]["resource"] = h.base + "/other" },
			want:   map[string]doctor.Severity{"prm.consistent": doctor.SeverityFail},
		},
		{
			name:   "root document differs in its name only",
			mutate: func(h *host) { h.docs[h.prmRoot()]["resource_name"] = "other" },
			want:   map[string]doctor.Severity{"prm.consistent": doctor.SeverityWarn},
		},
		{
			name: "no authorization servers",
			mutate: func(h *host) {
				h.docs[h.prmPath()]["authorization_servers"] = []any{}
				h.docs[h.prmRoot()]["authorization_servers"] = []any{}
			},
			want: func() map[string]doctor.Severity {
				w := map[string]doctor.Severity{"prm.authorization_servers": doctor.SeverityFail, "as.metadata": absent,
					"as.skipped": doctor.SeverityInfo}
				for _, id := range asChecks {
					w[id] = absent
				}
				return w
			}(),
		},
		{
			name: "bearer methods missing",
			mutate: func(h *host) {
				delete(h.docs[h.prmPath()], "bearer_methods_supported")
				delete(h.docs[h.prmRoot()], "bearer_methods_supported")
			},
			want: map[string]doctor.Severity{"prm.bearer_methods": doctor.SeverityWarn},
		},
		{
			name: "bearer methods without header",
			mutate: func(h *host) {
				h.docs[h.prmPath()]["bearer_methods_supported"] = []any{"query"}
				h.docs[h.prmRoot()]["bearer_methods_supported"] = []any{"query"}
			},
			want: map[string]doctor.Severity{"prm.bearer_methods": doctor.SeverityFail},
		},
		{
			name: "resource scopes unknown to the authorization server",
			mutate: func(h *host) {
				h.docs[h.asPath()]["scopes_supported"] = []any{"read"}
			},
			want:     map[string]doctor.Severity{"as.scopes": doctor.SeverityWarn},
			inDetail: map[string]string{"as.scopes": "write"},
		},
		{
			name:   "no authorization server metadata",
			mutate: func(h *host) { delete(h.docs, h.asPath()) },
			want: func() map[string]doctor.Severity {
				w := map[string]doctor.Severity{"as.metadata": doctor.SeverityFail}
				for _, id := range asChecks {
					w[id] = absent
				}
				return w
			}(),
		},
		{
			name: "only OpenID Connect discovery",
			mutate: func(h *host) {
				h.docs["/.well-known/openid-configuration"] = h.docs[h.asPath()]
				delete(h.docs, h.asPath())
			},
			want: map[string]doctor.Severity{"as.metadata": doctor.SeverityWarn, "as.oidc": absent},
		},
		{
			name:   "no registration endpoint",
			mutate: func(h *host) { delete(h.docs[h.asPath()], "registration_endpoint") },
			want:   map[string]doctor.Severity{"as.registration": doctor.SeverityWarn},
		},
		{
			name:   "no refresh_token grant",
			mutate: func(h *host) { h.docs[h.asPath()]["grant_types_supported"] = []any{"authorization_code"} },
			want:   map[string]doctor.Severity{"as.grant_types": doctor.SeverityWarn},
		},
		{
			name:   "no code response type",
			mutate: func(h *host) { h.docs[h.asPath()]["response_types_supported"] = []any{"token"} },
			want:   map[string]doctor.Severity{"as.response_types": doctor.SeverityFail},
		},
		{
			name:     "token endpoint over http on a public host",
			mutate:   func(h *host) { h.docs[h.asPath()]["token_endpoint"] = "http://auth.example.com/token" },
			want:     map[string]doctor.Severity{"as.endpoints": doctor.SeverityFail},
			inDetail: map[string]string{"as.endpoints": "token_endpoint"},
		},
		{
			name: "JWKS with a private key",
			mutate: func(h *host) {
				h.docs["/jwks"] = map[string]any{"keys": []any{map[string]any{"kty": "EC", "kid": "k1", "x": "A", "y": "B", "d": "PRIVATE"}}}
			},
			want:     map[string]doctor.Severity{"as.jwks": doctor.SeverityFail},
			inDetail: map[string]string{"as.jwks": "k1.d"},
		},
		{
			name:   "JWKS without keys",
			mutate: func(h *host) { h.docs["/jwks"] = map[string]any{"keys": []any{}} },
			want:   map[string]doctor.Severity{"as.jwks": doctor.SeverityFail},
		},
		{
			name:   "CIMD advertised",
			mutate: func(h *host) { h.docs[h.asPath()]["client_id_metadata_document_supported"] = true },
			want:   map[string]doctor.Severity{"as.cimd": doctor.SeverityInfo},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(t, tt.mutate)
			rep := run(t, h, nil)
			expect(t, rep, goodBaseline, tt.want)
			failing := false
			for _, sev := range tt.want {
				failing = failing || sev == doctor.SeverityFail
			}
			if rep.Failed() != failing {
				t.Errorf("Failed() = %v, want %v", rep.Failed(), failing)
			}
			for id, text := range tt.inDetail {
				cs := rep.Find(id)
				if len(cs) == 0 || !strings.Contains(cs[0].Summary+" "+cs[0].Detail, text) {
					t.Errorf("%s does not mention %q: %+v", id, text, cs)
				}
			}
			for _, c := range rep.Checks {
				if (c.Severity == doctor.SeverityFail || c.Severity == doctor.SeverityWarn) && (len(c.Clients) == 0 || c.Fix == "") {
					t.Errorf("%s is a %s without affected clients or a fix", c.ID, c.Severity)
				}
			}
		})
	}
}

// TestOriginEndpoint: for an endpoint at the origin, https://h and
// https://h/ name the same resource, and the root well-known URL is the
// RFC 9728 one.
func TestOriginEndpoint(t *testing.T) {
	h := newHost(t, func(h *host) {
		h.mcpPath = "/"
		doc := h.docs[h.prmRoot()]
		doc["resource"] = h.base // no trailing slash
		delete(h.docs, h.prmPath())
		h.challenge = `Bearer resource_metadata="` + h.base + h.prmRoot() + `", scope="read write"`
	})
	rep := run(t, h, nil)
	expect(t, rep, goodBaseline, map[string]doctor.Severity{"prm.root": doctor.SeverityInfo, "prm.consistent": doctor.SeverityInfo})
	if c := rep.Find("prm.resource"); len(c) != 1 || !strings.Contains(c[0].Summary, "trailing slash") {
		t.Errorf("prm.resource = %+v", c)
	}
}

// baselineWith is the good host's report changed by the given checks.
func baselineWith(changes map[string]doctor.Severity) map[string]doctor.Severity {
	b := maps.Clone(goodBaseline)
	maps.Copy(b, changes)
	return b
}

// registerBaseline is the good host's report with --register.
func registerBaseline() map[string]doctor.Severity {
	return baselineWith(map[string]doctor.Severity{"register.skipped": absent, "register.client": doctor.SeverityPass,
		"register.public": doctor.SeverityPass, "register.redirect_uris": doctor.SeverityPass, "register.loopback_port": doctor.SeverityPass})
}

func TestRegistration(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(h *host)
		want   map[string]doctor.Severity
	}{
		{"good", nil, nil},
		{"secret issued to a public client", func(h *host) { h.registerSecret = true },
			map[string]doctor.Severity{"register.public": doctor.SeverityFail}},
		{"redirect_uris not echoed", func(h *host) { h.registerEcho = false },
			map[string]doctor.Severity{"register.redirect_uris": doctor.SeverityFail}},
		{"loopback port must match", func(h *host) { h.strictPort = true },
			map[string]doctor.Severity{"register.loopback_port": doctor.SeverityFail}},
		{"registration endpoint refuses", func(h *host) { h.docs[h.asPath()]["registration_endpoint"] = h.base + "/nowhere" },
			map[string]doctor.Severity{"register.client": doctor.SeverityFail, "register.public": absent,
				"register.redirect_uris": absent, "register.loopback_port": absent}},
		{"no registration endpoint", func(h *host) { delete(h.docs[h.asPath()], "registration_endpoint") },
			map[string]doctor.Severity{"as.registration": doctor.SeverityWarn, "register.skipped": doctor.SeverityInfo,
				"register.client": absent, "register.public": absent, "register.redirect_uris": absent, "register.loopback_port": absent}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(t, tt.mutate)
			rep := run(t, h, func(o *doctor.Options) { o.Register = true })
			expect(t, rep, registerBaseline(), tt.want)
		})
	}
	t.Run("registers a public loopback client", func(t *testing.T) {
		h := newHost(t, nil)
		run(t, h, func(o *doctor.Options) { o.Register = true })
		clients := h.clients()
		if len(clients) != 1 {
			t.Fatalf("registered %d clients", len(clients))
		}
		for _, uris := range clients {
			if len(uris) != 1 || uris[0] != "http://127.0.0.1/callback" {
				t.Errorf("redirect URIs %v", uris)
			}
		}
		if !h.saw("GET /authorize") {
			t.Error("the authorization endpoint was not tried")
		}
	})
}

// tokenBaseline is the good host's report with a token.
func tokenBaseline() map[string]doctor.Severity {
	return baselineWith(map[string]doctor.Severity{"token.skipped": absent, "token.scopes": doctor.SeverityInfo,
		"token.tools_list": doctor.SeverityPass, "token.meta_scope": doctor.SeverityPass, "token.callable": doctor.SeverityInfo,
		"token.step_up": doctor.SeverityPass})
}

func TestToken(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(h *host)
		token    func(h *host) string
		want     map[string]doctor.Severity
		inDetail map[string]string
	}{
		{name: "good", inDetail: map[string]string{"token.scopes": "token scopes: read", "token.step_up": "audit_log (needs admin)",
			"token.tools_list": "3 tools", "token.callable": "1 of 3"}},
		{name: "refused token", token: func(h *host) string { return "opaque-refused-token-value" },
			want: map[string]doctor.Severity{"token.tools_list": doctor.SeverityFail, "token.meta_scope": absent,
				"token.callable": absent, "token.step_up": absent},
			inDetail: map[string]string{"token.scopes": "opaque", "token.tools_list": "401"}},
		{name: "scopes not enforced", mutate: func(h *host) { h.scopeGate = false },
			want: map[string]doctor.Severity{"token.step_up": doctor.SeverityFail}},
		{name: "403 without resource_metadata",
			mutate: func(h *host) { h.stepUp = `Bearer error="insufficient_scope", scope="read admin"` },
			want:   map[string]doctor.Severity{"token.step_up": doctor.SeverityFail}, inDetail: map[string]string{"token.step_up": "resource_metadata"}},
		{name: "403 without the needed scope",
			mutate: func(h *host) {
				h.stepUp = `Bearer error="insufficient_scope", scope="read", resource_metadata="` + h.base + h.prmPath() + `"`
			},
			want: map[string]doctor.Severity{"token.step_up": doctor.SeverityFail}, inDetail: map[string]string{"token.step_up": "scope naming admin"}},
		{name: "tools without _meta.scope",
			mutate: func(h *host) {
				for _, tl := range h.tools {
					delete(tl, "_meta")
				}
			},
			want: map[string]doctor.Severity{"token.meta_scope": doctor.SeverityWarn, "token.callable": absent, "token.step_up": doctor.SeverityInfo}},
		{name: "token holds every read-only tool's scope",
			mutate: func(h *host) {
				h.token = fakeJWT(map[string]any{"iss": h.base, "aud": h.endpoint(), "scp": []any{"read", "admin"}})
			},
			want: map[string]doctor.Severity{"token.step_up": doctor.SeverityInfo}, inDetail: map[string]string{"token.callable": "2 of 3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var token string
			h := newHost(t, func(h *host) {
				if tt.mutate != nil {
					tt.mutate(h)
				}
				if tt.token != nil {
					token = tt.token(h)
				} else {
					token = h.token
				}
			})
			rep := run(t, h, func(o *doctor.Options) { o.Token = token })
			expect(t, rep, tokenBaseline(), tt.want)
			for id, text := range tt.inDetail {
				cs := rep.Find(id)
				if len(cs) == 0 || !strings.Contains(cs[0].Summary+" "+cs[0].Detail, text) {
					t.Errorf("%s does not mention %q: %+v", id, text, cs)
				}
			}
			var text, js bytes.Buffer
			_ = rep.WriteText(&text, true)
			_ = rep.WriteJSON(&js)
			if strings.Contains(text.String(), token) || strings.Contains(js.String(), token) {
				t.Error("the report shows the token")
			}
		})
	}
	t.Run("ends its session", func(t *testing.T) {
		h := newHost(t, nil)
		run(t, h, func(o *doctor.Options) { o.Token = h.token })
		if got := h.sessionsEnded(); len(got) != 1 || got[0] != "session-1" {
			t.Errorf("sessions ended: %v", got)
		}
	})
}

// TestTokenRedacted: a host that echoes the token back does not get it
// into the report.
func TestTokenRedacted(t *testing.T) {
	const secret = "echoed-secret-token-1234567890"
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("upstream said: " + r.Header.Get("Authorization")))
	}))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	rep, err := doctor.Run(context.Background(), doctor.Options{Endpoint: srv.URL + "/mcp", RootCAs: pool, HTTPPort: -1, Token: secret})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_ = rep.WriteJSON(&out)
	if strings.Contains(out.String(), secret) {
		t.Fatalf("token in report:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "[token]") {
		t.Errorf("expected the echoed token to be redacted:\n%s", out.String())
	}
}

func TestTLS(t *testing.T) {
	h := newHost(t, nil)
	t.Run("untrusted certificate stops the run", func(t *testing.T) {
		rep := run(t, h, func(o *doctor.Options) { o.RootCAs = x509.NewCertPool() })
		if len(rep.Checks) != 1 || rep.Checks[0].ID != "tls.certificate" || rep.Checks[0].Severity != doctor.SeverityFail {
			t.Fatalf("report:\n%s", dump(rep))
		}
		if !strings.Contains(rep.Checks[0].Fix, "--ca-cert") {
			t.Errorf("fix = %q", rep.Checks[0].Fix)
		}
	})
	t.Run("insecure skips verification", func(t *testing.T) {
		rep := run(t, h, func(o *doctor.Options) { o.RootCAs = x509.NewCertPool(); o.Insecure = true })
		expect(t, rep, goodBaseline, map[string]doctor.Severity{"tls.certificate": doctor.SeverityInfo})
	})
	t.Run("certificate about to expire", func(t *testing.T) {
		notAfter := h.srv.Certificate().NotAfter
		rep := run(t, h, func(o *doctor.Options) { o.Now = func() time.Time { return notAfter.Add(-72 * time.Hour) } })
		expect(t, rep, goodBaseline, map[string]doctor.Severity{"tls.certificate": doctor.SeverityWarn})
	})
	t.Run("nothing listening", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		rep, err := doctor.Run(context.Background(), doctor.Options{Endpoint: "https://" + addr + "/mcp", HTTPPort: -1, Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Checks) != 1 || rep.Checks[0].Severity != doctor.SeverityFail || !strings.Contains(rep.Checks[0].Summary, "cannot connect") {
			t.Fatalf("report:\n%s", dump(rep))
		}
	})
	t.Run("http to https redirect", func(t *testing.T) {
		plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, h.base+r.URL.RequestURI(), http.StatusPermanentRedirect)
		}))
		defer plain.Close()
		_, port, _ := net.SplitHostPort(plain.Listener.Addr().String())
		rep := run(t, h, func(o *doctor.Options) { o.HTTPPort = atoi(t, port) })
		cs := rep.Find("tls.http_redirect")
		if len(cs) != 1 || cs[0].Severity != doctor.SeverityInfo || !strings.Contains(cs[0].Summary, "redirects to HTTPS") {
			t.Errorf("tls.http_redirect = %+v", cs)
		}
	})
	t.Run("no http redirect", func(t *testing.T) {
		plain := httptest.NewServer(http.NotFoundHandler())
		defer plain.Close()
		_, port, _ := net.SplitHostPort(plain.Listener.Addr().String())
		rep := run(t, h, func(o *doctor.Options) { o.HTTPPort = atoi(t, port) })
		cs := rep.Find("tls.http_redirect")
		if len(cs) != 1 || cs[0].Severity != doctor.SeverityInfo || !strings.Contains(cs[0].Summary, "no redirect") {
			t.Errorf("tls.http_redirect = %+v", cs)
		}
	})
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPlainHTTPLoopback: a development endpoint on http://127.0.0.1 is
// checked with a note instead of a certificate.
func TestPlainHTTPLoopback(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NotFound(w, r)
	}))
	defer srv.Close()
	rep, err := doctor.Run(context.Background(), doctor.Options{Endpoint: srv.URL + "/mcp"})
	if err != nil {
		t.Fatal(err)
	}
	got := severities(t, rep)
	if got["tls.certificate"] != doctor.SeverityInfo || got["challenge.status"] != doctor.SeverityFail {
		t.Errorf("report:\n%s", dump(rep))
	}
}

func TestRunRejectsBadEndpoints(t *testing.T) {
	for _, e := range []string{"", "mcp.example.com/mcp", "ftp://h/mcp", "https:///mcp", "https://h/mcp#x", "https://u:p@h/mcp"} {
		if _, err := doctor.Run(context.Background(), doctor.Options{Endpoint: e}); err == nil {
			t.Errorf("Run(%q) succeeded", e)
		}
	}
}

func TestWriteText(t *testing.T) {
	h := newHost(t, func(h *host) { h.docs[h.asPath()]["issuer"] = h.base + "/" })
	rep := run(t, h, nil)
	var plain, coloured bytes.Buffer
	if err := rep.WriteText(&plain, false); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteText(&coloured, true); err != nil {
		t.Fatal(err)
	}
	out := plain.String()
	for _, want := range []string{
		"caddy mcp-doctor " + h.endpoint(),
		"Authorization server " + h.base,
		"FAIL  as.issuer",
		"affects: Codex",
		"fix: Make the issuer byte-identical",
		"PASS  prm.resource",
		"FAILED: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("plain report has ANSI escapes")
	}
	if !strings.Contains(coloured.String(), "\x1b[31m") {
		t.Error("coloured report has no red")
	}
}

func TestWriteJSON(t *testing.T) {
	h := newHost(t, nil)
	rep := run(t, h, nil)
	var b bytes.Buffer
	if err := rep.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Endpoint string                   `json:"endpoint"`
		OK       bool                     `json:"ok"`
		Counts   map[doctor.Severity]int  `json:"counts"`
		Checks   []map[string]interface{} `json:"checks"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Endpoint != h.endpoint() || !got.OK || got.Counts[doctor.SeverityPass] != rep.Count(doctor.SeverityPass) || len(got.Checks) != len(rep.Checks) {
		t.Errorf("JSON report: %s", b.String())
	}
	if got.Checks[0]["id"] != "tls.certificate" || got.Checks[0]["group"] != "tls" || got.Checks[0]["severity"] != "pass" {
		t.Errorf("first check: %v", got.Checks[0])
	}
}
