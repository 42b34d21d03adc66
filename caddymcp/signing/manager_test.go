package signing_test

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testclock"
	"github.com/caddymcp/caddymcp/caddymcp/signing"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	s, err := store.OpenEmbedded(filepath.Join(t.TempDir(), "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestManagerLifecycle walks the keys through first use, a rotation by
// age (published ahead, signing after ActivationDelay, the old key
// verifying RetiredKeyGrace more) and a change of algorithm.
func TestManagerLifecycle(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	clk := testclock.New(time.Now())
	m := signing.NewManager(st, rand.Reader, clk.Now)
	pol := signing.Policy{RotateAfter: 30 * 24 * time.Hour}
	if m.Current() != nil {
		t.Fatal("keys before Load")
	}
	ks, err := m.Load(ctx, pol)
	if err != nil {
		t.Fatal(err)
	}
	first := ks.SigningKeyID()
	if again, _ := m.Load(ctx, pol); again != ks || m.Current() != ks {
		t.Fatal("Load did not return the loaded set")
	}
	if err := m.Maintain(ctx, pol); err != nil || m.Current().SigningKeyID() != first || len(m.Current().PublicKeys()) != 1 {
		t.Fatalf("maintenance of a young key changed the keys (%v)", err)
	}
	clk.Advance(31 * 24 * time.Hour)
	if err := m.Maintain(ctx, pol); err != nil {
		t.Fatal(err)
	}
	ks = m.Current()
	if len(ks.PublicKeys()) != 2 || ks.SigningKeyID() != first {
		t.Fatalf("after rotation: %d keys, signer %s; want the new key published, the old one signing", len(ks.PublicKeys()), ks.SigningKeyID())
	}
	clk.Advance(signing.ActivationDelay + time.Second)
	if err := m.Maintain(ctx, pol); err != nil {
		t.Fatal(err)
	}
	if ks = m.Current(); ks.SigningKeyID() == first || len(ks.PublicKeys()) != 2 {
		t.Fatalf("after activation: signer %s, %d keys", ks.SigningKeyID(), len(ks.PublicKeys()))
	}
	clk.Advance(signing.RetiredKeyGrace)
	if err := m.Maintain(ctx, pol); err != nil {
		t.Fatal(err)
	}
	if ks = m.Current(); len(ks.PublicKeys()) != 1 {
		t.Fatalf("the retired key is still published after the grace: %d keys", len(ks.PublicKeys()))
	}
	pol.Algorithm = signing.AlgEdDSA
	clk.Advance(time.Minute)
	if err := m.Maintain(ctx, pol); err != nil {
		t.Fatal(err)
	}
	keys, _ := st.SigningKeys(ctx)
	if keys[0].Algorithm != signing.AlgEdDSA || len(m.Current().PublicKeys()) != 2 {
		t.Fatalf("algorithm change: newest key %s, %d published", keys[0].Algorithm, len(m.Current().PublicKeys()))
	}
}

// TestManagerRotate: caddy mcp-keys rotate, plain and compromised, and
// its refusal to write a key the instances could not read.
func TestManagerRotate(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	clk := testclock.New(time.Now())
	const kek = "a key-encryption secret of some length"
	m := signing.NewManager(st, rand.Reader, clk.Now)
	if _, err := m.Load(ctx, signing.Policy{KEK: kek, Algorithm: signing.AlgRS256}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Rotate(ctx, signing.Policy{}, false); err == nil || !strings.Contains(err.Error(), "encrypted at rest") {
		t.Fatalf("rotation without the secret of sealed keys: %v", err)
	}
	if _, err := m.Rotate(ctx, signing.Policy{KEK: "another secret"}, false); err == nil {
		t.Fatal("rotation with a wrong secret succeeded")
	}
	r, err := m.Rotate(ctx, signing.Policy{KEK: kek}, false)
	if err != nil || r.Algorithm != signing.AlgRS256 || !r.SignsFrom.Equal(clk.Now().Add(signing.ActivationDelay)) || r.Withdrawn != 0 {
		t.Fatalf("plain rotation: %+v, %v; want an RS256 key (the newest key's algorithm) signing after the delay", r, err)
	}
	keys, _ := st.SigningKeys(ctx)
	if len(keys) != 2 || !signing.IsSealedKey(keys[0].PrivateKey) || keys[1].RetiredAt.Sub(r.SignsFrom).Abs() > time.Millisecond {
		t.Fatalf("after a plain rotation: %d keys, new sealed %v, old retired at %v", len(keys), signing.IsSealedKey(keys[0].PrivateKey), keys[1].RetiredAt)
	}
	r, err = m.Rotate(ctx, signing.Policy{KEK: kek, Algorithm: signing.AlgES256}, true)
	if err != nil || r.Algorithm != signing.AlgES256 || !r.SignsFrom.Equal(clk.Now()) || r.Withdrawn != 2 {
		t.Fatalf("compromised rotation: %+v, %v", r, err)
	}
	fresh := signing.NewManager(st, rand.Reader, clk.Now)
	ks, err := fresh.Load(ctx, signing.Policy{KEK: kek})
	if err != nil {
		t.Fatal(err)
	}
	if len(ks.PublicKeys()) != 1 || ks.SigningAlgorithm() != signing.AlgES256 {
		t.Fatalf("after a compromised rotation an instance publishes %d keys signing with %s; want only the new one", len(ks.PublicKeys()), ks.SigningAlgorithm())
	}
}
