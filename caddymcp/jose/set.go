package jose

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// ErrKeysUnavailable means a server's keys could not be obtained, so no
// token it signed can be verified right now.
var ErrKeysUnavailable = errors.New("signing keys unavailable")

// ErrUnknownKey means no key of the set matches a token's kid and alg.
var ErrUnknownKey = errors.New("unknown signing key")

// ErrWrongAlgorithm means the key a token names may not verify the
// algorithm the token names.
var ErrWrongAlgorithm = errors.New("algorithm does not match the key")

// KeySet is a parsed, immutable set of verification keys.
type KeySet struct {
	byKid map[string]PublicKey
	noKid []PublicKey // keys published without a kid
}

// NewKeySet builds a set from keys by kid (the empty kid: keys without
// one). A kid given twice keeps its first key.
func NewKeySet() *KeySet { return &KeySet{byKid: map[string]PublicKey{}} }

// Add adds a key under kid ("" for a key published without a kid). A kid
// already present keeps its first key.
func (s *KeySet) Add(kid string, k PublicKey) {
	if kid == "" {
		s.noKid = append(s.noKid, k)
	} else if _, dup := s.byKid[kid]; !dup {
		s.byKid[kid] = k
	}
}

// Len is the number of keys.
func (s *KeySet) Len() int { return len(s.byKid) + len(s.noKid) }

// ParseJWKS reads a published JWK Set, keeping its usable signing keys
// and passing over the rest (encryption keys, symmetric keys, unknown
// types): a server may publish keys for other purposes beside them. A
// set with no usable key is an error.
func ParseJWKS(raw []byte) (*KeySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, errors.New("not a JWK Set (a JSON object with keys)")
	}
	return keySetOf(doc.Keys)
}

// keySetOf parses the members of a JWK Set's keys array.
func keySetOf(keys []json.RawMessage) (*KeySet, error) {
	s := NewKeySet()
	for _, raw := range keys {
		var j JWK
		if json.Unmarshal(raw, &j) != nil {
			continue
		}
		pk, err := ParseJWK(j)
		if err != nil {
			continue
		}
		s.Add(j.Kid, pk)
	}
	if s.Len() == 0 {
		return nil, errors.New("no usable signing keys")
	}
	return s, nil
}

// Lookup finds the key for a token's kid and alg. A token without a kid
// may use the one key published without a kid that allows alg; a key
// that does not allow alg is refused with ErrWrongAlgorithm (the key
// fixes the algorithm), and returned for the caller's message.
func (s *KeySet) Lookup(kid, alg string) (PublicKey, error) {
	var k PublicKey
	if kid != "" {
		var ok bool
		if k, ok = s.byKid[kid]; !ok {
			return PublicKey{}, ErrUnknownKey
		}
	} else {
		var found []PublicKey
		for _, c := range s.noKid {
			if c.Allows(alg) {
				found = append(found, c)
			}
		}
		if len(found) != 1 {
			return PublicKey{}, ErrUnknownKey
		}
		k = found[0]
	}
	if !k.Allows(alg) {
		return k, ErrWrongAlgorithm
	}
	return k, nil
}

// Get returns the key published with kid.
func (s *KeySet) Get(kid string) (PublicKey, bool) {
	k, ok := s.byKid[kid]
	return k, ok
}

// RemoteConfig configures a RemoteKeySet.
type RemoteConfig struct {
	// Name names the server in log lines and errors (its issuer, a
	// provider's name).
	Name string
	// Fetch fetches and parses the server's current keys. It is given a
	// context that outlives the request that caused the fetch (bounded
	// by FetchTimeout), so that a cancelled request does not waste the
	// fetch others wait for.
	Fetch func(ctx context.Context) (*KeySet, error)
	// RefreshInterval is how long fetched keys are used before they are
	// fetched again. Default: 1h.
	RefreshInterval time.Duration
	// MinRefetch is the least time between two fetches, which bounds the
	// fetches tokens with unknown kids can cause. Default: 30s.
	MinRefetch time.Duration
	// FetchTimeout bounds one fetch. Default: 10s.
	FetchTimeout time.Duration
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Logger receives warnings about failed fetches. Default: discard.
	Logger *slog.Logger
}

// RemoteKeySet is the key set a remote server publishes, fetched on first
// use and kept in memory: fetched again after RefreshInterval, and when a
// token names an unknown kid (at most once per MinRefetch). Concurrent
// requests share one fetch. While the server is unreachable the keys last
// fetched stay in use.
type RemoteKeySet struct {
	cfg  RemoteConfig
	keys atomic.Pointer[fetchedKeys]
	// fetch serialises fetches; waiting on it respects the waiter's
	// context.
	fetch chan struct{}
	// lastAttempt is when the last fetch started, and lastErr why it
	// failed, or nil (both held under fetch).
	lastAttempt time.Time
	lastErr     error
}

// fetchedKeys is one fetched set and when it was fetched.
type fetchedKeys struct {
	set *KeySet
	at  time.Time
}

// NewRemoteKeySet returns a key set that fetches with cfg.Fetch. It
// fetches nothing until first used.
func NewRemoteKeySet(cfg RemoteConfig) *RemoteKeySet {
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = time.Hour
	}
	if cfg.MinRefetch <= 0 {
		cfg.MinRefetch = 30 * time.Second
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &RemoteKeySet{cfg: cfg, fetch: make(chan struct{}, 1)}
}

// Key returns the key for a token's kid and alg, fetching the keys the
// first time, when they are older than RefreshInterval, and when they do
// not know kid (the server may have rotated its keys). The error wraps
// ErrKeysUnavailable when no keys could be fetched at all, and the cause:
// the error of the last fetch (so that a caller can tell a server that
// is down from one that is slow), or of the request's context when it
// gave up waiting for another request's fetch.
func (r *RemoteKeySet) Key(ctx context.Context, kid, alg string) (PublicKey, error) {
	cur, err := r.current(ctx)
	if err != nil {
		return PublicKey{}, err
	}
	k, err := cur.set.Lookup(kid, alg)
	if errors.Is(err, ErrUnknownKey) {
		if fresh, _ := r.refetch(ctx, cur); fresh != nil {
			k, err = fresh.set.Lookup(kid, alg)
		}
	}
	return k, err
}

// Current returns the current keys, fetching them as Key does. The error
// wraps ErrKeysUnavailable when none could be fetched, and the cause.
func (r *RemoteKeySet) Current(ctx context.Context) (*KeySet, error) {
	cur, err := r.current(ctx)
	if err != nil {
		return nil, err
	}
	return cur.set, nil
}

func (r *RemoteKeySet) current(ctx context.Context) (*fetchedKeys, error) {
	cur := r.keys.Load()
	if cur != nil && r.cfg.Now().Sub(cur.at) < r.cfg.RefreshInterval {
		return cur, nil
	}
	fresh, err := r.refetch(ctx, cur)
	if fresh != nil {
		return fresh, nil
	}
	if cur != nil {
		return cur, nil // stale keys beat none while the server is down
	}
	if err == nil {
		err = errors.New("the keys changed while this request waited") // cannot happen: keys are never removed
	}
	return nil, fmt.Errorf("%w: %s: no keys fetched yet: %w", ErrKeysUnavailable, r.cfg.Name, err)
}

// refetch fetches the keys unless a fetch started less than MinRefetch
// ago, and returns the new keys, or nil and why none were fetched: the
// error of this fetch, of the last one when it is too soon to fetch
// again (nil if that one succeeded), or of ctx. seen is what the caller
// has: if another request replaced it while this one waited, that one
// is returned without a fetch.
func (r *RemoteKeySet) refetch(ctx context.Context, seen *fetchedKeys) (*fetchedKeys, error) {
	select {
	case r.fetch <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for another request's fetch: %w", ctx.Err())
	}
	defer func() { <-r.fetch }()
	if cur := r.keys.Load(); cur != seen {
		return cur, nil
	}
	now := r.cfg.Now()
	if !r.lastAttempt.IsZero() && now.Sub(r.lastAttempt) < r.cfg.MinRefetch {
		if r.lastErr != nil {
			return nil, fmt.Errorf("the last fetch, %s ago, failed: %w", now.Sub(r.lastAttempt).Round(time.Second), r.lastErr)
		}
		return nil, nil
	}
	r.lastAttempt = now
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.FetchTimeout)
	defer cancel()
	set, err := r.cfg.Fetch(fctx)
	if err == nil && (set == nil || set.Len() == 0) {
		err = errors.New("no usable signing keys")
	}
	r.lastErr = err
	if err != nil {
		r.cfg.Logger.Warn("fetching the signing keys of a remote server failed", "server", r.cfg.Name, "error", err.Error())
		return nil, err
	}
	fresh := &fetchedKeys{set: set, at: now}
	r.keys.Store(fresh)
	return fresh, nil
}
