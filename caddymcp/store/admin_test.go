package store_test

import (
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/store"
)

func TestLegacyTokens(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, reopen func() store.Store) {
		tok := "mcpat_" + randID(t)
		lt := &store.LegacyToken{ID: "lt-" + randID(t), UserID: "alice@example.com", Scope: "product:read order:read",
			Name: "nightly export", CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)}
		must(t, s.CreateLegacyToken(ctx(), tok, lt))
		wantErr(t, s.CreateLegacyToken(ctx(), tok, &store.LegacyToken{ID: "other-" + randID(t), UserID: "x", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}), store.ErrConflict)
		wantErr(t, s.CreateLegacyToken(ctx(), "mcpat_other"+randID(t), lt), store.ErrConflict)

		got, err := reopen().GetLegacyToken(ctx(), tok, t0.Add(time.Hour))
		must(t, err)
		if got.ID != lt.ID || got.UserID != lt.UserID || got.Scope != lt.Scope || got.Name != lt.Name || !got.RevokedAt.IsZero() {
			t.Fatalf("GetLegacyToken = %+v", got)
		}
		sameTime(t, "ExpiresAt", got.ExpiresAt, lt.ExpiresAt)
		_, err = s.GetLegacyToken(ctx(), tok, t0.Add(24*time.Hour))
		wantErr(t, err, store.ErrNotFound) // expired
		_, err = s.GetLegacyToken(ctx(), tok+"x", t0)
		wantErr(t, err, store.ErrNotFound)

		other := &store.LegacyToken{ID: "lt2-" + randID(t), UserID: "bob@example.com", CreatedAt: t0.Add(time.Second), ExpiresAt: t0.Add(time.Hour)}
		must(t, s.CreateLegacyToken(ctx(), "mcpat_"+randID(t), other))
		mine, err := s.ListLegacyTokens(ctx(), "alice@example.com")
		must(t, err)
		all, err := s.ListLegacyTokens(ctx(), "")
		must(t, err)
		if len(mine) != 1 || mine[0].ID != lt.ID || len(all) != 2 || all[0].ID != other.ID {
			t.Fatalf("ListLegacyTokens: mine %d, all %d", len(mine), len(all))
		}

		must(t, s.RevokeLegacyToken(ctx(), lt.ID, t0.Add(time.Minute)))
		wantErr(t, s.RevokeLegacyToken(ctx(), lt.ID, t0.Add(2*time.Minute)), store.ErrNotFound)
		wantErr(t, s.RevokeLegacyToken(ctx(), "nope", t0), store.ErrNotFound)
		_, err = s.GetLegacyToken(ctx(), tok, t0.Add(time.Hour))
		wantErr(t, err, store.ErrNotFound)
		mine, err = s.ListLegacyTokens(ctx(), "alice@example.com")
		must(t, err)
		sameTime(t, "RevokedAt", mine[0].RevokedAt, t0.Add(time.Minute))
	})
}

func TestFindUsers(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		for i, u := range []store.User{
			{ID: "f1", Provider: "google", Subject: "g1", Email: "Ada@Example.com"},
			{ID: "f2", Provider: "oidc", Subject: "o1", Email: "ada@example.com"},
			{ID: "f3", Provider: "oidc", Subject: "o2", Email: "bob@example.com"},
		} {
			u.CreatedAt, u.UpdatedAt = t0.Add(time.Duration(i)*time.Second), t0
			_, err := s.UpsertUser(ctx(), &u)
			must(t, err)
		}
		ada, err := s.FindUsers(ctx(), "ADA@example.COM", 10)
		must(t, err)
		if len(ada) != 2 || ada[0].ID != "f1" || ada[1].ID != "f2" {
			t.Fatalf("FindUsers(ada) = %+v", ada)
		}
		all, err := s.FindUsers(ctx(), "", 2)
		must(t, err)
		if len(all) != 2 {
			t.Fatalf("FindUsers(all, 2) = %d users", len(all))
		}
		none, err := s.FindUsers(ctx(), "nobody@example.com", 10)
		must(t, err)
		if len(none) != 0 {
			t.Fatalf("FindUsers(nobody) = %+v", none)
		}
	})
}

// TestDeleteExpiredInBatches checks that a backlog larger than one batch
// is swept completely, and live rows stay.
func TestDeleteExpiredInBatches(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		u := newUser(t, s)
		const expired = 1203
		for i := range expired {
			c := newCode(u)
			c.ExpiresAt = t0.Add(time.Duration(i%7) * time.Second)
			must(t, s.CreateCode(ctx(), "old-"+randID(t), c))
		}
		live := newCode(u)
		live.ExpiresAt = t0.Add(time.Hour)
		liveCode := "live-" + randID(t)
		must(t, s.CreateCode(ctx(), liveCode, live))
		n, err := s.DeleteExpired(ctx(), t0.Add(time.Minute))
		must(t, err)
		if n != expired {
			t.Fatalf("DeleteExpired = %d, want %d", n, expired)
		}
		if n, err = s.DeleteExpired(ctx(), t0.Add(time.Minute)); err != nil || n != 0 {
			t.Fatalf("second sweep = %d, %v", n, err)
		}
	})
}
