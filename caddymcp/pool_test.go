package caddymcp

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/signing"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

func newPooled(t *testing.T, path string) *pooledStore {
	t.Helper()
	e, err := store.OpenEmbedded(path)
	if err != nil {
		t.Fatal(err)
	}
	p := newPooledStore(e, "", rand.Reader)
	t.Cleanup(func() { _ = p.Destruct() })
	return p
}

// TestKeyRotationPublishesAhead rotates a key: the new key is published
// at once but signs only later, and the old one keeps verifying.
func TestKeyRotationPublishesAhead(t *testing.T) {
	ctx := context.Background()
	p := newPooled(t, filepath.Join(t.TempDir(), "k.db"))
	pol := signing.Policy{RotateAfter: 30 * 24 * time.Hour}
	ks, err := p.prepare(ctx, pol)
	if err != nil {
		t.Fatal(err)
	}
	first := ks.SigningKeyID()
	// Not due: nothing changes.
	if err := p.maintain(ctx, pol); err != nil {
		t.Fatal(err)
	}
	if ks, _ := p.prepare(ctx, pol); len(ks.PublicKeys()) != 1 {
		t.Fatalf("rotated too early: %d keys", len(ks.PublicKeys()))
	}
	// Due: a second key is published; the first still signs.
	pol.RotateAfter = time.Nanosecond
	if err := p.maintain(ctx, pol); err != nil {
		t.Fatal(err)
	}
	ks, _ = p.prepare(ctx, pol)
	if len(ks.PublicKeys()) != 2 || ks.SigningKeyID() != first {
		t.Fatalf("after rotation: %d keys, signer %s (first %s)", len(ks.PublicKeys()), ks.SigningKeyID(), first)
	}
}

// TestKeyEncryptionAtRest checks that a configured secret seals the keys
// in the database and is needed to read them again.
func TestKeyEncryptionAtRest(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kek.db")
	p := newPooled(t, path)
	ks, err := p.prepare(ctx, signing.Policy{KEK: "correct horse", RotateAfter: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := p.SigningKeys(ctx)
	if err != nil || len(stored) != 1 || !bytes.HasPrefix(stored[0].PrivateKey, []byte("caddymcp-sealed-v1:")) {
		t.Fatalf("stored key is not sealed: %v", err)
	}
	kid := ks.SigningKeyID()
	_ = p.Destruct()

	for _, tt := range []struct{ name, kek, wantErr string }{
		{"no secret", "", "configure the key-encryption secret"},
		{"wrong secret", "battery staple", "wrong key-encryption secret"},
		{"right secret", "correct horse", ""},
	} {
		q := newPooled(t, path)
		ks, err := q.prepare(ctx, signing.Policy{KEK: tt.kek, RotateAfter: time.Hour})
		switch {
		case tt.wantErr == "" && (err != nil || ks.SigningKeyID() != kid):
			t.Errorf("%s: %v", tt.name, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.wantErr)
		}
		_ = q.Destruct()
	}
}

// TestDenyListFirstLoad: tokens revoked before a store is opened are
// refused from the first request on.
func TestDenyListFirstLoad(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "d.db")
	p := newPooled(t, path)
	if _, err := p.prepare(ctx, signing.Policy{RotateAfter: time.Hour}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	u, err := p.UpsertUser(ctx, &store.User{ID: "u", Provider: "p", Subject: "s", CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	g := &store.Grant{ID: "g", ClientID: "c", UserID: u.ID, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := p.CreateGrant(ctx, g); err != nil {
		t.Fatal(err)
	}
	for _, jti := range []string{"live", "revoked"} {
		if err := p.RecordAccessToken(ctx, &store.AccessToken{JTI: jti, GrantID: "g", ClientID: "c", UserID: u.ID,
			CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.RevokeAccessToken(ctx, "revoked", now); err != nil {
		t.Fatal(err)
	}
	_ = p.Destruct()
	q := newPooled(t, path)
	if _, err := q.prepare(ctx, signing.Policy{RotateAfter: time.Hour}); err != nil {
		t.Fatal(err)
	}
	for jti, want := range map[string]bool{"live": true, "revoked": false} {
		if got, err := q.deny.Active(ctx, jti); err != nil || got != want {
			t.Errorf("%s: active %v (%v), want %v", jti, got, err, want)
		}
	}
}

// TestSigningAlgorithmChange: configuring another algorithm makes a key
// of it at the next maintenance, published ahead, while the old key signs
// until the new one starts.
func TestSigningAlgorithmChange(t *testing.T) {
	ctx := context.Background()
	p := newPooled(t, filepath.Join(t.TempDir(), "alg.db"))
	pol := signing.Policy{RotateAfter: 30 * 24 * time.Hour, Algorithm: "ES256"}
	ks, err := p.prepare(ctx, pol)
	if err != nil || ks.SigningAlgorithm() != "ES256" {
		t.Fatalf("first key: %v", err)
	}
	pol.Algorithm = "EdDSA"
	for range 2 { // a second maintenance must not rotate again
		if err := p.maintain(ctx, pol); err != nil {
			t.Fatal(err)
		}
	}
	ks, _ = p.prepare(ctx, pol)
	if len(ks.PublicKeys()) != 2 || ks.SigningAlgorithm() != "ES256" {
		t.Fatalf("%d keys, signing with %s", len(ks.PublicKeys()), ks.SigningAlgorithm())
	}
	all, err := p.SigningKeys(ctx) // newest first
	if err != nil {
		t.Fatal(err)
	}
	newest := ""
	for _, k := range all {
		if k.RetiredAt.IsZero() {
			newest = k.Algorithm
			break
		}
	}
	if newest != "EdDSA" {
		t.Fatalf("newest unretired key: %s", newest)
	}
}

// TestEnterOncePerRequest: a request that passes two handlers of one
// config is counted, and waits for the store, once; another config's
// handler enters it on its own.
func TestEnterOncePerRequest(t *testing.T) {
	a := &App{store: newPooled(t, filepath.Join(t.TempDir(), "enter.db")), keys: signing.Policy{RotateAfter: time.Hour}}
	r := httptest.NewRequest("GET", "/mcp", nil)
	r1, done1, err := a.enter(r)
	if err != nil {
		t.Fatal(err)
	}
	r2, done2, err := a.enter(r1)
	if err != nil || r2 != r1 || a.inflight.Load() != 1 {
		t.Fatalf("second handler: same request %v, %d in flight (%v); want the request entered once", r2 == r1, a.inflight.Load(), err)
	}
	other := &App{store: a.store, keys: a.keys}
	_, done3, err := other.enter(r1)
	if err != nil || other.inflight.Load() != 1 {
		t.Fatalf("another config: %d in flight (%v)", other.inflight.Load(), err)
	}
	done3()
	done2()
	if a.inflight.Load() != 1 {
		t.Fatalf("the inner handler's done ended the request early: %d in flight", a.inflight.Load())
	}
	done1()
	if a.inflight.Load() != 0 || other.inflight.Load() != 0 {
		t.Fatalf("%d and %d in flight after the request", a.inflight.Load(), other.inflight.Load())
	}
}
