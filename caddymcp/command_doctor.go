package caddymcp

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"time"

	"github.com/spf13/cobra"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	"github.com/caddymcp/caddymcp/caddymcp/doctor"
)

func registerDoctorCommand() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "mcp-doctor",
		Usage: "<url> [--json] [--register] [--token <VAR>] [--ca-cert <file>] [--insecure] [--timeout <duration>] [--http-port <port>] [--origin <origin>]",
		Short: "Checks a running MCP host the way MCP clients see it",
		Long: `
Checks a running MCP host from the outside, reading it the way MCP clients
(Claude, Cursor, VS Code, MCP Inspector, the MCP SDKs) do, and prints what
would break which client. <url> is the MCP endpoint, for example
https://mcp.example.com/mcp. The host may be any MCP server, not only one
served by this Caddy.

Checked: the 401 challenge of an unauthenticated initialize request
(Bearer first, resource_metadata, scope, JSON body); CORS for browser
clients (preflight, WWW-Authenticate exposed, metadata readable); the
protected resource metadata at the challenge's URL and at both well-known
URLs (same document, resource equal to the endpoint, authorization
servers, bearer methods, scopes); for each authorization server its
RFC 8414 metadata (issuer byte-identical, https endpoints, PKCE S256,
response and grant types, the "none" auth method, registration, CIMD,
scopes) and its JWKS; the TLS certificate and the HTTP to HTTPS redirect.

--register also registers a public client with a loopback redirect URI
and checks that the authorization endpoint accepts another loopback port.
It creates a client on the host (delete it with mcp-clients delete).

--token <VAR> reads an access token from the environment variable VAR
(never from the command line) and checks an authenticated tools/list, the
tools' _meta.scope, and the 403 insufficient_scope challenge of a
read-only tool the token lacks the scope for. Tokens are never printed.

Each check is PASS, INFO, WARN or FAIL; warnings and failures name the
clients affected and the fix. The exit status is 0 when nothing failed, 1
otherwise. --json prints the report as JSON.

--ca-cert trusts a private CA besides the system roots, e.g. Caddy's
local CA (pki/authorities/local/root.crt in Caddy's data directory).
--http-port is the port whose redirect to HTTPS is checked (default 80;
0 skips it).`,
		CobraFunc: func(cmd *cobra.Command) {
			doctorFlags(cmd)
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(func(fl caddycmd.Flags) (int, error) {
				return runDoctor(context.Background(), fl, os.Getenv, os.Stdout, colourTerminal(os.Stdout, os.Getenv))
			})
		},
	})
}

// doctorFlags declares the arguments and flags of mcp-doctor.
func doctorFlags(cmd *cobra.Command) {
	cmd.Args = cobra.ExactArgs(1)
	f := cmd.Flags()
	f.Bool("json", false, "Print the report as JSON")
	f.Bool("register", false, "Register a client to check dynamic registration (creates a client)")
	f.String("token", "", "Environment variable holding an access token for the authenticated checks")
	f.String("ca-cert", "", "PEM file of a CA to trust besides the system roots")
	f.Bool("insecure", false, "Do not verify TLS certificates")
	f.Duration("timeout", 10*time.Second, "Timeout of each request")
	f.Int("http-port", 80, "Port of the plain-HTTP listener whose redirect is checked (0: skip)")
	f.String("origin", "http://localhost:6274", "Browser origin sent in the CORS checks (MCP Inspector's)")
}

// envName is the shape of an environment variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// runDoctor runs the doctor with the command's flags and writes the
// report to out.
func runDoctor(ctx context.Context, fl caddycmd.Flags, getenv func(string) string, out io.Writer, colour bool) (int, error) {
	opts, err := doctorOptions(fl, getenv)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	rep, err := doctor.Run(ctx, opts)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	if fl.Bool("json") {
		err = rep.WriteJSON(out)
	} else {
		err = rep.WriteText(out, colour)
	}
	if err != nil {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("writing the report: %w", err)
	}
	if n := rep.Count(doctor.SeverityFail); n > 0 {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("%d check(s) failed", n)
	}
	return caddy.ExitCodeSuccess, nil
}

// doctorOptions turns the flags into doctor options.
func doctorOptions(fl caddycmd.Flags, getenv func(string) string) (doctor.Options, error) {
	opts := doctor.Options{
		Endpoint: fl.Arg(0),
		Timeout:  fl.Duration("timeout"),
		Insecure: fl.Bool("insecure"),
		Register: fl.Bool("register"),
		Origin:   fl.String("origin"),
		HTTPPort: fl.Int("http-port"),
	}
	if opts.Timeout <= 0 {
		return opts, errors.New("--timeout must be positive")
	}
	switch {
	case opts.HTTPPort == 0:
		opts.HTTPPort = -1 // skip the redirect check
	case opts.HTTPPort < 0 || opts.HTTPPort > 65535:
		return opts, errors.New("--http-port must be a port number, or 0 to skip the redirect check")
	}
	if name := fl.String("token"); name != "" {
		if !envName.MatchString(name) {
			// Never echo it: it may be the token itself.
			return opts, errors.New("--token takes the name of an environment variable holding the token (e.g. --token MCP_TOKEN), not the token itself")
		}
		opts.Token = getenv(name)
		if opts.Token == "" {
			return opts, fmt.Errorf("the environment variable %s named by --token is empty or not set", name)
		}
	}
	if file := fl.String("ca-cert"); file != "" {
		pem, err := os.ReadFile(file)
		if err != nil {
			return opts, fmt.Errorf("reading --ca-cert: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return opts, fmt.Errorf("--ca-cert %s holds no PEM certificate", file)
		}
		opts.RootCAs = pool
	}
	return opts, nil
}

// colourTerminal reports whether f is a terminal that should get colours
// (not when NO_COLOR is set or TERM is dumb).
func colourTerminal(f *os.File, getenv func(string) string) bool {
	if getenv("NO_COLOR") != "" || getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
