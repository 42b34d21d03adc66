package caddymcp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddymcp/caddymcp/caddymcp/internal/web"
	"github.com/caddymcp/caddymcp/caddymcp/signing"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// App is the caddymcp app: the configuration and the store that every
// caddymcp handler of a Caddy instance shares.
//
// With no configuration at all, the app keeps its state in an embedded
// database file under Caddy's data directory, so that a site using the
// caddymcp handlers needs nothing else. Database migrations and the first
// signing key are created when the app starts, never while a config is
// only being validated, and the store is shared across config reloads,
// so a reload never invalidates issued tokens.
type App struct {
	// Database is the PostgreSQL connection URL, for example
	// `postgres://caddymcp:{env.PGPASSWORD}@db.internal/caddymcp`. When
	// empty, the embedded store is used. Supports `{env.*}` and
	// `{file.*}` placeholders; a placeholder that resolves to nothing is
	// an error, never a silent fallback. Write secrets as placeholders:
	// the value is not otherwise protected in Caddy's config.
	Database string `json:"database,omitempty"`

	// MaxConns caps the PostgreSQL connection pool. Default: 16.
	MaxConns int `json:"max_conns,omitempty"`

	// EmbeddedPath is the file of the embedded store, used when Database
	// is empty. Default: `caddymcp/caddymcp.db` in Caddy's data directory.
	// Supports `{env.*}` placeholders.
	EmbeddedPath string `json:"embedded_path,omitempty"`

	// Issuer is the OAuth issuer identifier that mcp_oauth and mcp_bearer
	// use unless they set their own: an https URL without a trailing
	// slash, for example `https://mcp.example.com`. Default: the origin of
	// each request, which suits a site with a single host name. Set it
	// when a site answers to several names or sits behind a proxy that
	// terminates TLS.
	Issuer string `json:"issuer,omitempty"`

	// Scopes are the OAuth scopes offered. Default: booking:read,
	// booking:write, product:read, product:write, order:read,
	// order:write, form:read, form:write.
	Scopes []string `json:"scopes,omitempty"`

	// StartTimeout bounds how long starting the app may wait for the
	// database (migrations and signing keys). Default: 30s.
	StartTimeout caddy.Duration `json:"start_timeout,omitempty"`

	// SweepInterval is how often expired codes, tokens, grants, sessions
	// and stale clients are deleted (with ±20% jitter, so that several
	// instances spread out). Default: 10m.
	SweepInterval caddy.Duration `json:"sweep_interval,omitempty"`

	// ClientRetention deletes dynamically registered clients that have
	// not been used for this long and hold no live grant. Default: 30
	// days.
	ClientRetention caddy.Duration `json:"client_retention,omitempty"`

	// UnusedClientRetention deletes dynamically registered clients that
	// never completed an authorization (no code was ever issued to them)
	// this long after they registered, so that junk registrations do not
	// fill the registry. Default: 24 hours.
	UnusedClientRetention caddy.Duration `json:"unused_client_retention,omitempty"`

	// KeyRotation is the age at which a new signing key replaces the
	// current one. The new key is published 15 minutes before it signs,
	// and the old one stays published for a day, longer than any access
	// token lives. Default: 30 days; at least 2 days.
	KeyRotation caddy.Duration `json:"key_rotation,omitempty"`

	// SigningAlgorithm is the algorithm of access-token signing keys:
	// ES256 (default), RS256 or EdDSA. Changing it makes a key of the new
	// algorithm at the next key maintenance (within 5 minutes), published
	// 15 minutes before it signs.
	SigningAlgorithm string `json:"signing_algorithm,omitempty"`

	// KeyEncryptionKey encrypts the private signing keys in the database
	// (AES-256-GCM under a key derived from it). Keys created without it
	// stay readable; once keys are encrypted, the secret is required to
	// start. Supports `{env.*}` and `{file.*}` placeholders; write it as
	// one.
	KeyEncryptionKey string `json:"key_encryption_key,omitempty"`

	store    *pooledStore
	storeKey string       // set once a reference to store is held
	inflight atomic.Int64 // requests this config's handlers are serving
	metrics  *metrics     // nil only in tests that build handlers alone
	logger   *zap.Logger
	ctx      context.Context // ends when this config is unloaded
	keys     signing.Policy

	mu      sync.Mutex
	guarded []string // resources registered by mcp_bearer handlers
	toolsAt []string // paths of mcp_tools endpoints that need a guard
}

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddymcp",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision resolves placeholders, checks the settings and acquires the
// shared store. It does not touch the network or the file system.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger, a.ctx = ctx.Logger(), ctx
	m, err := newMetrics(ctx.GetMetricsRegistry())
	if err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	a.metrics = m
	if a.StartTimeout == 0 {
		a.StartTimeout = caddy.Duration(30 * time.Second)
	}
	if a.SweepInterval == 0 {
		a.SweepInterval = caddy.Duration(10 * time.Minute)
	}
	if a.ClientRetention == 0 {
		a.ClientRetention = caddy.Duration(30 * 24 * time.Hour)
	}
	if a.UnusedClientRetention == 0 {
		a.UnusedClientRetention = caddy.Duration(DefaultUnusedClientRetention)
	}
	if a.KeyRotation == 0 {
		a.KeyRotation = caddy.Duration(30 * 24 * time.Hour)
	}
	kek, err := resolve("key_encryption_key", a.KeyEncryptionKey)
	if err != nil {
		return err
	}
	if a.SigningAlgorithm == "" {
		a.SigningAlgorithm = signing.AlgES256
	}
	a.keys = signing.Policy{KEK: kek, RotateAfter: time.Duration(a.KeyRotation), Algorithm: a.SigningAlgorithm}
	if a.Scopes == nil {
		a.Scopes = web.DefaultScopes
	}
	repl := caddy.NewReplacer()
	if a.Issuer != "" {
		issuer, err := repl.ReplaceOrErr(a.Issuer, true, true)
		if err != nil {
			return fmt.Errorf("issuer: %w", err)
		}
		a.Issuer = issuer
	}
	if a.Database != "" {
		dsn, err := repl.ReplaceOrErr(a.Database, true, true)
		if err != nil {
			return fmt.Errorf("database: %w", err)
		}
		return a.acquirePostgres(dsn)
	}
	path := a.EmbeddedPath
	if path == "" {
		path = filepath.Join(caddy.AppDataDir(), "caddymcp", "caddymcp.db")
	} else {
		var err error
		if path, err = repl.ReplaceOrErr(path, true, true); err != nil {
			return fmt.Errorf("embedded_path: %w", err)
		}
	}
	return a.acquireEmbedded(path)
}

// Validate ensures the settings are consistent.
func (a *App) Validate() error {
	if a.Issuer != "" {
		if err := web.ValidateIssuer(a.Issuer); err != nil {
			return err
		}
	}
	if a.MaxConns < 0 {
		return errors.New("max_conns must not be negative")
	}
	if a.StartTimeout < 0 || a.SweepInterval < 0 || a.ClientRetention < 0 || a.UnusedClientRetention < 0 {
		return errors.New("start_timeout, sweep_interval, client_retention and unused_client_retention must not be negative")
	}
	if !slices.Contains(signing.Algorithms, a.SigningAlgorithm) {
		return fmt.Errorf("signing_algorithm %q: use ES256, RS256 or EdDSA", a.SigningAlgorithm)
	}
	if time.Duration(a.KeyRotation) < 2*signing.RetiredKeyGrace {
		return errors.New("key_rotation must be at least 48h")
	}
	if err := validateScopes(a.Scopes); err != nil {
		return err
	}
	return nil
}

// Start migrates the database and loads or creates the signing keys, once
// per shared store. An error here aborts the config load; a running
// config keeps serving.
func (a *App) Start() error {
	if err := a.checkGuards(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(a.StartTimeout))
	defer cancel()
	// Not only prepare: a store kept across a reload has its keys loaded
	// already, and a reload must pick up keys changed meanwhile (say by
	// `caddy mcp-keys rotate --compromised`).
	if err := a.store.maintain(ctx, a.keys); err != nil {
		if a.store.describe != "" {
			return fmt.Errorf("%s: %w", a.store.describe, err)
		}
		return err
	}
	a.store.pollRevocations(func(err error) { a.logger.Warn("reading revocations", zap.Error(err)) })
	go a.sweep()
	go a.maintainKeys()
	return nil
}

// maintainKeys rotates and reloads the signing keys until the config is
// unloaded.
func (a *App) maintainKeys() {
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-time.After(signing.ReloadInterval):
		}
		ctx, cancel := context.WithTimeout(a.ctx, time.Minute)
		if err := a.store.maintain(ctx, a.keys); err != nil {
			a.logger.Warn("maintaining signing keys", zap.Error(err))
		}
		cancel()
	}
}

// sweep deletes expired rows and stale clients until the config is
// unloaded.
func (a *App) sweep() {
	for {
		interval := time.Duration(a.SweepInterval)
		jitter := time.Duration(mrand.Int64N(int64(interval)/5*2+1)) - interval/5
		select {
		case <-a.ctx.Done():
			return
		case <-time.After(interval + jitter):
		}
		ctx, cancel := context.WithTimeout(a.ctx, time.Minute)
		now := time.Now()
		n, err := a.store.DeleteExpired(ctx, now)
		if err == nil {
			var m int64
			m, err = a.store.DeleteStaleClients(ctx, now.Add(-time.Duration(a.ClientRetention)))
			n += m
		}
		if err == nil {
			var m int64
			m, err = a.store.DeleteUnusedClients(ctx, now.Add(-time.Duration(a.UnusedClientRetention)))
			n += m
		}
		cancel()
		if err != nil {
			a.logger.Warn("sweeping expired rows", zap.Error(err))
		} else if n > 0 {
			a.logger.Debug("swept expired rows", zap.Int64("rows", n))
		}
	}
}

// Stop does nothing: the store outlives this config and is released in
// Cleanup, once this config's requests have finished.
func (a *App) Stop() error { return nil }

// DefaultUnusedClientRetention is how long a registered client that never
// completed an authorization is kept (App.UnusedClientRetention).
const DefaultUnusedClientRetention = 24 * time.Hour

// drainTimeout bounds how long Cleanup waits for requests in flight
// before it releases the store.
const drainTimeout = time.Minute

// Cleanup releases this config's reference to the shared store. On a
// reload Caddy cleans the old config up while its servers still finish
// requests in flight; if any are, the store (whose pool a reload to
// another database closes) is released once they end.
func (a *App) Cleanup() error {
	if a.storeKey == "" {
		return nil
	}
	key := a.storeKey
	a.storeKey = ""
	if a.inflight.Load() == 0 {
		_, err := stores.Delete(key)
		return err
	}
	go func() {
		deadline := time.Now().Add(drainTimeout)
		for a.inflight.Load() > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := stores.Delete(key); err != nil {
			a.logger.Warn("releasing the store", zap.Error(err))
		}
	}()
	return nil
}

// enter marks the start of a request a handler of this config serves; the
// function it returns marks its end. It first waits until the store is
// migrated and keyed, since Caddy may start serving before this app's
// Start has finished; the error means it could not be. A request that
// passes several handlers of the config (mcp_bearer, then mcp_tools) is
// entered once: the request returned carries the mark, and later calls
// return a no-op. A handler built without an app (in tests) has nothing
// to wait for.
func (a *App) enter(r *http.Request) (*http.Request, func(), error) {
	if a == nil || a.store == nil || r.Context().Value(enteredKey{}) == a {
		return r, func() {}, nil
	}
	a.inflight.Add(1)
	if _, err := a.store.prepare(r.Context(), a.keys); err != nil {
		a.inflight.Add(-1)
		return r, nil, err
	}
	return r.WithContext(context.WithValue(r.Context(), enteredKey{}, a)), func() { a.inflight.Add(-1) }, nil
}

// serve runs h for a request once the app has entered it (see enter), or
// answers 503 when the store cannot be made ready.
func (a *App) serve(w http.ResponseWriter, r *http.Request, h http.HandlerFunc) {
	r, done, err := a.enter(r)
	if err != nil {
		serveUnavailable(w)
		return
	}
	defer done()
	h(w, r)
}

// enteredKey marks, in a request's context, the app that entered it.
type enteredKey struct{}

// Store returns the app's store.
func (a *App) Store() store.Store { return a.store.Store }

// refreshDenyList brings this instance's deny-list up to date at once,
// after it revoked tokens (the OnRevoke hook of the authorization and
// login servers); other instances catch up at their next poll.
func (a *App) refreshDenyList(ctx context.Context) { _ = a.store.deny.Refresh(ctx) }

// KeySet returns the signing keys, preparing the store first if Start has
// not run yet (the HTTP app may start first).
func (a *App) KeySet(ctx context.Context) (*signing.KeySet, error) {
	return a.store.prepare(ctx, a.keys)
}

// addResource records a resource guarded by an mcp_bearer handler of this
// config, so that mcp_oauth issues tokens for it.
func (a *App) addResource(resource string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.guarded = append(a.guarded, resource)
}

// addToolsEndpoint records an mcp_tools endpoint that an mcp_bearer must
// guard.
func (a *App) addToolsEndpoint(path string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.toolsAt = append(a.toolsAt, path)
}

// checkGuards fails closed: every mcp_tools endpoint must be the resource
// of some mcp_bearer.
func (a *App) checkGuards() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, path := range a.toolsAt {
		guarded := false
		for _, res := range a.guarded {
			if resourcePath(res) == path {
				guarded = true
			}
		}
		if !guarded {
			return fmt.Errorf("mcp_tools at %s is not behind an mcp_bearer whose resource is %s; add 'mcp_bearer %s*' (or set unguarded)", path, path, path)
		}
	}
	return nil
}

// resources returns the resources guarded in this config.
func (a *App) resources() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.guarded...)
}

// acquirePostgres takes a reference to the pool for dsn.
func (a *App) acquirePostgres(dsn string) error {
	if err := store.ParsePostgresURL(dsn); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	sum := sha256.Sum256([]byte(dsn + "\x00" + strconv.Itoa(a.MaxConns)))
	key := "postgres:" + hex.EncodeToString(sum[:])
	return a.acquire(key, func() (store.Store, string, error) {
		pg, err := store.OpenPostgres(dsn, store.PostgresOptions{MaxConns: int32(a.MaxConns)})
		return pg, "PostgreSQL store", err
	})
}

// acquireEmbedded takes a reference to the embedded store at path.
func (a *App) acquireEmbedded(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("embedded_path: %w", err)
	}
	return a.acquire("sqlite:"+abs, func() (store.Store, string, error) {
		e, err := store.OpenEmbedded(abs)
		return e, "", err // its errors name the file
	})
}

func (a *App) acquire(key string, open func() (store.Store, string, error)) error {
	v, _, err := stores.LoadOrNew(key, func() (caddy.Destructor, error) {
		s, describe, err := open()
		if err != nil {
			return nil, err
		}
		return newPooledStore(s, describe, rand.Reader), nil
	})
	if err != nil {
		return err
	}
	a.store, a.storeKey = v.(*pooledStore), key
	return nil
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
	_ signing.KeySource  = (*App)(nil)
)
