package caddymcp

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddymcp/caddymcp/caddymcp/bearer"
	"github.com/caddymcp/caddymcp/caddymcp/signing"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// stores holds the open stores, keyed by normalised settings (a hash for
// PostgreSQL, since the URL may hold a password), so that configs that
// replace each other on reload share one pool. It is the package's only
// global state.
var stores = caddy.NewUsagePool()

// retiredKeyGrace is how long a retired signing key is still published,
// so that tokens it signed keep verifying until they expire.
const retiredKeyGrace = 24 * time.Hour

// pooledStore is a store shared across configs, with the one-time work
// of preparing it.
type pooledStore struct {
	store.Store
	describe string // prefix for errors that do not say which store
	random   io.Reader

	mu   sync.Mutex                     // serializes preparation and key maintenance
	keys atomic.Pointer[signing.KeySet] // set once migrated and keyed

	deny     *bearer.DenyList
	pollOnce sync.Once
	stopOnce sync.Once
	stop     chan struct{}
}

// denyPoll is how often each instance reads new revocations, so that a
// revocation anywhere reaches it within that time.
const denyPoll = 2 * time.Second

// newPooledStore wraps an opened store.
func newPooledStore(s store.Store, describe string, random io.Reader) *pooledStore {
	p := &pooledStore{Store: s, describe: describe, random: random, stop: make(chan struct{})}
	p.deny = bearer.NewDenyList(s.RevokedAccessTokens, nil, time.Minute)
	return p
}

// pollRevocations keeps the deny-list current until the store is
// destroyed; it starts once per store.
func (p *pooledStore) pollRevocations(log func(error)) {
	p.pollOnce.Do(func() {
		go func() {
			t := time.NewTicker(denyPoll)
			defer t.Stop()
			for {
				select {
				case <-p.stop:
					return
				case <-t.C:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if err := p.deny.Refresh(ctx); err != nil {
					log(err)
				}
				cancel()
			}
		}()
	})
}

// tokenActive is the resource servers' revocation check: a lookup in the
// deny-list, loaded on first use.
func (p *pooledStore) tokenActive(ctx context.Context, jti string) (bool, error) {
	if !p.deny.Loaded() {
		if err := p.deny.Refresh(ctx); err != nil {
			return true, err
		}
	}
	return !p.deny.Revoked(jti), nil
}

// keyPolicy is how a config wants its signing keys handled.
type keyPolicy struct {
	// kek encrypts private keys at rest when set.
	kek string
	// rotateAfter is the age at which a new key is made.
	rotateAfter time.Duration
	// alg is the algorithm of new keys; a key of another one is replaced
	// at the next maintenance.
	alg string
}

// algorithm is the configured algorithm, ES256 by default.
func (pol keyPolicy) algorithm() string {
	if pol.alg == "" {
		return signing.AlgES256
	}
	return pol.alg
}

// keyActivationDelay is how long a new key is published before it
// signs, so that every instance, reloading keys every keyReload, knows it
// before the first token it signs arrives.
const (
	keyActivationDelay = 15 * time.Minute
	keyReload          = 5 * time.Minute
)

// prepare migrates the schema and loads (or creates) the signing keys,
// once; later calls return the cached keys. A failure is not cached.
func (p *pooledStore) prepare(ctx context.Context, pol keyPolicy) (*signing.KeySet, error) {
	// Requests read the key set without waiting for maintenance.
	if ks := p.keys.Load(); ks != nil {
		return ks, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if ks := p.keys.Load(); ks != nil {
		return ks, nil
	}
	if _, err := p.Migrate(ctx); err != nil {
		return nil, err
	}
	if _, err := p.EnsureSigningKey(ctx, p.generator(pol, time.Now())); err != nil {
		return nil, err
	}
	if err := p.deny.Refresh(ctx); err != nil {
		return nil, err
	}
	return p.reload(ctx, pol)
}

// maintain rotates the signing key when it is due and reloads the keys,
// picking up rotations made by other instances.
func (p *pooledStore) maintain(ctx context.Context, pol keyPolicy) error {
	if _, err := p.prepare(ctx, pol); err != nil {
		return err
	}
	now := time.Now()
	due := now.Add(-pol.rotateAfter)
	if newest, err := p.newestKeyAlgorithm(ctx); err != nil {
		return err
	} else if newest != pol.algorithm() {
		due = now.Add(time.Hour) // the configured algorithm changed: rotate now
	}
	if _, err := p.RotateSigningKey(ctx, due, p.generator(pol, now.Add(keyActivationDelay))); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := p.reload(ctx, pol)
	return err
}

// newestKeyAlgorithm is the algorithm of the newest unretired key, which
// signs now or soon.
func (p *pooledStore) newestKeyAlgorithm(ctx context.Context) (string, error) {
	all, err := p.SigningKeys(ctx) // newest first
	if err != nil {
		return "", err
	}
	for _, k := range all {
		if k.RetiredAt.IsZero() {
			return k.Algorithm, nil
		}
	}
	return "", nil
}

// reload reads every key from the store and publishes the new set; p.mu
// must be held (it serializes writers; readers never wait).
func (p *pooledStore) reload(ctx context.Context, pol keyPolicy) (*signing.KeySet, error) {
	all, err := p.SigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].PrivateKey, err = signing.OpenKey(pol.kek, all[i].PrivateKey); err != nil {
			return nil, fmt.Errorf("loading signing key %s: %w", all[i].ID, err)
		}
	}
	ks, err := signing.NewKeySet(all, time.Now(), retiredKeyGrace)
	if err != nil {
		return nil, fmt.Errorf("loading signing keys: %w", err)
	}
	p.keys.Store(ks)
	return ks, nil
}

// generator makes keys that start signing at the given time, sealed with
// the key-encryption secret when there is one.
func (p *pooledStore) generator(pol keyPolicy, at time.Time) func() (*store.SigningKey, error) {
	return keyGenerator(pol, p.random, at)
}

// keyGenerator makes keys of pol's algorithm from random that start
// signing at the given time, sealed with pol's key-encryption secret when
// there is one.
func keyGenerator(pol keyPolicy, random io.Reader, at time.Time) func() (*store.SigningKey, error) {
	return func() (*store.SigningKey, error) {
		k, err := signing.GenerateKey(pol.algorithm(), random, at)
		if err != nil || pol.kek == "" {
			return k, err
		}
		if k.PrivateKey, err = signing.SealKey(pol.kek, k.PrivateKey, random); err != nil {
			return nil, err
		}
		return k, nil
	}
}

// Destruct stops the poller and closes the store when the last config
// using it is cleaned up.
func (p *pooledStore) Destruct() error {
	p.stopOnce.Do(func() { close(p.stop) })
	p.Close()
	return nil
}
