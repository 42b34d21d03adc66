//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testflow"
)

// doctorCheck is one check of `caddy mcp-doctor --json`.
type doctorCheck struct {
	ID       string   `json:"id"`
	Subject  string   `json:"subject"`
	Severity string   `json:"severity"`
	Summary  string   `json:"summary"`
	Detail   string   `json:"detail"`
	Clients  []string `json:"clients"`
	Fix      string   `json:"fix"`
}

// doctorReport is the JSON report.
type doctorReport struct {
	Endpoint string         `json:"endpoint"`
	OK       bool           `json:"ok"`
	Counts   map[string]int `json:"counts"`
	Checks   []doctorCheck  `json:"checks"`
}

// severity returns the severity of the check with id, "" when absent.
func (r doctorReport) severity(id string) string {
	for _, c := range r.Checks {
		if c.ID == id {
			return c.Severity
		}
	}
	return ""
}

func (r doctorReport) check(id string) doctorCheck {
	for _, c := range r.Checks {
		if c.ID == id {
			return c
		}
	}
	return doctorCheck{}
}

// doctor runs `caddy mcp-doctor <endpoint> args…` and returns its
// standard output, standard error and exit status.
func (in *instance) doctor(args ...string) (stdout, stderr string, code int) {
	in.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, in.bin, append([]string{"mcp-doctor", in.base() + "/mcp"}, args...)...)
	cmd.Env = in.env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		in.t.Fatalf("running mcp-doctor: %v", err)
	}
	return out.String(), errOut.String(), code
}

// doctorJSON runs the doctor with --json and the host's CA and decodes
// the report.
func (in *instance) doctorJSON(args ...string) (doctorReport, int) {
	in.t.Helper()
	args = append([]string{"--json", "--ca-cert", in.rootCA(), "--http-port", fmt.Sprint(in.httpPort)}, args...)
	stdout, stderr, code := in.doctor(args...)
	var rep doctorReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		in.t.Fatalf("mcp-doctor --json printed no JSON report (%v; exit %d):\n%s\n%s", err, code, stdout, stderr)
	}
	return rep, code
}

func logReport(t *testing.T, rep doctorReport) {
	t.Helper()
	var b strings.Builder
	for _, c := range rep.Checks {
		fmt.Fprintf(&b, "%-5s %-30s %s", strings.ToUpper(c.Severity), c.ID, c.Summary)
		if c.Detail != "" {
			fmt.Fprintf(&b, " [%s]", c.Detail)
		}
		b.WriteString("\n")
	}
	t.Logf("report for %s:\n%s", rep.Endpoint, b.String())
}

// TestDoctorExample runs `caddy mcp-doctor` against a host running
// Caddyfile.example: every check passes, also with the registration dry
// run; without the local CA the certificate check fails.
func TestDoctorExample(t *testing.T) {
	in := newInstance(t, exampleText(t))
	in.start()

	stdout, stderr, code := in.doctor("--ca-cert", in.rootCA(), "--http-port", fmt.Sprint(in.httpPort))
	t.Logf("caddy mcp-doctor %s/mcp --ca-cert …:\n%s", in.base(), stdout)
	if code != 0 {
		t.Fatalf("exit %d on the example host:\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"PASS  as.issuer", "PASS  prm.resource", "PASS  challenge.resource_metadata", "\nOK: "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("text report lacks %q", want)
		}
	}
	if strings.Contains(stdout, "\x1b[") {
		t.Error("colours in a report written to a pipe")
	}

	rep, code := in.doctorJSON("--register")
	logReport(t, rep)
	if code != 0 || !rep.OK || rep.Counts["fail"] != 0 {
		t.Fatalf("exit %d, ok %v, %d failed", code, rep.OK, rep.Counts["fail"])
	}
	if rep.Endpoint != in.base()+"/mcp" {
		t.Errorf("endpoint %q", rep.Endpoint)
	}
	for _, id := range []string{
		"tls.certificate", "challenge.status", "challenge.www_authenticate", "challenge.resource_metadata", "challenge.scope",
		"challenge.body", "cors.preflight", "cors.expose_www_authenticate", "cors.metadata",
		"prm.header", "prm.path", "prm.root", "prm.consistent", "prm.resource", "prm.authorization_servers",
		"prm.bearer_methods", "prm.scopes", "as.metadata", "as.issuer", "as.endpoints", "as.pkce", "as.response_types",
		"as.grant_types", "as.auth_method_none", "as.registration", "as.scopes", "as.jwks",
		"register.client", "register.public", "register.redirect_uris", "register.loopback_port",
	} {
		if got := rep.severity(id); got != "pass" {
			t.Errorf("%s = %q, want pass: %+v", id, got, rep.check(id))
		}
	}
	if c := rep.check("tls.http_redirect"); c.Severity != "info" || !strings.Contains(c.Summary, "redirects to HTTPS") {
		t.Errorf("tls.http_redirect = %+v", c)
	}
	// The client the dry run registered is a real one.
	id := strings.Fields(rep.check("register.client").Summary)[2]
	out, err := in.run("mcp-clients", "list")
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, "http://127.0.0.1/callback") {
		t.Errorf("mcp-clients list after --register (%v):\n%s", err, out)
	}

	// Without Caddy's local CA the host cannot be trusted.
	stdout, stderr, code = in.doctor("--json", "--http-port", "0")
	var untrusted doctorReport
	if err := json.Unmarshal([]byte(stdout), &untrusted); err != nil || code != 1 ||
		untrusted.severity("tls.certificate") != "fail" || len(untrusted.Checks) != 1 {
		t.Errorf("without --ca-cert: exit %d (%v)\n%s\n%s", code, err, stdout, stderr)
	}
	if !strings.Contains(stderr, "1 check(s) failed") {
		t.Errorf("stderr does not say a check failed:\n%s", stderr)
	}
}

// TestDoctorToken checks the authenticated part with a real access token
// from the authorization flow, passed by environment variable: tools/list,
// the tools' scopes, and the 403 step-up challenge of a read-only tool
// the token may not call. The token never appears in the output.
func TestDoctorToken(t *testing.T) {
	in, b := startLoginHost(t)
	base := in.base()
	clientID := b.Register(base, "doctor e2e", resilRedirect)
	q := testflow.NewRequest(base, clientID, resilRedirect, "booking:read product:read", base+"/mcp")
	tokens := b.Redeem(q, b.Approve(q, b.ConsentPage(q)))

	in.env = append(in.env, "DOCTOR_E2E_TOKEN="+tokens.AccessToken)
	rep, code := in.doctorJSON("--token", "DOCTOR_E2E_TOKEN")
	logReport(t, rep)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for id, want := range map[string]string{"token.tools_list": "pass", "token.meta_scope": "pass", "token.step_up": "pass", "token.scopes": "info"} {
		if got := rep.severity(id); got != want {
			t.Errorf("%s = %q, want %q: %+v", id, got, want, rep.check(id))
		}
	}
	if s := rep.check("token.scopes").Summary; s != "token scopes: booking:read product:read" {
		t.Errorf("token.scopes = %q", s)
	}
	stdout, stderr, _ := in.doctor("--ca-cert", in.rootCA(), "--http-port", "0", "--token", "DOCTOR_E2E_TOKEN")
	if strings.Contains(stdout+stderr, tokens.AccessToken) {
		t.Error("mcp-doctor printed the token")
	}
	_, stderr, code = in.doctor("--token", tokens.AccessToken)
	if code != 1 || strings.Contains(stderr, tokens.AccessToken) || !strings.Contains(stderr, "not the token itself") {
		t.Errorf("a token on the command line: exit %d\n%s", code, stderr)
	}
}

// TestDoctorBrokenHosts runs the doctor against broken variants of
// Caddyfile.example and expects the specific failure.
func TestDoctorBrokenHosts(t *testing.T) {
	tests := []struct {
		name, old, new string
		fails          map[string]string // check id → text in its summary or detail
		others         map[string]string // check id → severity
	}{
		{
			name:   "issuer on another host than the authorization_servers entry",
			old:    "\n\tmcp_oauth {\n",
			new:    "\n\tmcp_oauth {\n\t\tissuer https://127.0.0.1:{$CADDYMCP_HTTPS_PORT}\n",
			fails:  map[string]string{"as.issuer": "has host 127.0.0.1, not localhost"},
			others: map[string]string{"prm.resource": "pass", "as.metadata": "pass", "as.pkce": "pass"},
		},
		{
			name:   "protected resource metadata not routed",
			old:    "\tmcp_bearer /mcp* {\n\t\tresource_name \"caddymcp example\"\n\t}\n",
			new:    "\thandle /mcp* {\n\t\tmcp_bearer /mcp*\n\t\tmcp_tools\n\t}\n",
			fails:  map[string]string{"prm.header": "empty body", "prm.path": "empty body"},
			others: map[string]string{"prm.root": "warn", "as.skipped": "info", "as.issuer": ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			example := exampleText(t)
			config := strings.Replace(example, tt.old, tt.new, 1)
			if config == example {
				t.Fatalf("Caddyfile.example no longer contains %q", tt.old)
			}
			in := newInstance(t, config)
			in.start()
			rep, code := in.doctorJSON()
			logReport(t, rep)
			if code != 1 || rep.OK {
				t.Fatalf("exit %d, ok %v on a broken host", code, rep.OK)
			}
			for id, text := range tt.fails {
				c := rep.check(id)
				if c.Severity != "fail" || !strings.Contains(c.Summary+" "+c.Detail, text) || c.Fix == "" || len(c.Clients) == 0 {
					t.Errorf("%s = %+v, want a failure mentioning %q with clients and a fix", id, c, text)
				}
			}
			for id, want := range tt.others {
				if got := rep.severity(id); got != want {
					t.Errorf("%s = %q, want %q", id, got, want)
				}
			}
		})
	}
}
