package oauth_test

// Tests of client metadata documents (CIMD): a TLS server on loopback
// serves the documents under any name its certificate covers; a fake
// resolver says which address each name has; and the address policy lets
// fetches reach 127.0.0.1, the test server, only where a test says so.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"html"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testkeys"
	"github.com/caddymcp/caddymcp/caddymcp/oauth"
)

const docPath = "/oauth/client-metadata.json"

// docAddr is where the document server listens.
var docAddr = netip.MustParseAddr("127.0.0.1")

// allowDocServer is the address policy of most tests: the real one, except
// that the test server's address counts as public.
func allowDocServer(_ string, a netip.Addr) bool { return a == docAddr || oauth.PublicAddress(a) }

// docCert is a CA and a server certificate for the names the tests use.
type docCert struct {
	roots *x509.CertPool
	cert  tls.Certificate
}

var (
	docCertOnce sync.Once
	docCertVal  docCert
	docCertErr  error
)

// testDocCert makes (once) a CA and a certificate for *.example.com,
// *.example.org, example.org, *.a.example.org, localhost, 127.0.0.1,
// 127.0.0.2 and ::1.
func testDocCert(t *testing.T) docCert {
	t.Helper()
	docCertOnce.Do(func() {
		caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			docCertErr = err
			return
		}
		now := time.Now()
		caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "caddymcp test CA"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign}
		caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
		if err != nil {
			docCertErr = err
			return
		}
		ca, _ := x509.ParseCertificate(caDER)
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			docCertErr = err
			return
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "documents"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			DNSNames:    []string{"*.example.com", "*.example.org", "example.org", "*.a.example.org", "localhost"},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("127.0.0.2"), net.ParseIP("::1")},
			KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			docCertErr = err
			return
		}
		docCertVal.roots = x509.NewCertPool()
		docCertVal.roots.AddCert(ca)
		docCertVal.cert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	})
	if docCertErr != nil {
		t.Fatal(docCertErr)
	}
	return docCertVal
}

// docReply is what the server answers for one URL.
type docReply struct {
	status int
	header map[string]string
	body   string
}

// docServer serves client metadata documents over TLS.
type docServer struct {
	t       *testing.T
	srv     *httptest.Server
	port    string
	roots   *x509.CertPool
	mu      sync.Mutex
	replies map[string]docReply // by URL, as https://<Host><path>
	hits    map[string]int
}

// newDocServer starts a document server listening on addr ("127.0.0.1:0").
func newDocServer(t *testing.T, addr string) *docServer {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return startDocServer(t, l)
}

func startDocServer(t *testing.T, l net.Listener) *docServer {
	t.Helper()
	cert := testDocCert(t)
	ds := &docServer{t: t, roots: cert.roots, replies: map[string]docReply{}, hits: map[string]int{}}
	ds.srv = httptest.NewUnstartedServer(http.HandlerFunc(ds.serve))
	ds.srv.Listener.Close()
	ds.srv.Listener = l
	ds.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert.cert}}
	ds.srv.StartTLS()
	t.Cleanup(ds.srv.Close)
	_, ds.port, _ = net.SplitHostPort(l.Addr().String())
	return ds
}

func (ds *docServer) serve(w http.ResponseWriter, r *http.Request) {
	key := "https://" + r.Host + r.URL.RequestURI()
	ds.mu.Lock()
	ds.hits[key]++
	rep, ok := ds.replies[key]
	ds.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	if rep.status == 0 {
		rep.status = http.StatusOK
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write([]byte(rep.body))
}

// url is the document URL path on host, at the server's port.
func (ds *docServer) url(host, path string) string { return "https://" + host + ":" + ds.port + path }

// setDoc serves a valid document for the client id u.
func (ds *docServer) setDoc(t *testing.T, u string) { ds.set(u, docReply{body: docBody(t, u, nil)}) }

func (ds *docServer) set(u string, r docReply) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	ds.replies[u] = r
}

func (ds *docServer) hitsOf(u string) int {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	return ds.hits[u]
}

// fakeResolver answers from a table: each name has a list of successive
// answers, the last of which repeats. Unknown names do not resolve.
type fakeResolver struct {
	mu      sync.Mutex
	answers map[string][][]netip.Addr
	calls   map[string]int
}

// newDocServerFor starts a document server on 127.0.0.1 and a resolver
// that sends each of hosts there.
func newDocServerFor(t *testing.T, hosts ...string) (*docServer, *fakeResolver) {
	t.Helper()
	ds := newDocServer(t, "127.0.0.1:0")
	res := newFakeResolver()
	for _, h := range hosts {
		res.set(h, "127.0.0.1")
	}
	return ds, res
}

func newFakeResolver() *fakeResolver {
	return &fakeResolver{answers: map[string][][]netip.Addr{}, calls: map[string]int{}}
}

// set gives host its successive answers, each a comma-separated list.
func (r *fakeResolver) set(host string, answers ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var seq [][]netip.Addr
	for _, a := range answers {
		var addrs []netip.Addr
		for _, s := range strings.Split(a, ",") {
			addrs = append(addrs, netip.MustParseAddr(s))
		}
		seq = append(seq, addrs)
	}
	r.answers[host] = seq
}

func (r *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seq := r.answers[host]
	if len(seq) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	i := min(r.calls[host], len(seq)-1)
	r.calls[host]++
	return seq[i], nil
}

func (r *fakeResolver) callsOf(host string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[host]
}

// newDocFlow is a flow whose server fetches documents from ds through
// res, with the test address policy; opts adjust the settings.
func newDocFlow(t *testing.T, ds *docServer, res *fakeResolver, opts ...func(*oauth.ClientMetadataDocuments)) *flow {
	t.Helper()
	return newFlow(t, func(c *oauth.Config) {
		port, err := strconv.Atoi(ds.port)
		if err != nil {
			t.Fatal(err)
		}
		c.ClientMetadataDocuments = oauth.ClientMetadataDocuments{RootCAs: ds.roots, Resolver: res, AllowAddress: allowDocServer,
			AllowPorts: []int{port}}
		for _, o := range opts {
			o(&c.ClientMetadataDocuments)
		}
	})
}

// docBody is a valid document for id, with overrides (nil removes a
// member).
func docBody(t *testing.T, id string, overrides map[string]any) string {
	t.Helper()
	md := map[string]any{
		"client_id":                  id,
		"client_name":                "Doc App",
		"redirect_uris":              []string{flowRedirect},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
	}
	return mustJSON(t, override(md, overrides))
}

// docClient is the public client a document URL names.
func docClient(id string) testClient {
	return testClient{ID: id, RedirectURI: flowRedirect, Method: "none"}
}

// authorizeDoc sends an authorization request of c.
func (f *flow) authorizeDoc(c testClient, extra url.Values) *httptest.ResponseRecorder {
	_, challenge := newPKCE(f.t)
	return f.get(oauth.AuthorizePath, authQuery(c, challenge, extra))
}

// wantDocRefused checks an error page that contains want.
func wantDocRefused(t *testing.T, w *httptest.ResponseRecorder, status int, want string) {
	t.Helper()
	wantPage(t, w, status)
	if body := html.UnescapeString(w.Body.String()); !strings.Contains(body, want) {
		t.Fatalf("the error page lacks %q:\n%s", want, body)
	}
}

// tokenWithDocClient sends a token request as c, which fails at client
// authentication or at the code.
func (f *flow) tokenWithDocClient(c testClient) *httptest.ResponseRecorder {
	verifier, _ := newPKCE(f.t)
	return f.postForm(oauth.TokenPath, url.Values{"grant_type": {"authorization_code"}, "code": {"no-such-code"},
		"code_verifier": {verifier}}, &c)
}

// wantDocNeverFetched checks that the client id is refused at the
// authorization endpoint (status, the page saying want) and at the token
// endpoint (invalid_client), without its document being fetched.
func (f *flow) wantDocNeverFetched(t *testing.T, ds *docServer, id string, status int, want string) {
	t.Helper()
	wantDocRefused(t, f.authorizeDoc(docClient(id), nil), status, want)
	wantOAuthError(t, f.tokenWithDocClient(docClient(id)), http.StatusUnauthorized, "invalid_client")
	if n := ds.hitsOf(id); n != 0 {
		t.Errorf("%s was fetched %d times, want never", id, n)
	}
}

func TestDocumentFlow(t *testing.T) {
	ds, res := newDocServerFor(t, "client.example.com")
	id := ds.url("client.example.com", docPath)
	ds.set(id, docReply{header: map[string]string{"Content-Type": "application/json", "Cache-Control": "max-age=3600"},
		body: docBody(t, id, nil)})
	f := newDocFlow(t, ds, res)

	// Claude uses CIMD only when both are advertised.
	m := testkeys.DecodeJSON(t, f.get(oauth.ASMetadataPath, nil))
	if m["client_id_metadata_document_supported"] != true {
		t.Errorf("client_id_metadata_document_supported = %v", m["client_id_metadata_document_supported"])
	}
	if methods, _ := m["token_endpoint_auth_methods_supported"].([]any); !slices.Contains(methods, any("none")) {
		t.Errorf("token_endpoint_auth_methods_supported = %v, want none in it", methods)
	}

	c := docClient(id)
	verifier, challenge := newPKCE(t)
	w := f.get(oauth.AuthorizePath, authQuery(c, challenge, nil))
	requestID, csrf := consentForm(t, w)
	page := html.UnescapeString(w.Body.String())
	for _, want := range []string{"Authorize Doc App", "Application published by", "<strong>client.example.com:" + ds.port + "</strong>",
		"Identified by " + id, "<strong>app.example.com</strong>"} {
		if !strings.Contains(page, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	if strings.Contains(page, "Did you start this yourself") {
		t.Error("the consent page warns about a local redirect for an https one")
	}
	q := wantRedirect(t, f.decide(requestID, csrf, "approve"), http.StatusSeeOther, flowRedirect+"?")
	tb := wantToken(t, f.exchange(c, q.Get("code"), verifier, nil))
	if claims := f.verify(tb.AccessToken); claims.ClientID != id {
		t.Errorf("client_id claim = %q, want %q", claims.ClientID, id)
	}
	refreshed := wantToken(t, f.refresh(c, tb.RefreshToken, nil))

	// The document was fetched once, for all of it.
	if n := ds.hitsOf(id); n != 1 {
		t.Errorf("the document was fetched %d times, want 1", n)
	}
	// A second authorization is remembered.
	code, _ := f.authorizeCode(c, nil)
	if code == "" {
		t.Fatal("no code")
	}
	// The client is public: a secret is refused.
	withSecret := testClient{ID: id, Secret: "guess", Method: "client_secret_post"}
	w = f.postForm(oauth.TokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshed.RefreshToken}}, &withSecret)
	wantOAuthError(t, w, http.StatusUnauthorized, "invalid_client")
	// Nothing is registered for it.
	if _, err := f.store.GetClient(context.Background(), id); err == nil {
		t.Error("the document client was written to the store")
	}
}

func TestDocumentRefused(t *testing.T) {
	ds, res := newDocServerFor(t, "client.example.com")
	f := newDocFlow(t, ds, res)

	tests := []struct {
		name string
		// reply for the document URL id
		reply     func(id string) docReply
		transient bool
		want      string
	}{
		{"client_id differs", func(id string) docReply { return docReply{body: docBody(t, id+"x", nil)} }, false,
			"differs from its URL"},
		{"client_id differs in case", func(id string) docReply {
			return docReply{body: docBody(t, strings.Replace(id, "client.example.com", "CLIENT.example.com", 1), nil)}
		}, false, "differs from its URL"},
		{"no client_name", func(id string) docReply { return docReply{body: docBody(t, id, map[string]any{"client_name": nil})} }, false,
			"it has no client_name"},
		{"invisible client_name", func(id string) docReply {
			return docReply{body: docBody(t, id, map[string]any{"client_name": " \u200b\u202e "})}
		}, false, "it has no client_name"},
		{"no redirect_uris", func(id string) docReply {
			return docReply{body: docBody(t, id, map[string]any{"redirect_uris": nil})}
		}, false, "it has no redirect_uris"},
		{"client_secret_basic", func(id string) docReply {
			return docReply{body: docBody(t, id, map[string]any{"token_endpoint_auth_method": "client_secret_basic"})}
		}, false, "cannot hold a shared secret"},
		{"client_secret_post", func(id string) docReply {
			return docReply{body: docBody(t, id, map[string]any{"token_endpoint_auth_method": "client_secret_post"})}
		}, false, "cannot hold a shared secret"},
		{"client_secret_jwt", func(id string) docReply {
			return docReply{body: docBody(t, id, map[string]any{"token_endpoint_auth_method": "client_secret_jwt"})}
		}, false, "cannot hold a shared secret"},
		{"no auth method but a secret", func(id string) docReply {
			return docReply{body: docBody(t, id, map[string]any{"token_endpoint_auth_method": nil, "client_secret": "s3cret"})}
		}, false, "it contains a client secret"},
		{"secret expiry", func(id string) docReply {
			return docReply{body: docBody(t, id, map[string]any{"client_secret_expires_at": 0})}
		}, false, "it contains a client secret"},
		{"private_key_jwt without keys", func(id string) docReply {
			return docReply{body: docBody(t, id, map[string]any{"token_endpoint_auth_method": "private_key_jwt"})}
		}, false, "without exactly one of jwks and jwks_uri"},
		{"private_key_jwt with keys", func(id string) docReply {
			return docReply{body: docBody(t, id, map[string]any{"token_endpoint_auth_method": "private_key_jwt",
				"jwks_uri": "https://client.example.com/jwks.json"})}
		}, false, "private_key_jwt, which this server does not support"},
		{"http redirect URI", func(id string) docReply {
			return docReply{body: docBody(t, id, map[string]any{"redirect_uris": []string{flowRedirect, "http://app.example.com/cb"}})}
		}, false, "http is allowed only for localhost"},
		{"javascript redirect URI", func(id string) docReply {
			return docReply{body: docBody(t, id, map[string]any{"redirect_uris": []string{"javascript:alert(1)//"}})}
		}, false, "the javascript scheme is not allowed"},
		{"no authorization_code grant", func(id string) docReply {
			return docReply{body: docBody(t, id, map[string]any{"grant_types": []string{"client_credentials"}})}
		}, false, "its grant_types lack authorization_code"},
		{"too large", func(id string) docReply {
			return docReply{body: docBody(t, id, map[string]any{"padding": strings.Repeat("a", oauth.MaxDocumentBytes)})}
		}, false, "it is larger than 5120 bytes"},
		{"not JSON", func(string) docReply { return docReply{body: "<html>hello</html>"} }, false, "it is not a JSON object"},
		{"a JSON array", func(string) docReply { return docReply{body: "[]"} }, false, "it is not a JSON object"},
		{"null", func(string) docReply { return docReply{body: "null"} }, false, "it is not a JSON object"},
		{"trailing data", func(id string) docReply { return docReply{body: docBody(t, id, nil) + "]"} }, false, "it is not a JSON object"},
		{"wrong member type", func(id string) docReply {
			return docReply{body: docBody(t, id, map[string]any{"redirect_uris": flowRedirect})}
		}, false, "it is not a JSON object"},
		{"redirected", func(string) docReply {
			return docReply{status: http.StatusFound, header: map[string]string{"Location": ds.url("client.example.com", "/target.json")}}
		}, false, oauth.DocumentFetchFailed},
		{"permanently redirected", func(string) docReply {
			return docReply{status: http.StatusPermanentRedirect, header: map[string]string{"Location": ds.url("client.example.com", "/target.json")}}
		}, false, oauth.DocumentFetchFailed},
		{"not found", func(string) docReply { return docReply{status: http.StatusNotFound, body: "{}"} }, false,
			oauth.DocumentFetchFailed},
		{"no content", func(string) docReply { return docReply{status: http.StatusNoContent} }, false,
			oauth.DocumentFetchFailed},
		{"server error", func(string) docReply { return docReply{status: http.StatusServiceUnavailable} }, true,
			oauth.DocumentFetchFailed},
	}
	target := ds.url("client.example.com", "/target.json")
	ds.set(target, docReply{body: docBody(t, target, nil)})
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := ds.url("client.example.com", fmt.Sprintf("/case%d/client.json", i))
			ds.set(id, tc.reply(id))
			status := http.StatusBadRequest
			if tc.transient {
				status = http.StatusBadGateway
			}
			wantDocRefused(t, f.authorizeDoc(docClient(id), nil), status, tc.want)
			w := f.tokenWithDocClient(docClient(id))
			if tc.transient {
				wantOAuthError(t, w, http.StatusServiceUnavailable, "temporarily_unavailable")
			} else {
				wantOAuthError(t, w, http.StatusUnauthorized, "invalid_client")
			}
			if !strings.Contains(w.Body.String(), tc.want) {
				t.Errorf("token error %s lacks %q", w.Body, tc.want)
			}
			// Nothing was cached: each request fetched again.
			if n := ds.hitsOf(id); n != 2 {
				t.Errorf("fetched %d times, want 2", n)
			}
		})
	}
	if n := ds.hitsOf(target); n != 0 {
		t.Errorf("a redirect was followed (%d fetches of its target)", n)
	}
}

func TestDocumentURLRefused(t *testing.T) {
	ds, res := newDocServerFor(t, "client.example.com")
	f := newDocFlow(t, ds, res)
	base := "https://client.example.com:" + ds.port
	tests := []struct{ id, want string }{
		{base + docPath + "?v=1", "the URL contains a query"},
		{base + docPath + "#x", "the URL contains a fragment"},
		{base, "the URL has no path"},
		{base + "/", "the URL has no path"},
		{base + "/a/../client.json", "the URL contains a dot segment"},
		{base + "/a/./client.json", "the URL contains a dot segment"},
		{base + "/%2E%2e/client.json", "the URL contains a dot segment"},
		{"https://user:pw@client.example.com:" + ds.port + docPath, "the URL contains user information"},
		{"https://client.example.com:99999" + docPath, "the URL has no valid host"},
		{base + "/" + strings.Repeat("a", 2100), "the URL is too long"},
		{"https:///client.json", "it is not an https URL"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			ds.setDoc(t, tc.id)
			f.wantDocNeverFetched(t, ds, tc.id, http.StatusBadRequest, tc.want)
		})
	}
}

// TestDocumentAddressPolicy uses the real address policy: names that
// resolve to special-use addresses are refused before any connection.
func TestDocumentAddressPolicy(t *testing.T) {
	ds, res := newDocServerFor(t)
	f := newDocFlow(t, ds, res, func(c *oauth.ClientMetadataDocuments) { c.AllowAddress = nil })
	tests := []struct{ name, addrs string }{
		{"loopback", "127.0.0.1"},
		{"other loopback", "127.1.2.3"},
		{"private 10/8", "10.1.2.3"},
		{"private 192.168/16", "192.168.1.1"},
		{"private 172.16/12", "172.20.0.1"},
		{"link-local", "169.254.169.254"},
		{"CGNAT", "100.64.0.1"},
		{"unspecified", "0.0.0.0"},
		{"IPv6 loopback", "::1"},
		{"unique local", "fc00::1"},
		{"unique local fd", "fd12:3456::1"},
		{"IPv6 link-local", "fe80::1"},
		{"IPv4-mapped loopback", "::ffff:127.0.0.1"},
		{"NAT64 of a private address", "64:ff9b::a00:1"},
		{"every address special", "10.0.0.1,127.0.0.1"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			host := fmt.Sprintf("h%d.example.com", i)
			res.set(host, tc.addrs)
			id := ds.url(host, docPath)
			ds.setDoc(t, id)
			f.wantDocNeverFetched(t, ds, id, http.StatusBadRequest, "its host has no public address")
		})
	}
	// An address in the client_id itself is checked the same way.
	for _, host := range []string{"127.0.0.1", "[::1]"} {
		id := "https://" + host + ":" + ds.port + docPath
		ds.setDoc(t, id)
		wantDocRefused(t, f.authorizeDoc(docClient(id), nil), http.StatusBadRequest, "its host has no public address")
		if n := ds.hitsOf(id); n != 0 {
			t.Errorf("%s: the server was reached %d times", host, n)
		}
	}
	// A name that does not resolve reads the same, so that client_ids
	// cannot probe what the resolver knows.
	id := ds.url("nowhere.example.com", docPath)
	wantDocRefused(t, f.authorizeDoc(docClient(id), nil), http.StatusBadRequest, "its host has no public address")
}

// TestDocumentRebinding checks that the address policy judges the address
// of each connection as it is made: a name whose answer changes between
// lookups (DNS rebinding) reaches the internal address never, not even
// once, while a server there would answer.
func TestDocumentRebinding(t *testing.T) {
	var public, internal *docServer
	for try := 0; public == nil; try++ {
		li, err := net.Listen("tcp", "127.0.0.2:0")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(li.Addr().String())
		lp, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			li.Close()
			if try == 20 {
				t.Fatal(err)
			}
			continue
		}
		internal, public = startDocServer(t, li), startDocServer(t, lp)
	}
	res := newFakeResolver()
	res.set("rebind.example.com", "127.0.0.1", "127.0.0.2", "127.0.0.1", "127.0.0.2")
	id := public.url("rebind.example.com", docPath)
	for _, ds := range []*docServer{public, internal} {
		ds.set(id, docReply{header: map[string]string{"Cache-Control": "no-store"}, body: docBody(t, id, nil)})
	}
	f := newDocFlow(t, public, res)
	c := docClient(id)

	consentForm(t, f.authorizeDoc(c, nil)) // 127.0.0.1: allowed
	wantDocRefused(t, f.authorizeDoc(c, nil), http.StatusBadRequest, "its host has no public address")
	consentForm(t, f.authorizeDoc(c, nil)) // 127.0.0.1 again
	wantOAuthError(t, f.tokenWithDocClient(c), http.StatusUnauthorized, "invalid_client")

	if n := internal.hitsOf(id); n != 0 {
		t.Errorf("the internal address was reached %d times", n)
	}
	if n := public.hitsOf(id); n != 2 {
		t.Errorf("the public address was reached %d times, want 2", n)
	}
	if n := res.callsOf("rebind.example.com"); n != 4 {
		t.Errorf("%d lookups, want one per connection (4)", n)
	}
}

func TestDocumentCache(t *testing.T) {
	rfc1123 := func(d time.Duration) string { return flowStart.Add(d).UTC().Format(http.TimeFormat) }
	tests := []struct {
		name   string
		header map[string]string
		fresh  time.Duration // 0: not cached at all
	}{
		{"max-age", map[string]string{"Cache-Control": "public, max-age=3600"}, time.Hour},
		{"s-maxage wins", map[string]string{"Cache-Control": "max-age=60, s-maxage=7200"}, 2 * time.Hour},
		{"age counts", map[string]string{"Cache-Control": "max-age=3600", "Age": "1800"}, 30 * time.Minute},
		{"floor", map[string]string{"Cache-Control": "max-age=10"}, oauth.MinDocumentCache},
		{"zero max-age", map[string]string{"Cache-Control": "max-age=0"}, oauth.MinDocumentCache},
		{"ceiling", map[string]string{"Cache-Control": "max-age=9999999"}, oauth.MaxDocumentCache},
		{"expires", map[string]string{"Date": rfc1123(0), "Expires": rfc1123(2 * time.Hour)}, 2 * time.Hour},
		{"max-age beats expires", map[string]string{"Date": rfc1123(0), "Expires": rfc1123(2 * time.Hour), "Cache-Control": "max-age=1200"},
			20 * time.Minute},
		{"no headers", nil, oauth.MinDocumentCache},
		{"no-store", map[string]string{"Cache-Control": "no-store, max-age=3600"}, 0},
		{"no-cache", map[string]string{"Cache-Control": "max-age=3600, no-cache"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ds, res := newDocServerFor(t, "client.example.com")
			id := ds.url("client.example.com", docPath)
			ds.set(id, docReply{header: tc.header, body: docBody(t, id, nil)})
			f := newDocFlow(t, ds, res)
			c := docClient(id)
			consentForm(t, f.authorizeDoc(c, nil))
			if tc.fresh == 0 {
				consentForm(t, f.authorizeDoc(c, nil))
				if n := ds.hitsOf(id); n != 2 {
					t.Errorf("fetched %d times, want every time (2)", n)
				}
				return
			}
			f.clock.Advance(tc.fresh - time.Minute)
			consentForm(t, f.authorizeDoc(c, nil))
			wantOAuthError(t, f.tokenWithDocClient(c), http.StatusBadRequest, "invalid_grant") // client known: the code is not
			if n := ds.hitsOf(id); n != 1 {
				t.Errorf("fetched %d times while fresh, want 1", n)
			}
			f.clock.Advance(2 * time.Minute)
			consentForm(t, f.authorizeDoc(c, nil))
			if n := ds.hitsOf(id); n != 2 {
				t.Errorf("fetched %d times after expiry, want 2", n)
			}
		})
	}
}

func TestDocumentErrorsNotCached(t *testing.T) {
	ds, res := newDocServerFor(t, "client.example.com")
	f := newDocFlow(t, ds, res)
	cached := map[string]string{"Cache-Control": "max-age=3600"}
	// staleGrant serves a cacheable document at path, runs the flow for
	// its client and lets the document go stale.
	staleGrant := func(path string) (id string, c testClient, tb tokenBody) {
		id = ds.url("client.example.com", path)
		ds.set(id, docReply{header: cached, body: docBody(t, id, nil)})
		c = docClient(id)
		tb = f.tokens(c, nil)
		f.clock.Advance(2 * time.Hour)
		return id, c, tb
	}

	t.Run("a failure is retried at once", func(t *testing.T) {
		id := ds.url("client.example.com", "/flaky.json")
		ds.set(id, docReply{status: http.StatusInternalServerError, header: cached})
		wantDocRefused(t, f.authorizeDoc(docClient(id), nil), http.StatusBadGateway, oauth.DocumentFetchFailed)
		ds.set(id, docReply{header: cached, body: docBody(t, id, nil)})
		consentForm(t, f.authorizeDoc(docClient(id), nil))
		if n := ds.hitsOf(id); n != 2 {
			t.Errorf("fetched %d times, want 2", n)
		}
	})
	t.Run("an invalid document is retried at once", func(t *testing.T) {
		id := ds.url("client.example.com", "/fixed.json")
		ds.set(id, docReply{header: cached, body: docBody(t, id, map[string]any{"client_name": nil})})
		wantDocRefused(t, f.authorizeDoc(docClient(id), nil), http.StatusBadRequest, "it has no client_name")
		ds.set(id, docReply{header: cached, body: docBody(t, id, nil)})
		consentForm(t, f.authorizeDoc(docClient(id), nil))
	})
	t.Run("a document that became invalid is not used", func(t *testing.T) {
		id, c, tb := staleGrant("/changed.json")
		ds.set(id, docReply{header: cached, body: docBody(t, id, map[string]any{"token_endpoint_auth_method": "client_secret_basic"})})
		wantOAuthError(t, f.refresh(c, tb.RefreshToken, nil), http.StatusUnauthorized, "invalid_client")
		wantDocRefused(t, f.authorizeDoc(c, nil), http.StatusBadRequest, "cannot hold a shared secret")
	})
	t.Run("a stale document serves token requests while its host is down", func(t *testing.T) {
		id, c, tb := staleGrant("/stale.json")
		ds.set(id, docReply{status: http.StatusBadGateway})
		tb = wantToken(t, f.refresh(c, tb.RefreshToken, nil))
		// An authorization needs a fresh document (CIMD §4.3).
		wantDocRefused(t, f.authorizeDoc(c, nil), http.StatusBadGateway, oauth.DocumentFetchFailed)
		// Not forever.
		f.clock.Advance(25 * time.Hour)
		wantOAuthError(t, f.refresh(c, tb.RefreshToken, nil), http.StatusServiceUnavailable, "temporarily_unavailable")
		// Once the host is back, the grant goes on.
		ds.set(id, docReply{header: cached, body: docBody(t, id, nil)})
		wantToken(t, f.refresh(c, tb.RefreshToken, nil))
	})
}

func TestDocumentAllowDomains(t *testing.T) {
	ds, res := newDocServerFor(t, "claude.example.com", "other.example.com", "a.example.org", "b.a.example.org", "example.org")
	f := newDocFlow(t, ds, res, func(c *oauth.ClientMetadataDocuments) {
		c.AllowDomains = []string{"Claude.Example.com.", "*.example.org"}
	})
	tests := []struct {
		host    string
		allowed bool
	}{
		{"claude.example.com", true},
		{"a.example.org", true},
		{"b.a.example.org", true},
		{"example.org", false},
		{"other.example.com", false},
	}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			id := ds.url(tc.host, docPath)
			ds.setDoc(t, id)
			if tc.allowed {
				consentForm(t, f.authorizeDoc(docClient(id), nil))
				return
			}
			f.wantDocNeverFetched(t, ds, id, http.StatusBadRequest, "this server does not accept applications from "+tc.host)
		})
	}
}

// TestDocumentLoopbackAllowed checks the one way to fetch from loopback
// with the real address policy: naming the loopback host exactly.
func TestDocumentLoopbackAllowed(t *testing.T) {
	ds, res := newDocServerFor(t, "localhost", "doc.example.com")
	f := newDocFlow(t, ds, res, func(c *oauth.ClientMetadataDocuments) {
		c.AllowAddress = nil
		c.AllowDomains = []string{"localhost", "*.example.com", "[::1]"}
	})
	local := ds.url("localhost", docPath)
	ds.setDoc(t, local)
	consentForm(t, f.authorizeDoc(docClient(local), nil))

	// A listed domain gets no loopback exception.
	id := ds.url("doc.example.com", docPath)
	ds.setDoc(t, id)
	wantDocRefused(t, f.authorizeDoc(docClient(id), nil), http.StatusBadRequest, "its host has no public address")
	// Nor another loopback name.
	ip := ds.url("127.0.0.1", docPath)
	ds.setDoc(t, ip)
	wantDocRefused(t, f.authorizeDoc(docClient(ip), nil), http.StatusBadRequest, "does not accept applications from 127.0.0.1")
	if ds.hitsOf(id)+ds.hitsOf(ip) != 0 {
		t.Error("a refused document was fetched")
	}
}

func TestDocumentAllowDomainsInvalid(t *testing.T) {
	f := newFlow(t)
	for _, entry := range []string{"https://claude.ai", "claude.ai/oauth", "*", "*.127.0.0.1", "a..b", "-a.example", "claude.ai:443", ""} {
		cfg := f.cfg
		cfg.ClientMetadataDocuments = oauth.ClientMetadataDocuments{AllowDomains: []string{entry}}
		if _, err := oauth.New(cfg); err == nil {
			t.Errorf("allowed domain %q was accepted", entry)
		}
	}
	cfg := f.cfg
	cfg.ClientMetadataDocuments = oauth.ClientMetadataDocuments{Timeout: -time.Second}
	if _, err := oauth.New(cfg); err == nil {
		t.Error("a negative timeout was accepted")
	}
}

func TestDocumentRedirectURI(t *testing.T) {
	ds, res := newDocServerFor(t, "client.example.com")
	id := ds.url("client.example.com", docPath)
	ds.set(id, docReply{header: map[string]string{"Cache-Control": "max-age=3600"},
		body: docBody(t, id, map[string]any{"redirect_uris": []string{flowRedirect, "http://127.0.0.1/callback"}})})
	f := newDocFlow(t, ds, res)
	c := docClient(id)

	for _, bad := range []string{"https://app.example.com/other", "https://evil.example.com/callback", "http://localhost:5000/callback", ""} {
		w := f.authorizeDoc(c, url.Values{"redirect_uri": {bad}})
		wantDocRefused(t, w, http.StatusBadRequest, "not registered for it")
	}
	// RFC 8252 §7.3: any port of a loopback redirect URI.
	w := f.authorizeDoc(c, url.Values{"redirect_uri": {"http://127.0.0.1:53124/callback"}})
	consentForm(t, w)
	page := html.UnescapeString(w.Body.String())
	for _, want := range []string{"Did you start this yourself", "<strong>127.0.0.1:53124</strong>",
		"in the name of client.example.com:" + ds.port} {
		if !strings.Contains(page, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	// Before the user approved it, errors are not redirected to it...
	wantPage(t, f.authorizeDoc(c, url.Values{"response_type": {"token"}}), http.StatusBadRequest)
	// ...after that they are.
	f.tokens(c, nil)
	wantAuthError(t, f.authorizeDoc(c, url.Values{"response_type": {"token"}}), http.StatusFound, flowRedirect,
		"unsupported_response_type", "xyz-state")
}

func TestDocumentsDisabled(t *testing.T) {
	ds, res := newDocServerFor(t, "client.example.com")
	id := ds.url("client.example.com", docPath)
	ds.setDoc(t, id)
	f := newDocFlow(t, ds, res, func(c *oauth.ClientMetadataDocuments) { c.Disabled = true })
	if _, ok := testkeys.DecodeJSON(t, f.get(oauth.ASMetadataPath, nil))["client_id_metadata_document_supported"]; ok {
		t.Error("the metadata advertises client_id_metadata_document_supported")
	}
	f.wantDocNeverFetched(t, ds, id, http.StatusBadRequest, "this server does not accept client metadata documents")
}

// TestDocumentStaticClient: a configured client whose id is an https URL
// is that client; its URL is not fetched (CIMD §6.10).
func TestDocumentStaticClient(t *testing.T) {
	ds, res := newDocServerFor(t, "client.example.com")
	id := ds.url("client.example.com", docPath)
	f := newDocFlow(t, ds, res, func(*oauth.ClientMetadataDocuments) {})
	cfg := f.cfg
	cfg.StaticClients = []oauth.StaticClient{{ID: id, Name: "Configured", RedirectURIs: []string{flowRedirect}}}
	srv, err := oauth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	w := f.authorizeDoc(docClient(id), nil)
	consentForm(t, w)
	if page := w.Body.String(); !strings.Contains(page, "Configured") || strings.Contains(page, "Application published by") {
		t.Errorf("consent page of a static client:\n%s", page)
	}
	f.tokens(docClient(id), nil)
	if n := ds.hitsOf(id); n != 0 {
		t.Errorf("fetched %d times", n)
	}
}

func TestPublicAddress(t *testing.T) {
	public := []string{"8.8.8.8", "1.1.1.1", "93.184.215.14", "100.63.255.255", "100.128.0.0", "172.15.255.255", "172.32.0.0",
		"2606:4700::1111", "2a00:1450:4001:800::200e", "::ffff:8.8.8.8", "64:ff9b::808:808"}
	special := []string{"0.0.0.0", "0.1.2.3", "10.0.0.1", "100.64.0.1", "100.127.255.255", "127.0.0.1", "127.255.255.254",
		"169.254.169.254", "172.16.0.1", "172.31.255.255", "192.0.0.8", "192.0.2.1", "192.88.99.1", "192.168.0.1",
		"198.18.0.1", "198.51.100.7", "203.0.113.9", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
		"::", "::1", "::127.0.0.1", "::ffff:10.0.0.1", "::ffff:127.0.0.1", "64:ff9b::7f00:1", "64:ff9b:1::1", "100::1",
		"2001::1", "2001:db8::1", "2002:c000:0204::1", "3fff::1", "fc00::1", "fd00::1", "fe80::1", "fe80::1%eth0",
		"fec0::1", "ff02::1", "ff0e::1", "5f00::1"}
	for _, s := range public {
		if !oauth.PublicAddress(netip.MustParseAddr(s)) {
			t.Errorf("%s is public, but refused", s)
		}
	}
	for _, s := range special {
		if oauth.PublicAddress(netip.MustParseAddr(s)) {
			t.Errorf("%s is special-use, but allowed", s)
		}
	}
	if oauth.PublicAddress(netip.Addr{}) {
		t.Error("the zero address is allowed")
	}
}

// TestDocumentLenient: a document is written for every server, so what
// this one does not offer (scopes, grant types, response types) is left
// out instead of refused, and malformed display links are dropped.
func TestDocumentLenient(t *testing.T) {
	ds, res := newDocServerFor(t, "client.example.com")
	id := ds.url("client.example.com", docPath)
	ds.set(id, docReply{body: docBody(t, id, map[string]any{
		"scope":          "booking:read elsewhere:admin",
		"grant_types":    []string{"authorization_code", "urn:ietf:params:oauth:grant-type:device_code"},
		"response_types": []string{"code", "code id_token"},
		"logo_uri":       "http://insecure.example.com/logo.png",
		"contacts":       []string{"a@example.com", "b@example.com", "c@example.com", "d@example.com", "e@example.com", "f@example.com"},
	})})
	f := newDocFlow(t, ds, res)
	c := docClient(id)
	// No scope requested: the document's scope, as far as it is offered.
	tb := f.tokens(c, url.Values{"scope": {}})
	if tb.Scope != "booking:read" {
		t.Errorf("scope = %q, want booking:read", tb.Scope)
	}
	// grant_types without refresh_token: no refresh token (RFC 7591 §2).
	if tb.RefreshToken != "" {
		t.Error("a refresh token for a client without the refresh_token grant")
	}
}

// TestDocumentFetchNoPortScanOracle (security finding 13): documents are
// fetched on port 443 only unless the operator allows other ports, and
// every connection, TLS or HTTP failure reads the same to the user.
func TestDocumentFetchNoPortScanOracle(t *testing.T) {
	t.Parallel()
	ds, res := newDocServerFor(t, "client.example.com")
	t.Run("another port is refused unless allowed", func(t *testing.T) {
		t.Parallel()
		f := newDocFlow(t, ds, res, func(c *oauth.ClientMetadataDocuments) { c.AllowPorts = nil })
		id := ds.url("client.example.com", "/port.json")
		ds.setDoc(t, id)
		wantDocRefused(t, f.authorizeDoc(docClient(id), nil), http.StatusBadRequest, "port 443")
		if n := ds.hitsOf(id); n != 0 {
			t.Errorf("fetched %d times on a port not allowed", n)
		}
	})
	t.Run("one text for every failure", func(t *testing.T) {
		t.Parallel()
		closed, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closedPort := closed.Addr().(*net.TCPAddr).Port
		closed.Close()
		plain := httptest.NewServer(http.NotFoundHandler()) // no TLS
		t.Cleanup(plain.Close)
		plainPort := plain.Listener.Addr().(*net.TCPAddr).Port
		dsPort, _ := strconv.Atoi(ds.port)
		f := newDocFlow(t, ds, res, func(c *oauth.ClientMetadataDocuments) {
			c.AllowPorts = []int{dsPort, closedPort, plainPort}
			c.Timeout = 2 * time.Second
		})
		onPort := func(port int, path string) string {
			return "https://client.example.com:" + strconv.Itoa(port) + path
		}
		ds.set(ds.url("client.example.com", "/missing.json"), docReply{status: http.StatusNotFound})
		ds.set(ds.url("client.example.com", "/moved.json"), docReply{status: http.StatusFound,
			header: map[string]string{"Location": "https://elsewhere.example/"}})
		ds.set(ds.url("client.example.com", "/down.json"), docReply{status: http.StatusServiceUnavailable})
		for name, id := range map[string]string{
			"connection refused": onPort(closedPort, "/client.json"),
			"not TLS":            onPort(plainPort, "/client.json"),
			"HTTP 404":           ds.url("client.example.com", "/missing.json"),
			"HTTP 302":           ds.url("client.example.com", "/moved.json"),
			"HTTP 503":           ds.url("client.example.com", "/down.json"),
		} {
			w := f.authorizeDoc(docClient(id), nil)
			body := html.UnescapeString(w.Body.String())
			if !strings.Contains(body, oauth.DocumentFetchFailed) {
				t.Errorf("%s: the page lacks %q:\n%s", name, oauth.DocumentFetchFailed, body)
			}
			for _, leak := range []string{"HTTP 4", "HTTP 5", "HTTP 3", "redirect", "certificate", "TLS", "refused", "timed out"} {
				if strings.Contains(body, leak) {
					t.Errorf("%s: the page tells %q:\n%s", name, leak, body)
				}
			}
		}
	})
}
