//go:build e2e

package e2e

import (
	"encoding/json"
	"encoding/pem"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testflow"
)

// cimdHost serves client metadata documents over TLS on 127.0.0.1 with
// httptest's certificate, which the binary trusts through SSL_CERT_FILE.
type cimdHost struct {
	srv      *httptest.Server
	certFile string
	mu       sync.Mutex
	hits     map[string]int
}

func startCIMDHost(t *testing.T, redirect string) *cimdHost {
	t.Helper()
	h := &cimdHost{hits: map[string]int{}}
	mux := http.NewServeMux()
	doc := func(clientID string) []byte {
		b, _ := json.Marshal(map[string]any{
			"client_id": clientID, "client_name": "E2E CIMD client", "redirect_uris": []string{redirect},
			"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
			"token_endpoint_auth_method": "none",
		})
		return b
	}
	count := func(r *http.Request) {
		h.mu.Lock()
		h.hits[r.URL.Path]++
		h.mu.Unlock()
	}
	mux.HandleFunc("/client.json", func(w http.ResponseWriter, r *http.Request) {
		count(r)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=600")
		_, _ = w.Write(doc(h.srv.URL + r.URL.Path))
	})
	mux.HandleFunc("/mismatch.json", func(w http.ResponseWriter, r *http.Request) {
		count(r)
		_, _ = w.Write(doc(h.srv.URL + "/client.json"))
	})
	mux.HandleFunc("/moved.json", func(w http.ResponseWriter, r *http.Request) {
		count(r)
		http.Redirect(w, r, "/client.json", http.StatusFound)
	})
	h.srv = httptest.NewTLSServer(mux)
	t.Cleanup(h.srv.Close)
	h.certFile = filepath.Join(t.TempDir(), "cimd-host.pem")
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.srv.Certificate().Raw})
	if err := os.WriteFile(h.certFile, block, 0o600); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *cimdHost) hitsOf(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hits[path]
}

// authorizePage GETs an authorization request of clientID and returns the
// answer, which for a refused document is an error page.
func authorizePage(t *testing.T, in *instance, clientID, redirect string) (int, string) {
	t.Helper()
	q := testflow.NewRequest(in.base(), clientID, redirect, "booking:read", in.base()+"/mcp")
	res, body := in.do("GET", strings.TrimPrefix(q.URL(), in.base()), nil)
	if loc := res.Header.Get("Location"); loc != "" {
		t.Fatalf("a refused document redirected to %s", loc)
	}
	return res.StatusCode, html.UnescapeString(string(body))
}

// TestClientMetadataDocument runs an MCP client that names itself by the
// URL of its metadata document through the real binary: discovery,
// consent, code, token, MCP calls and refresh. The document host is on
// 127.0.0.1, which the binary refuses by default; the first host lets it
// in with the test-only allow-list entry that names the loopback address
// exactly, the second (default settings) shows that it is refused.
func TestClientMetadataDocument(t *testing.T) {
	const redirect = "http://127.0.0.1:9/callback"
	docs := startCIMDHost(t, redirect)
	clientID := docs.srv.URL + "/client.json"

	op := startOIDC(t)
	config := withLogin(t, exampleText(t), op.Issuer)
	const block = "\n\tmcp_oauth {\n"
	if !strings.Contains(config, block) {
		t.Fatal("no mcp_oauth block to add to")
	}
	docsURL, err := url.Parse(docs.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	config = strings.Replace(config, block, block+"\t\tclient_metadata_documents {\n\t\t\tallow_domains 127.0.0.1\n\t\t\tallow_ports "+
		docsURL.Port()+"\n\t\t}\n", 1)
	in := newInstance(t, config, "CADDYMCP_E2E_OP_SECRET=op-secret", "SSL_CERT_FILE="+docs.certFile)
	in.start()
	base := in.base()
	if !strings.Contains(in.out.String(), "client metadata documents may be fetched from the loopback host 127.0.0.1") {
		t.Errorf("no warning about the loopback allow-list entry:\n%s", in.out)
	}

	var meta map[string]any
	in.getJSON("/.well-known/oauth-authorization-server", &meta)
	methods, _ := meta["token_endpoint_auth_methods_supported"].([]any)
	if meta["client_id_metadata_document_supported"] != true || !containsAny(methods, "none") {
		t.Fatalf("metadata: client_id_metadata_document_supported %v, token_endpoint_auth_methods_supported %v",
			meta["client_id_metadata_document_supported"], methods)
	}

	b := testflow.NewBrowser(t, localRoots(t, in))
	q := testflow.NewRequest(base, clientID, redirect, "booking:read product:read", base+"/mcp")
	page := html.UnescapeString(b.ConsentPage(q))
	host := strings.TrimPrefix(docs.srv.URL, "https://")
	for _, want := range []string{"E2E CIMD client", "Application published by", "<strong>" + host + "</strong>",
		"<strong>127.0.0.1:9</strong>", "Did you start this yourself"} {
		if !strings.Contains(page, want) {
			t.Errorf("consent page lacks %q:\n%s", want, page)
		}
	}
	tokens := b.Redeem(q, b.Approve(q, page))
	if tokens.Scope != "booking:read product:read" || tokens.RefreshToken == "" {
		t.Fatalf("tokens: %+v", tokens)
	}
	testflow.MCPClientCalls(t, base+"/mcp", tokens.AccessToken, b.Client)
	refreshed := b.Exchange(base, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tokens.RefreshToken}, "client_id": {clientID}})
	if refreshed.RefreshToken == "" || refreshed.RefreshToken == tokens.RefreshToken {
		t.Fatalf("refresh: %+v", refreshed)
	}
	if n := docs.hitsOf("/client.json"); n != 1 {
		t.Errorf("the document was fetched %d times, want once (cached)", n)
	}

	// Refusals: error pages, never a redirect.
	for _, tc := range []struct{ id, want string }{
		{docs.srv.URL + "/mismatch.json", "differs from its URL"},
		{docs.srv.URL + "/moved.json", "it could not be fetched"},
		{strings.Replace(clientID, "127.0.0.1", "localhost", 1), "does not accept applications from localhost"},
	} {
		if status, body := authorizePage(t, in, tc.id, redirect); status != http.StatusBadRequest || !strings.Contains(body, tc.want) {
			t.Errorf("%s: status %d, want 400 with %q:\n%s", tc.id, status, tc.want, body)
		}
	}
	if n := docs.hitsOf("/client.json"); n != 1 {
		t.Errorf("a redirect was followed: the document was fetched %d times", n)
	}
	in.stop()

	// Default settings but the port: loopback is never fetched.
	plainConfig := strings.Replace(exampleText(t), block, block+"\t\tclient_metadata_documents {\n\t\t\tallow_ports "+
		docsURL.Port()+"\n\t\t}\n", 1)
	plain := newInstance(t, plainConfig, "SSL_CERT_FILE="+docs.certFile)
	plain.start()
	var plainMeta map[string]any
	plain.getJSON("/.well-known/oauth-authorization-server", &plainMeta)
	if plainMeta["client_id_metadata_document_supported"] != true {
		t.Errorf("default settings: client_id_metadata_document_supported = %v", plainMeta["client_id_metadata_document_supported"])
	}
	status, body := authorizePage(t, plain, clientID, redirect)
	if want := "its host has no public address"; status != http.StatusBadRequest || !strings.Contains(body, want) {
		t.Errorf("default settings: status %d, want 400 with %q:\n%s", status, want, body)
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshed.RefreshToken}, "client_id": {clientID}}
	res, tokenBody := plain.send("POST", "/oauth/token", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, form.Encode())
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(string(tokenBody), `"invalid_client"`) {
		t.Errorf("default settings, token endpoint: %d %s", res.StatusCode, tokenBody)
	}
	if n := docs.hitsOf("/client.json"); n != 1 {
		t.Errorf("default settings fetched from loopback (%d fetches)", n)
	}
}

func containsAny(list []any, want string) bool {
	for _, v := range list {
		if v == want {
			return true
		}
	}
	return false
}
