package store_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// TestListUserGrants checks the account page's list: only the user's
// live grants, newest first, with the registered client's name, the
// grant's redirect URI (or, for an older grant, its consent's) and the
// time of the latest refresh.
func TestListUserGrants(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		u, other := newUser(t, s), newUser(t, s)
		must(t, s.CreateClient(ctx(), &store.Client{ID: "named", Name: "Claude Code", RedirectURIs: []string{"http://127.0.0.1/cb"},
			TokenEndpointAuthMethod: "none", CreatedAt: t0, UpdatedAt: t0}))
		grant := func(id, client, redirect string, created time.Time, user *store.User) *store.Grant {
			g := &store.Grant{ID: id, ClientID: client, UserID: user.ID, Scope: "booking:read form:read",
				Resource: "https://mcp.example.com/mcp", RedirectURI: redirect,
				CreatedAt: created, UpdatedAt: created, ExpiresAt: created.Add(time.Hour)}
			must(t, s.CreateGrant(ctx(), g))
			return g
		}
		grant("g-old", "named", "http://127.0.0.1:5000/cb", t0, u)
		grant("g-legacy", "static", "", t0.Add(time.Second), u) // made before grants kept it
		must(t, s.SaveConsent(ctx(), &store.Consent{UserID: u.ID, ClientID: "static", Scope: "booking:read",
			RedirectURI: "https://app.example.com/cb", CreatedAt: t0, UpdatedAt: t0}))
		grant("g-bare", "unknown", "", t0.Add(2*time.Second), u)
		grant("g-revoked", "named", "http://127.0.0.1:5001/cb", t0.Add(3*time.Second), u)
		must(t, s.RevokeGrant(ctx(), "g-revoked", t0.Add(4*time.Second)))
		grant("g-expired", "named", "http://127.0.0.1:5002/cb", t0.Add(-2*time.Hour), u)
		grant("g-other", "named", "http://127.0.0.1:5003/cb", t0.Add(5*time.Second), other)

		got, err := s.GetGrant(ctx(), "g-old")
		must(t, err)
		if got.RedirectURI != "http://127.0.0.1:5000/cb" {
			t.Errorf("GetGrant RedirectURI = %q", got.RedirectURI)
		}

		list, err := s.ListUserGrants(ctx(), u.ID, t0.Add(time.Minute))
		must(t, err)
		type row struct{ id, name, redirect string }
		want := []row{
			{"g-bare", "", ""},
			{"g-legacy", "", "https://app.example.com/cb"},
			{"g-old", "Claude Code", "http://127.0.0.1:5000/cb"},
		}
		if len(list) != len(want) {
			t.Fatalf("ListUserGrants = %+v, want %d grants", list, len(want))
		}
		for i, w := range want {
			g := list[i]
			if (row{g.ID, g.ClientName, g.RedirectURI}) != w || g.UserID != u.ID || g.Scope != "booking:read form:read" ||
				g.Resource != "https://mcp.example.com/mcp" || !g.RevokedAt.IsZero() {
				t.Errorf("grant %d = %+v, want %+v", i, g, w)
			}
		}
		sameTime(t, "CreatedAt", list[2].CreatedAt, t0)
		sameTime(t, "LastUsedAt", list[2].LastUsedAt, t0)

		// A refresh moves the time of last use.
		rt := "rt-" + randID(t)
		must(t, s.CreateRefreshToken(ctx(), rt, &store.RefreshToken{GrantID: "g-old", ClientID: "named", UserID: u.ID,
			CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
		_, err = s.RefreshGrant(ctx(), rt, t0.Add(10*time.Minute), func(*store.RefreshToken, *store.Grant) (*store.Issue, error) {
			return &store.Issue{Access: &store.AccessToken{JTI: "j-" + randID(t), ClientID: "named", UserID: u.ID,
				CreatedAt: t0.Add(10 * time.Minute), ExpiresAt: t0.Add(20 * time.Minute)}}, nil
		})
		must(t, err)
		list, err = s.ListUserGrants(ctx(), u.ID, t0.Add(time.Minute))
		must(t, err)
		sameTime(t, "LastUsedAt after a refresh", list[2].LastUsedAt, t0.Add(10*time.Minute))
		sameTime(t, "CreatedAt after a refresh", list[2].CreatedAt, t0)

		none, err := s.ListUserGrants(ctx(), "nobody", t0)
		must(t, err)
		if len(none) != 0 {
			t.Errorf("ListUserGrants of nobody = %+v", none)
		}
	})
}

// TestRevokeUserGrant checks that revoking a grant from the account page
// revokes its tokens and forgets the consent to its client, refuses
// another user's grant, and changes nothing the second time.
func TestRevokeUserGrant(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		u, mallory := newUser(t, s), newUser(t, s)
		g := newGrant(t, s, u, "c1")
		kept := newGrant(t, s, u, "c2")
		jti, rt := "j-"+randID(t), "rt-"+randID(t)
		must(t, s.RecordAccessToken(ctx(), &store.AccessToken{JTI: jti, GrantID: g.ID, ClientID: "c1", UserID: u.ID,
			CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
		must(t, s.CreateRefreshToken(ctx(), rt, &store.RefreshToken{GrantID: g.ID, ClientID: "c1", UserID: u.ID,
			CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
		for _, c := range []struct{ user, client string }{{u.ID, "c1"}, {u.ID, "c2"}, {mallory.ID, "c1"}} {
			must(t, s.SaveConsent(ctx(), &store.Consent{UserID: c.user, ClientID: c.client, Scope: "booking:read",
				CreatedAt: t0, UpdatedAt: t0}))
		}

		// Another user's grant, or one that does not exist: ErrNotFound,
		// and nothing changes.
		for _, tc := range []struct{ name, user, grant string }{
			{"another user's grant", mallory.ID, g.ID},
			{"an unknown grant", u.ID, "nope"},
			{"an unknown user", "nobody", g.ID},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := s.RevokeUserGrant(ctx(), tc.user, tc.grant, t0)
				wantErr(t, err, store.ErrNotFound)
			})
		}
		if ok, _ := s.AccessTokenActive(ctx(), jti, t0); !ok {
			t.Fatal("a refused revocation revoked the access token")
		}
		if _, err := s.GetConsent(ctx(), u.ID, "c1"); err != nil {
			t.Fatalf("a refused revocation deleted the consent: %v", err)
		}

		at := t0.Add(time.Minute)
		got, err := s.RevokeUserGrant(ctx(), u.ID, g.ID, at)
		must(t, err)
		if got.ID != g.ID || got.ClientID != "c1" || !got.RevokedAt.IsZero() {
			t.Errorf("RevokeUserGrant returned %+v, want the grant as it was", got)
		}
		if ok, _ := s.AccessTokenActive(ctx(), jti, at); ok {
			t.Error("the grant's access token is still active")
		}
		if _, err := s.GetRefreshToken(ctx(), rt, at); err == nil {
			t.Error("the grant's refresh token still works")
		}
		revoked, err := s.RevokedAccessTokens(ctx(), t0, at)
		must(t, err)
		if len(revoked) != 1 || revoked[0].JTI != jti {
			t.Errorf("deny-list source = %+v, want %s", revoked, jti)
		}
		stored, err := s.GetGrant(ctx(), g.ID)
		must(t, err)
		sameTime(t, "RevokedAt", stored.RevokedAt, at)
		_, err = s.GetConsent(ctx(), u.ID, "c1")
		wantErr(t, err, store.ErrNotFound)
		// The user's other consents, and other users' consents to the
		// same client, stay.
		for _, c := range []struct{ user, client string }{{u.ID, "c2"}, {mallory.ID, "c1"}} {
			if _, err := s.GetConsent(ctx(), c.user, c.client); err != nil {
				t.Errorf("consent of %s to %s: %v", c.user, c.client, err)
			}
		}
		list, err := s.ListUserGrants(ctx(), u.ID, at)
		must(t, err)
		if len(list) != 1 || list[0].ID != kept.ID {
			t.Errorf("ListUserGrants after revoking = %+v", list)
		}

		// A second revocation succeeds, and keeps a consent given since.
		must(t, s.SaveConsent(ctx(), &store.Consent{UserID: u.ID, ClientID: "c1", Scope: "form:read",
			CreatedAt: at, UpdatedAt: at}))
		again, err := s.RevokeUserGrant(ctx(), u.ID, g.ID, at.Add(time.Minute))
		must(t, err)
		sameTime(t, "RevokedAt of a second revocation", again.RevokedAt, at)
		if _, err := s.GetConsent(ctx(), u.ID, "c1"); err != nil {
			t.Errorf("a second revocation deleted a newer consent: %v", err)
		}
	})
}

// TestRevokeUserGrantConcurrently checks that revocations at once all
// succeed and leave the grant revoked once.
func TestRevokeUserGrantConcurrently(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		u := newUser(t, s)
		g := newGrant(t, s, u, "c1")
		must(t, s.SaveConsent(ctx(), &store.Consent{UserID: u.ID, ClientID: "c1", Scope: "a", CreatedAt: t0, UpdatedAt: t0}))
		won, _ := race(t, 8, nil, func(i int) error {
			_, err := s.RevokeUserGrant(ctx(), u.ID, g.ID, t0.Add(time.Duration(i+1)*time.Second))
			return err
		})
		if won != 8 {
			t.Fatalf("%d of 8 revocations succeeded", won)
		}
		got, err := s.GetGrant(ctx(), g.ID)
		must(t, err)
		if got.RevokedAt.IsZero() {
			t.Fatal("the grant is not revoked")
		}
		_, err = s.GetConsent(ctx(), u.ID, "c1")
		wantErr(t, err, store.ErrNotFound)
	})
}

// TestEndUserSession checks that a user can end their own sessions by
// their handle, and no one else's.
func TestEndUserSession(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		u, mallory := newUser(t, s), newUser(t, s)
		mine, theirs := "sess-"+randID(t), "sess-"+randID(t)
		for id, user := range map[string]*store.User{mine: u, theirs: mallory} {
			must(t, s.CreateSession(ctx(), id, &store.Session{UserID: user.ID, UserAgent: "ua", CreatedAt: t0, LastSeenAt: t0,
				IdleExpiresAt: t0.Add(time.Hour), ExpiresAt: t0.Add(time.Hour)}))
		}
		wantErr(t, s.EndUserSession(ctx(), u.ID, store.Hash(theirs)), store.ErrNotFound)
		wantErr(t, s.EndUserSession(ctx(), u.ID, store.Hash("nope")), store.ErrNotFound)
		wantErr(t, s.EndUserSession(ctx(), u.ID, nil), store.ErrNotFound)
		if _, err := s.GetSession(ctx(), theirs, t0); err != nil {
			t.Fatalf("another user's session was ended: %v", err)
		}
		must(t, s.EndUserSession(ctx(), u.ID, store.Hash(mine)))
		_, err := s.GetSession(ctx(), mine, t0)
		wantErr(t, err, store.ErrNotFound)
		wantErr(t, s.EndUserSession(ctx(), u.ID, store.Hash(mine)), store.ErrNotFound)
		list, err := s.ListSessionsByUser(ctx(), mallory.ID, t0)
		must(t, err)
		if len(list) != 1 || !bytes.Equal(list[0].IDHash, store.Hash(theirs)) {
			t.Errorf("the other user's sessions = %+v", list)
		}
	})
}
