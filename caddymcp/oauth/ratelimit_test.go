package oauth_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/internal/web"
	"github.com/caddymcp/caddymcp/caddymcp/oauth"
	"github.com/caddymcp/caddymcp/caddymcp/ratelimit"
)

// limiter is a request limiter on the flow's clock, keyed by the remote
// address: burst requests at once, one more a minute.
func (f *flow) limiter(burst int) *ratelimit.RequestLimiter {
	f.t.Helper()
	l, err := ratelimit.New(ratelimit.Config{Rate: ratelimit.Rate{Requests: 1, Window: time.Minute, Burst: burst}, Now: f.clock.Now})
	if err != nil {
		f.t.Fatal(err)
	}
	return ratelimit.NewRequestLimiter(l, ratelimit.RemoteAddrKey(ratelimit.DefaultIPv6Prefix))
}

// newLimitedFlow is a flow whose register, token and authorize endpoints
// allow two requests at once per address.
func newLimitedFlow(t *testing.T) *flow {
	t.Helper()
	f := newFlow(t)
	f.cfg.RateLimits = oauth.RateLimits{Register: f.limiter(2), Token: f.limiter(2), Authorize: f.limiter(2)}
	srv, err := oauth.New(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	return f
}

// from sets the client address of r.
func from(r *http.Request, addr string) *http.Request {
	r.RemoteAddr = addr
	return r
}

// wantTooMany checks a 429 answer: Retry-After in whole seconds, and the
// body format of the endpoint.
func wantTooMany(t *testing.T, w *httptest.ResponseRecorder, retryAfter string, html bool) {
	t.Helper()
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429: %s", w.Code, w.Body)
	}
	if got := w.Header().Get("Retry-After"); got != retryAfter {
		t.Errorf("Retry-After = %q, want %q", got, retryAfter)
	}
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	if html {
		if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !strings.Contains(w.Body.String(), "Too many requests") ||
			!strings.Contains(w.Body.String(), "Wait "+retryAfter+" seconds") {
			t.Errorf("want the HTML error page; got %s:\n%s", ct, w.Body)
		}
		return
	}
	var body web.ErrorBody
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error != "too_many_requests" || body.Description == "" {
		t.Errorf("want a too_many_requests JSON error; got %s (%v)", w.Body, err)
	}
}

func TestRateLimitedEndpoints(t *testing.T) {
	const (
		ip1 = "203.0.113.1:40000"
		ip2 = "203.0.113.2:40000"
	)
	tokenRequest := func(addr string) *http.Request {
		return from(postFormRequest(oauth.TokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"nope"}, "client_id": {"nobody"}}, nil), addr)
	}
	tests := []struct {
		name string
		// requests returns what makes one request from an address.
		requests func(f *flow) func(addr string) *http.Request
		html     bool
	}{
		{"token", func(*flow) func(string) *http.Request { return tokenRequest }, false},
		{"register", func(*flow) func(string) *http.Request {
			return func(addr string) *http.Request {
				return from(registerRequest(`{"redirect_uris":["`+flowRedirect+`"],"token_endpoint_auth_method":"none"}`), addr)
			}
		}, false},
		{"authorize", func(f *flow) func(string) *http.Request {
			_, challenge := newPKCE(t)
			q := authQuery(f.register("none", nil), challenge, nil).Encode()
			return func(addr string) *http.Request {
				return from(httptest.NewRequest(http.MethodGet, flowIssuer+oauth.AuthorizePath+"?"+q, nil), addr)
			}
		}, true},
		{"consent", func(*flow) func(string) *http.Request {
			return func(addr string) *http.Request {
				return from(postFormRequest(oauth.ConsentPath, url.Values{"decision": {"approve"}, "request_id": {"x"}}, nil), addr)
			}
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newLimitedFlow(t)
			request := tt.requests(f)
			for i := range 2 {
				if w := f.serve(request(ip1)); w.Code == http.StatusTooManyRequests {
					t.Fatalf("request %d within the burst: 429", i+1)
				}
			}
			w := f.serve(request(ip1))
			wantTooMany(t, w, "60", tt.html)

			// Another address has its own bucket.
			if w := f.serve(request(ip2)); w.Code == http.StatusTooManyRequests {
				t.Fatal("another address was limited too")
			}
			// 59.5 s later the first address still waits, rounded up.
			f.clock.Advance(59*time.Second + 500*time.Millisecond)
			wantTooMany(t, f.serve(request(ip1)), "1", tt.html)
			// After a minute it may send one more request.
			f.clock.Advance(500 * time.Millisecond)
			if w := f.serve(request(ip1)); w.Code == http.StatusTooManyRequests {
				t.Fatal("refilled bucket: 429")
			}
			wantTooMany(t, f.serve(request(ip1)), "60", tt.html)
		})
	}
}

// TestRateLimitRefusesBeforeWork makes sure a refused request has no
// effect: a refused registration creates no client.
func TestRateLimitRefusesBeforeWork(t *testing.T) {
	f := newLimitedFlow(t)
	md := `{"redirect_uris":["` + flowRedirect + `"],"token_endpoint_auth_method":"none"}`
	for range 5 {
		f.serve(from(registerRequest(md), "198.51.100.7:1"))
	}
	n, err := f.store.CountClients(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("%d clients registered, want the 2 allowed", n)
	}
}

func TestRateLimitJSONAnswersAreReadableCrossOrigin(t *testing.T) {
	f := newLimitedFlow(t)
	send := func(method string) *httptest.ResponseRecorder {
		r := from(postFormRequest(oauth.TokenPath, url.Values{"grant_type": {"refresh_token"}}, nil), "198.51.100.7:1")
		r.Method = method
		r.Header.Set("Origin", "https://inspector.example")
		r.Header.Set("Access-Control-Request-Method", "POST")
		return f.serve(r)
	}
	send(http.MethodPost)
	send(http.MethodPost)
	// Preflights are not counted, and still answered.
	for range 3 {
		if w := send(http.MethodOptions); w.Code != http.StatusNoContent {
			t.Fatalf("preflight over the limit: %d", w.Code)
		}
	}
	w := send(http.MethodPost)
	wantTooMany(t, w, "60", false)
	if got := w.Header().Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("Access-Control-Allow-Origin = %q, want *", got)
	}
	if got := w.Header().Get("Access-Control-Expose-Headers"); !strings.Contains(got, "Retry-After") {
		t.Errorf("Access-Control-Expose-Headers = %q, want Retry-After in it", got)
	}
}

// TestRateLimitSharedByAuthorizeAndConsent: one sign-in uses both
// endpoints, and they share one bucket.
func TestRateLimitSharedByAuthorizeAndConsent(t *testing.T) {
	f := newLimitedFlow(t)
	const addr = "198.51.100.7:1"
	f.serve(from(httptest.NewRequest(http.MethodGet, flowIssuer+oauth.AuthorizePath, nil), addr))
	f.serve(from(postFormRequest(oauth.ConsentPath, url.Values{}, nil), addr))
	wantTooMany(t, f.serve(from(httptest.NewRequest(http.MethodGet, flowIssuer+oauth.AuthorizePath, nil), addr)), "60", true)
}

// TestRateLimitLeavesOtherEndpointsAlone: metadata, JWKS, revocation and
// introspection are not limited.
func TestRateLimitLeavesOtherEndpointsAlone(t *testing.T) {
	f := newLimitedFlow(t)
	for range 5 {
		for _, r := range []*http.Request{
			httptest.NewRequest(http.MethodGet, flowIssuer+oauth.ASMetadataPath, nil),
			httptest.NewRequest(http.MethodGet, flowIssuer+oauth.JWKSPath, nil),
			postFormRequest(oauth.RevokePath, url.Values{"token": {"x"}}, nil),
			postFormRequest(oauth.IntrospectPath, url.Values{"token": {"x"}}, nil),
		} {
			if w := f.serve(r); w.Code == http.StatusTooManyRequests {
				t.Fatalf("%s: 429", r.URL.Path)
			}
		}
	}
}
