package bearer_test

import (
	"context"
	"errors"
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
