package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// groupTitle names a group in the text report.
func groupTitle(group string) string {
	switch group {
	case "tls":
		return "Transport"
	case "challenge":
		return "Unauthenticated request (401 challenge)"
	case "cors":
		return "Browser clients (CORS)"
	case "prm":
		return "Protected resource metadata (RFC 9728)"
	case "as":
		return "Authorization server"
	case "register":
		return "Dynamic client registration"
	case "token":
		return "Authenticated request"
	}
	return group
}

// ANSI colours of the severities.
const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiDim    = "\x1b[2m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
)

func severityColour(s Severity) string {
	switch s {
	case SeverityPass:
		return ansiGreen
	case SeverityWarn:
		return ansiYellow
	case SeverityFail:
		return ansiRed + ansiBold
	}
	return ansiCyan
}

// WriteText writes the report for people: the checks grouped in the
// order they were made, the clients and fix under each warning and
// failure, and a summary line. colour adds ANSI colours (for a terminal).
func (r *Report) WriteText(w io.Writer, colour bool) error {
	paint := func(code, s string) string {
		if !colour {
			return s
		}
		return code + s + ansiReset
	}
	width := 0
	for _, c := range r.Checks {
		width = max(width, len(c.ID))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", paint(ansiBold, "caddy mcp-doctor"), r.Endpoint)
	for _, sec := range sections(r.Checks) {
		fmt.Fprintf(&b, "\n%s\n", paint(ansiBold, sec.title))
		for _, c := range sec.checks {
			writeCheck(&b, c, width, paint)
		}
	}
	fail, warn := r.Count(SeverityFail), r.Count(SeverityWarn)
	verdict := paint(ansiGreen+ansiBold, "OK")
	if fail > 0 {
		verdict = paint(ansiRed+ansiBold, "FAILED")
	}
	fmt.Fprintf(&b, "\n%s: %d passed, %d warnings, %d failed, %d info\n", verdict,
		r.Count(SeverityPass), warn, fail, r.Count(SeverityInfo))
	_, err := io.WriteString(w, b.String())
	return err
}

// section is a titled run of checks in the text report.
type section struct {
	title  string
	checks []Check
}

// sections groups checks by group (and the as checks by issuer), in the
// order each group first appears.
func sections(checks []Check) []*section {
	var out []*section
	byKey := map[string]*section{}
	for _, c := range checks {
		key, title := c.Group, groupTitle(c.Group)
		if c.Group == "as" && c.Subject != "" {
			key, title = "as "+c.Subject, title+" "+c.Subject
		}
		sec, ok := byKey[key]
		if !ok {
			sec = &section{title: title}
			byKey[key] = sec
			out = append(out, sec)
		}
		sec.checks = append(sec.checks, c)
	}
	return out
}

// writeCheck writes one check: severity, ID and summary on a line, then
// its subject, detail, affected clients and fix, indented.
func writeCheck(b *strings.Builder, c Check, width int, paint func(code, s string) string) {
	label := paint(severityColour(c.Severity), fmt.Sprintf("%-4s", strings.ToUpper(string(c.Severity))))
	fmt.Fprintf(b, "  %s  %-*s  %s\n", label, width, c.ID, c.Summary)
	indent := strings.Repeat(" ", 2+4+2+width+2)
	if c.Subject != "" && c.Group != "as" {
		fmt.Fprintf(b, "%s%s\n", indent, paint(ansiDim, c.Subject))
	}
	if c.Detail != "" {
		fmt.Fprintf(b, "%s%s\n", indent, paint(ansiDim, c.Detail))
	}
	if len(c.Clients) > 0 {
		fmt.Fprintf(b, "%saffects: %s\n", indent, strings.Join(c.Clients, ", "))
	}
	if c.Fix != "" {
		fmt.Fprintf(b, "%sfix: %s\n", indent, c.Fix)
	}
}

// jsonReport is the machine-readable form of a report.
type jsonReport struct {
	Endpoint string           `json:"endpoint"`
	OK       bool             `json:"ok"`
	Counts   map[Severity]int `json:"counts"`
	Checks   []Check          `json:"checks"`
}

// WriteJSON writes the report as one indented JSON object: endpoint, ok
// (no check failed), counts by severity and the checks.
func (r *Report) WriteJSON(w io.Writer) error {
	out := jsonReport{Endpoint: r.Endpoint, OK: !r.Failed(), Checks: r.Checks, Counts: map[Severity]int{}}
	if out.Checks == nil {
		out.Checks = []Check{}
	}
	for _, s := range []Severity{SeverityPass, SeverityInfo, SeverityWarn, SeverityFail} {
		out.Counts[s] = r.Count(s)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
