package caddymcp

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddymcp/caddymcp/caddymcp/oauth"
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

	mu   sync.Mutex
	keys *oauth.KeySet // non-nil once migrated and keyed
}

// prepare migrates the schema and loads (or creates) the signing keys,
// once; later calls return the cached keys. A failure is not cached.
func (p *pooledStore) prepare(ctx context.Context) (*oauth.KeySet, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.keys != nil {
		return p.keys, nil
	}
	if _, err := p.Migrate(ctx); err != nil {
		return nil, err
	}
	if _, err := p.EnsureSigningKey(ctx, func() (*store.SigningKey, error) {
		return oauth.GenerateSigningKey(p.random, time.Now())
	}); err != nil {
		return nil, err
	}
	all, err := p.SigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	ks, err := oauth.NewKeySet(all, time.Now(), retiredKeyGrace)
	if err != nil {
		return nil, fmt.Errorf("loading signing keys: %w", err)
	}
	p.keys = ks
	return ks, nil
}

// Destruct closes the store when the last config using it is cleaned up.
func (p *pooledStore) Destruct() error {
	p.Close()
	return nil
}
