// Package doctor checks a running MCP host from the outside, the way MCP
// clients (Claude, Cursor, VS Code, MCP Inspector, the MCP SDKs) read it:
// the 401 challenge of the MCP endpoint, CORS for browser clients, the
// protected resource metadata (RFC 9728), the authorization server
// metadata (RFC 8414) and its keys, optionally a dynamic registration
// (RFC 7591) and an authenticated tools/list, and the TLS certificate.
// Each finding is a Check with a severity, the clients it breaks and the
// fix.
//
// It speaks plain HTTP and imports no other caddymcp package and not
// Caddy; the caddy mcp-doctor command is a thin adapter over Run.
package doctor

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Severity is the outcome of a check.
type Severity string

// The severities, from best to worst. Only SeverityFail makes a report
// fail.
const (
	// SeverityPass: the host does what clients need.
	SeverityPass Severity = "pass"
	// SeverityInfo: a fact worth knowing, neither good nor bad.
	SeverityInfo Severity = "info"
	// SeverityWarn: works for most clients, but some lose a feature or a
	// future client may break.
	SeverityWarn Severity = "warn"
	// SeverityFail: at least one client cannot connect.
	SeverityFail Severity = "fail"
)

// Check is one finding.
type Check struct {
	// ID names the check, "<group>.<name>" (e.g. "as.issuer"); stable
	// across versions, for scripts.
	ID string `json:"id"`
	// Group is the part of the host checked: tls, challenge, cors, prm,
	// as, register or token.
	Group string `json:"group"`
	// Subject is what was checked when a group covers several things: the
	// issuer for the as checks, the URL for a fetch. Empty otherwise.
	Subject string `json:"subject,omitempty"`
	// Severity is the outcome.
	Severity Severity `json:"severity"`
	// Summary is a one-line explanation.
	Summary string `json:"summary"`
	// Detail adds what was seen, when it helps to fix the problem.
	Detail string `json:"detail,omitempty"`
	// Clients are the MCP clients that a warning or a failure affects.
	Clients []string `json:"clients,omitempty"`
	// Fix says how to repair a warning or a failure, naming the Caddyfile
	// directive or option where there is one.
	Fix string `json:"fix,omitempty"`
}

// Report is the outcome of a Run.
type Report struct {
	// Endpoint is the MCP endpoint URL checked.
	Endpoint string `json:"endpoint"`
	// Checks are the findings, in the order they were made.
	Checks []Check `json:"checks"`
}

// Count returns how many checks have severity s.
func (r *Report) Count(s Severity) int {
	n := 0
	for _, c := range r.Checks {
		if c.Severity == s {
			n++
		}
	}
	return n
}

// Failed reports whether any check failed.
func (r *Report) Failed() bool { return r.Count(SeverityFail) > 0 }

// Find returns the checks with an ID, in order.
func (r *Report) Find(id string) []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.ID == id {
			out = append(out, c)
		}
	}
	return out
}

// Options configure a Run.
type Options struct {
	// Endpoint is the MCP endpoint URL, e.g. https://mcp.example.com/mcp.
	// Required.
	Endpoint string
	// Timeout bounds each HTTP request and TLS handshake. Default 10s.
	Timeout time.Duration
	// RootCAs verify the host's certificates. nil: the system roots.
	RootCAs *x509.CertPool
	// Insecure skips certificate verification (and the certificate
	// check).
	Insecure bool
	// HTTPPort is the port of the plain-HTTP listener whose redirect to
	// HTTPS is checked. 0: 80; negative: not checked.
	HTTPPort int
	// Origin is the browser origin sent in the CORS checks. Default
	// http://localhost:6274, MCP Inspector's.
	Origin string
	// Register makes a dynamic client registration (it creates a client
	// on the host) and checks the authorization endpoint with it.
	Register bool
	// Token is an access token for the endpoint. When set, an
	// authenticated tools/list is checked. It never appears in the
	// report.
	Token string
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Random is the source of PKCE verifiers and states. Default
	// crypto/rand.
	Random io.Reader
}

// Clients named in checks.
const (
	clientClaude        = "Claude"
	clientClaudeCode    = "Claude Code"
	clientCursor        = "Cursor"
	clientVSCode        = "VS Code"
	clientInspector     = "MCP Inspector"
	clientSDK           = "MCP TypeScript SDK clients"
	clientSDK2          = "MCP TypeScript SDK 2.x"
	clientCodex         = "Codex"
	clientCopilot       = "GitHub Copilot CLI"
	clientOpencode      = "opencode"
	clientBrowser       = "browser-based clients"
	clientEvery         = "every MCP client"
	clientStrictRFC9728 = "clients that build the RFC 9728 URL from the resource"
	clientStrictRFC8414 = "any client that applies RFC 8414 §3.3"
	clientNativeLoop    = "native clients on a random loopback port (RFC 8252)"
)

// Client lists shared by several checks.
func everyClient() []string    { return []string{clientEvery} }
func browserClients() []string { return []string{clientInspector, clientBrowser} }
func dcrClients() []string {
	return []string{clientClaude, clientCursor, clientVSCode, clientInspector}
}
func strictIssuer() []string {
	return []string{clientCodex, clientCopilot, clientOpencode, clientSDK2, clientStrictRFC8414}
}

// protocolVersion is the MCP protocol version the doctor speaks.
const protocolVersion = "2025-11-25"

// maxBody bounds every response body read.
const maxBody = 1 << 20

// Run checks the host of opts.Endpoint. It returns an error only for
// invalid options; everything the host does wrong, including not
// answering, is a failed check in the report.
func Run(ctx context.Context, opts Options) (*Report, error) {
	u, err := parseEndpoint(opts.Endpoint)
	if err != nil {
		return nil, err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.HTTPPort == 0 {
		opts.HTTPPort = 80
	}
	if opts.Origin == "" {
		opts.Origin = "http://localhost:6274"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Random == nil {
		opts.Random = rand.Reader
	}
	r := &runner{opts: opts, endpoint: u, rep: &Report{Endpoint: u.String()}}
	r.hc = &http.Client{
		Transport: &http.Transport{
			Proxy:             http.ProxyFromEnvironment,
			TLSClientConfig:   &tls.Config{RootCAs: opts.RootCAs, InsecureSkipVerify: opts.Insecure},
			ForceAttemptHTTP2: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer r.hc.CloseIdleConnections()
	r.run(ctx)
	if opts.Token != "" {
		r.rep.redact(opts.Token)
	}
	return r.rep, nil
}

// parseEndpoint checks that raw is an absolute http(s) URL without a
// fragment.
func parseEndpoint(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("no endpoint URL given")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("endpoint %q is not a URL: %w", raw, err)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, fmt.Errorf("endpoint %q must be an http or https URL, e.g. https://mcp.example.com/mcp", raw)
	case u.Host == "":
		return nil, fmt.Errorf("endpoint %q has no host", raw)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, fmt.Errorf("endpoint %q must not have a fragment", raw)
	case u.User != nil:
		return nil, fmt.Errorf("endpoint %q must not carry credentials", raw)
	}
	return u, nil
}

// redact replaces secret everywhere in the report.
func (r *Report) redact(secret string) {
	for i := range r.Checks {
		c := &r.Checks[i]
		c.Summary = strings.ReplaceAll(c.Summary, secret, "[token]")
		c.Detail = strings.ReplaceAll(c.Detail, secret, "[token]")
		c.Subject = strings.ReplaceAll(c.Subject, secret, "[token]")
	}
}

// runner holds the state of one Run.
type runner struct {
	opts     Options
	endpoint *url.URL
	hc       *http.Client
	rep      *Report

	// subject is set on the checks added while it is non-empty.
	subject string
	// challenge is the parsed Bearer challenge of the unauthenticated
	// request (nil when there was none).
	challenge *challenge
	// prm is the protected resource metadata clients would use, from
	// prmURL.
	prm    map[string]any
	prmURL string
	// servers are the authorization servers of prm.
	servers []string
	// asMeta is the metadata of servers[0] when it was found, from
	// asMetaURL.
	asMeta    map[string]any
	asMetaURL string
}

// impact is who a problem affects and how to fix it.
type impact struct {
	clients []string
	fix     string
}

func (r *runner) add(id string, sev Severity, im impact, summary, detail string) {
	group, _, _ := strings.Cut(id, ".")
	c := Check{ID: id, Group: group, Subject: r.subject, Severity: sev, Summary: summary, Detail: detail}
	if sev == SeverityWarn || sev == SeverityFail {
		c.Clients, c.Fix = im.clients, im.fix
	}
	r.rep.Checks = append(r.rep.Checks, c)
}

func (r *runner) pass(id, summary string)         { r.add(id, SeverityPass, impact{}, summary, "") }
func (r *runner) info(id, summary, detail string) { r.add(id, SeverityInfo, impact{}, summary, detail) }
func (r *runner) warn(id string, im impact, summary, detail string) {
	r.add(id, SeverityWarn, im, summary, detail)
}
func (r *runner) fail(id string, im impact, summary, detail string) {
	r.add(id, SeverityFail, im, summary, detail)
}

// run makes every check in the order a client meets them.
func (r *runner) run(ctx context.Context) {
	if !r.checkTransport(ctx) {
		return
	}
	if !r.checkChallenge(ctx) {
		return
	}
	r.checkCORS(ctx)
	found := r.checkPRM(ctx)
	if len(r.servers) == 0 {
		r.info("as.skipped", "no authorization server checked: no protected resource metadata names one", "")
	}
	if found {
		for i, issuer := range r.servers {
			r.subject = issuer
			meta, metaURL := r.checkAuthorizationServer(ctx, issuer)
			if i == 0 {
				r.asMeta, r.asMetaURL = meta, metaURL
			}
		}
		r.subject = ""
		r.checkMetadataCORS(ctx)
	}
	r.checkRegistration(ctx)
	r.checkToken(ctx)
}

// response is what came back from one request.
type response struct {
	url    string
	status int
	header http.Header
	body   []byte
	err    error
}

// do sends one request with the per-request timeout and reads at most
// maxBody bytes of the answer. Redirects are not followed.
func (r *runner) do(ctx context.Context, method, target string, header http.Header, body string) response {
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return response{url: target, err: err}
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("User-Agent", "caddy-mcp-doctor")
	res, err := r.hc.Do(req)
	if err != nil {
		return response{url: target, err: cleanError(err)}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	if err != nil {
		return response{url: target, status: res.StatusCode, header: res.Header, err: cleanError(err)}
	}
	return response{url: target, status: res.StatusCode, header: res.Header, body: b}
}

// cleanError drops the method and URL that net/http puts in front of
// transport errors; checks name the URL themselves.
func cleanError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// describe summarises a response for a detail line: its status or error,
// and the start of its body.
func (res response) describe() string {
	if res.err != nil {
		return res.err.Error()
	}
	s := fmt.Sprintf("HTTP %d", res.status)
	if ct := res.header.Get("Content-Type"); ct != "" {
		s += " (" + ct + ")"
	}
	if loc := res.header.Get("Location"); loc != "" {
		s += " to " + loc
	}
	if b := snippet(res.body); b != "" {
		s += ": " + b
	}
	return s
}

// snippet returns the start of a body on one line.
func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

// metadataHeader is what clients send when they fetch metadata.
func metadataHeader() http.Header {
	return http.Header{"Accept": {"application/json"}, "Mcp-Protocol-Version": {protocolVersion}}
}
