package safehttp_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/internal/safehttp"
)

func TestPublicAddress(t *testing.T) {
	for _, tt := range []struct {
		class string
		addrs []string
	}{
		{"public IPv4", []string{"8.8.8.8", "1.1.1.1", "93.184.215.14", "100.63.255.255", "100.128.0.0", "172.15.255.255", "172.32.0.0"}},
		{"public IPv6", []string{"2606:4700::1111", "2a00:1450:4001:800::200e"}},
		{"IPv4-mapped public", []string{"::ffff:8.8.8.8"}},
		{"NAT64 of a public address", []string{"64:ff9b::808:808"}},
	} {
		t.Run(tt.class, func(t *testing.T) {
			for _, s := range tt.addrs {
				if !safehttp.PublicAddress(netip.MustParseAddr(s)) {
					t.Errorf("%s is public, but refused", s)
				}
			}
		})
	}
	for _, tt := range []struct {
		class string
		addrs []string
	}{
		{"this network", []string{"0.0.0.0", "0.1.2.3"}},
		{"private", []string{"10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.0.1"}},
		{"shared (CGNAT)", []string{"100.64.0.1", "100.127.255.255"}},
		{"loopback", []string{"127.0.0.1", "127.255.255.254", "::1"}},
		{"link-local", []string{"169.254.169.254", "fe80::1", "fe80::1%eth0"}},
		{"IETF protocol assignments", []string{"192.0.0.8", "2001::1", "100::1"}},
		{"documentation", []string{"192.0.2.1", "198.51.100.7", "203.0.113.9", "2001:db8::1", "3fff::1"}},
		{"AS112 and AMT", []string{"192.31.196.1", "192.52.193.1", "192.175.48.1", "2620:4f:8000::1"}},
		{"6to4", []string{"192.88.99.1", "2002:c000:0204::1"}},
		{"benchmarking", []string{"198.18.0.1", "198.19.255.255"}},
		{"multicast", []string{"224.0.0.1", "239.255.255.250", "ff02::1", "ff0e::1"}},
		{"reserved and broadcast", []string{"240.0.0.1", "255.255.255.255"}},
		{"unspecified", []string{"::"}},
		{"unique local", []string{"fc00::1", "fd00::1"}},
		{"outside IPv6 global unicast", []string{"fec0::1", "5f00::1", "::127.0.0.1"}},
		{"IPv4-mapped special", []string{"::ffff:10.0.0.1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:0.0.0.0"}},
		{"NAT64 of a special address", []string{"64:ff9b::7f00:1", "64:ff9b::a00:1"}},
		{"outside the well-known NAT64 prefix", []string{"64:ff9b:1::1"}},
	} {
		t.Run(tt.class, func(t *testing.T) {
			for _, s := range tt.addrs {
				if safehttp.PublicAddress(netip.MustParseAddr(s)) {
					t.Errorf("%s is special-use, but allowed", s)
				}
			}
		})
	}
	if safehttp.PublicAddress(netip.Addr{}) {
		t.Error("the zero address is allowed")
	}
}

// fakeResolver answers from a table, and counts lookups.
type fakeResolver struct {
	mu      sync.Mutex
	answers map[string][]netip.Addr
	calls   int
}

func resolver(host string, addrs ...string) *fakeResolver {
	r := &fakeResolver{answers: map[string][]netip.Addr{}}
	for _, a := range addrs {
		r.answers[host] = append(r.answers[host], netip.MustParseAddr(a))
	}
	return r
}

func (r *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	a, ok := r.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return a, nil
}

// listener accepts connections on addr ("127.0.0.1:0") and counts them.
type listener struct {
	net.Listener
	mu       sync.Mutex
	accepted int
}

func listen(t *testing.T, addr string) *listener {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ln := &listener{Listener: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			ln.mu.Lock()
			ln.accepted++
			ln.mu.Unlock()
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close() })
	return ln
}

func (l *listener) port() string {
	_, p, _ := net.SplitHostPort(l.Addr().String())
	return p
}

// connections waits a moment for connections in flight, and counts them.
func (l *listener) connections() int {
	time.Sleep(20 * time.Millisecond)
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.accepted
}

// only127 is the policy of tests whose server listens on 127.0.0.1:
// that address counts as public, nothing else special does.
func only127(_ string, a netip.Addr) bool {
	return a == netip.MustParseAddr("127.0.0.1") || safehttp.PublicAddress(a)
}

// TestDialRefused checks that the default policy refuses every class of
// special-purpose address in a DNS answer, as an IP literal and as an
// IPv4-mapped IPv6 address, before connecting.
func TestDialRefused(t *testing.T) {
	l := listen(t, "127.0.0.1:0")
	for _, tt := range []struct{ name, addr string }{
		{"loopback", "127.0.0.1"},
		{"other loopback", "127.1.2.3"},
		{"IPv6 loopback", "::1"},
		{"private 10/8", "10.1.2.3"},
		{"private 172.16/12", "172.20.0.1"},
		{"private 192.168/16", "192.168.1.1"},
		{"link-local (cloud metadata)", "169.254.169.254"},
		{"IPv6 link-local", "fe80::1"},
		{"CGNAT", "100.64.0.1"},
		{"unspecified", "0.0.0.0"},
		{"IPv6 unspecified", "::"},
		{"unique local", "fd12:3456::1"},
		{"multicast", "224.0.0.1"},
		{"broadcast", "255.255.255.255"},
		{"documentation", "192.0.2.1"},
		{"IPv4-mapped loopback", "::ffff:127.0.0.1"},
		{"IPv4-mapped private", "::ffff:10.0.0.1"},
		{"NAT64 of loopback", "64:ff9b::7f00:1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := resolver("h.example", tt.addr)
			d := safehttp.NewDialer(safehttp.Options{Resolver: res})
			for _, address := range []string{
				net.JoinHostPort("h.example", l.port()),
				net.JoinHostPort(tt.addr, l.port()),
			} {
				c, err := d.DialContext(context.Background(), "tcp", address)
				if err == nil {
					c.Close()
					t.Fatalf("%s (%s): connected", address, tt.addr)
				}
				var refused *safehttp.RefusedAddressError
				if !errors.As(err, &refused) {
					t.Fatalf("%s (%s): %v, want a *RefusedAddressError", address, tt.addr, err)
				}
				if want := netip.MustParseAddr(tt.addr).Unmap().String(); refused.Addr != want {
					t.Errorf("%s: refused %s, want %s", address, refused.Addr, want)
				}
			}
			if res.calls != 1 {
				t.Errorf("%d lookups, want 1 (an IP literal is not looked up)", res.calls)
			}
		})
	}
	if n := l.connections(); n != 0 {
		t.Errorf("the loopback server was reached %d times", n)
	}
}

// TestDialAnswers checks DNS answers with several addresses: tried in
// order, each judged on its own, at most MaxAddrs of them, and a refusal
// reported before other failures.
func TestDialAnswers(t *testing.T) {
	l := listen(t, "127.0.0.1:0")
	closed := listen(t, "127.0.0.1:0")
	closedPort := closed.port()
	closed.Close()
	for _, tt := range []struct {
		name     string
		addrs    []string
		port     string
		maxAddrs int
		want     string // "": connects; "refused"; "other"
	}{
		{"public after private", []string{"10.0.0.1", "169.254.169.254", "127.0.0.1"}, l.port(), 0, ""},
		{"public first", []string{"127.0.0.1", "10.0.0.1"}, l.port(), 0, ""},
		{"IPv4-mapped public", []string{"::ffff:127.0.0.1"}, l.port(), 0, ""},
		{"every address private", []string{"10.0.0.1", "192.168.0.1", "::1"}, l.port(), 0, "refused"},
		{"refusal before a failed connection", []string{"127.0.0.1", "10.0.0.1"}, closedPort, 0, "refused"},
		{"a failed connection alone", []string{"127.0.0.1"}, closedPort, 0, "other"},
		{"only the first four are tried", []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "127.0.0.1"}, l.port(), 0, "refused"},
		{"MaxAddrs", []string{"10.0.0.1", "10.0.0.2", "127.0.0.1"}, l.port(), 2, "refused"},
		{"MaxAddrs reached", []string{"10.0.0.1", "127.0.0.1"}, l.port(), 2, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := safehttp.NewDialer(safehttp.Options{Resolver: resolver("h.example", tt.addrs...), Allow: only127, MaxAddrs: tt.maxAddrs})
			c, err := d.DialContext(context.Background(), "tcp", net.JoinHostPort("h.example", tt.port))
			if c != nil {
				c.Close()
			}
			var refused *safehttp.RefusedAddressError
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("%v, want a connection", err)
			case tt.want == "refused" && !errors.As(err, &refused):
				t.Fatalf("%v, want a *RefusedAddressError", err)
			case tt.want == "other" && (err == nil || errors.As(err, &refused)):
				t.Fatalf("%v, want a connection error", err)
			}
		})
	}
	// No answer at all reads as a name that does not exist.
	d := safehttp.NewDialer(safehttp.Options{Resolver: resolver("other.example"), Allow: only127})
	_, err := d.DialContext(context.Background(), "tcp", "nowhere.example:443")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("unknown name: %v, want a not-found *net.DNSError", err)
	}
	_, err = safehttp.NewDialer(safehttp.Options{Resolver: &fakeResolver{answers: map[string][]netip.Addr{"empty.example": nil}}}).
		DialContext(context.Background(), "tcp", "empty.example:443")
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("empty answer: %v, want a not-found *net.DNSError", err)
	}
	for _, address := range []string{"h.example", "h.example:x", "h.example:70000"} {
		if _, err := d.DialContext(context.Background(), "tcp", address); err == nil {
			t.Errorf("%s: no error", address)
		}
	}
}

// TestDialAsksPerConnection checks that the policy is asked about the
// address of each connection, with the host as named, and so sees what
// a changing DNS answer (rebinding) leads to, every time.
func TestDialAsksPerConnection(t *testing.T) {
	l := listen(t, "127.0.0.1:0")
	res := resolver("rebind.example", "127.0.0.1")
	var asked []string
	var mu sync.Mutex
	allow := func(host string, a netip.Addr) bool {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, host+" "+a.String())
		return only127(host, a)
	}
	d := safehttp.NewDialer(safehttp.Options{Resolver: res, Allow: allow})
	address := net.JoinHostPort("rebind.example", l.port())
	for i, answer := range []string{"127.0.0.1", "10.0.0.1", "127.0.0.1"} {
		res.mu.Lock()
		res.answers["rebind.example"] = []netip.Addr{netip.MustParseAddr(answer)}
		res.mu.Unlock()
		c, err := d.DialContext(context.Background(), "tcp", address)
		if (err == nil) != (answer == "127.0.0.1") {
			t.Fatalf("connection %d to %s: %v", i+1, answer, err)
		}
		if c != nil {
			c.Close()
		}
	}
	want := []string{"rebind.example 127.0.0.1", "rebind.example 10.0.0.1", "rebind.example 127.0.0.1"}
	if strings.Join(asked, ",") != strings.Join(want, ",") {
		t.Errorf("asked %q, want %q", asked, want)
	}
	if res.calls != 3 {
		t.Errorf("%d lookups, want one per connection (3)", res.calls)
	}
	if n := l.connections(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// tlsServer serves h over TLS on 127.0.0.1, for example.com (a name its
// certificate covers), and returns a client Options that reach it.
func tlsServer(t *testing.T, h http.HandlerFunc) (string, safehttp.Options) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	roots := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	return "https://example.com:" + port, safehttp.Options{Resolver: resolver("example.com", "127.0.0.1"), Allow: only127, RootCAs: roots}
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Do(req)
	if err == nil {
		t.Cleanup(func() { res.Body.Close() })
	}
	return res, err
}

func TestClient(t *testing.T) {
	var mu sync.Mutex
	hits := map[string]int{}
	base, opts := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		mu.Unlock()
		switch r.URL.Path {
		case "/doc":
			io.WriteString(w, `{"ok":true}`)
		case "/redirect":
			http.Redirect(w, r, "/doc", http.StatusFound)
		case "/big-header":
			w.Header().Set("X-Big", strings.Repeat("a", 20<<10))
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}
	})
	t.Run("fetches", func(t *testing.T) {
		res, err := get(t, safehttp.NewClient(opts), base+"/doc")
		if err != nil {
			t.Fatal(err)
		}
		if body, _ := io.ReadAll(res.Body); string(body) != `{"ok":true}` {
			t.Errorf("body %q", body)
		}
	})
	t.Run("follows no redirect", func(t *testing.T) {
		mu.Lock()
		before := hits["/doc"]
		mu.Unlock()
		res, err := get(t, safehttp.NewClient(opts), base+"/redirect")
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != http.StatusFound {
			t.Errorf("status %d, want the 302 itself", res.StatusCode)
		}
		mu.Lock()
		defer mu.Unlock()
		if hits["/doc"] != before {
			t.Error("the redirect was followed")
		}
	})
	t.Run("uses no proxy", func(t *testing.T) {
		t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
		t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
		if _, err := get(t, safehttp.NewClient(opts), base+"/doc"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("default policy refuses the loopback server", func(t *testing.T) {
		o := opts
		o.Allow = nil
		mu.Lock()
		before := hits["/doc"]
		mu.Unlock()
		_, err := get(t, safehttp.NewClient(o), base+"/doc")
		if !errors.As(err, new(*safehttp.RefusedAddressError)) {
			t.Fatalf("%v, want a *RefusedAddressError", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if hits["/doc"] != before {
			t.Error("the server was reached")
		}
	})
	t.Run("verifies certificates", func(t *testing.T) {
		o := opts
		o.RootCAs = nil
		if _, err := get(t, safehttp.NewClient(o), base+"/doc"); err == nil {
			t.Fatal("a certificate of an unknown CA was accepted")
		}
	})
	t.Run("limits the response header", func(t *testing.T) {
		if _, err := get(t, safehttp.NewClient(opts), base+"/big-header"); err == nil {
			t.Fatal("a 20 KiB header was accepted")
		}
		o := opts
		o.MaxHeaderBytes = 64 << 10
		if _, err := get(t, safehttp.NewClient(o), base+"/big-header"); err != nil {
			t.Fatalf("MaxHeaderBytes 64 KiB: %v", err)
		}
	})
	t.Run("times out", func(t *testing.T) {
		o := opts
		o.Timeout = 100 * time.Millisecond
		start := time.Now()
		_, err := get(t, safehttp.NewClient(o), base+"/slow")
		var netErr net.Error
		if !errors.As(err, &netErr) || !netErr.Timeout() {
			t.Fatalf("%v, want a timeout", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("took %v", d)
		}
	})
	if c := safehttp.NewClient(safehttp.Options{}); c.Timeout != safehttp.DefaultTimeout {
		t.Errorf("default timeout %v, want %v", c.Timeout, safehttp.DefaultTimeout)
	}
}

func TestReadBody(t *testing.T) {
	for _, tt := range []struct {
		name          string
		body          string
		contentLength int64
		wantErr       error
	}{
		{"within the limit", "12345", 5, nil},
		{"unknown length within the limit", "12345", -1, nil},
		{"Content-Length over the limit", "1", 6, safehttp.ErrTooLarge},
		{"unknown length over the limit", "123456", -1, safehttp.ErrTooLarge},
		{"longer than its Content-Length says", "123456", 3, safehttp.ErrTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := &http.Response{Body: io.NopCloser(strings.NewReader(tt.body)), ContentLength: tt.contentLength}
			body, err := safehttp.ReadBody(res, 5)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if err == nil && string(body) != tt.body {
				t.Errorf("body %q, want %q", body, tt.body)
			}
		})
	}
}
