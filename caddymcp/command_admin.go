package caddymcp

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddymcp/caddymcp/caddymcp/signing"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// adminCommand is one subcommand of an admin command: its cobra settings
// and what it does with an open, migrated store.
type adminCommand struct {
	use, short string
	args       cobra.PositionalArgs
	flags      func(*cobra.Command)
	run        func(ctx context.Context, s store.Store, fl caddycmd.Flags, out io.Writer) error
}

// registerAdminCommand registers `caddy <name> <sub>…` with the store
// flags of mcp-migrate.
func registerAdminCommand(name, usage, short, long string, subs ...adminCommand) {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  name,
		Usage: usage,
		Short: short,
		Long:  long + storeFlagsHelp,
		CobraFunc: func(cmd *cobra.Command) {
			storeFlags(cmd)
			for _, sub := range subs {
				c := &cobra.Command{Use: sub.use, Short: sub.short, Args: sub.args}
				if sub.flags != nil {
					sub.flags(c)
				}
				run := sub.run
				c.RunE = caddycmd.WrapCommandFuncForCobra(func(fl caddycmd.Flags) (int, error) {
					return withStore(fl, func(ctx context.Context, s store.Store, _ string) error {
						return run(ctx, s, fl, os.Stdout)
					})
				})
				cmd.AddCommand(c)
			}
		},
	})
}

// storeFlagsHelp ends the long help of every admin command.
const storeFlagsHelp = `

The store is chosen as for mcp-migrate: PostgreSQL when the variable named
by --database-env (default CADDYMCP_DATABASE_URL) is set, else the embedded
store (--embedded-path, default caddymcp/caddymcp.db in Caddy's data
directory). Pending migrations are applied first.`

// registerAdminCommands registers the commands that inspect and revoke
// what the authorization server has stored: clients, users, grants,
// sign-in sessions and signing keys.
func registerAdminCommands() {
	registerAdminCommand("mcp-clients", "list|delete [flags]", "Lists and deletes OAuth clients", `
Lists the registered OAuth clients (dynamic registrations; static clients
live in the Caddyfile), and deletes one: its grants and their tokens are
revoked (every instance refuses its access tokens within seconds), its
codes and remembered consents go.

  caddy mcp-clients list [--limit 100]
  caddy mcp-clients delete <client_id>`,
		adminCommand{use: "list", short: "Lists clients", args: cobra.NoArgs, flags: limitFlag,
			run: listClients},
		adminCommand{use: "delete <client_id>", short: "Deletes a client and revokes its grants", args: cobra.ExactArgs(1),
			run: deleteClient},
	)
	registerAdminCommand("mcp-users", "list [--email <address>]", "Lists users", `
Lists the users who have signed in, or those with one email address, to
find the user id the other commands take.

  caddy mcp-users list [--email ada@example.com]`,
		adminCommand{use: "list", short: "Lists users", args: cobra.NoArgs, flags: emailFlag,
			run: listUsers},
	)
	registerAdminCommand("mcp-grants", "list|revoke [flags]", "Lists and revokes a user's grants", `
Lists a user's live grants (one per client authorization, with its
refresh tokens and access tokens), and revokes one grant or all of a
user's grants. Revoked access tokens are refused by every instance within
seconds. Revoking a grant also forgets the user's consent to its client,
so that the client's next authorization asks the user again; revoking
all of a user's grants forgets all their consents and ends their sign-in
sessions.

  caddy mcp-grants list --user <id|email>
  caddy mcp-grants revoke <grant_id>
  caddy mcp-grants revoke --user <id|email>`,
		adminCommand{use: "list", short: "Lists a user's grants", args: cobra.NoArgs, flags: userFlag,
			run: listGrants},
		adminCommand{use: "revoke [<grant_id>]", short: "Revokes a grant, or all of a user's", args: cobra.MaximumNArgs(1), flags: userFlag,
			run: revokeGrants},
	)
	registerAdminCommand("mcp-sessions", "list|revoke --user <id|email>", "Lists and ends a user's sign-in sessions", `
Lists a user's sign-in sessions (the browser sessions of the consent
pages), and ends them all, so that the next authorization asks the user
to sign in again. Issued tokens are not affected: use mcp-grants revoke.

  caddy mcp-sessions list --user <id|email>
  caddy mcp-sessions revoke --user <id|email>`,
		adminCommand{use: "list", short: "Lists a user's sessions", args: cobra.NoArgs, flags: userFlag,
			run: listSessions},
		adminCommand{use: "revoke", short: "Ends all of a user's sessions", args: cobra.NoArgs, flags: userFlag,
			run: endSessions},
	)
	registerAdminCommand("mcp-keys", "list|rotate [flags]", "Lists and rotates the signing keys", `
Lists the access-token signing keys, and rotates them: a new key is made
and published at once; it starts signing after 15 minutes, when every
instance (reloading keys every 5 minutes) knows it, and the old key is
then retired, still verifying the tokens it signed for a day.

With --compromised the new key signs at once and the old keys stop
verifying: every access token they signed is refused (clients refresh,
or authorize again). Instances pick the change up within 5 minutes; run
'caddy reload' on each for an immediate switch.

When the keys are encrypted at rest (key_encryption_key), pass the same
secret through the environment variable named by
--key-encryption-key-env.

  caddy mcp-keys list
  caddy mcp-keys rotate [--algorithm ES256|RS256|EdDSA] [--compromised] [--key-encryption-key-env VAR]`,
		adminCommand{use: "list", short: "Lists the signing keys", args: cobra.NoArgs,
			run: listKeys},
		adminCommand{use: "rotate", short: "Rotates the signing key", args: cobra.NoArgs, flags: rotateFlags,
			run: rotateKeys},
	)
}

// limitFlag declares --limit of mcp-clients list.
func limitFlag(c *cobra.Command) { c.Flags().Int("limit", 1000, "Most clients to list") }

// emailFlag declares --email of mcp-users list.
func emailFlag(c *cobra.Command) { c.Flags().String("email", "", "Only users with this email address") }

// userFlag declares --user of the subcommands that act on one user.
func userFlag(c *cobra.Command) {
	c.Flags().String("user", "", "User id, or email address of exactly one user (required)")
}

// rotateFlags declares the flags of mcp-keys rotate.
func rotateFlags(c *cobra.Command) {
	c.Flags().String("algorithm", "", "Algorithm of the new key (default: that of the newest key)")
	c.Flags().Bool("compromised", false, "Sign with the new key at once and stop trusting the old ones")
	c.Flags().String("key-encryption-key-env", "", "Environment variable holding the key-encryption secret")
}

// listClients prints the registered clients.
func listClients(ctx context.Context, s store.Store, fl caddycmd.Flags, out io.Writer) error {
	limit := fl.Int("limit")
	var all []store.Client
	after := ""
	for len(all) < limit {
		page, err := s.ListClients(ctx, after, min(100, limit-len(all)))
		if err != nil {
			return err
		}
		all = append(all, page...)
		if len(page) == 0 {
			break
		}
		after = page[len(page)-1].ID
	}
	return table(out, []string{"CLIENT", "NAME", "AUTH", "REDIRECT URIS", "CREATED", "LAST USED"}, len(all), func(i int) []string {
		c := all[i]
		return []string{c.ID, c.Name, c.TokenEndpointAuthMethod, strings.Join(c.RedirectURIs, " "), stamp(c.CreatedAt), stamp(c.LastUsedAt)}
	})
}

// deleteClient deletes a registered client and revokes its grants.
func deleteClient(ctx context.Context, s store.Store, fl caddycmd.Flags, out io.Writer) error {
	id := fl.Arg(0)
	if err := s.DeleteClient(ctx, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no registered client %q", id)
		}
		return err
	}
	fmt.Fprintf(out, "deleted client %s and revoked its grants\n", id)
	return nil
}

// listUsers prints the users, or those with the --email address.
func listUsers(ctx context.Context, s store.Store, fl caddycmd.Flags, out io.Writer) error {
	users, err := s.FindUsers(ctx, fl.String("email"), 10000)
	if err != nil {
		return err
	}
	return table(out, []string{"ID", "EMAIL", "NAME", "PROVIDER", "LAST LOGIN"}, len(users), func(i int) []string {
		u := users[i]
		return []string{u.ID, u.Email, u.Name, u.Provider, stamp(u.LastLoginAt)}
	})
}

// listGrants prints the live grants of --user.
func listGrants(ctx context.Context, s store.Store, fl caddycmd.Flags, out io.Writer) error {
	u, err := resolveUser(ctx, s, fl.String("user"))
	if err != nil {
		return err
	}
	grants, err := s.ListGrantsByUser(ctx, u.ID, time.Now())
	if err != nil {
		return err
	}
	return table(out, []string{"GRANT", "CLIENT", "SCOPE", "RESOURCE", "CREATED", "EXPIRES"}, len(grants), func(i int) []string {
		g := grants[i]
		return []string{g.ID, g.ClientID, g.Scope, g.Resource, stamp(g.CreatedAt), stamp(g.ExpiresAt)}
	})
}

// revokeGrants revokes one grant, or every grant and session of --user.
func revokeGrants(ctx context.Context, s store.Store, fl caddycmd.Flags, out io.Writer) error {
	id, user := fl.Arg(0), fl.String("user")
	now := time.Now()
	switch {
	case id != "" && user != "":
		return errors.New("give a grant id or --user, not both")
	case id != "":
		g, err := s.GetGrant(ctx, id)
		if err == nil {
			// Through the user's own revocation: the consent to the client
			// goes with the grant, so its next authorization asks again.
			g, err = s.RevokeUserGrant(ctx, g.UserID, id, now)
		}
		switch {
		case errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("no grant %q", id)
		case err != nil:
			return err
		case !g.RevokedAt.IsZero():
			fmt.Fprintf(out, "grant %s was already revoked\n", id)
		default:
			fmt.Fprintf(out, "revoked grant %s and forgot the consent of %s to %s\n", id, g.UserID, g.ClientID)
		}
		return nil
	case user == "":
		return errors.New("give a grant id or --user")
	}
	u, err := resolveUser(ctx, s, user)
	if err != nil {
		return err
	}
	grants, err := s.ListGrantsByUser(ctx, u.ID, now)
	if err != nil {
		return err
	}
	for _, g := range grants {
		if _, err := s.RevokeUserGrant(ctx, u.ID, g.ID, now); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("revoking grant %s: %w", g.ID, err)
		}
	}
	// Consents whose grants have expired, or were never redeemed, go too.
	consents, err := s.ListConsentsByUser(ctx, u.ID)
	if err != nil {
		return err
	}
	for _, c := range consents {
		if err := s.DeleteConsent(ctx, u.ID, c.ClientID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("forgetting the consent to %s: %w", c.ClientID, err)
		}
	}
	n, err := s.DeleteSessionsByUser(ctx, u.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "revoked %d grants and ended %d sessions of %s; every application must be approved again\n", len(grants), n, u.ID)
	return nil
}

// listSessions prints the live sign-in sessions of --user.
func listSessions(ctx context.Context, s store.Store, fl caddycmd.Flags, out io.Writer) error {
	u, err := resolveUser(ctx, s, fl.String("user"))
	if err != nil {
		return err
	}
	sessions, err := s.ListSessionsByUser(ctx, u.ID, time.Now())
	if err != nil {
		return err
	}
	return table(out, []string{"CREATED", "LAST SEEN", "EXPIRES", "ADDRESS", "USER AGENT"}, len(sessions), func(i int) []string {
		se := sessions[i]
		return []string{stamp(se.CreatedAt), stamp(se.LastSeenAt), stamp(se.ExpiresAt), se.RemoteAddr, se.UserAgent}
	})
}

// endSessions ends every sign-in session of --user; issued tokens stay
// valid (mcp-grants revoke revokes those).
func endSessions(ctx context.Context, s store.Store, fl caddycmd.Flags, out io.Writer) error {
	u, err := resolveUser(ctx, s, fl.String("user"))
	if err != nil {
		return err
	}
	n, err := s.DeleteSessionsByUser(ctx, u.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "ended %d sessions of %s\n", n, u.ID)
	return nil
}

// resolveUser finds a user by id, or by an email address that exactly
// one user has.
func resolveUser(ctx context.Context, s store.Users, ref string) (*store.User, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return nil, errors.New("--user is required (a user id or an email address)")
	}
	u, err := s.GetUser(ctx, ref)
	if err == nil {
		return u, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if !strings.Contains(ref, "@") {
		return nil, fmt.Errorf("no user with id %q", ref)
	}
	users, err := s.FindUsers(ctx, ref, 10)
	if err != nil {
		return nil, err
	}
	switch len(users) {
	case 0:
		return nil, fmt.Errorf("no user with email %q", ref)
	case 1:
		return &users[0], nil
	}
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID + " (" + u.Provider + ")"
	}
	return nil, fmt.Errorf("%d users have email %q; pass one of their ids: %s", len(users), ref, strings.Join(ids, ", "))
}

// listKeys prints the signing keys with their state now.
func listKeys(ctx context.Context, s store.Store, _ caddycmd.Flags, out io.Writer) error {
	keys, err := s.SigningKeys(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	return table(out, []string{"KID", "ALGORITHM", "CREATED", "RETIRED", "STATE", "ENCRYPTED"}, len(keys), func(i int) []string {
		k := keys[i]
		return []string{k.ID, k.Algorithm, stamp(k.CreatedAt), stamp(k.RetiredAt), keyState(k, now), fmt.Sprint(isSealed(k))}
	})
}

// rotateKeys makes a new signing key and retires the others.
func rotateKeys(ctx context.Context, s store.Store, fl caddycmd.Flags, out io.Writer) error {
	kek := ""
	if name := fl.String("key-encryption-key-env"); name != "" {
		if kek = os.Getenv(name); kek == "" {
			return fmt.Errorf("the environment variable %s is empty", name)
		}
	}
	rot, err := signing.NewManager(s, rand.Reader, time.Now).Rotate(ctx, signing.Policy{KEK: kek, Algorithm: fl.String("algorithm")}, fl.Bool("compromised"))
	if err != nil {
		return err
	}
	if fl.Bool("compromised") {
		fmt.Fprintf(out, "rotated: a new %s key signs now; %d old keys no longer verify (instances reload keys within %s)\n", rot.Algorithm, rot.Withdrawn, signing.ReloadInterval)
		return nil
	}
	fmt.Fprintf(out, "rotated: a new %s key is published now and signs from %s; the old key verifies for a day after\n", rot.Algorithm, rot.SignsFrom.UTC().Format(time.RFC3339))
	return nil
}

// isSealed reports whether a stored private key is encrypted.
func isSealed(k store.SigningKey) bool { return signing.IsSealedKey(k.PrivateKey) }

// keyState describes a key's role at now.
func keyState(k store.SigningKey, now time.Time) string {
	switch {
	case !k.RetiredAt.IsZero() && !now.Before(k.RetiredAt.Add(signing.RetiredKeyGrace)):
		return "withdrawn"
	case !k.RetiredAt.IsZero() && !now.Before(k.RetiredAt):
		return "retired (verifies)"
	case k.CreatedAt.After(now):
		return "published (signs from " + stamp(k.CreatedAt) + ")"
	}
	return "active"
}

// stamp formats a time for a table; "-" for none.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// table prints rows under a header, aligned.
func table(out io.Writer, header []string, n int, row func(int) []string) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for i := range n {
		fmt.Fprintln(tw, strings.Join(row(i), "\t"))
	}
	return tw.Flush()
}
