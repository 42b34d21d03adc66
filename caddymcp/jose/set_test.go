package jose

import (
	"context"
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testclock"
)

// TestParseJWKS keeps the usable signing keys and passes over the rest.
func TestParseJWKS(t *testing.T) {
	a := mustJWK(t, ecKey(t, elliptic.P256()).Public(), "", "a")
	noKid := mustJWK(t, edKey(t).Public(), "", "")
	enc := mustJWK(t, ecKey(t, elliptic.P256()).Public(), "", "enc")
	enc.Use = "enc"
	dup := mustJWK(t, rsaKey(t, 2048).Public(), "", "a")
	raw, _ := json.Marshal(map[string]any{"keys": []any{a, noKid, enc, dup, map[string]any{"kty": "oct", "k": "c2VjcmV0"}, "junk"}})
	set, err := ParseJWKS(raw)
	if err != nil {
		t.Fatal(err)
	}
	if set.Len() != 2 {
		t.Fatalf("%d keys, want 2 (a, and the one without kid)", set.Len())
	}
	if k, err := set.Lookup("a", "ES256"); err != nil || k.Algs[0] != "ES256" {
		t.Errorf("a: %v %v (the first key with a kid wins)", k.Algs, err)
	}
	if _, err := set.Lookup("a", "RS256"); !errors.Is(err, ErrWrongAlgorithm) {
		t.Errorf("a as RS256: %v, want ErrWrongAlgorithm", err)
	}
	if _, err := set.Lookup("", "EdDSA"); err != nil {
		t.Errorf("no kid, EdDSA: %v", err)
	}
	if _, err := set.Lookup("", "ES256"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("no kid, ES256: %v (only keys published without kid match)", err)
	}
	if _, err := set.Lookup("enc", "ES256"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("encryption key: %v", err)
	}
	for _, bad := range []string{`{"keys":[]}`, `{"keys":[{"kty":"oct"}]}`, `[]`, `{`} {
		if _, err := ParseJWKS([]byte(bad)); err == nil {
			t.Errorf("ParseJWKS(%s) accepted", bad)
		}
	}
}

// TestLookupNoKidAmbiguous: two keys without kid that both allow the
// token's alg leave the token unverifiable rather than guessed.
func TestLookupNoKidAmbiguous(t *testing.T) {
	s := NewKeySet()
	for range 2 {
		k, _ := ParseJWK(mustJWK(t, ecKey(t, elliptic.P256()).Public(), "", ""))
		s.Add("", k)
	}
	if _, err := s.Lookup("", "ES256"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Lookup = %v", err)
	}
}

// fakeServer counts fetches and serves a settable key set.
type fakeServer struct {
	mu      sync.Mutex
	set     *KeySet
	err     error
	fetches atomic.Int32
	gate    chan struct{} // when set, a fetch waits on it
}

func (f *fakeServer) fetch(ctx context.Context) (*KeySet, error) {
	f.fetches.Add(1)
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.set, f.err
}

func (f *fakeServer) serve(set *KeySet, err error) {
	f.mu.Lock()
	f.set, f.err = set, err
	f.mu.Unlock()
}

func oneKey(t *testing.T, kid string) *KeySet {
	s := NewKeySet()
	k, err := ParseJWK(mustJWK(t, ecKey(t, elliptic.P256()).Public(), "", kid))
	if err != nil {
		t.Fatal(err)
	}
	s.Add(kid, k)
	return s
}

// TestRemoteKeySetLifecycle walks a remote server's keys through first
// use, rotation, unknown kids, an outage and the refresh interval.
func TestRemoteKeySetLifecycle(t *testing.T) {
	ctx := context.Background()
	srv := &fakeServer{}
	clk := testclock.New(time.Unix(1_700_000_000, 0))
	r := NewRemoteKeySet(RemoteConfig{Name: "test", Fetch: srv.fetch, RefreshInterval: time.Hour, MinRefetch: 30 * time.Second, Now: clk.Now})

	down := errors.New("down")
	srv.serve(nil, down)
	if _, err := r.Key(ctx, "a", "ES256"); !errors.Is(err, ErrKeysUnavailable) || !errors.Is(err, down) {
		t.Fatalf("no keys ever fetched: %v, want ErrKeysUnavailable and the fetch's error", err)
	}
	srv.serve(oneKey(t, "a"), nil)
	if _, err := r.Key(ctx, "a", "ES256"); !errors.Is(err, ErrKeysUnavailable) || !errors.Is(err, down) {
		t.Fatalf("within MinRefetch of the failed fetch: %v, want ErrKeysUnavailable and the last fetch's error", err)
	}
	steps := []struct {
		name    string
		advance time.Duration
		change  func()
		kid     string
		ok      bool
		fetches int32
	}{
		{"first keys", 30 * time.Second, nil, "a", true, 2},
		{"known kid: no fetch", time.Second, nil, "a", true, 2},
		{"rotated: unknown kid refetches", time.Minute, func() { srv.serve(oneKey(t, "b"), nil) }, "b", true, 3},
		{"unknown kid within MinRefetch: no fetch", 10 * time.Second, nil, "c", false, 3},
		{"unknown kid later: one fetch", 30 * time.Second, nil, "c", false, 4},
		{"outage: the last keys stay in use", 2 * time.Hour, func() { srv.serve(nil, errors.New("down")) }, "b", true, 5},
		{"still down within MinRefetch: no fetch", time.Second, nil, "b", true, 5},
		{"back: refreshed after the interval", time.Minute, func() { srv.serve(oneKey(t, "d"), nil) }, "d", true, 6},
		{"the old key is gone", time.Minute, nil, "b", false, 7},
	}
	for _, s := range steps {
		clk.Advance(s.advance)
		if s.change != nil {
			s.change()
		}
		_, err := r.Key(ctx, s.kid, "ES256")
		if (err == nil) != s.ok {
			t.Errorf("%s: %v, want ok %v", s.name, err, s.ok)
		}
		if got := srv.fetches.Load(); got != s.fetches {
			t.Errorf("%s: %d fetches, want %d", s.name, got, s.fetches)
		}
	}
}

// TestRemoteKeySetOneFetch: concurrent first uses share one fetch, and a
// waiter whose request is cancelled gives up without breaking it.
func TestRemoteKeySetOneFetch(t *testing.T) {
	srv := &fakeServer{gate: make(chan struct{})}
	srv.serve(oneKey(t, "a"), nil)
	r := NewRemoteKeySet(RemoteConfig{Name: "test", Fetch: srv.fetch})
	cancelled, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = r.Key(context.Background(), "a", "ES256")
		}()
	}
	for srv.fetches.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if _, err := r.Key(cancelled, "a", "ES256"); !errors.Is(err, ErrKeysUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled request waiting for the fetch: %v, want ErrKeysUnavailable and its context's error", err)
	}
	close(srv.gate)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}
}

// TestRemoteKeySetFetchOutlivesRequest: the fetch runs on a context that
// a cancelled request does not cancel, bounded by FetchTimeout.
func TestRemoteKeySetFetchOutlivesRequest(t *testing.T) {
	var sawDeadline, sawCancel bool
	r := NewRemoteKeySet(RemoteConfig{Name: "test", FetchTimeout: time.Second, Fetch: func(ctx context.Context) (*KeySet, error) {
		_, sawDeadline = ctx.Deadline()
		sawCancel = ctx.Err() != nil
		return oneKey(t, "a"), nil
	}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := r.Current(ctx); err != nil {
		t.Fatal(err)
	}
	if !sawDeadline || sawCancel {
		t.Fatalf("fetch context: deadline %v, cancelled %v", sawDeadline, sawCancel)
	}
}
