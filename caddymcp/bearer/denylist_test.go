package bearer_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/bearer"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testkeys"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

var t0 = testkeys.T0

func TestDenyList(t *testing.T) {
	now := t0
	var rows []store.RevokedToken
	var sinces []time.Time
	fail := false
	src := func(_ context.Context, since, at time.Time) ([]store.RevokedToken, error) {
		if fail {
			return nil, errors.New("db down")
		}
		sinces = append(sinces, since)
		var out []store.RevokedToken
		for _, r := range rows {
			if !r.RevokedAt.Before(since) && r.ExpiresAt.After(at) {
				out = append(out, r)
			}
		}
		return out, nil
	}
	d := bearer.NewDenyList(src, func() time.Time { return now }, 30*time.Second)
	rows = append(rows, store.RevokedToken{JTI: "a", ExpiresAt: t0.Add(time.Hour), RevokedAt: t0.Add(-time.Hour)})
	if err := d.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !d.Revoked("a") || d.Revoked("b") || !sinces[0].Equal(time.Unix(0, 0)) {
		t.Fatalf("first load: a %v, b %v, since %v", d.Revoked("a"), d.Revoked("b"), sinces[0])
	}
	// A later revocation arrives on the next refresh, which only asks for
	// recent ones (with an overlap).
	now = t0.Add(time.Minute)
	rows = append(rows, store.RevokedToken{JTI: "b", ExpiresAt: t0.Add(2 * time.Minute), RevokedAt: t0.Add(30 * time.Second)})
	if err := d.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !d.Revoked("b") || sinces[1].IsZero() {
		t.Fatalf("b not picked up (since %v)", sinces[1])
	}
	// The database going away keeps the list as it was.
	fail = true
	if err := d.Refresh(context.Background()); err == nil || !d.Revoked("b") {
		t.Fatal("a failed refresh lost entries")
	}
	fail = false
	// An expired entry stays for the verifiers' leeway, then leaves.
	now = t0.Add(2*time.Minute + 10*time.Second)
	if err := d.Refresh(context.Background()); err != nil || !d.Revoked("b") {
		t.Fatal("a revoked token left the list inside the leeway")
	}
	now = t0.Add(3 * time.Minute)
	if err := d.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d.Revoked("b") || !d.Revoked("a") || d.Len() != 1 {
		t.Fatalf("after b expired: b %v, a %v, len %d", d.Revoked("b"), d.Revoked("a"), d.Len())
	}
}

// TestDenyListActiveAndRun: Active loads the list on first use (a
// database that cannot answer leaves the token accepted, with the
// error), and Run brings revocations in until its context ends.
func TestDenyListActiveAndRun(t *testing.T) {
	var mu sync.Mutex
	rows := []store.RevokedToken{}
	fail := true
	calls := 0
	src := func(_ context.Context, since, at time.Time) ([]store.RevokedToken, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if fail {
			return nil, errors.New("db down")
		}
		return slices.Clone(rows), nil
	}
	d := bearer.NewDenyList(src, nil, time.Minute)
	ctx := context.Background()
	if ok, err := d.Active(ctx, "a"); !ok || err == nil {
		t.Fatalf("database down: Active = %v, %v; want accepted with the error", ok, err)
	}
	mu.Lock()
	fail = false
	rows = append(rows, store.RevokedToken{JTI: "a", ExpiresAt: time.Now().Add(time.Hour), RevokedAt: time.Now()})
	mu.Unlock()
	if ok, err := d.Active(ctx, "a"); ok || err != nil {
		t.Fatalf("revoked token: Active = %v, %v", ok, err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	var errs []error
	go func() {
		d.Run(runCtx, 5*time.Millisecond, func(err error) { errs = append(errs, err) })
		close(done)
	}()
	mu.Lock()
	rows = append(rows, store.RevokedToken{JTI: "b", ExpiresAt: time.Now().Add(time.Hour), RevokedAt: time.Now()})
	mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for d.Len() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if ok, _ := d.Active(ctx, "b"); ok {
		t.Fatal("Run did not bring in the new revocation")
	}
	stop()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return when its context ended")
	}
	mu.Lock()
	after := calls
	mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if calls != after || len(errs) != 0 {
		t.Fatalf("after Run returned: %d more reads, errors %v", calls-after, errs)
	}
}
