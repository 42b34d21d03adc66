package caddymcp

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	"github.com/caddymcp/caddymcp/caddymcp/store"
)

func registerCommands() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "mcp-migrate",
		Usage: "[--database-env <VAR>] [--embedded-path <file>] [--timeout <duration>]",
		Short: "Applies caddymcp's database migrations and prints the schema version",
		Long: `
Applies the database migrations of caddymcp, the same ones the caddymcp app
applies when it starts, and prints the resulting schema version.

The PostgreSQL URL is read from the environment variable named by
--database-env (default CADDYMCP_DATABASE_URL), so that its password never
appears on a command line. When that variable is empty, the embedded store
is migrated: the file given by --embedded-path, or by default
caddymcp/caddymcp.db in Caddy's data directory.

Migrations are forward-only and run under a lock, so this is safe while
Caddy instances are running or starting.`,
		CobraFunc: func(cmd *cobra.Command) {
			storeFlags(cmd)
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdMigrate)
		},
	})
	registerTokenCommand()
	registerAdminCommands()
	registerDoctorCommand()
}

func cmdMigrate(fl caddycmd.Flags) (int, error) {
	return withStore(fl, func(ctx context.Context, s store.Store, describe string) error {
		v, err := s.SchemaVersion(ctx)
		if err != nil {
			return fmt.Errorf("reading the schema version of the %s: %w", describe, err)
		}
		fmt.Printf("%s: schema version %d\n", describe, v)
		return nil
	})
}

// openStoreFromFlags opens the store the command's flags name: PostgreSQL
// when the variable named by --database-env is set, else the embedded
// store at --embedded-path (default: the one in Caddy's data directory).
func openStoreFromFlags(fl caddycmd.Flags) (store.Store, string, error) {
	if dsn := os.Getenv(fl.String("database-env")); dsn != "" {
		pg, err := store.OpenPostgres(dsn, store.PostgresOptions{MaxConns: 2})
		if err != nil {
			return nil, "", err
		}
		return pg, "PostgreSQL store", nil
	}
	path := fl.String("embedded-path")
	if path == "" {
		path = filepath.Join(caddy.AppDataDir(), "caddymcp", "caddymcp.db")
	}
	e, err := store.OpenEmbedded(path)
	if err != nil {
		return nil, "", err
	}
	return e, "embedded store " + e.Path(), nil
}

// storeFlags adds the flags that choose the store.
func storeFlags(cmd *cobra.Command) {
	cmd.PersistentFlags().String("database-env", "CADDYMCP_DATABASE_URL", "Environment variable holding the PostgreSQL URL")
	cmd.PersistentFlags().String("embedded-path", "", "File of the embedded store (when no PostgreSQL URL is set)")
	cmd.PersistentFlags().Duration("timeout", time.Minute, "How long to wait for the database")
}
