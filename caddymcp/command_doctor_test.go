package caddymcp

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

// doctorArgs parses mcp-doctor's command line.
func doctorArgs(t *testing.T, args ...string) caddycmd.Flags {
	t.Helper()
	cmd := &cobra.Command{Use: "mcp-doctor"}
	doctorFlags(cmd)
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Args(cmd, cmd.Flags().Args()); err != nil {
		t.Fatal(err)
	}
	return caddycmd.Flags{FlagSet: cmd.Flags()}
}

func TestDoctorOptions(t *testing.T) {
	env := map[string]string{"MCP_TOKEN": "tok-value"}
	getenv := func(k string) string { return env[k] }

	opts, err := doctorOptions(doctorArgs(t, "https://h/mcp", "--token", "MCP_TOKEN", "--register", "--http-port", "0"), getenv)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Endpoint != "https://h/mcp" || opts.Token != "tok-value" || !opts.Register || opts.HTTPPort != -1 ||
		opts.Origin != "http://localhost:6274" || opts.Timeout.Seconds() != 10 || opts.RootCAs != nil {
		t.Errorf("options = %+v", opts)
	}

	const pasted = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
	_, err = doctorOptions(doctorArgs(t, "https://h/mcp", "--token", pasted), getenv)
	if err == nil || strings.Contains(err.Error(), pasted) || !strings.Contains(err.Error(), "not the token itself") {
		t.Errorf("a token given on the command line: %v", err)
	}
	if _, err = doctorOptions(doctorArgs(t, "https://h/mcp", "--token", "UNSET_VAR"), getenv); err == nil ||
		!strings.Contains(err.Error(), "UNSET_VAR") {
		t.Errorf("an unset variable: %v", err)
	}
	for _, args := range [][]string{
		{"https://h/mcp", "--timeout", "0s"},
		{"https://h/mcp", "--http-port", "70000"},
		{"https://h/mcp", "--ca-cert", filepath.Join(t.TempDir(), "missing.pem")},
	} {
		if _, err := doctorOptions(doctorArgs(t, args...), getenv); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	notPEM := filepath.Join(t.TempDir(), "x.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := doctorOptions(doctorArgs(t, "https://h/mcp", "--ca-cert", notPEM), getenv); err == nil {
		t.Error("a --ca-cert without a certificate was accepted")
	}
}

// TestRunDoctor runs the command's core against an unprotected endpoint
// trusted through --ca-cert: the report is written and the exit status
// says a check failed.
func TestRunDoctor(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "root.crt")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	fl := doctorArgs(t, srv.URL+"/mcp", "--ca-cert", ca, "--http-port", "0", "--json")
	var out bytes.Buffer
	code, err := runDoctor(context.Background(), fl, func(string) string { return "" }, &out, false)
	if code != 1 || err == nil || !strings.Contains(err.Error(), "failed") {
		t.Errorf("exit %d, %v", code, err)
	}
	var rep struct {
		OK     bool `json:"ok"`
		Checks []struct {
			ID       string `json:"id"`
			Severity string `json:"severity"`
		} `json:"checks"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	if rep.OK || len(rep.Checks) < 2 || rep.Checks[0].ID != "tls.certificate" || rep.Checks[0].Severity != "pass" ||
		rep.Checks[1].ID != "challenge.status" || rep.Checks[1].Severity != "fail" {
		t.Errorf("report:\n%s", out.String())
	}

	out.Reset()
	code, err = runDoctor(context.Background(), doctorArgs(t, srv.URL+"/mcp", "--ca-cert", ca, "--http-port", "0"),
		func(string) string { return "" }, &out, false)
	if code != 1 || err == nil || !strings.Contains(out.String(), "FAIL  challenge.status") || strings.Contains(out.String(), "\x1b[") {
		t.Errorf("text report (exit %d, %v):\n%s", code, err, out.String())
	}
}

func TestColourTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if colourTerminal(f, func(string) string { return "" }) {
		t.Error("a file is a terminal")
	}
}
