package signing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// The key lifecycle's times.
const (
	// RetiredKeyGrace is how long a retired key is still published, so
	// that tokens it signed keep verifying until they expire.
	RetiredKeyGrace = 24 * time.Hour
	// ActivationDelay is how long a new key is published before it
	// signs, so that every instance, reloading keys every ReloadInterval,
	// knows it before the first token it signs arrives.
	ActivationDelay = 15 * time.Minute
	// ReloadInterval is how often each instance reloads the keys, picking
	// up rotations made by other instances and by caddy mcp-keys.
	ReloadInterval = 5 * time.Minute
)

// Policy is how a deployment wants its signing keys handled.
type Policy struct {
	// KEK, when set, encrypts private keys at rest (SealKey).
	KEK string
	// RotateAfter is the age at which a new key is made. Zero: never by
	// age.
	RotateAfter time.Duration
	// Algorithm is the algorithm of new keys, ES256 when empty; a newest
	// key of another algorithm is replaced at the next maintenance.
	Algorithm string
}

// algorithm is the configured algorithm, ES256 by default.
func (pol Policy) algorithm() string {
	if pol.Algorithm == "" {
		return AlgES256
	}
	return pol.Algorithm
}

// Generator makes keys of pol's algorithm from random that start signing
// at the given time, sealed with pol's key-encryption secret when there
// is one.
func Generator(pol Policy, random io.Reader, at time.Time) func() (*store.SigningKey, error) {
	return func() (*store.SigningKey, error) {
		k, err := GenerateKey(pol.algorithm(), random, at)
		if err != nil || pol.KEK == "" {
			return k, err
		}
		if k.PrivateKey, err = SealKey(pol.KEK, k.PrivateKey, random); err != nil {
			return nil, err
		}
		return k, nil
	}
}

// Manager keeps the current KeySet of a store: it creates the first key,
// rotates keys when due and reloads what other instances rotated.
// Requests read the current set without waiting for maintenance.
type Manager struct {
	st     store.Keys
	random io.Reader
	now    func() time.Time

	mu   sync.Mutex // serializes loads and maintenance
	keys atomic.Pointer[KeySet]
}

// NewManager returns a manager of the keys in st. It touches nothing
// until Load.
func NewManager(st store.Keys, random io.Reader, now func() time.Time) *Manager {
	if now == nil {
		now = time.Now
	}
	return &Manager{st: st, random: random, now: now}
}

// Current returns the loaded key set, or nil before the first Load.
func (m *Manager) Current() *KeySet { return m.keys.Load() }

// Load returns the key set, creating the first key if the store has none
// and loading the keys on the first call; later calls return the loaded
// set. A failure is not remembered.
func (m *Manager) Load(ctx context.Context, pol Policy) (*KeySet, error) {
	if ks := m.keys.Load(); ks != nil {
		return ks, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if ks := m.keys.Load(); ks != nil {
		return ks, nil
	}
	if _, err := m.st.EnsureSigningKey(ctx, Generator(pol, m.random, m.now())); err != nil {
		return nil, err
	}
	return m.reload(ctx, pol)
}

// Maintain rotates the signing key when it is due (older than
// RotateAfter, or of another algorithm than the policy's) and reloads
// the keys, picking up rotations made elsewhere.
func (m *Manager) Maintain(ctx context.Context, pol Policy) error {
	if _, err := m.Load(ctx, pol); err != nil {
		return err
	}
	now := m.now()
	due := now.Add(-pol.RotateAfter)
	if newest, err := m.newestAlgorithm(ctx); err != nil {
		return err
	} else if newest != pol.algorithm() {
		due = now.Add(time.Hour) // the configured algorithm changed: rotate now
	}
	if _, err := m.st.RotateSigningKey(ctx, due, Generator(pol, m.random, now.Add(ActivationDelay))); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, err := m.reload(ctx, pol)
	return err
}

// newestAlgorithm is the algorithm of the newest unretired key, which
// signs now or soon.
func (m *Manager) newestAlgorithm(ctx context.Context) (string, error) {
	all, err := m.st.SigningKeys(ctx) // newest first
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

// reload reads every key from the store and publishes the new set; m.mu
// must be held (it serializes writers; readers never wait).
func (m *Manager) reload(ctx context.Context, pol Policy) (*KeySet, error) {
	all, err := m.st.SigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].PrivateKey, err = OpenKey(pol.KEK, all[i].PrivateKey); err != nil {
			return nil, fmt.Errorf("loading signing key %s: %w", all[i].ID, err)
		}
	}
	ks, err := NewKeySet(all, m.now(), RetiredKeyGrace)
	if err != nil {
		return nil, fmt.Errorf("loading signing keys: %w", err)
	}
	m.keys.Store(ks)
	return ks, nil
}

// Rotation is what Rotate did.
type Rotation struct {
	// Algorithm is the new key's algorithm.
	Algorithm string
	// SignsFrom is when the new key starts signing.
	SignsFrom time.Time
	// Withdrawn counts the keys withdrawn at once (compromised).
	Withdrawn int
}

// Rotate makes a new signing key now, whatever the age of the current
// one (caddy mcp-keys rotate). The new key has pol's algorithm, or the
// newest key's when pol names none, and is sealed like the keys already
// stored: a sealed store needs pol.KEK, which must open every stored key.
//
// Normally the new key is published at once and signs after
// ActivationDelay, and the old one verifies for RetiredKeyGrace more.
// With compromised, every existing key is withdrawn first (retired long
// enough ago that no instance publishes it, so tokens it signed stop
// verifying at each instance's next reload) and the new key signs at once.
func (m *Manager) Rotate(ctx context.Context, pol Policy, compromised bool) (Rotation, error) {
	keys, err := m.st.SigningKeys(ctx) // newest first
	if err != nil {
		return Rotation{}, err
	}
	for _, k := range keys {
		// A new key must be readable by the instances: sealed when the
		// others are, with the secret that opens them.
		if IsSealedKey(k.PrivateKey) && pol.KEK == "" {
			return Rotation{}, errors.New("the signing keys are encrypted at rest: pass the secret with --key-encryption-key-env")
		}
		if _, err := OpenKey(pol.KEK, k.PrivateKey); err != nil {
			return Rotation{}, fmt.Errorf("key %s: %w", k.ID, err)
		}
		if pol.Algorithm == "" {
			pol.Algorithm = k.Algorithm
		}
	}
	pol.Algorithm = pol.algorithm()
	now := m.now()
	r := Rotation{Algorithm: pol.Algorithm, SignsFrom: now.Add(ActivationDelay)}
	if compromised {
		r.SignsFrom = now
		// Withdrawn first, then replaced: an instance that reloads in
		// between keeps its current keys until the next reload.
		gone := now.Add(-RetiredKeyGrace - time.Minute)
		for _, k := range keys {
			if err := m.st.RetireSigningKey(ctx, k.ID, gone); err != nil {
				return Rotation{}, fmt.Errorf("withdrawing key %s: %w", k.ID, err)
			}
		}
		r.Withdrawn = len(keys)
	}
	// A newest key created before the far future is always due.
	if _, err := m.st.RotateSigningKey(ctx, now.Add(24*365*time.Hour), Generator(pol, m.random, r.SignsFrom)); err != nil {
		return Rotation{}, err
	}
	return r, nil
}
