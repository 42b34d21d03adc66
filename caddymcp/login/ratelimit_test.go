package login

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/ratelimit"
)

// newLimitedEnv is an env whose login endpoints allow burst requests at
// once per address, and one more a minute.
func newLimitedEnv(t *testing.T, burst int) *env {
	t.Helper()
	return newEnv(t, envOptions{config: func(c *Config) {
		l, err := ratelimit.New(ratelimit.Config{Rate: ratelimit.Rate{Requests: 1, Window: time.Minute, Burst: burst}, Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		c.RateLimit = ratelimit.NewRequestLimiter(l, ratelimit.RemoteAddrKey(ratelimit.DefaultIPv6Prefix))
	}})
}

func TestLoginRateLimit(t *testing.T) {
	// One sign-in is two requests here: /auth/login (one provider: the
	// redirect upstream) and the callback.
	e := newLimitedEnv(t, 2)
	if r := e.login(LoginPath); r.status != http.StatusSeeOther {
		t.Fatalf("a sign-in within the limit: status %d: %s", r.status, r.body)
	}
	session := e.sessionCookie(e.client)

	r := e.get(LoginPath)
	wantPage(t, r, http.StatusTooManyRequests, "Too many sign-in attempts")
	if got := r.header.Get("Retry-After"); got != "60" {
		t.Errorf("Retry-After = %q, want 60", got)
	}
	wantPage(t, e.get(ProviderLoginPrefix+"test"), http.StatusTooManyRequests, "Wait 60 seconds")
	wantPage(t, e.get(CallbackPrefix+"test?state=x&code=y"), http.StatusTooManyRequests, "Too many requests")

	// /auth/me is not limited.
	if r := e.me(session); r.status != http.StatusOK {
		t.Errorf("/auth/me over the login limit: %d", r.status)
	}
	// A minute later one more request passes.
	e.clock.Advance(time.Minute)
	if r := e.get(LoginPath); r.status == http.StatusTooManyRequests {
		t.Fatal("refilled bucket: 429")
	}
	wantPage(t, e.get(LoginPath), http.StatusTooManyRequests, "Too many requests")
}

func TestLoginRateLimitIsPerAddress(t *testing.T) {
	e := newLimitedEnv(t, 1)
	serve := func(addr string) int {
		r := httptest.NewRequest(http.MethodGet, e.app.URL+CallbackPrefix+"test?state=x&code=y", nil)
		r.RemoteAddr = addr
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, r)
		return w.Code
	}
	if code := serve("203.0.113.1:1"); code == http.StatusTooManyRequests {
		t.Fatal("first request: 429")
	}
	if code := serve("203.0.113.1:2"); code != http.StatusTooManyRequests {
		t.Fatalf("second request of the same address: %d, want 429", code)
	}
	if code := serve("203.0.113.2:1"); code == http.StatusTooManyRequests {
		t.Fatal("another address was limited too")
	}
}
