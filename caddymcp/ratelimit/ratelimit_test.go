package ratelimit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testclock"
	"github.com/caddymcp/caddymcp/caddymcp/ratelimit"
)

func newClock() *testclock.Clock { return testclock.New(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)) }

func newLimiter(t testing.TB, c *testclock.Clock, rate ratelimit.Rate, maxKeys int) *ratelimit.Limiter {
	t.Helper()
	l, err := ratelimit.New(ratelimit.Config{Rate: rate, MaxKeys: maxKeys, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// take calls Allow n times for key and returns how many were allowed and
// the retryAfter of the last refusal.
func take(l *ratelimit.Limiter, key string, n int) (allowed int, wait time.Duration) {
	for range n {
		ok, w := l.Allow(key)
		if ok {
			allowed++
		} else {
			wait = w
		}
	}
	return allowed, wait
}

func TestBurstThenRefill(t *testing.T) {
	c := newClock()
	// 60 per minute: one request a second, 5 at once.
	l := newLimiter(t, c, ratelimit.Rate{Requests: 60, Window: time.Minute, Burst: 5}, 0)

	if got, wait := take(l, "a", 8); got != 5 || wait != time.Second {
		t.Fatalf("fresh bucket: %d allowed, retry after %v; want 5 and 1s", got, wait)
	}
	// Half a second later the next request is still half a second away.
	c.Advance(500 * time.Millisecond)
	if ok, wait := l.Allow("a"); ok || wait != 500*time.Millisecond {
		t.Fatalf("after 0.5s: ok=%v retry after %v; want a refusal for 0.5s", ok, wait)
	}
	// Refused requests took nothing: one second after the burst, exactly
	// one request passes.
	c.Advance(500 * time.Millisecond)
	if got, _ := take(l, "a", 3); got != 1 {
		t.Fatalf("after 1s: %d allowed, want 1", got)
	}
	// Three seconds refill three requests, not more.
	c.Advance(3 * time.Second)
	if got, _ := take(l, "a", 10); got != 3 {
		t.Fatalf("after 3s: %d allowed, want 3", got)
	}
	// A long pause refills the bucket to its burst, never beyond.
	c.Advance(time.Hour)
	if got, _ := take(l, "a", 10); got != 5 {
		t.Fatalf("after an hour: %d allowed, want the burst of 5", got)
	}
}

func TestBurstDefaultsToRequests(t *testing.T) {
	c := newClock()
	l := newLimiter(t, c, ratelimit.Rate{Requests: 3, Window: time.Hour}, 0)
	if got, wait := take(l, "a", 5); got != 3 || wait != 20*time.Minute {
		t.Fatalf("%d allowed, retry after %v; want 3 and 20m", got, wait)
	}
}

func TestKeysAreIndependent(t *testing.T) {
	c := newClock()
	l := newLimiter(t, c, ratelimit.Rate{Requests: 1, Window: time.Minute, Burst: 2}, 0)
	if got, _ := take(l, "a", 5); got != 2 {
		t.Fatalf("a: %d allowed, want 2", got)
	}
	if got, _ := take(l, "b", 5); got != 2 {
		t.Fatalf("b after a was exhausted: %d allowed, want 2", got)
	}
}

func TestEvictsLeastRecentlySeen(t *testing.T) {
	c := newClock()
	l := newLimiter(t, c, ratelimit.Rate{Requests: 1, Window: time.Hour, Burst: 1}, 3)
	for _, k := range []string{"a", "b", "c"} {
		if ok, _ := l.Allow(k); !ok {
			t.Fatalf("%s: first request refused", k)
		}
	}
	// a is seen again (and refused), so b is now the stalest key.
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("a: second request allowed")
	}
	if ok, _ := l.Allow("d"); !ok {
		t.Fatal("d: first request refused")
	}
	if n := l.Len(); n != 3 {
		t.Fatalf("Len = %d, want the cap of 3", n)
	}
	// b was forgotten and starts over; a and c were kept.
	if ok, _ := l.Allow("b"); !ok {
		t.Error("b was not evicted")
	}
	if ok, _ := l.Allow("a"); ok {
		t.Error("a was evicted, but it was seen more recently than b")
	}
}

func TestDropsRefilledBuckets(t *testing.T) {
	c := newClock()
	l := newLimiter(t, c, ratelimit.Rate{Requests: 1, Window: time.Minute, Burst: 1}, 100)
	for i := range 4 {
		l.Allow("old" + strconv.Itoa(i))
	}
	// One minute later every bucket is full again, indistinguishable from
	// a new one: each new key drops up to two of them.
	c.Advance(time.Minute)
	l.Allow("new1")
	if n := l.Len(); n != 3 {
		t.Fatalf("Len = %d after one new key, want 3 (two refilled buckets dropped)", n)
	}
	l.Allow("new2")
	if n := l.Len(); n != 2 {
		t.Fatalf("Len = %d after two new keys, want 2", n)
	}
	// A bucket that has not refilled stays, even if it is the stalest.
	c.Advance(30 * time.Second)
	l.Allow("new3")
	if n := l.Len(); n != 3 {
		t.Fatalf("Len = %d, want 3: unrefilled buckets are kept", n)
	}
	if ok, _ := l.Allow("new1"); ok {
		t.Error("new1 was forgotten before its bucket refilled")
	}
}

func TestManyKeysStayBounded(t *testing.T) {
	c := newClock()
	const maxKeys = 2000 // large enough for several shards
	l := newLimiter(t, c, ratelimit.Rate{Requests: 1, Window: time.Hour}, maxKeys)
	for i := range 10 * maxKeys {
		l.Allow("k" + strconv.Itoa(i))
	}
	// Shards hold ceil(maxKeys/16) keys each.
	if n := l.Len(); n > maxKeys+16 || n < maxKeys/2 {
		t.Fatalf("Len = %d, want about %d", n, maxKeys)
	}
}

// TestConcurrentUse runs many goroutines against shared and private keys
// under the race detector: with a frozen clock, exactly the burst of the
// shared key is allowed, however the requests interleave.
func TestConcurrentUse(t *testing.T) {
	c := newClock()
	l := newLimiter(t, c, ratelimit.Rate{Requests: 10, Window: time.Minute, Burst: 50}, 0)
	var shared, private atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			own := fmt.Sprintf("own-%d", g)
			for range 100 {
				if ok, _ := l.Allow("shared"); ok {
					shared.Add(1)
				}
				if ok, _ := l.Allow(own); ok {
					private.Add(1)
				}
				_ = l.Len()
			}
		})
	}
	wg.Wait()
	if shared.Load() != 50 {
		t.Errorf("shared key: %d allowed, want exactly the burst of 50", shared.Load())
	}
	if private.Load() != 16*50 {
		t.Errorf("private keys: %d allowed, want 16 × 50", private.Load())
	}
}

func TestRateValidate(t *testing.T) {
	tests := []struct {
		name    string
		rate    ratelimit.Rate
		wantErr bool
	}{
		{"ok", ratelimit.Rate{Requests: 20, Window: time.Minute, Burst: 10}, false},
		{"default burst", ratelimit.Rate{Requests: 20, Window: time.Minute}, false},
		{"no requests", ratelimit.Rate{Window: time.Minute}, true},
		{"no window", ratelimit.Rate{Requests: 1}, true},
		{"negative burst", ratelimit.Rate{Requests: 1, Window: time.Second, Burst: -1}, true},
		{"faster than a nanosecond", ratelimit.Rate{Requests: 2000, Window: time.Microsecond}, true},
		{"century to refill", ratelimit.Rate{Requests: 1, Window: 24 * time.Hour * 365, Burst: 1000}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.rate.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, want error: %v", err, tt.wantErr)
			}
			if _, err := ratelimit.New(ratelimit.Config{Rate: tt.rate}); (err != nil) != tt.wantErr {
				t.Fatalf("New() = %v, want error: %v", err, tt.wantErr)
			}
		})
	}
	if _, err := ratelimit.New(ratelimit.Config{Rate: ratelimit.Rate{Requests: 1, Window: time.Second}, MaxKeys: -1}); err == nil {
		t.Error("negative MaxKeys accepted")
	}
}

func TestRetryAfter(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                          "1",
		time.Nanosecond:            "1",
		time.Second:                "1",
		time.Second + 1:            "2",
		2500 * time.Millisecond:    "3",
		time.Minute:                "60",
		100 * 365 * 24 * time.Hour: "2147483647",
	} {
		if got := ratelimit.RetryAfter(d); got != want {
			t.Errorf("RetryAfter(%v) = %s, want %s", d, got, want)
		}
	}
}

func TestIPKey(t *testing.T) {
	tests := []struct {
		addr string
		bits int
		want string
	}{
		{"192.0.2.1", 64, "192.0.2.1"},
		{"192.0.2.1:443", 64, "192.0.2.1"},
		{"::ffff:192.0.2.1", 64, "192.0.2.1"},
		{"[::ffff:192.0.2.1]:80", 64, "192.0.2.1"},
		{"2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", 64, "2001:db8:1:2::/64"},
		{"[2001:db8:1:2::9]:8443", 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:2::9", 48, "2001:db8:1::/48"},
		{"2001:db8:1:2::9", 128, "2001:db8:1:2::9/128"},
		{"2001:db8:1:2::9", 0, "2001:db8:1:2::/64"},
		{"fe80::1%eth0", 64, "fe80::/64"},
		{"", 64, ""},
		{"@", 64, ""},
		{"not-an-ip", 64, ""},
		{"192.0.2.010", 64, ""},
	}
	for _, tt := range tests {
		if got := ratelimit.IPKey(tt.addr, tt.bits); got != tt.want {
			t.Errorf("IPKey(%q, %d) = %q, want %q", tt.addr, tt.bits, got, tt.want)
		}
	}
}

func TestRequestLimiter(t *testing.T) {
	c := newClock()
	l := newLimiter(t, c, ratelimit.Rate{Requests: 1, Window: time.Minute, Burst: 1}, 0)
	rl := ratelimit.NewRequestLimiter(l, ratelimit.RemoteAddrKey(64))
	req := func(remote string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = remote
		return r
	}
	if ok, _ := rl.Allow(req("192.0.2.1:1000")); !ok {
		t.Fatal("first request refused")
	}
	// Another port of the same address is the same client.
	if ok, wait := rl.Allow(req("192.0.2.1:2000")); ok || wait != time.Minute {
		t.Fatalf("same address: ok=%v wait=%v, want a refusal for 1m", ok, wait)
	}
	// So is another address of the same IPv6 /64.
	rl.Allow(req("[2001:db8::1]:1"))
	if ok, _ := rl.Allow(req("[2001:db8::2]:1")); ok {
		t.Error("a second address of the same /64 was counted separately")
	}
	if ok, _ := rl.Allow(req("[2001:db8:0:1::1]:1")); !ok {
		t.Error("another /64 shares a bucket")
	}
	// A request without an address is not limited.
	for range 3 {
		if ok, _ := rl.Allow(req("@")); !ok {
			t.Fatal("a request without a key was limited")
		}
	}
	var none *ratelimit.RequestLimiter
	if ok, _ := none.Allow(req("192.0.2.1:1")); !ok {
		t.Error("a nil RequestLimiter refused a request")
	}
}

// BenchmarkAllow measures one request of a known key, the common case at
// a busy endpoint, from one goroutine and from all of them.
func BenchmarkAllow(b *testing.B) {
	l, err := ratelimit.New(ratelimit.Config{Rate: ratelimit.Rate{Requests: 1 << 30, Window: time.Hour}})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("one-key", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			l.Allow("203.0.113.7")
		}
	})
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("203.0.%d.%d", i/256, i%256)
	}
	b.Run("1000-keys-parallel", func(b *testing.B) {
		b.ReportAllocs()
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.Allow(keys[next.Add(1)%int64(len(keys))])
			}
		})
	})
}

// BenchmarkAllowNewKeys measures requests that each bring a new key to a
// full limiter, which evicts the stalest key every time: the worst case,
// a flood from many addresses.
func BenchmarkAllowNewKeys(b *testing.B) {
	l, err := ratelimit.New(ratelimit.Config{Rate: ratelimit.Rate{Requests: 1, Window: time.Hour}})
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]string, 4*ratelimit.DefaultMaxKeys)
	for i := range keys {
		keys[i] = "2001:db8:" + strconv.Itoa(i) + "::/64"
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.Allow(keys[i%len(keys)])
		i++
	}
}

// BenchmarkRequestLimiter measures what an endpoint pays per request:
// the key from the remote address plus Allow.
func BenchmarkRequestLimiter(b *testing.B) {
	l, err := ratelimit.New(ratelimit.Config{Rate: ratelimit.Rate{Requests: 1 << 30, Window: time.Hour}})
	if err != nil {
		b.Fatal(err)
	}
	rl := ratelimit.NewRequestLimiter(l, ratelimit.RemoteAddrKey(ratelimit.DefaultIPv6Prefix))
	for _, remote := range []string{"203.0.113.7:51234", "[2001:db8:1:2:3:4:5:6]:51234"} {
		r := httptest.NewRequest(http.MethodPost, "/oauth/token", nil)
		r.RemoteAddr = remote
		b.Run(remote, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rl.Allow(r)
			}
		})
	}
}
