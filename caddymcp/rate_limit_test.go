package caddymcp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testflow"
	"github.com/caddymcp/caddymcp/caddymcp/oauth"
)

func TestParseRateLimit(t *testing.T) {
	minute := caddy.Duration(time.Minute)
	tests := []struct {
		name    string
		input   string
		want    *RateLimits
		wantErr string
	}{
		{name: "off", input: "rate_limit off", want: &RateLimits{Disabled: true}},
		{name: "empty block", input: "rate_limit {\n}", want: &RateLimits{}},
		{name: "everything", input: `rate_limit {
			register 20/m 10
			token off
			authorize 100/15m
			login 5/s 50
			ipv6_prefix 56
		}`, want: &RateLimits{
			Register:   &RateLimit{Requests: 20, Window: minute, Burst: 10},
			Token:      &RateLimit{Disabled: true},
			Authorize:  &RateLimit{Requests: 100, Window: caddy.Duration(15 * time.Minute)},
			Login:      &RateLimit{Requests: 5, Window: caddy.Duration(time.Second), Burst: 50},
			IPv6Prefix: 56,
		}},
		{name: "hours and days", input: "rate_limit {\n register 30/h\n token 1000/1d\n}", want: &RateLimits{
			Register: &RateLimit{Requests: 30, Window: caddy.Duration(time.Hour)},
			Token:    &RateLimit{Requests: 1000, Window: caddy.Duration(24 * time.Hour)},
		}},
		{name: "bad argument", input: "rate_limit on", wantErr: "rate_limit takes 'off' or a block, not 'on'"},
		{name: "off with more", input: "rate_limit off now", wantErr: "unexpected argument 'now'"},
		{name: "twice", input: "rate_limit off\nrate_limit off", wantErr: "rate_limit already specified"},
		{name: "unknown endpoint", input: "rate_limit {\n revoke 1/m\n}", wantErr: "unrecognized subdirective 'revoke', at Testfile:3"},
		{name: "endpoint twice", input: "rate_limit {\n token off\n token 1/s\n}", wantErr: "rate_limit token already specified, at Testfile:4"},
		{name: "no rate", input: "rate_limit {\n token\n}", wantErr: "rate_limit token takes <requests>/<window> [<burst>] or off"},
		{name: "too many arguments", input: "rate_limit {\n token 1/s 2 3\n}", wantErr: "rate_limit token takes"},
		{name: "no slash", input: "rate_limit {\n register 20\n}", wantErr: "rate_limit register: '20' is not <requests>/<window>"},
		{name: "zero requests", input: "rate_limit {\n register 0/m\n}", wantErr: "rate_limit register: '0/m' is not <requests>/<window>"},
		{name: "bad window", input: "rate_limit {\n login 20/fortnight\n}", wantErr: "rate_limit login: '20/fortnight': the window 'fortnight' is not s, m, h or a positive duration"},
		{name: "negative window", input: "rate_limit {\n login 20/-1m\n}", wantErr: "the window '-1m' is not"},
		{name: "bad burst", input: "rate_limit {\n authorize 20/m many\n}", wantErr: "rate_limit authorize: burst 'many' is not a positive integer"},
		{name: "zero burst", input: "rate_limit {\n authorize 20/m 0\n}", wantErr: "burst '0' is not a positive integer"},
		{name: "too fast", input: "rate_limit {\n token 2000/1us\n}", wantErr: "rate_limit token: 2000 requests per 1µs is more than one per nanosecond"},
		{name: "bad ipv6_prefix", input: "rate_limit {\n ipv6_prefix 129\n}", wantErr: "rate_limit ipv6_prefix: '129' is not a number of bits between 1 and 128"},
		{name: "ipv6_prefix twice", input: "rate_limit {\n ipv6_prefix 48\n ipv6_prefix 64\n}", wantErr: "rate_limit ipv6_prefix already specified"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := new(OAuthServer)
			src := "mcp_oauth {\n" + tt.input + "\n}"
			err := o.UnmarshalCaddyfile(caddyfile.NewTestDispenser(src))
			if checkErr(t, err, tt.wantErr) {
				return
			}
			if !reflect.DeepEqual(o.RateLimit, tt.want) {
				got, _ := json.Marshal(o.RateLimit)
				want, _ := json.Marshal(tt.want)
				t.Errorf("got %s, want %s", got, want)
			}
		})
	}
}

// TestRateLimiters provisions limit settings as they may come in JSON.
func TestRateLimiters(t *testing.T) {
	type on struct{ register, token, authorize, login bool }
	tests := []struct {
		name    string
		cfg     *RateLimits
		want    on
		wantErr string
	}{
		{name: "defaults", cfg: nil, want: on{true, true, true, true}},
		{name: "empty", cfg: &RateLimits{}, want: on{true, true, true, true}},
		{name: "all off", cfg: &RateLimits{Disabled: true, Token: &RateLimit{Requests: 1, Window: caddy.Duration(time.Second)}}},
		{name: "token off", cfg: &RateLimits{Token: &RateLimit{Disabled: true}}, want: on{true, false, true, true}},
		{name: "custom", cfg: &RateLimits{Login: &RateLimit{Requests: 5, Window: caddy.Duration(time.Minute)}}, want: on{true, true, true, true}},
		{name: "no requests", cfg: &RateLimits{Token: &RateLimit{Window: caddy.Duration(time.Minute)}}, wantErr: "rate_limit token: requests must be at least 1"},
		{name: "no window", cfg: &RateLimits{Register: &RateLimit{Requests: 5}}, wantErr: "rate_limit register: window must be positive"},
		{name: "negative burst", cfg: &RateLimits{Login: &RateLimit{Requests: 5, Window: caddy.Duration(time.Minute), Burst: -1}},
			wantErr: "rate_limit login: burst must not be negative"},
		{name: "bad prefix", cfg: &RateLimits{IPv6Prefix: 200}, wantErr: "rate_limit ipv6_prefix: 200 is not between 1 and 128"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := (&OAuthServer{RateLimit: tt.cfg}).rateLimiters()
			if checkErr(t, err, tt.wantErr) {
				return
			}
			have := on{got.oauth.Register != nil, got.oauth.Token != nil, got.oauth.Authorize != nil, got.login != nil}
			if have != tt.want {
				t.Errorf("limits on: %+v, want %+v", have, tt.want)
			}
		})
	}

	// The defaults, request by request: register allows a burst of 20 per
	// address, then one every 6 seconds.
	got, err := (&OAuthServer{}).rateLimiters()
	if err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequest(http.MethodPost, "http://h/oauth/register", nil)
	r.RemoteAddr = "203.0.113.9:1"
	for i := range 20 {
		if ok, _ := got.oauth.Register.Allow(r); !ok {
			t.Fatalf("default register limit refused request %d of the burst", i+1)
		}
	}
	if ok, wait := got.oauth.Register.Allow(r); ok || wait <= 5*time.Second || wait > 6*time.Second {
		t.Errorf("request 21: ok=%v, wait %v; want a refusal for up to 6s", ok, wait)
	}
}

func TestClientIPKey(t *testing.T) {
	key := clientIPKey(64)
	tests := []struct {
		name   string
		vars   map[string]any // nil: not a request served by Caddy
		remote string
		want   string
	}{
		{"caddy's client ip", map[string]any{caddyhttp.ClientIPVarKey: "203.0.113.5"}, "127.0.0.1:5000", "203.0.113.5"},
		{"caddy's ipv6 client", map[string]any{caddyhttp.ClientIPVarKey: "2001:db8:a:b:c::1"}, "127.0.0.1:5000", "2001:db8:a:b::/64"},
		{"unknown to caddy", map[string]any{caddyhttp.ClientIPVarKey: ""}, "@", ""},
		{"outside caddy", nil, "198.51.100.4:7000", "198.51.100.4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodGet, "http://h/", nil)
			r.RemoteAddr = tt.remote
			if tt.vars != nil {
				r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, tt.vars))
			}
			if got := key(r); got != tt.want {
				t.Errorf("key = %q, want %q", got, tt.want)
			}
		})
	}
}

// rateLimitSite is a Caddyfile of one mcp_oauth site; the first %s is
// the servers block of the global options, the last the mcp_oauth
// directive.
const rateLimitSite = `{
	admin off
%s	caddymcp {
		embedded_path %s
	}
}

http://127.0.0.1:%d {
%s}
`

// tightLimits limits registration and authorization to one request an
// hour.
const tightLimits = `	mcp_oauth {
		rate_limit {
			register 1/h 1
			authorize 1/h 1
		}
	}
`

// TestRateLimitThroughCaddy checks, in an in-process Caddy, that clients
// are told apart by the IP address Caddy determines: the forwarded
// address from a trusted proxy, the connection's address otherwise, where
// a forged X-Forwarded-For changes nothing; and that the limits are on
// without any configuration.
func TestRateLimitThroughCaddy(t *testing.T) {
	db := filepath.Join(t.TempDir(), "rl.db")
	port := testflow.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	send := func(method, path, forwardedFor string, body string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if forwardedFor != "" {
			req.Header.Set("X-Forwarded-For", forwardedFor)
		}
		req.Close = true // no connection outlives a reload
		res, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	const client = `{"redirect_uris":["http://127.0.0.1:9/cb"],"token_endpoint_auth_method":"none"}`
	register := func(forwardedFor string) (*http.Response, string) {
		return send(http.MethodPost, oauth.RegisterPath, forwardedFor, client)
	}
	// wantLimited checks a 429 whose Retry-After is at most the refill
	// time of one request (less when the requests took a while).
	wantLimited := func(res *http.Response, body, contentType string, refill int) {
		t.Helper()
		retry, err := strconv.Atoi(res.Header.Get("Retry-After"))
		if res.StatusCode != http.StatusTooManyRequests || err != nil || retry < 1 || retry > refill ||
			!strings.HasPrefix(res.Header.Get("Content-Type"), contentType) {
			t.Fatalf("want 429, Retry-After of 1 to %d s, %s; got %d, %q, %q: %s", refill, contentType, res.StatusCode,
				res.Header.Get("Retry-After"), res.Header.Get("Content-Type"), body)
		}
	}

	// Behind a trusted proxy, each forwarded address is a client.
	trusted := "\tservers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t\tclient_ip_headers X-Forwarded-For\n\t}\n"
	startCaddyfile(t, fmt.Sprintf(rateLimitSite, trusted, db, port, tightLimits))
	if res, body := register("203.0.113.1"); res.StatusCode != http.StatusCreated {
		t.Fatalf("first registration: %d %s", res.StatusCode, body)
	}
	res, body := register("203.0.113.1")
	wantLimited(res, body, "application/json", 3600)
	if !strings.Contains(body, `"error":"too_many_requests"`) {
		t.Errorf("body %s, want the too_many_requests error", body)
	}
	if res, body := register("203.0.113.2"); res.StatusCode != http.StatusCreated {
		t.Fatalf("another forwarded address: %d %s", res.StatusCode, body)
	}
	if res, body := send(http.MethodGet, oauth.AuthorizePath, "203.0.113.1", ""); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("first authorization request: %d %s", res.StatusCode, body)
	}
	res, body = send(http.MethodGet, oauth.AuthorizePath, "203.0.113.1", "")
	wantLimited(res, body, "text/html", 3600)
	if !strings.Contains(body, "Too many requests") {
		t.Errorf("error page:\n%s", body)
	}

	// Without trusted proxies the header is the client's own claim and
	// changes nothing; with no rate_limit block, the defaults apply:
	// 20 registrations at once from one address.
	if err := load(t, adaptCaddyfile(t, fmt.Sprintf(rateLimitSite, "", db, port, "\tmcp_oauth\n"))); err != nil {
		t.Fatalf("reloading: %v", err)
	}
	for i := range 20 {
		// No JSON body: refused with 400 before anything is stored.
		res, body := send(http.MethodPost, oauth.RegisterPath, fmt.Sprintf("198.51.100.%d", i), "")
		if res.StatusCode != http.StatusBadRequest {
			t.Fatalf("registration %d within the default burst: %d %s", i+1, res.StatusCode, body)
		}
	}
	res, body = register("198.51.100.99")
	wantLimited(res, body, "application/json", 6)
}

// BenchmarkTokenRateLimit measures what the default token limit adds to
// a request served by Caddy: the client IP from Caddy's variables, its
// key, and the bucket.
func BenchmarkTokenRateLimit(b *testing.B) {
	limits, err := (&OAuthServer{}).rateLimiters()
	if err != nil {
		b.Fatal(err)
	}
	for _, ip := range []string{"203.0.113.7", "2001:db8:1:2:3:4:5:6"} {
		r, _ := http.NewRequest(http.MethodPost, "http://h/oauth/token", nil)
		ctx := context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: ip})
		ctx = context.WithValue(ctx, caddy.ReplacerCtxKey, caddy.NewReplacer()) // a deeper context, as in Caddy
		r = r.WithContext(ctx)
		b.Run(ip, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				// Past the burst most requests are refused, which
				// takes the same work as allowing one.
				limits.oauth.Token.Allow(r)
			}
		})
	}
}
