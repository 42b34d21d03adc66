package bearer

import (
	"context"
	"sync"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// denyOverlap re-reads revocations this far back on every refresh, so a
// revocation committed late with an earlier timestamp (or by an instance
// whose clock lags) is still picked up; every denyFullEvery refreshes the
// whole live list is read again, which heals any larger skew.
const (
	denyOverlap   = 30 * time.Second
	denyFullEvery = 30
)

// DenyList is the in-memory set of revoked access tokens that a resource
// server checks on every request instead of the database. Refresh brings
// it up to date; entries leave when the token would have expired anyway.
type DenyList struct {
	source func(ctx context.Context, since, now time.Time) ([]store.RevokedToken, error)
	now    func() time.Time
	keep   time.Duration

	mu       sync.RWMutex
	jtis     map[string]time.Time // jti → when the entry may go
	since    time.Time            // the newest revocation seen
	loaded   bool
	refreshs int
}

// epoch stands for "every revocation": a zero time would be stored as
// NULL, which matches nothing.
var epoch = time.Unix(0, 0).UTC()

// NewDenyList returns an empty list fed by source
// (store.RevokedAccessTokens). Entries stay until their token's expiry
// plus keep, which must cover the leeway verifiers allow on exp.
func NewDenyList(source func(ctx context.Context, since, now time.Time) ([]store.RevokedToken, error), now func() time.Time, keep time.Duration) *DenyList {
	if now == nil {
		now = time.Now
	}
	return &DenyList{source: source, now: now, keep: keep, jtis: map[string]time.Time{}}
}

// Refresh reads the revocations made since the last refresh (all live
// ones the first time) and drops expired entries.
func (d *DenyList) Refresh(ctx context.Context) error {
	d.mu.RLock()
	since := d.since.Add(-denyOverlap)
	if !d.loaded || d.refreshs%denyFullEvery == 0 {
		since = epoch
	}
	d.mu.RUnlock()
	now := d.now()
	revoked, err := d.source(ctx, since, now.Add(-d.keep))
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, t := range revoked {
		d.jtis[t.JTI] = t.ExpiresAt.Add(d.keep)
		if t.RevokedAt.After(d.since) {
			d.since = t.RevokedAt
		}
	}
	for jti, until := range d.jtis {
		if !until.After(now) {
			delete(d.jtis, jti)
		}
	}
	d.loaded = true
	d.refreshs++
	return nil
}

// Revoked reports whether the token with this jti has been revoked.
func (d *DenyList) Revoked(jti string) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	_, ok := d.jtis[jti]
	return ok
}

// Loaded reports whether the list has been read at least once.
func (d *DenyList) Loaded() bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.loaded
}

// Len returns the number of entries.
func (d *DenyList) Len() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.jtis)
}

// Active is the resource's revocation check (ResourceConfig.Active):
// whether the token with jti is not on the list, loading the list first
// if it never was. Its error means the list could not be loaded.
func (d *DenyList) Active(ctx context.Context, jti string) (bool, error) {
	if !d.Loaded() {
		if err := d.Refresh(ctx); err != nil {
			return true, err
		}
	}
	return !d.Revoked(jti), nil
}

// Run refreshes the list every interval until ctx ends, so that a
// revocation made anywhere reaches this instance within that time. Each
// refresh gets at most refreshTimeout; failures go to onError and the
// list keeps what it has.
func (d *DenyList) Run(ctx context.Context, every time.Duration, onError func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, refreshTimeout)
		if err := d.Refresh(rctx); err != nil && onError != nil && ctx.Err() == nil {
			onError(err)
		}
		cancel()
	}
}

// refreshTimeout bounds one refresh of Run.
const refreshTimeout = 5 * time.Second
