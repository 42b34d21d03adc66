package store_test

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// The key bindings of the tests, each 43 base64url characters.
const (
	// DPoP key thumbprints (RFC 7638).
	jktA = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
	jktB = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	// Certificate thumbprints (RFC 8705 §3.1).
	certA = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"
	certB = "A4DtL2JmUMhAsvJj5tKyn64SqzmuXbMrJa0n761y5v0"
)

func TestDPoPBoundCodes(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		u := newUser(t, s)
		bound, unbound := "code-"+randID(t), "code-"+randID(t)
		c := newCode(u)
		c.DPoPJKT = jktA
		must(t, s.CreateCode(ctx(), bound, c))
		must(t, s.CreateCode(ctx(), unbound, newCode(u)))

		// The callback sees the binding, and a refusal leaves the code
		// usable (a proof of the wrong key must not burn the code).
		wrongKey := errors.New("wrong key")
		_, err := s.RedeemCode(ctx(), bound, t0.Add(time.Second), func(got *store.AuthCode) (*store.Issue, error) {
			if got.DPoPJKT != jktA {
				t.Errorf("callback DPoPJKT = %q, want %q", got.DPoPJKT, jktA)
			}
			return nil, wrongKey
		})
		if !errors.Is(err, wrongKey) {
			t.Fatalf("RedeemCode = %v, want the callback's error", err)
		}
		got, err := s.RedeemCode(ctx(), bound, t0.Add(2*time.Second), issueFor(t, nil))
		must(t, err)
		if got.DPoPJKT != jktA {
			t.Fatalf("redeemed DPoPJKT = %q", got.DPoPJKT)
		}
		// The replay's record keeps the binding, so that a replay without
		// the key can be told from one with it.
		again, err := s.RedeemCode(ctx(), bound, t0.Add(3*time.Second), issueFor(t, nil))
		wantErr(t, err, store.ErrAlreadyUsed)
		if again.DPoPJKT != jktA {
			t.Fatalf("replayed DPoPJKT = %q", again.DPoPJKT)
		}

		got, err = s.RedeemCode(ctx(), unbound, t0.Add(time.Second), issueFor(t, nil))
		must(t, err)
		if got.DPoPJKT != "" {
			t.Fatalf("an unbound code reads back bound to %q", got.DPoPJKT)
		}
	})
}

// TestBoundRefreshTokens checks both bindings of refresh tokens, to a
// DPoP key (RFC 9449 §5) and to a client certificate (RFC 8705 §4): the
// binding is stored, seen by the rotation callback, carried over to the
// successor and kept on the rotated record for replays; a refusal inside
// the rotation (a proof of another key, another certificate) leaves the
// token usable; an unbound token reads back unbound and may be bound at
// its rotation.
func TestBoundRefreshTokens(t *testing.T) {
	for _, tc := range []struct {
		name       string
		keyA, keyB string
		// field is the token's binding of this kind.
		field func(*store.RefreshToken) *string
	}{
		{"dpop", jktA, jktB, func(rt *store.RefreshToken) *string { return &rt.DPoPJKT }},
		{"certificate", certA, certB, func(rt *store.RefreshToken) *string { return &rt.CertThumbprint }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
				// wantBound fails t unless rt is bound to key ("" for none) by
				// this kind of binding, and by no other.
				wantBound := func(what string, rt *store.RefreshToken, key string) {
					t.Helper()
					var want store.RefreshToken
					*tc.field(&want) = key
					if rt.DPoPJKT != want.DPoPJKT || rt.CertThumbprint != want.CertThumbprint {
						t.Fatalf("%s is bound to DPoP key %q and certificate %q, want %q and %q",
							what, rt.DPoPJKT, rt.CertThumbprint, want.DPoPJKT, want.CertThumbprint)
					}
				}
				u := newUser(t, s)
				g := newGrant(t, s, u, "c1")
				first := "rt-" + randID(t)
				rt := &store.RefreshToken{GrantID: g.ID, ClientID: "c1", UserID: u.ID,
					Scope: g.Scope, Resource: g.Resource, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
				*tc.field(rt) = tc.keyA
				must(t, s.CreateRefreshToken(ctx(), first, rt))
				got, err := s.GetRefreshToken(ctx(), first, t0)
				must(t, err)
				wantBound("GetRefreshToken", got, tc.keyA)

				rotate := func(next, key string) func(*store.RefreshToken, *store.Grant) (*store.Issue, error) {
					return func(old *store.RefreshToken, _ *store.Grant) (*store.Issue, error) {
						refreshed := &store.RefreshToken{Scope: old.Scope, Resource: old.Resource, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
						*tc.field(refreshed) = key
						return &store.Issue{Refresh: next, Sealed: []byte("sealed"), Refreshed: refreshed,
							Access: &store.AccessToken{JTI: "j-" + randID(t), ClientID: "c1", UserID: u.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}}, nil
					}
				}
				// A refusal inside the rotation rotates nothing: the same
				// token still works.
				wrongKey := errors.New("wrong key")
				_, err = s.RefreshGrant(ctx(), first, t0.Add(time.Second), func(old *store.RefreshToken, _ *store.Grant) (*store.Issue, error) {
					if *tc.field(old) != tc.keyA {
						t.Errorf("callback sees the binding %q, want %q", *tc.field(old), tc.keyA)
					}
					return nil, wrongKey
				})
				if !errors.Is(err, wrongKey) {
					t.Fatalf("RefreshGrant = %v, want the callback's error", err)
				}
				second := "rt-" + randID(t)
				prev, err := s.RefreshGrant(ctx(), first, t0.Add(2*time.Second), rotate(second, tc.keyA))
				must(t, err)
				wantBound("the rotated token", prev, tc.keyA)
				next, err := s.GetRefreshToken(ctx(), second, t0.Add(2*time.Second))
				must(t, err)
				wantBound("the successor", next, tc.keyA)
				// The rotated token's record, returned on a replay, keeps
				// its binding.
				replayed, err := s.RefreshGrant(ctx(), first, t0.Add(3*time.Second), rotate("rt-"+randID(t), tc.keyB))
				wantErr(t, err, store.ErrAlreadyUsed)
				wantBound("the replayed token", replayed, tc.keyA)

				// An unbound token reads back unbound, and may be bound at
				// its rotation (for DPoP: RFC 9449 §5).
				g2 := newGrant(t, s, u, "c1")
				plain := "rt-" + randID(t)
				must(t, s.CreateRefreshToken(ctx(), plain, &store.RefreshToken{GrantID: g2.ID, ClientID: "c1", UserID: u.ID,
					CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
				p, err := s.GetRefreshToken(ctx(), plain, t0)
				must(t, err)
				wantBound("an unbound token", p, "")
				bound := "rt-" + randID(t)
				_, err = s.RefreshGrant(ctx(), plain, t0.Add(time.Second), rotate(bound, tc.keyB))
				must(t, err)
				up, err := s.GetRefreshToken(ctx(), bound, t0.Add(time.Second))
				must(t, err)
				wantBound("the bound successor", up, tc.keyB)
			})
		})
	}
}

func TestSecrets(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, reopen func() store.Store) {
		calls := 0
		gen := func(b byte) func() ([]byte, error) {
			return func() ([]byte, error) {
				calls++
				return bytes.Repeat([]byte{b}, 32), nil
			}
		}
		first, err := s.EnsureSecret(ctx(), "dpop-nonce", t0, gen(1))
		must(t, err)
		if !bytes.Equal(first, bytes.Repeat([]byte{1}, 32)) {
			t.Fatalf("first secret = %x", first)
		}
		// Once stored, a secret is never replaced, and generate is not
		// called again.
		again, err := s.EnsureSecret(ctx(), "dpop-nonce", t0.Add(time.Hour), gen(2))
		must(t, err)
		if !bytes.Equal(again, first) || calls != 1 {
			t.Fatalf("second call = %x after %d generations, want the stored secret", again, calls)
		}
		other, err := s.EnsureSecret(ctx(), "other", t0, gen(3))
		must(t, err)
		if bytes.Equal(other, first) {
			t.Fatal("two names share a secret")
		}
		// A failing generator stores nothing.
		boom := errors.New("no randomness")
		if _, err := s.EnsureSecret(ctx(), "broken", t0, func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
			t.Fatalf("failing generator: %v", err)
		}

		// Instances racing to create a secret all end up with the same one.
		var wg sync.WaitGroup
		got := make([][]byte, 8)
		errs := make([]error, 8)
		for i := range got {
			other := reopen()
			wg.Go(func() {
				got[i], errs[i] = other.EnsureSecret(ctx(), "raced", t0, func() ([]byte, error) {
					return []byte{byte(i + 1), 0xaa, 0xbb}, nil
				})
			})
		}
		wg.Wait()
		for i := range got {
			must(t, errs[i])
			if !bytes.Equal(got[i], got[0]) {
				t.Fatalf("instance %d got %x, instance 0 %x", i, got[i], got[0])
			}
		}
	})
}
