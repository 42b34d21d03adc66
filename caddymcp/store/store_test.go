package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testpg"
	"github.com/caddymcp/caddymcp/caddymcp/internal/teststore"
	"github.com/caddymcp/caddymcp/caddymcp/store"
	"github.com/caddymcp/caddymcp/migrations"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)

// backend is one store implementation under test.
type backend struct {
	name string
	// open returns a new, migrated store on a fresh database; reopen
	// returns another handle on the same database.
	open func(t *testing.T) (s store.Store, reopen func() store.Store)
}

func backends(t *testing.T) []backend {
	return []backend{
		{
			name: "embedded",
			open: func(t *testing.T) (store.Store, func() store.Store) {
				path := filepath.Join(t.TempDir(), "sub", "caddymcp.db")
				open := func() store.Store { return teststore.Embedded(t, path) }
				return open(), open
			},
		},
		{
			name: "postgres",
			open: func(t *testing.T) (store.Store, func() store.Store) {
				dsn := testpg.Schema(t)
				open := func() store.Store { return teststore.Postgres(t, dsn) }
				return open(), open
			},
		},
	}
}

// forEach runs fn as a subtest against each backend.
func forEach(t *testing.T, fn func(t *testing.T, s store.Store, reopen func() store.Store)) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s, reopen := b.open(t)
			fn(t, s, reopen)
		})
	}
}

func ctx() context.Context { return context.Background() }

func randID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// race makes n calls at once, call(0) to call(n-1), and counts those
// that succeed and those that fail with lost, the error of a call that
// lost the race. Any other error fails t; with lost nil, any error does.
func race(t *testing.T, n int, lost error, call func(i int) error) (won, refused int) {
	t.Helper()
	var wins, losses atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			switch err := call(i); {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, lost):
				losses.Add(1)
			default:
				t.Errorf("call %d of %d: %v", i, n, err)
			}
		})
	}
	close(start)
	wg.Wait()
	return int(wins.Load()), int(losses.Load())
}

func newUser(t *testing.T, s store.Store) *store.User {
	t.Helper()
	u, err := s.UpsertUser(ctx(), &store.User{
		ID: "u-" + randID(t), Provider: "google", Subject: randID(t), Email: "a@example.com",
		EmailVerified: true, Name: "Ada", CreatedAt: t0, UpdatedAt: t0, LastLoginAt: t0,
	})
	must(t, err)
	return u
}

func newGrant(t *testing.T, s store.Store, u *store.User, clientID string) *store.Grant {
	t.Helper()
	g := &store.Grant{ID: "g-" + randID(t), ClientID: clientID, UserID: u.ID, Scope: "booking:read",
		Resource: "https://mcp.example.com/mcp", CreatedAt: t0, UpdatedAt: t0, ExpiresAt: t0.Add(30 * 24 * time.Hour)}
	must(t, s.CreateGrant(ctx(), g))
	return g
}

func TestMigrate(t *testing.T) {
	all, err := migrations.List("postgres")
	must(t, err)
	forEach(t, func(t *testing.T, s store.Store, reopen func() store.Store) {
		v, err := s.Migrate(ctx())
		must(t, err)
		if v != len(all) {
			t.Fatalf("Migrate = %d, want %d", v, len(all))
		}
		got, err := s.SchemaVersion(ctx())
		must(t, err)
		if got != v {
			t.Fatalf("SchemaVersion = %d, want %d", got, v)
		}
		// Several handles migrating at once (as several Caddy instances
		// would) all succeed and agree.
		var wg sync.WaitGroup
		errs := make(chan error, 5)
		for range 5 {
			other := reopen()
			wg.Go(func() {
				v, err := other.Migrate(ctx())
				if err == nil && v != len(all) {
					err = errors.New("wrong version")
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			must(t, err)
		}
		must(t, s.Ping(ctx()))
	})
}

func TestFreshDatabaseVersionZero(t *testing.T) {
	e, err := store.OpenEmbedded(filepath.Join(t.TempDir(), "x.db"))
	must(t, err)
	defer e.Close()
	v, err := e.SchemaVersion(ctx())
	must(t, err)
	if v != 0 {
		t.Fatalf("SchemaVersion of a new file = %d", v)
	}
}

func TestClients(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		c := &store.Client{
			ID: "c-" + randID(t), SecretHash: store.Hash("s3cret"), SecretExpiresAt: t0.Add(time.Hour),
			Name: "My MCP Client", RedirectURIs: []string{"http://127.0.0.1/cb", "cursor://x/cb"},
			GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
			Scope: "booking:read", TokenEndpointAuthMethod: "client_secret_basic",
			Metadata: []byte(`{"client_name":"My MCP Client"}`), CreatedAt: t0, UpdatedAt: t0,
		}
		must(t, s.CreateClient(ctx(), c))
		wantErr(t, s.CreateClient(ctx(), c), store.ErrConflict)

		got, err := s.GetClient(ctx(), c.ID)
		must(t, err)
		if got.Name != c.Name || got.Scope != c.Scope || got.TokenEndpointAuthMethod != c.TokenEndpointAuthMethod ||
			len(got.RedirectURIs) != 2 || got.RedirectURIs[1] != "cursor://x/cb" || len(got.GrantTypes) != 2 ||
			got.ResponseTypes[0] != "code" || string(got.Metadata) != string(c.Metadata) {
			t.Fatalf("GetClient = %+v", got)
		}
		if !store.SecretMatches(got.SecretHash, "s3cret") || store.SecretMatches(got.SecretHash, "other") {
			t.Fatal("secret hash does not match")
		}
		sameTime(t, "SecretExpiresAt", got.SecretExpiresAt, c.SecretExpiresAt)
		sameTime(t, "CreatedAt", got.CreatedAt, t0)
		if !got.LastUsedAt.IsZero() {
			t.Fatalf("LastUsedAt = %v, want zero", got.LastUsedAt)
		}
		_, err = s.GetClient(ctx(), "nope")
		wantErr(t, err, store.ErrNotFound)

		must(t, s.TouchClient(ctx(), c.ID, t0.Add(time.Minute)))
		got, err = s.GetClient(ctx(), c.ID)
		must(t, err)
		sameTime(t, "LastUsedAt", got.LastUsedAt, t0.Add(time.Minute))
		wantErr(t, s.TouchClient(ctx(), "nope", t0), store.ErrNotFound)

		// A public client: no secret.
		pub := &store.Client{ID: "p-" + randID(t), TokenEndpointAuthMethod: "none", CreatedAt: t0, UpdatedAt: t0}
		must(t, s.CreateClient(ctx(), pub))
		got, err = s.GetClient(ctx(), pub.ID)
		must(t, err)
		if got.SecretHash != nil || !got.SecretExpiresAt.IsZero() || got.RedirectURIs == nil {
			t.Fatalf("public client = %+v", got)
		}

		n, err := s.CountClients(ctx())
		must(t, err)
		if n != 2 {
			t.Fatalf("CountClients = %d", n)
		}
		page, err := s.ListClients(ctx(), "", 1)
		must(t, err)
		if len(page) != 1 {
			t.Fatalf("ListClients page 1 = %d clients", len(page))
		}
		rest, err := s.ListClients(ctx(), page[0].ID, 10)
		must(t, err)
		if len(rest) != 1 || rest[0].ID == page[0].ID {
			t.Fatalf("ListClients page 2 = %+v", rest)
		}

		// Deleting a client revokes its grants and their tokens (so that
		// every deny-list learns of it) and takes its codes and consents.
		u := newUser(t, s)
		g := newGrant(t, s, u, c.ID)
		jti := "j-" + randID(t)
		must(t, s.RecordAccessToken(ctx(), &store.AccessToken{JTI: jti, GrantID: g.ID, ClientID: c.ID,
			UserID: u.ID, CreatedAt: t0, ExpiresAt: time.Now().Add(time.Hour)}))
		before := time.Now().Add(-time.Second)
		must(t, s.CreateCode(ctx(), "code-"+randID(t), &store.AuthCode{GrantID: "g2", ClientID: c.ID, UserID: u.ID,
			RedirectURI: "http://127.0.0.1/cb", CodeChallenge: "x", CodeChallengeMethod: "S256", CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}))
		must(t, s.SaveConsent(ctx(), &store.Consent{UserID: u.ID, ClientID: c.ID, Scope: "a", CreatedAt: t0, UpdatedAt: t0}))
		must(t, s.DeleteClient(ctx(), c.ID))
		wantErr(t, s.DeleteClient(ctx(), c.ID), store.ErrNotFound)
		gone, err := s.GetGrant(ctx(), g.ID)
		must(t, err)
		if gone.RevokedAt.IsZero() {
			t.Fatal("the deleted client's grant is not revoked")
		}
		revoked, err := s.RevokedAccessTokens(ctx(), before, time.Now())
		must(t, err)
		if len(revoked) != 1 || revoked[0].JTI != jti {
			t.Fatalf("revoked access tokens after deleting the client = %+v", revoked)
		}
		_, err = s.GetConsent(ctx(), u.ID, c.ID)
		wantErr(t, err, store.ErrNotFound)

		// Stale clients: pub was never used and was created at t0; a
		// client with a live grant is kept however old.
		kept := &store.Client{ID: "k-" + randID(t), TokenEndpointAuthMethod: "none", CreatedAt: t0, UpdatedAt: t0}
		must(t, s.CreateClient(ctx(), kept))
		newGrant(t, s, u, kept.ID)
		n64, err := s.DeleteStaleClients(ctx(), t0)
		must(t, err)
		if n64 != 0 {
			t.Fatalf("DeleteStaleClients(t0) = %d, want 0", n64)
		}
		n64, err = s.DeleteStaleClients(ctx(), t0.Add(time.Second))
		must(t, err)
		if n64 != 1 {
			t.Fatalf("DeleteStaleClients = %d, want 1", n64)
		}
		n, err = s.CountClients(ctx())
		must(t, err)
		if n != 1 {
			t.Fatalf("CountClients after clean-up = %d, want the client with a grant", n)
		}
	})
}

// TestUnusedClients: clients that never completed an authorization
// expire early, and the oldest of them makes way when the registry is
// full (security finding 5); used clients and clients with a live grant
// are kept.
func TestUnusedClients(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		u := newUser(t, s)
		client := func(created time.Time, used bool) *store.Client {
			c := &store.Client{ID: "u-" + randID(t), TokenEndpointAuthMethod: "none", CreatedAt: created, UpdatedAt: created}
			if used {
				c.LastUsedAt = created
			}
			must(t, s.CreateClient(ctx(), c))
			return c
		}
		old := client(t0, false)
		oldUsed := client(t0.Add(-time.Hour), true)
		oldGrant := client(t0.Add(-2*time.Hour), false)
		newGrant(t, s, u, oldGrant.ID)
		newer := client(t0.Add(2*time.Hour), false)
		newest := client(t0.Add(3*time.Hour), false)

		n, err := s.DeleteUnusedClients(ctx(), t0.Add(time.Hour))
		must(t, err)
		if n != 1 {
			t.Fatalf("DeleteUnusedClients = %d, want 1 (the unused client created before)", n)
		}
		_, err = s.GetClient(ctx(), old.ID)
		wantErr(t, err, store.ErrNotFound)
		for _, c := range []*store.Client{oldUsed, oldGrant, newer, newest} {
			if _, err := s.GetClient(ctx(), c.ID); err != nil {
				t.Fatalf("client %s: %v", c.ID, err)
			}
		}

		id, err := s.EvictUnusedClient(ctx())
		must(t, err)
		if id != newer.ID {
			t.Fatalf("EvictUnusedClient evicted %s, want the oldest unused %s", id, newer.ID)
		}
		must(t, s.TouchClient(ctx(), newest.ID, t0.Add(4*time.Hour)))
		if id, err := s.EvictUnusedClient(ctx()); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("EvictUnusedClient with no unused client left: %q, %v", id, err)
		}
	})
}

func newCode(u *store.User) *store.AuthCode {
	return &store.AuthCode{GrantID: "g-code", ClientID: "c1", UserID: u.ID, RedirectURI: "http://127.0.0.1:33418/cb",
		Scope: "booking:read product:read", Resource: "https://mcp.example.com/mcp", CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		CodeChallengeMethod: "S256", CreatedAt: t0, ExpiresAt: t0.Add(10 * time.Minute)}
}

// issueFor returns a RedeemCode callback that creates a grant with an
// access token and a refresh token, counting its calls.
func issueFor(t *testing.T, calls *atomic.Int32) func(*store.AuthCode) (*store.Issue, error) {
	return func(c *store.AuthCode) (*store.Issue, error) {
		if calls != nil {
			calls.Add(1)
		}
		gid := "g-" + randID(t)
		return &store.Issue{
			Grant: &store.Grant{ID: gid, ClientID: c.ClientID, UserID: c.UserID, Scope: c.Scope, Resource: c.Resource,
				CreatedAt: t0, UpdatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)},
			Access: &store.AccessToken{JTI: "j-" + randID(t), GrantID: gid, ClientID: c.ClientID, UserID: c.UserID,
				CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)},
			Refresh: "rt-" + randID(t),
			Refreshed: &store.RefreshToken{GrantID: gid, ClientID: c.ClientID, UserID: c.UserID, Scope: c.Scope,
				CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)},
		}, nil
	}
}

func TestCodes(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		u := newUser(t, s)
		code := "code-" + randID(t)
		must(t, s.CreateCode(ctx(), code, newCode(u)))
		wantErr(t, s.CreateCode(ctx(), code, newCode(u)), store.ErrConflict)

		_, err := s.RedeemCode(ctx(), "unknown", t0, issueFor(t, nil))
		wantErr(t, err, store.ErrNotFound)

		// A failing callback leaves the code usable and stores nothing.
		boom := errors.New("wrong verifier")
		_, err = s.RedeemCode(ctx(), code, t0.Add(time.Minute), func(*store.AuthCode) (*store.Issue, error) { return nil, boom })
		if !errors.Is(err, boom) {
			t.Fatalf("callback error = %v, want it unchanged", err)
		}

		var issued *store.Issue
		got, err := s.RedeemCode(ctx(), code, t0.Add(time.Minute), func(c *store.AuthCode) (*store.Issue, error) {
			var err error
			issued, err = issueFor(t, nil)(c)
			return issued, err
		})
		must(t, err)
		if got.Scope != "booking:read product:read" || got.CodeChallenge != newCode(u).CodeChallenge ||
			got.RedirectURI != "http://127.0.0.1:33418/cb" || got.GrantID != "g-code" || got.Resource == "" {
			t.Fatalf("RedeemCode = %+v", got)
		}
		// Everything the callback returned was stored.
		if _, err := s.GetGrant(ctx(), issued.Grant.ID); err != nil {
			t.Fatalf("grant not stored: %v", err)
		}
		if ok, _ := s.AccessTokenActive(ctx(), issued.Access.JTI, t0); !ok {
			t.Fatal("access token not recorded")
		}
		if _, err := s.GetRefreshToken(ctx(), issued.Refresh, t0); err != nil {
			t.Fatalf("refresh token not stored: %v", err)
		}

		var calls atomic.Int32
		again, err := s.RedeemCode(ctx(), code, t0.Add(2*time.Minute), issueFor(t, &calls))
		wantErr(t, err, store.ErrAlreadyUsed)
		if again == nil || again.GrantID != "g-code" || again.ConsumedAt.IsZero() || calls.Load() != 0 {
			t.Fatalf("replay returned %+v (callback called %d times), want the record", again, calls.Load())
		}

		expired := "code-" + randID(t)
		must(t, s.CreateCode(ctx(), expired, newCode(u)))
		_, err = s.RedeemCode(ctx(), expired, t0.Add(10*time.Minute), issueFor(t, nil))
		wantErr(t, err, store.ErrNotFound)

		// A failure storing the issue (here a duplicate grant id) rolls
		// the consumption back.
		dup := "code-" + randID(t)
		must(t, s.CreateCode(ctx(), dup, newCode(u)))
		_, err = s.RedeemCode(ctx(), dup, t0.Add(time.Minute), func(c *store.AuthCode) (*store.Issue, error) {
			out, _ := issueFor(t, nil)(c)
			out.Grant.ID = issued.Grant.ID
			return out, nil
		})
		wantErr(t, err, store.ErrConflict)
		if _, err := s.RedeemCode(ctx(), dup, t0.Add(time.Minute), issueFor(t, nil)); err != nil {
			t.Fatalf("code not usable after a failed redemption: %v", err)
		}
	})
}

func TestCodeSingleUseUnderConcurrency(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		u := newUser(t, s)
		code := "code-" + randID(t)
		must(t, s.CreateCode(ctx(), code, newCode(u)))
		var calls atomic.Int32
		wins, used := race(t, 50, store.ErrAlreadyUsed, func(int) error {
			_, err := s.RedeemCode(ctx(), code, t0.Add(time.Second), issueFor(t, &calls))
			return err
		})
		if wins != 1 || used != 49 || calls.Load() != 1 {
			t.Fatalf("%d winners, %d already-used, %d issues; want 1, 49, 1", wins, used, calls.Load())
		}
		grants, err := s.ListGrantsByUser(ctx(), u.ID, t0)
		must(t, err)
		if len(grants) != 1 {
			t.Fatalf("%d grants from one code, want 1", len(grants))
		}
	})
}

func TestAuthRequests(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		id := "req-" + randID(t)
		r := &store.AuthRequest{ClientID: "c1", UserID: "u1", CSRFHash: store.Hash("csrf"), Params: []byte(`{"state":"x"}`),
			CreatedAt: t0, ExpiresAt: t0.Add(10 * time.Minute)}
		must(t, s.CreateAuthRequest(ctx(), id, r))
		wantErr(t, s.CreateAuthRequest(ctx(), id, r), store.ErrConflict)
		_, err := s.ConsumeAuthRequest(ctx(), "nope", t0)
		wantErr(t, err, store.ErrNotFound)
		got, err := s.ConsumeAuthRequest(ctx(), id, t0.Add(time.Minute))
		must(t, err)
		if got.ClientID != "c1" || got.UserID != "u1" || string(got.Params) != `{"state":"x"}` || !store.SecretMatches(got.CSRFHash, "csrf") {
			t.Fatalf("ConsumeAuthRequest = %+v", got)
		}
		_, err = s.ConsumeAuthRequest(ctx(), id, t0.Add(time.Minute))
		wantErr(t, err, store.ErrAlreadyUsed)
		late := "req-" + randID(t)
		must(t, s.CreateAuthRequest(ctx(), late, r))
		_, err = s.ConsumeAuthRequest(ctx(), late, t0.Add(10*time.Minute))
		wantErr(t, err, store.ErrNotFound)
		n, err := s.DeleteExpired(ctx(), t0.Add(11*time.Minute))
		must(t, err)
		if n != 2 {
			t.Fatalf("DeleteExpired removed %d rows, want the 2 requests", n)
		}
	})
}

func TestSecretsStoredHashed(t *testing.T) {
	// Embedded: the plaintext never reaches the file (or its WAL).
	t.Run("embedded", func(t *testing.T) {
		dir := t.TempDir()
		secrets := writeSecrets(t, teststore.Embedded(t, filepath.Join(dir, "c.db")))
		files, _ := filepath.Glob(filepath.Join(dir, "c.db*"))
		if len(files) == 0 {
			t.Fatal("no database files")
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			must(t, err)
			for _, sec := range secrets {
				if bytes.Contains(b, []byte(sec)) {
					t.Errorf("%s contains the plaintext secret %q", filepath.Base(f), sec)
				}
			}
		}
	})
	// PostgreSQL: the rows are keyed by the SHA-256 of the secret.
	t.Run("postgres", func(t *testing.T) {
		dsn := testpg.Schema(t)
		secrets := writeSecrets(t, teststore.Postgres(t, dsn))
		conn, err := pgx.Connect(ctx(), dsn)
		must(t, err)
		defer conn.Close(ctx())
		for table, col := range map[string]string{"authorization_codes": "code_hash", "refresh_tokens": "token_hash", "sessions": "id_hash", "legacy_tokens": "token_hash"} {
			for _, sec := range secrets {
				var plain int
				must(t, conn.QueryRow(ctx(), "SELECT COUNT(*) FROM "+table+" WHERE position($1::bytea in "+col+") > 0", []byte(sec)).Scan(&plain))
				if plain != 0 {
					t.Errorf("%s holds a plaintext secret", table)
				}
			}
			var total int
			must(t, conn.QueryRow(ctx(), "SELECT COUNT(*) FROM "+table+" WHERE "+col+" = ANY($1)",
				[][]byte{store.Hash(secrets[0]), store.Hash(secrets[1]), store.Hash(secrets[2]), store.Hash(secrets[3])}).Scan(&total))
			if total != 1 {
				t.Errorf("%s: %d rows keyed by a secret's hash, want 1", table, total)
			}
		}
	})
}

// writeSecrets stores a code, a refresh token and a session and returns
// their plaintext values.
func writeSecrets(t *testing.T, s store.Store) []string {
	t.Helper()
	u := newUser(t, s)
	g := newGrant(t, s, u, "c1")
	code, refresh, session, legacy := "CODE-"+randID(t), "REFRESH-"+randID(t), "SESSION-"+randID(t), "LEGACY-"+randID(t)
	must(t, s.CreateCode(ctx(), code, newCode(u)))
	must(t, s.CreateRefreshToken(ctx(), refresh, &store.RefreshToken{GrantID: g.ID, ClientID: "c1", UserID: u.ID,
		CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
	must(t, s.CreateSession(ctx(), session, &store.Session{UserID: u.ID, CreatedAt: t0, LastSeenAt: t0,
		IdleExpiresAt: t0.Add(time.Hour), ExpiresAt: t0.Add(time.Hour)}))
	must(t, s.CreateLegacyToken(ctx(), legacy, &store.LegacyToken{ID: "lt-" + randID(t), UserID: u.ID,
		CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
	return []string{code, refresh, session, legacy}
}

func TestGrantsAndAccessTokens(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		u := newUser(t, s)
		g := newGrant(t, s, u, "c1")
		wantErr(t, s.CreateGrant(ctx(), g), store.ErrConflict)
		got, err := s.GetGrant(ctx(), g.ID)
		must(t, err)
		if got.UserID != u.ID || got.Scope != g.Scope || got.Resource != g.Resource || !got.RevokedAt.IsZero() {
			t.Fatalf("GetGrant = %+v", got)
		}
		sameTime(t, "ExpiresAt", got.ExpiresAt, g.ExpiresAt)
		_, err = s.GetGrant(ctx(), "nope")
		wantErr(t, err, store.ErrNotFound)

		other := newGrant(t, s, u, "c2")
		list, err := s.ListGrantsByUser(ctx(), u.ID, t0)
		must(t, err)
		if len(list) != 2 {
			t.Fatalf("ListGrantsByUser = %d grants", len(list))
		}

		jti := "j-" + randID(t)
		at := &store.AccessToken{JTI: jti, GrantID: g.ID, ClientID: "c1", UserID: u.ID, Scope: g.Scope,
			Resource: g.Resource, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		must(t, s.RecordAccessToken(ctx(), at))
		wantErr(t, s.RecordAccessToken(ctx(), at), store.ErrConflict)
		for _, tc := range []struct {
			name string
			jti  string
			now  time.Time
			want bool
		}{
			{"active", jti, t0.Add(time.Minute), true},
			{"expired", jti, t0.Add(time.Hour), false},
			{"unknown", "nope", t0, false},
		} {
			ok, err := s.AccessTokenActive(ctx(), tc.jti, tc.now)
			must(t, err)
			if ok != tc.want {
				t.Errorf("%s: AccessTokenActive = %v, want %v", tc.name, ok, tc.want)
			}
		}
		// Revoking one token.
		jti2 := "j-" + randID(t)
		must(t, s.RecordAccessToken(ctx(), &store.AccessToken{JTI: jti2, GrantID: other.ID, ClientID: "c2", UserID: u.ID,
			CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
		must(t, s.RevokeAccessToken(ctx(), jti2, t0))
		must(t, s.RevokeAccessToken(ctx(), jti2, t0)) // idempotent
		wantErr(t, s.RevokeAccessToken(ctx(), "nope", t0), store.ErrNotFound)
		if ok, _ := s.AccessTokenActive(ctx(), jti2, t0); ok {
			t.Fatal("revoked token still active")
		}
		// Revoking the grant revokes its tokens.
		must(t, s.RevokeGrant(ctx(), g.ID, t0.Add(time.Second)))
		must(t, s.RevokeGrant(ctx(), g.ID, t0.Add(2*time.Second)))
		wantErr(t, s.RevokeGrant(ctx(), "nope", t0), store.ErrNotFound)
		if ok, _ := s.AccessTokenActive(ctx(), jti, t0.Add(time.Minute)); ok {
			t.Fatal("token of a revoked grant still active")
		}
		got, err = s.GetGrant(ctx(), g.ID)
		must(t, err)
		sameTime(t, "RevokedAt", got.RevokedAt, t0.Add(time.Second))
		list, err = s.ListGrantsByUser(ctx(), u.ID, t0)
		must(t, err)
		if len(list) != 1 || list[0].ID != other.ID {
			t.Fatalf("ListGrantsByUser after revoke = %+v", list)
		}
	})
}

func TestRefreshTokens(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		u := newUser(t, s)
		g := newGrant(t, s, u, "c1")
		rt := func(exp time.Time) *store.RefreshToken {
			return &store.RefreshToken{GrantID: g.ID, ClientID: "c1", UserID: u.ID, Scope: g.Scope,
				Resource: g.Resource, CreatedAt: t0, ExpiresAt: exp}
		}
		first := "rt-" + randID(t)
		must(t, s.CreateRefreshToken(ctx(), first, rt(t0.Add(time.Hour))))
		wantErr(t, s.CreateRefreshToken(ctx(), first, rt(t0.Add(time.Hour))), store.ErrConflict)
		got, err := s.GetRefreshToken(ctx(), first, t0)
		must(t, err)
		if got.GrantID != g.ID || got.Scope != g.Scope || got.Resource != g.Resource {
			t.Fatalf("GetRefreshToken = %+v", got)
		}
		_, err = s.GetRefreshToken(ctx(), first, t0.Add(time.Hour))
		wantErr(t, err, store.ErrNotFound)
		_, err = s.GetRefreshToken(ctx(), "nope", t0)
		wantErr(t, err, store.ErrNotFound)

		// Rotation: the old token stops working, the new one works, the
		// grant lives as long as its newest token, and the sealed response
		// is kept on the old token.
		second := "rt-" + randID(t)
		later := t0.Add(60 * 24 * time.Hour)
		rotate := func(next string, exp time.Time, sealed string) func(*store.RefreshToken, *store.Grant) (*store.Issue, error) {
			return func(old *store.RefreshToken, gr *store.Grant) (*store.Issue, error) {
				if gr.ID != old.GrantID {
					t.Errorf("callback got grant %s for token of %s", gr.ID, old.GrantID)
				}
				return &store.Issue{Refresh: next, Refreshed: rt(exp), Sealed: []byte(sealed),
					Access: &store.AccessToken{JTI: "j-" + randID(t), ClientID: "c1", UserID: u.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}}, nil
			}
		}
		// A failing callback changes nothing.
		boom := errors.New("invalid_scope")
		_, err = s.RefreshGrant(ctx(), first, t0, func(*store.RefreshToken, *store.Grant) (*store.Issue, error) { return nil, boom })
		if !errors.Is(err, boom) {
			t.Fatalf("callback error = %v", err)
		}
		prev, err := s.RefreshGrant(ctx(), first, t0.Add(time.Minute), rotate(second, later, "sealed-1"))
		must(t, err)
		if prev.GrantID != g.ID {
			t.Fatalf("refresh returned %+v", prev)
		}
		_, err = s.GetRefreshToken(ctx(), first, t0.Add(time.Minute))
		wantErr(t, err, store.ErrNotFound)
		if _, err := s.GetRefreshToken(ctx(), second, t0.Add(time.Minute)); err != nil {
			t.Fatalf("new token: %v", err)
		}
		gg, err := s.GetGrant(ctx(), g.ID)
		must(t, err)
		sameTime(t, "grant ExpiresAt", gg.ExpiresAt, later)

		// Replaying the rotated token returns it with its sealed response.
		replayed, err := s.RefreshGrant(ctx(), first, t0.Add(2*time.Minute), rotate("rt-"+randID(t), later, "x"))
		wantErr(t, err, store.ErrAlreadyUsed)
		if replayed == nil || replayed.GrantID != g.ID || string(replayed.Successor) != "sealed-1" {
			t.Fatalf("replay returned %+v", replayed)
		}
		sameTime(t, "RotatedAt", replayed.RotatedAt, t0.Add(time.Minute))
		_, err = s.RefreshGrant(ctx(), "nope", t0, rotate("rt-"+randID(t), later, "x"))
		wantErr(t, err, store.ErrNotFound)

		// Exactly one of 50 concurrent rotations of the same token wins.
		wins, lost := race(t, 50, store.ErrAlreadyUsed, func(int) error {
			_, err := s.RefreshGrant(ctx(), second, t0.Add(3*time.Minute), rotate("rt-"+randID(t), later, "sealed-2"))
			return err
		})
		if wins != 1 || lost != 49 {
			t.Fatalf("%d rotations won and %d lost, want 1 and 49", wins, lost)
		}

		// Once the grant is revoked, a replay is just unknown.
		must(t, s.RevokeGrant(ctx(), g.ID, t0.Add(4*time.Minute)))
		_, err = s.RefreshGrant(ctx(), first, t0.Add(5*time.Minute), rotate("rt-"+randID(t), later, "x"))
		wantErr(t, err, store.ErrNotFound)

		// Revoking a refresh token revokes its grant.
		g2 := newGrant(t, s, u, "c1")
		third := "rt-" + randID(t)
		must(t, s.CreateRefreshToken(ctx(), third, &store.RefreshToken{GrantID: g2.ID, ClientID: "c1", UserID: u.ID,
			CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
		must(t, s.RevokeRefreshToken(ctx(), third, t0))
		wantErr(t, s.RevokeRefreshToken(ctx(), "nope", t0), store.ErrNotFound)
		_, err = s.GetRefreshToken(ctx(), third, t0)
		wantErr(t, err, store.ErrNotFound)
		gg, err = s.GetGrant(ctx(), g2.ID)
		must(t, err)
		if gg.RevokedAt.IsZero() {
			t.Fatal("grant not revoked with its refresh token")
		}
		_, err = s.RefreshGrant(ctx(), third, t0, rotate("rt-"+randID(t), later, "x"))
		wantErr(t, err, store.ErrNotFound)
	})
}

func TestUsers(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		u := &store.User{ID: "u1", Provider: "oidc", Subject: "sub-1", Email: "ada@example.com", EmailVerified: true,
			Name: "Ada", Picture: "https://p/x.png", HostedDomain: "example.com", CreatedAt: t0, UpdatedAt: t0, LastLoginAt: t0}
		got, err := s.UpsertUser(ctx(), u)
		must(t, err)
		if got.ID != "u1" || !got.EmailVerified || got.HostedDomain != "example.com" {
			t.Fatalf("UpsertUser (new) = %+v", got)
		}
		// Same (provider, subject): updated in place, id and created_at kept.
		again, err := s.UpsertUser(ctx(), &store.User{ID: "u2", Provider: "oidc", Subject: "sub-1", Email: "ada@new.example",
			Name: "Ada L.", CreatedAt: t0.Add(time.Hour), UpdatedAt: t0.Add(time.Hour), LastLoginAt: t0.Add(time.Hour)})
		must(t, err)
		if again.ID != "u1" || again.Email != "ada@new.example" || again.EmailVerified || again.Name != "Ada L." {
			t.Fatalf("UpsertUser (existing) = %+v", again)
		}
		sameTime(t, "CreatedAt", again.CreatedAt, t0)
		sameTime(t, "LastLoginAt", again.LastLoginAt, t0.Add(time.Hour))
		fetched, err := s.GetUser(ctx(), "u1")
		must(t, err)
		if fetched.Email != "ada@new.example" {
			t.Fatalf("GetUser = %+v", fetched)
		}
		_, err = s.GetUser(ctx(), "u2")
		wantErr(t, err, store.ErrNotFound)
		// Another provider with the same subject is another user.
		other, err := s.UpsertUser(ctx(), &store.User{ID: "u3", Provider: "google", Subject: "sub-1", CreatedAt: t0, UpdatedAt: t0})
		must(t, err)
		if other.ID != "u3" {
			t.Fatalf("other provider got id %s", other.ID)
		}
	})
}

func TestSessions(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		u := newUser(t, s)
		id := "sess-" + randID(t)
		se := &store.Session{UserID: u.ID, UserAgent: "ua", RemoteAddr: "127.0.0.1", CreatedAt: t0, LastSeenAt: t0,
			IdleExpiresAt: t0.Add(30 * time.Minute), ExpiresAt: t0.Add(time.Hour)}
		must(t, s.CreateSession(ctx(), id, se))
		wantErr(t, s.CreateSession(ctx(), id, se), store.ErrConflict)
		got, err := s.GetSession(ctx(), id, t0.Add(time.Minute))
		must(t, err)
		if got.UserID != u.ID || got.UserAgent != "ua" || !bytes.Equal(got.IDHash, store.Hash(id)) {
			t.Fatalf("GetSession = %+v", got)
		}
		_, err = s.GetSession(ctx(), id, t0.Add(30*time.Minute))
		wantErr(t, err, store.ErrNotFound) // idle timeout
		_, err = s.GetSession(ctx(), "nope", t0)
		wantErr(t, err, store.ErrNotFound)

		// Touch moves the idle expiry, but never past the absolute one.
		must(t, s.TouchSession(ctx(), id, t0.Add(20*time.Minute), t0.Add(50*time.Minute)))
		got, err = s.GetSession(ctx(), id, t0.Add(40*time.Minute))
		must(t, err)
		sameTime(t, "LastSeenAt", got.LastSeenAt, t0.Add(20*time.Minute))
		must(t, s.TouchSession(ctx(), id, t0.Add(45*time.Minute), t0.Add(3*time.Hour)))
		got, err = s.GetSession(ctx(), id, t0.Add(50*time.Minute))
		must(t, err)
		sameTime(t, "IdleExpiresAt", got.IdleExpiresAt, t0.Add(time.Hour))
		_, err = s.GetSession(ctx(), id, t0.Add(time.Hour))
		wantErr(t, err, store.ErrNotFound) // absolute timeout
		wantErr(t, s.TouchSession(ctx(), "nope", t0, t0), store.ErrNotFound)

		id2, id3 := "sess-"+randID(t), "sess-"+randID(t)
		for i, sid := range []string{id2, id3} {
			c := *se
			c.CreatedAt = t0.Add(time.Duration(i+1) * time.Second)
			must(t, s.CreateSession(ctx(), sid, &c))
		}
		list, err := s.ListSessionsByUser(ctx(), u.ID, t0.Add(time.Minute))
		must(t, err)
		if len(list) != 3 || !bytes.Equal(list[0].IDHash, store.Hash(id3)) {
			t.Fatalf("ListSessionsByUser = %d sessions", len(list))
		}
		must(t, s.DeleteSessionByHash(ctx(), store.Hash(id3)))
		wantErr(t, s.DeleteSessionByHash(ctx(), store.Hash(id3)), store.ErrNotFound)
		must(t, s.DeleteSession(ctx(), id2))
		wantErr(t, s.DeleteSession(ctx(), id2), store.ErrNotFound)
		n, err := s.DeleteSessionsByUser(ctx(), u.ID)
		must(t, err)
		if n != 1 {
			t.Fatalf("DeleteSessionsByUser = %d", n)
		}
	})
}

func TestConsents(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		u := newUser(t, s)
		must(t, s.SaveConsent(ctx(), &store.Consent{UserID: u.ID, ClientID: "c1", Scope: "booking:read", CreatedAt: t0, UpdatedAt: t0}))
		must(t, s.SaveConsent(ctx(), &store.Consent{UserID: u.ID, ClientID: "c1", Scope: "booking:read booking:write",
			RedirectURI: "http://127.0.0.1:5000/cb", Resource: "https://h/mcp", CreatedAt: t0.Add(time.Hour), UpdatedAt: t0.Add(time.Hour)}))
		must(t, s.SaveConsent(ctx(), &store.Consent{UserID: u.ID, ClientID: "c2", Scope: "form:read", CreatedAt: t0, UpdatedAt: t0}))
		got, err := s.GetConsent(ctx(), u.ID, "c1")
		must(t, err)
		if got.Scope != "booking:read booking:write" || got.RedirectURI != "http://127.0.0.1:5000/cb" || got.Resource != "https://h/mcp" {
			t.Fatalf("GetConsent = %+v", got)
		}
		sameTime(t, "CreatedAt", got.CreatedAt, t0)
		sameTime(t, "UpdatedAt", got.UpdatedAt, t0.Add(time.Hour))
		_, err = s.GetConsent(ctx(), u.ID, "nope")
		wantErr(t, err, store.ErrNotFound)
		list, err := s.ListConsentsByUser(ctx(), u.ID)
		must(t, err)
		if len(list) != 2 || list[0].ClientID != "c1" {
			t.Fatalf("ListConsentsByUser = %+v", list)
		}
		must(t, s.DeleteConsent(ctx(), u.ID, "c1"))
		wantErr(t, s.DeleteConsent(ctx(), u.ID, "c1"), store.ErrNotFound)
	})
}

func TestSigningKeys(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, reopen func() store.Store) {
		var calls atomic.Int32
		gen := func(id string, at time.Time) func() (*store.SigningKey, error) {
			return func() (*store.SigningKey, error) {
				calls.Add(1)
				return &store.SigningKey{ID: id, Algorithm: "ES256", PrivateKey: []byte("der-" + id), CreatedAt: at}, nil
			}
		}
		// Twenty callers on separate handles: one key is created.
		var wg sync.WaitGroup
		kids := make(chan string, 20)
		for i := range 20 {
			h := s
			if i%4 == 0 {
				h = reopen()
			}
			wg.Go(func() {
				k, err := h.EnsureSigningKey(ctx(), gen("k-"+randID(t), t0))
				if err != nil {
					t.Errorf("EnsureSigningKey: %v", err)
					return
				}
				kids <- k.ID
			})
		}
		wg.Wait()
		close(kids)
		first := ""
		for kid := range kids {
			if first == "" {
				first = kid
			} else if kid != first {
				t.Fatalf("two keys: %s and %s", first, kid)
			}
		}
		if calls.Load() != 1 {
			t.Fatalf("generate called %d times, want 1", calls.Load())
		}
		// A reopened store sees the same key.
		k, err := reopen().EnsureSigningKey(ctx(), gen("never", t0))
		must(t, err)
		if k.ID != first || string(k.PrivateKey) != "der-"+first || k.Algorithm != "ES256" {
			t.Fatalf("after reopen: %+v", k)
		}
		wantErr(t, s.AddSigningKey(ctx(), k), store.ErrConflict)
		must(t, s.AddSigningKey(ctx(), &store.SigningKey{ID: "k2", Algorithm: "ES256", PrivateKey: []byte("x"), CreatedAt: t0.Add(time.Hour)}))
		must(t, s.RetireSigningKey(ctx(), "k2", t0.Add(3*time.Hour)))
		must(t, s.RetireSigningKey(ctx(), "k2", t0.Add(2*time.Hour))) // brought forward
		must(t, s.RetireSigningKey(ctx(), "k2", t0.Add(4*time.Hour))) // never postponed
		wantErr(t, s.RetireSigningKey(ctx(), "nope", t0), store.ErrNotFound)
		k, err = s.EnsureSigningKey(ctx(), gen("never", t0))
		must(t, err)
		if k.ID != first {
			t.Fatalf("EnsureSigningKey picked %s, want the unretired %s", k.ID, first)
		}
		all, err := s.SigningKeys(ctx())
		must(t, err)
		if len(all) != 2 || all[0].ID != "k2" || !all[0].RetiredAt.Equal(t0.Add(2*time.Hour)) {
			t.Fatalf("SigningKeys = %+v", all)
		}
		// With every key retired, a new one is made.
		must(t, s.RetireSigningKey(ctx(), first, t0.Add(3*time.Hour)))
		k, err = s.EnsureSigningKey(ctx(), gen("k3", t0.Add(4*time.Hour)))
		must(t, err)
		if k.ID != "k3" {
			t.Fatalf("EnsureSigningKey after retiring all = %s", k.ID)
		}
		// A failing generator leaves nothing behind.
		must(t, s.RetireSigningKey(ctx(), "k3", t0.Add(5*time.Hour)))
		_, err = s.EnsureSigningKey(ctx(), func() (*store.SigningKey, error) { return nil, errors.New("no entropy") })
		if err == nil {
			t.Fatal("EnsureSigningKey with a failing generator succeeded")
		}
		all, err = s.SigningKeys(ctx())
		must(t, err)
		if len(all) != 3 {
			t.Fatalf("%d keys after a failed generation, want 3", len(all))
		}
	})
}

func TestDeleteExpired(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		u := newUser(t, s)
		g := newGrant(t, s, u, "c1") // expires in 30 days
		must(t, s.CreateCode(ctx(), "code-"+randID(t), newCode(u)))
		must(t, s.RecordAccessToken(ctx(), &store.AccessToken{JTI: "j1", GrantID: g.ID, ClientID: "c1", UserID: u.ID,
			CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
		must(t, s.CreateRefreshToken(ctx(), "rt-"+randID(t), &store.RefreshToken{GrantID: g.ID, ClientID: "c1", UserID: u.ID,
			CreatedAt: t0, ExpiresAt: t0.Add(48 * time.Hour)}))
		live := "sess-" + randID(t)
		must(t, s.CreateSession(ctx(), live, &store.Session{UserID: u.ID, CreatedAt: t0, LastSeenAt: t0,
			IdleExpiresAt: t0.Add(72 * time.Hour), ExpiresAt: t0.Add(72 * time.Hour)}))
		n, err := s.DeleteExpired(ctx(), t0)
		must(t, err)
		if n != 0 {
			t.Fatalf("DeleteExpired(t0) = %d, want 0", n)
		}
		// After two hours: the code and the access token are gone.
		n, err = s.DeleteExpired(ctx(), t0.Add(2*time.Hour))
		must(t, err)
		if n != 2 {
			t.Fatalf("DeleteExpired(+2h) = %d, want 2", n)
		}
		// After 50 hours: the refresh token too; the grant and session live.
		n, err = s.DeleteExpired(ctx(), t0.Add(50*time.Hour))
		must(t, err)
		if n != 1 {
			t.Fatalf("DeleteExpired(+50h) = %d, want 1", n)
		}
		if _, err := s.GetSession(ctx(), live, t0.Add(50*time.Hour)); err != nil {
			t.Fatalf("live session deleted: %v", err)
		}
		// After 31 days: the grant and the session.
		n, err = s.DeleteExpired(ctx(), t0.Add(31*24*time.Hour))
		must(t, err)
		if n != 2 {
			t.Fatalf("DeleteExpired(+31d) = %d, want 2", n)
		}
	})
}

func TestRotateSigningKey(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, reopen func() store.Store) {
		gen := func(id string, at time.Time) func() (*store.SigningKey, error) {
			return func() (*store.SigningKey, error) {
				return &store.SigningKey{ID: id, Algorithm: "ES256", PrivateKey: []byte(id), CreatedAt: at}, nil
			}
		}
		// No key yet: one is made.
		rotated, err := s.RotateSigningKey(ctx(), t0, gen("k1", t0))
		must(t, err)
		if !rotated {
			t.Fatal("no key was created")
		}
		// Fresh enough: nothing happens.
		rotated, err = s.RotateSigningKey(ctx(), t0.Add(-time.Hour), gen("never", t0))
		must(t, err)
		if rotated {
			t.Fatal("rotated a fresh key")
		}
		// Old: a new key that activates later, the old one retired then.
		// Concurrent callers rotate once.
		var wg sync.WaitGroup
		var count atomic.Int32
		for i := range 10 {
			h := s
			if i%2 == 0 {
				h = reopen()
			}
			wg.Go(func() {
				r, err := h.RotateSigningKey(ctx(), t0.Add(time.Hour), gen("k2-"+randID(t), t0.Add(2*time.Hour)))
				if err != nil {
					t.Errorf("RotateSigningKey: %v", err)
				}
				if r {
					count.Add(1)
				}
			})
		}
		wg.Wait()
		if count.Load() != 1 {
			t.Fatalf("%d rotations, want 1", count.Load())
		}
		keys, err := s.SigningKeys(ctx())
		must(t, err)
		if len(keys) != 2 || !keys[0].RetiredAt.IsZero() || keys[1].ID != "k1" {
			t.Fatalf("keys = %+v", keys)
		}
		sameTime(t, "old key retired at the new key's start", keys[1].RetiredAt, keys[0].CreatedAt)
	})
}

func TestRevokedAccessTokens(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		u := newUser(t, s)
		g := newGrant(t, s, u, "c1")
		for i, exp := range []time.Duration{time.Hour, time.Hour, time.Minute} {
			must(t, s.RecordAccessToken(ctx(), &store.AccessToken{JTI: fmt.Sprintf("j%d", i), GrantID: g.ID, ClientID: "c1",
				UserID: u.ID, CreatedAt: t0, ExpiresAt: t0.Add(exp)}))
		}
		must(t, s.RevokeAccessToken(ctx(), "j0", t0.Add(time.Second)))
		must(t, s.RevokeAccessToken(ctx(), "j2", t0.Add(2*time.Second)))
		got, err := s.RevokedAccessTokens(ctx(), t0, t0.Add(10*time.Second))
		must(t, err)
		if len(got) != 2 || got[0].JTI != "j0" || got[1].JTI != "j2" {
			t.Fatalf("RevokedAccessTokens = %+v", got)
		}
		sameTime(t, "RevokedAt", got[0].RevokedAt, t0.Add(time.Second))
		// Only newer revocations, and only tokens not yet expired.
		got, err = s.RevokedAccessTokens(ctx(), t0.Add(2*time.Second), t0.Add(2*time.Minute))
		must(t, err)
		if len(got) != 0 {
			t.Fatalf("after j2 expired: %+v", got)
		}
		// Revoking the grant lists its remaining token.
		must(t, s.RevokeGrant(ctx(), g.ID, t0.Add(3*time.Second)))
		got, err = s.RevokedAccessTokens(ctx(), t0.Add(3*time.Second), t0.Add(3*time.Second))
		must(t, err)
		if len(got) != 1 || got[0].JTI != "j1" {
			t.Fatalf("after revoking the grant: %+v", got)
		}
	})
}
