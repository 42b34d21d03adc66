package caddymcp

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/pflag"

	"github.com/caddymcp/caddymcp/caddymcp/signing"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// adminFlags parses args into a flag set that has the flags of every
// admin subcommand.
func adminFlags(t *testing.T, args ...string) caddycmd.Flags {
	t.Helper()
	fs := pflag.NewFlagSet("admin", pflag.ContinueOnError)
	fs.Int("limit", 1000, "")
	fs.String("user", "", "")
	fs.String("email", "", "")
	fs.String("algorithm", "", "")
	fs.Bool("compromised", false, "")
	fs.String("key-encryption-key-env", "", "")
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return caddycmd.Flags{FlagSet: fs}
}

func TestClientsCommands(t *testing.T) {
	s, ctx := migratedStore(t), context.Background()
	now := time.Now()
	for _, id := range []string{"c1", "c2", "c3"} {
		if err := s.CreateClient(ctx, &store.Client{ID: id, Name: "Client " + id, RedirectURIs: []string{"http://127.0.0.1/cb"},
			TokenEndpointAuthMethod: "none", CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := listClients(ctx, s, adminFlags(t, "--limit", "2"), &out); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 3 || !strings.Contains(lines[1], "Client c1") {
		t.Fatalf("list --limit 2:\n%s", out.String())
	}
	out.Reset()
	if err := listClients(ctx, s, adminFlags(t), &out); err != nil || strings.Count(out.String(), "http://127.0.0.1/cb") != 3 {
		t.Fatalf("list: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := deleteClient(ctx, s, adminFlags(t, "c2"), &out); err != nil || !strings.Contains(out.String(), "deleted client c2") {
		t.Fatalf("delete c2: %v; %q", err, out.String())
	}
	if _, err := s.GetClient(ctx, "c2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("c2 after delete: %v", err)
	}
	if err := deleteClient(ctx, s, adminFlags(t, "c2"), &out); err == nil || !strings.Contains(err.Error(), `no registered client "c2"`) {
		t.Fatalf("delete c2 again: %v", err)
	}
}

// TestUserCommands runs the commands that list a user's things, and
// mcp-sessions revoke, on a user with two grants and a session.
func TestUserCommands(t *testing.T) {
	s, ctx := migratedStore(t), context.Background()
	now := time.Now()
	for _, u := range []store.User{
		{ID: "u1", Provider: "google", Subject: "1", Email: "ada@example.com", Name: "Ada"},
		{ID: "u2", Provider: "google", Subject: "2", Email: "bob@example.com", Name: "Bob"},
	} {
		u.CreatedAt, u.UpdatedAt = now, now
		if _, err := s.UpsertUser(ctx, &u); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range []string{"g1", "g2"} {
		if err := s.CreateGrant(ctx, &store.Grant{ID: g, ClientID: "c", UserID: "u1", Scope: "read", CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateSession(ctx, "sess-1", &store.Session{UserID: "u1", CreatedAt: now, LastSeenAt: now,
		IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(time.Hour), UserAgent: "test-agent"}); err != nil {
		t.Fatal(err)
	}
	// rows runs a command and returns its output lines, header first.
	rows := func(t *testing.T, run func(context.Context, store.Store, caddycmd.Flags, io.Writer) error, args ...string) []string {
		t.Helper()
		var out bytes.Buffer
		if err := run(ctx, s, adminFlags(t, args...), &out); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return strings.Split(strings.TrimSpace(out.String()), "\n")
	}

	if got := rows(t, listUsers); len(got) != 3 || !strings.HasPrefix(got[0], "ID") {
		t.Errorf("users list:\n%s", strings.Join(got, "\n"))
	}
	if got := rows(t, listUsers, "--email", "bob@example.com"); len(got) != 2 || !strings.Contains(got[1], "Bob") {
		t.Errorf("users list --email:\n%s", strings.Join(got, "\n"))
	}
	if got := rows(t, listGrants, "--user", "ada@example.com"); len(got) != 3 || !strings.HasPrefix(got[0], "GRANT") || !strings.Contains(got[1], "read") {
		t.Errorf("grants list:\n%s", strings.Join(got, "\n"))
	}
	if got := rows(t, listSessions, "--user", "u1"); len(got) != 2 || !strings.Contains(got[1], "test-agent") {
		t.Errorf("sessions list:\n%s", strings.Join(got, "\n"))
	}
	if got := rows(t, endSessions, "--user", "u1"); len(got) != 1 || got[0] != "ended 1 sessions of u1" {
		t.Errorf("sessions revoke: %q", got)
	}
	if sessions, _ := s.ListSessionsByUser(ctx, "u1", time.Now()); len(sessions) != 0 {
		t.Errorf("%d sessions left", len(sessions))
	}
	if live, _ := s.ListGrantsByUser(ctx, "u1", time.Now()); len(live) != 2 {
		t.Errorf("ending sessions left %d grants, want 2", len(live))
	}
	for name, run := range map[string]func(context.Context, store.Store, caddycmd.Flags, io.Writer) error{
		"grants list": listGrants, "sessions list": listSessions, "sessions revoke": endSessions,
	} {
		if err := run(ctx, s, adminFlags(t), io.Discard); err == nil || !strings.Contains(err.Error(), "--user is required") {
			t.Errorf("%s without --user: %v", name, err)
		}
	}
}

func TestResolveUser(t *testing.T) {
	s, ctx := migratedStore(t), context.Background()
	for _, u := range []store.User{
		{ID: "u1", Provider: "google", Subject: "1", Email: "ada@example.com"},
		{ID: "u2", Provider: "google", Subject: "2", Email: "bob@example.com"},
		{ID: "u3", Provider: "corp", Subject: "3", Email: "bob@example.com"},
	} {
		u.CreatedAt, u.UpdatedAt = time.Now(), time.Now()
		if _, err := s.UpsertUser(ctx, &u); err != nil {
			t.Fatal(err)
		}
	}
	for ref, want := range map[string]string{"u2": "u2", "ADA@example.com": "u1"} {
		if u, err := resolveUser(ctx, s, ref); err != nil || u.ID != want {
			t.Errorf("resolveUser(%q) = %v, %v; want %s", ref, u, err, want)
		}
	}
	for ref, want := range map[string]string{"": "required", "nobody": "no user with id", "x@example.com": "no user with email",
		"bob@example.com": "2 users have email"} {
		if _, err := resolveUser(ctx, s, ref); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("resolveUser(%q) error %v, want %q", ref, err, want)
		}
	}
}

func TestRevokeGrantsCommand(t *testing.T) {
	s, ctx := migratedStore(t), context.Background()
	now := time.Now()
	if _, err := s.UpsertUser(ctx, &store.User{ID: "u1", Provider: "p", Subject: "s", Email: "ada@example.com", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"g1", "g2", "g3"} {
		if err := s.CreateGrant(ctx, &store.Grant{ID: g, ClientID: "c", UserID: "u1", CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateSession(ctx, "sess-1", &store.Session{UserID: "u1", CreatedAt: now, LastSeenAt: now,
		IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for args, want := range map[string]string{"": "give a grant id or --user", "g1 --user u1": "not both", "nope": `no grant "nope"`} {
		if err := revokeGrants(ctx, s, adminFlags(t, strings.Fields(args)...), &out); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("revoke %q: error %v, want %q", args, err, want)
		}
	}
	if err := revokeGrants(ctx, s, adminFlags(t, "g1"), &out); err != nil {
		t.Fatal(err)
	}
	if live, _ := s.ListGrantsByUser(ctx, "u1", time.Now()); len(live) != 2 {
		t.Fatalf("after revoking g1: %d live grants", len(live))
	}
	out.Reset()
	if err := revokeGrants(ctx, s, adminFlags(t, "--user", "ada@example.com"), &out); err != nil {
		t.Fatal(err)
	}
	live, _ := s.ListGrantsByUser(ctx, "u1", time.Now())
	sessions, _ := s.ListSessionsByUser(ctx, "u1", time.Now())
	if len(live) != 0 || len(sessions) != 0 || !strings.Contains(out.String(), "revoked 2 grants and ended 1 sessions") {
		t.Fatalf("after revoking all: %d grants, %d sessions; %q", len(live), len(sessions), out.String())
	}
}

// TestRevokeGrantsForgetsConsent checks that mcp-grants revoke forgets
// the user's consent to the revoked grant's client, so that the client's
// next authorization asks the user again, and that revoking all of a
// user's grants forgets all of the user's consents. Other users'
// consents stay.
func TestRevokeGrantsForgetsConsent(t *testing.T) {
	s, ctx := migratedStore(t), context.Background()
	now := time.Now()
	for _, u := range []string{"u1", "u2"} {
		if _, err := s.UpsertUser(ctx, &store.User{ID: u, Provider: "p", Subject: u, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range []struct{ id, client, user string }{{"g1", "c1", "u1"}, {"g2", "c2", "u1"}, {"g3", "c1", "u2"}} {
		if err := s.CreateGrant(ctx, &store.Grant{ID: g.id, ClientID: g.client, UserID: g.user, CreatedAt: now, UpdatedAt: now,
			ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ user, client string }{{"u1", "c1"}, {"u1", "c2"}, {"u1", "c3"}, {"u2", "c1"}} {
		if err := s.SaveConsent(ctx, &store.Consent{UserID: c.user, ClientID: c.client, Scope: "read", CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	consents := func(user string) int {
		t.Helper()
		list, err := s.ListConsentsByUser(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}
	var out bytes.Buffer
	if err := revokeGrants(ctx, s, adminFlags(t, "g1"), &out); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetConsent(ctx, "u1", "c1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after revoking g1, u1's consent to c1: %v; want it forgotten", err)
	}
	if consents("u1") != 2 || consents("u2") != 1 {
		t.Errorf("after revoking g1: %d consents of u1 (want 2), %d of u2 (want 1)", consents("u1"), consents("u2"))
	}
	if err := revokeGrants(ctx, s, adminFlags(t, "g1"), &out); err != nil {
		t.Errorf("revoking g1 again: %v", err)
	}
	if err := revokeGrants(ctx, s, adminFlags(t, "--user", "u1"), &out); err != nil {
		t.Fatal(err)
	}
	if consents("u1") != 0 || consents("u2") != 1 {
		t.Errorf("after revoking all of u1's: %d consents of u1 (want 0), %d of u2 (want 1)", consents("u1"), consents("u2"))
	}
}

func TestRotateKeysCommand(t *testing.T) {
	ctx := context.Background()
	seed := func(t *testing.T, kek string) store.Store {
		s := migratedStore(t)
		if _, err := s.EnsureSigningKey(ctx, signing.Generator(signing.Policy{KEK: kek}, rand.Reader, time.Now().Add(-time.Hour))); err != nil {
			t.Fatal(err)
		}
		return s
	}
	keySet := func(t *testing.T, s store.Store, kek string, at time.Time) *signing.KeySet {
		t.Helper()
		all, err := s.SigningKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i := range all {
			if all[i].PrivateKey, err = signing.OpenKey(kek, all[i].PrivateKey); err != nil {
				t.Fatal(err)
			}
		}
		ks, err := signing.NewKeySet(all, at, signing.RetiredKeyGrace)
		if err != nil {
			t.Fatal(err)
		}
		return ks
	}

	t.Run("scheduled", func(t *testing.T) {
		s := seed(t, "")
		old := keySet(t, s, "", time.Now()).SigningKeyID()
		var out bytes.Buffer
		if err := rotateKeys(ctx, s, adminFlags(t, "--algorithm", "EdDSA"), &out); err != nil {
			t.Fatal(err)
		}
		now := keySet(t, s, "", time.Now())
		if now.SigningKeyID() != old || len(now.PublicKeys()) != 2 {
			t.Fatalf("right after rotation: signer %s (old %s), %d published keys", now.SigningKeyID(), old, len(now.PublicKeys()))
		}
		later := keySet(t, s, "", time.Now().Add(signing.ActivationDelay+time.Second))
		if later.SigningKeyID() == old || later.SigningAlgorithm() != signing.AlgEdDSA || len(later.PublicKeys()) != 2 {
			t.Fatalf("after activation: signer %s %s, %d keys", later.SigningKeyID(), later.SigningAlgorithm(), len(later.PublicKeys()))
		}
		out.Reset()
		if err := listKeys(ctx, s, adminFlags(t), &out); err != nil {
			t.Fatal(err)
		}
		if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "KID") ||
			!strings.Contains(lines[1], "EdDSA") || !strings.Contains(lines[1], "published (signs from") ||
			!strings.Contains(lines[2], old) || !strings.Contains(lines[2], "active") {
			t.Fatalf("keys list:\n%s", out.String())
		}
	})
	t.Run("compromised", func(t *testing.T) {
		s := seed(t, "")
		old := keySet(t, s, "", time.Now()).SigningKeyID()
		var out bytes.Buffer
		// A scheduled rotation first: the key it made, not signing yet,
		// and the old one, due to retire later, must both go.
		if err := rotateKeys(ctx, s, adminFlags(t), &out); err != nil {
			t.Fatal(err)
		}
		scheduled, _ := s.SigningKeys(ctx)
		if err := rotateKeys(ctx, s, adminFlags(t, "--compromised"), &out); err != nil {
			t.Fatal(err)
		}
		ks := keySet(t, s, "", time.Now().Add(time.Second))
		if ks.SigningKeyID() == old || ks.SigningKeyID() == scheduled[0].ID || len(ks.PublicKeys()) != 1 {
			t.Fatalf("signer %s (old %s, scheduled %s), %d published keys", ks.SigningKeyID(), old, scheduled[0].ID, len(ks.PublicKeys()))
		}
		if _, ok := ks.PublicKey(old); ok {
			t.Fatal("the compromised key still verifies")
		}
		out.Reset()
		keys, _ := s.SigningKeys(ctx)
		if got := keyState(keys[len(keys)-1], time.Now()); got != "withdrawn" {
			t.Fatalf("old key state %q", got)
		}
	})
	t.Run("encrypted keys", func(t *testing.T) {
		s := seed(t, "right-secret-0123456789")
		var out bytes.Buffer
		if err := rotateKeys(ctx, s, adminFlags(t), &out); err == nil || !strings.Contains(err.Error(), "--key-encryption-key-env") {
			t.Fatalf("without the secret: %v", err)
		}
		t.Setenv("TEST_KEK", "wrong-secret-0123456789")
		if err := rotateKeys(ctx, s, adminFlags(t, "--key-encryption-key-env", "TEST_KEK"), &out); err == nil || !strings.Contains(err.Error(), "wrong key-encryption secret") {
			t.Fatalf("with a wrong secret: %v", err)
		}
		t.Setenv("TEST_KEK", "right-secret-0123456789")
		if err := rotateKeys(ctx, s, adminFlags(t, "--key-encryption-key-env", "TEST_KEK"), &out); err != nil {
			t.Fatal(err)
		}
		keys, _ := s.SigningKeys(ctx)
		if len(keys) != 2 || !isSealed(keys[0]) || !isSealed(keys[1]) {
			t.Fatalf("keys after rotation: %d, sealed %v", len(keys), keys[0].ID)
		}
		_ = keySet(t, s, "right-secret-0123456789", time.Now())
	})
}
