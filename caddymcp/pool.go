package caddymcp

import (
	"context"
	"io"
	"sync"
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

// pooledStore is a store shared across configs, with what belongs to the
// store rather than to one config: its signing keys and its deny-list.
type pooledStore struct {
	store.Store
	describe string // prefix for errors that do not say which store

	keys *signing.Manager
	deny *bearer.DenyList

	mu       sync.Mutex // serializes preparation
	pollOnce sync.Once
	ctx      context.Context // ends when the store is destroyed
	cancel   context.CancelFunc
}

// denyPoll is how often each instance reads new revocations, so that a
// revocation anywhere reaches it within that time.
const denyPoll = 2 * time.Second

// newPooledStore wraps an opened store.
func newPooledStore(s store.Store, describe string, random io.Reader) *pooledStore {
	p := &pooledStore{Store: s, describe: describe}
	p.keys = signing.NewManager(s, random, time.Now)
	p.deny = bearer.NewDenyList(s.RevokedAccessTokens, nil, time.Minute)
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p
}

// pollRevocations keeps the deny-list current until the store is
// destroyed; it starts once per store.
func (p *pooledStore) pollRevocations(log func(error)) {
	p.pollOnce.Do(func() { go p.deny.Run(p.ctx, denyPoll, log) })
}

// prepare migrates the schema, loads the deny-list and loads (or creates)
// the signing keys, once; later calls return the loaded keys without
// waiting. A failure is not remembered.
func (p *pooledStore) prepare(ctx context.Context, pol signing.Policy) (*signing.KeySet, error) {
	if ks := p.keys.Current(); ks != nil {
		return ks, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if ks := p.keys.Current(); ks != nil {
		return ks, nil
	}
	if _, err := p.Migrate(ctx); err != nil {
		return nil, err
	}
	if err := p.deny.Refresh(ctx); err != nil {
		return nil, err
	}
	return p.keys.Load(ctx, pol)
}

// maintain prepares the store if needed, rotates the signing key when it
// is due and reloads the keys, picking up rotations made by other
// instances.
func (p *pooledStore) maintain(ctx context.Context, pol signing.Policy) error {
	if _, err := p.prepare(ctx, pol); err != nil {
		return err
	}
	return p.keys.Maintain(ctx, pol)
}

// Destruct stops the poller and closes the store when the last config
// using it is cleaned up.
func (p *pooledStore) Destruct() error {
	p.cancel()
	p.Close()
	return nil
}
