package caddymcp

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddymcp/caddymcp/caddymcp/bearer"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// legacyTokenPrefix starts every legacy token this command creates.
const legacyTokenPrefix = "mcpat_"

func registerTokenCommand() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "mcp-token",
		Usage: "create|list|revoke [flags]",
		Short: "Creates, lists and revokes legacy opaque access tokens",
		Long: `
Manages the opaque access tokens of the system that predates OAuth, which
mcp_bearer accepts where its legacy_tokens option is on. Each has a user,
scopes and an expiry, and is stored only as a SHA-256 hash.

  caddy mcp-token create --user <id> --scope "<scope...>" [--expires 720h] [--name <text>] [--token-stdin]
  caddy mcp-token list [--user <id>]
  caddy mcp-token revoke <id>

create prints the new token alone on standard output (details go to
standard error), so that it can be captured; it is shown only once. With
--token-stdin the token is read from standard input instead of generated,
to carry over a token of the old system.

The store is chosen as for mcp-migrate: PostgreSQL when the variable named
by --database-env (default CADDYMCP_DATABASE_URL) is set, else the embedded
store. Pending migrations are applied first.`,
		CobraFunc: func(cmd *cobra.Command) {
			storeFlags(cmd)
			create := &cobra.Command{Use: "create", Short: "Creates a token and prints it", Args: cobra.NoArgs}
			create.Flags().String("user", "", "User id the token speaks for (required)")
			create.Flags().String("scope", "", "Space- or comma-separated scopes (required)")
			create.Flags().Duration("expires", 90*24*time.Hour, "Lifetime of the token")
			create.Flags().String("name", "", "What or who uses the token")
			create.Flags().Bool("token-stdin", false, "Read the token from standard input instead of generating one")
			create.RunE = caddycmd.WrapCommandFuncForCobra(func(fl caddycmd.Flags) (int, error) {
				return withStore(fl, func(ctx context.Context, s store.Store, _ string) error {
					return createLegacyToken(ctx, s, fl, os.Stdin, os.Stdout, os.Stderr)
				})
			})
			list := &cobra.Command{Use: "list", Short: "Lists tokens", Args: cobra.NoArgs}
			list.Flags().String("user", "", "Only the tokens of this user")
			list.RunE = caddycmd.WrapCommandFuncForCobra(func(fl caddycmd.Flags) (int, error) {
				return withStore(fl, func(ctx context.Context, s store.Store, _ string) error {
					return listLegacyTokens(ctx, s, fl.String("user"), os.Stdout)
				})
			})
			revoke := &cobra.Command{Use: "revoke <id>", Short: "Revokes a token", Args: cobra.ExactArgs(1)}
			revoke.RunE = caddycmd.WrapCommandFuncForCobra(func(fl caddycmd.Flags) (int, error) {
				return withStore(fl, func(ctx context.Context, s store.Store, _ string) error {
					return revokeLegacyToken(ctx, s, fl.Arg(0), os.Stderr)
				})
			})
			cmd.AddCommand(create, list, revoke)
		},
	})
}

// withStore opens and migrates the store the flags name, runs fn with it
// and its description, and closes it.
func withStore(fl caddycmd.Flags, fn func(ctx context.Context, s store.Store, describe string) error) (int, error) {
	timeout := fl.Duration("timeout")
	if timeout <= 0 {
		return caddy.ExitCodeFailedStartup, errors.New("--timeout must be positive")
	}
	s, describe, err := openStoreFromFlags(fl)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, err := s.Migrate(ctx); err != nil {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("migrating the %s: %w", describe, err)
	}
	if err := fn(ctx, s, describe); err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	return caddy.ExitCodeSuccess, nil
}

// createLegacyToken creates a token from the create flags and prints it.
func createLegacyToken(ctx context.Context, s store.LegacyTokens, fl caddycmd.Flags, stdin io.Reader, stdout, stderr io.Writer) error {
	user := strings.TrimSpace(fl.String("user"))
	if user == "" {
		return errors.New("--user is required")
	}
	scopes := strings.FieldsFunc(fl.String("scope"), func(r rune) bool { return r == ' ' || r == ',' })
	if len(scopes) == 0 {
		return errors.New("--scope is required, e.g. --scope \"product:read order:read\"")
	}
	if err := validateScopes(scopes); err != nil {
		return err
	}
	lifetime := fl.Duration("expires")
	if lifetime <= 0 {
		return errors.New("--expires must be positive")
	}
	token, err := legacyTokenValue(fl.Bool("token-stdin"), stdin)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	lt := &store.LegacyToken{ID: "lt_" + randomString(9), UserID: user, Scope: strings.Join(scopes, " "),
		Name: fl.String("name"), CreatedAt: now, ExpiresAt: now.Add(lifetime)}
	if err := s.CreateLegacyToken(ctx, token, lt); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return errors.New("that token is already stored")
		}
		return err
	}
	fmt.Fprintf(stderr, "created legacy token %s for %s, scope %q, expires %s\n", lt.ID, lt.UserID, lt.Scope, lt.ExpiresAt.Format(time.RFC3339))
	fmt.Fprintln(stdout, token)
	return nil
}

// legacyTokenValue generates a token, or reads one from stdin: a single
// line of at least 20 characters allowed in a bearer token (RFC 6750
// §2.1), which is not a JWT.
func legacyTokenValue(fromStdin bool, stdin io.Reader) (string, error) {
	if !fromStdin {
		return legacyTokenPrefix + randomString(32), nil
	}
	b, err := io.ReadAll(io.LimitReader(stdin, 4097))
	if err != nil {
		return "", fmt.Errorf("reading the token: %w", err)
	}
	token := strings.TrimRight(string(b), "\r\n")
	switch {
	case len(token) < 20 || len(token) > 4096:
		return "", errors.New("the token on standard input must be 20 to 4096 characters long")
	case strings.Count(token, ".") == 2:
		return "", errors.New("the token on standard input looks like a JWT; legacy tokens are opaque")
	}
	for _, c := range token {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-._~+/=", c)) {
			return "", fmt.Errorf("the token on standard input has a character not allowed in a bearer token: %q", c)
		}
	}
	return token, nil
}

// revokeLegacyToken revokes the unrevoked token id. The confirmation goes
// to stderr, as create's details do, so that standard output carries only
// what a script captures.
func revokeLegacyToken(ctx context.Context, s store.LegacyTokens, id string, stderr io.Writer) error {
	if err := s.RevokeLegacyToken(ctx, id, time.Now()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no unrevoked token with id %q", id)
		}
		return err
	}
	fmt.Fprintf(stderr, "revoked %s; every instance refuses it within %s\n", id, bearer.LegacyCacheTTL)
	return nil
}

// randomString returns n random bytes, base64url-encoded.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

// listLegacyTokens prints a table of tokens.
func listLegacyTokens(ctx context.Context, s store.LegacyTokens, user string, out io.Writer) error {
	list, err := s.ListLegacyTokens(ctx, user)
	if err != nil {
		return err
	}
	now := time.Now()
	return table(out, []string{"ID", "USER", "SCOPE", "NAME", "CREATED", "EXPIRES", "STATUS"}, len(list), func(i int) []string {
		t := list[i]
		status := "active"
		switch {
		case !t.RevokedAt.IsZero():
			status = "revoked " + stamp(t.RevokedAt)
		case !now.Before(t.ExpiresAt):
			status = "expired"
		}
		return []string{t.ID, t.UserID, t.Scope, t.Name, stamp(t.CreatedAt), stamp(t.ExpiresAt), status}
	})
}
