package login

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// outageTimeout is the HTTPTimeout of the outage tests: short, so that
// they stay fast, and long enough for every healthy call to the fake
// provider on a loaded machine.
const outageTimeout = time.Second

// closedAddr returns a loopback address nothing listens on: connections
// to it are refused.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// stallingAddr returns the address of a listener that accepts
// connections and never answers in full: it reads the request, then with
// headers sends a status line, headers and the first byte of a body, and
// holds the connection open until the test ends.
func stallingAddr(t *testing.T, headers bool) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	accepted := make(chan struct{})
	var conns sync.WaitGroup
	go func() {
		defer close(accepted)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conns.Done()
				defer c.Close()
				if req, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
					_, _ = io.Copy(io.Discard, req.Body)
					if headers {
						_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{")
					}
				}
				<-release
			}()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-accepted
		close(release)
		conns.Wait()
	})
	return l.Addr().String()
}

// detour sends a provider's requests for some paths to another address
// (a closed port, a stalling listener) over a real connection, so that
// one endpoint of a working provider can fail and come back.
type detour struct {
	base *http.Transport
	mu   sync.Mutex
	to   map[string]string // URL path → host:port
}

func newDetour(t *testing.T) *detour {
	d := &detour{base: http.DefaultTransport.(*http.Transport).Clone(), to: map[string]string{}}
	t.Cleanup(d.base.CloseIdleConnections)
	return d
}

func (d *detour) set(path, addr string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if addr == "" {
		delete(d.to, path)
		return
	}
	d.to[path] = addr
}

func (d *detour) RoundTrip(r *http.Request) (*http.Response, error) {
	d.mu.Lock()
	addr := d.to[r.URL.Path]
	d.mu.Unlock()
	if addr != "" {
		r = r.Clone(r.Context())
		r.URL.Host = addr
		r.Host = ""
	}
	return d.base.RoundTrip(r)
}

var tryAgainLink = regexp.MustCompile(`href="([^"]*)">Try again<`)

// tryAgain returns where the "Try again" button of a page leads.
func tryAgain(t *testing.T, r result) string {
	t.Helper()
	m := tryAgainLink.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no Try again button:\n%s", r.body)
	}
	return html.UnescapeString(m[1])
}

// outageFailures are the ways a provider fails, and what the browser
// gets for each.
var outageFailures = []struct {
	name   string
	addr   func(t *testing.T) string
	status int
	text   string
	reason string
}{
	{"refuses connections", closedAddr, http.StatusBadGateway,
		"Sign-in with Test is unavailable: Test could not be reached.", reasonUnreachable},
	{"accepts and never answers", func(t *testing.T) string { return stallingAddr(t, false) }, http.StatusGatewayTimeout,
		"Sign-in with Test is unavailable: Test did not answer in time.", reasonTimeout},
	{"sends headers and stalls the body", func(t *testing.T) string { return stallingAddr(t, true) }, http.StatusGatewayTimeout,
		"Sign-in with Test is unavailable: Test did not answer in time.", reasonTimeout},
}

// wantOutagePage checks the page of a provider outage: its status and
// words, a Try again button, no internals, and the denied login in the
// audit log.
func wantOutagePage(t *testing.T, e *env, r result, status int, text, reason, addr string) {
	t.Helper()
	wantPage(t, r, status, text)
	for _, internal := range []string{addr, "127.0.0.1", "refused", "deadline", "dial", "context", "jwks", "token_endpoint"} {
		if strings.Contains(r.body, internal) {
			t.Errorf("the page shows %q:\n%s", internal, r.body)
		}
	}
	logs := e.logs.String()
	for _, want := range []string{"msg=login_denied", "reason=" + reason, "provider=test", `msg="sign-in provider failed"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %s:\n%s", want, logs)
		}
	}
}

// TestProviderOutage: a provider that refuses connections or stalls, at
// each call of a login, gets the browser a 502 or 504 page within
// HTTPTimeout, and a Try again button that completes the login once the
// provider is back.
func TestProviderOutage(t *testing.T) {
	const authorize = "/oauth/authorize?client_id=abc&state=x"
	stages := []struct {
		name string
		path string // the provider's endpoint that fails
		// fail runs the login until the call that fails, turning the
		// failure on with down just before, and returns the browser's
		// answer.
		fail func(e *env, down func()) result
		// back is what the provider's return needs besides: the keys
		// of a failed fetch are fetched again only after jwksMinRefetch.
		back func(e *env)
	}{
		{"discovery at the start", "/.well-known/openid-configuration",
			func(e *env, down func()) result { down(); return e.get(authorize) }, nil},
		{"token exchange at the callback", "/token", func(e *env, down func()) result {
			back := e.callbackURL(e.toProvider(authorize))
			down()
			return e.get(back)
		}, nil},
		{"keys at the callback", "/jwks", func(e *env, down func()) result {
			back := e.callbackURL(e.toProvider(authorize))
			down()
			return e.get(back)
		}, func(e *env) { e.clock.Advance(jwksMinRefetch) }},
	}
	for _, st := range stages {
		for _, f := range outageFailures {
			t.Run(st.name+"/"+f.name, func(t *testing.T) {
				t.Parallel()
				d := newDetour(t)
				e := newEnv(t, envOptions{config: func(c *Config) {
					c.HTTPClient = &http.Client{Transport: d} // no timeout of its own: HTTPTimeout bounds the calls
					c.HTTPTimeout = outageTimeout
				}})
				e.client.Timeout = time.Minute // a hang fails the test instead of stalling it
				addr := f.addr(t)
				r := st.fail(e, func() { d.set(st.path, addr) })
				wantOutagePage(t, e, r, f.status, f.text, f.reason, addr)

				// The provider is back: the button completes the login and
				// returns to the authorization request.
				d.set(st.path, "")
				if st.back != nil {
					st.back(e)
				}
				retry := tryAgain(t, r)
				if r := e.login(retry); r.status != http.StatusSeeOther || r.loc != e.app.URL+authorize {
					t.Fatalf("after Try again %s: status %d, location %q; want 303 to %s", retry, r.status, r.loc, authorize)
				}
				e.wantNoUpstreamSecret()
			})
		}
	}
}

// TestProviderOutageDefaultClient: without an HTTP client of its own the
// login server still bounds each call by HTTPTimeout.
func TestProviderOutageDefaultClient(t *testing.T) {
	for _, f := range outageFailures {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			addr := f.addr(t)
			e := newEnv(t, envOptions{config: func(c *Config) {
				c.Providers[0].Issuer = "http://" + addr
				c.HTTPTimeout = outageTimeout
			}})
			e.client.Timeout = time.Minute
			r := e.get("/oauth/authorize?a=b")
			wantOutagePage(t, e, r, f.status, f.text, f.reason, addr)
			if got := tryAgain(t, r); got != "/oauth/authorize?a=b" {
				t.Errorf("Try again leads to %q, want the same address", got)
			}
		})
	}
}

func TestOutageOf(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	tests := []struct {
		name string
		err  error
		want outage
	}{
		{"connection refused", fmt.Errorf("fetching: %w", refused), unreachable},
		{"no such host", &net.DNSError{Err: "no such host", Name: "idp.example", IsNotFound: true}, unreachable},
		{"closed before answering", fmt.Errorf("Post: %w", io.EOF), unreachable},
		{"deadline", fmt.Errorf("Get: %w", context.DeadlineExceeded), tooSlow},
		{"marked too slow", fmt.Errorf("%w: oauth2: cannot fetch token: read: timeout", errTooSlow), tooSlow},
		{"dial timeout", &net.OpError{Op: "dial", Err: timeoutErr{}}, tooSlow},
		{"bad status", errors.New("status 500"), badAnswer},
		{"invalid ID token", errors.New("invalid ID token: nonce mismatch"), badAnswer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := outageOf(tc.err); got != tc.want {
				t.Errorf("outageOf(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string { return "i/o timeout" }
func (timeoutErr) Timeout() bool { return true }

// TestCallErrorMarksDeadline: an error whose chain lost the deadline
// (golang.org/x/oauth2 flattens some) is recognised as too slow when the
// call's context ran out of time, and only then.
func TestCallErrorMarksDeadline(t *testing.T) {
	e := newEnv(t, envOptions{})
	flat := errors.New("oauth2: cannot fetch token: read: use of closed connection")
	expired, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel()
	if err := e.srv.callError(expired, flat); outageOf(err) != tooSlow || !errors.Is(err, flat) {
		t.Errorf("expired call: %v", err)
	}
	if err := e.srv.callError(context.Background(), flat); err != flat {
		t.Errorf("call in time: %v, want the error unchanged", err)
	}
}
