package doctor

import (
	"net"
	"net/url"
	"strings"
)

// Well-known URI suffixes.
const (
	prmSuffix  = "/.well-known/oauth-protected-resource"
	asSuffix   = "/.well-known/oauth-authorization-server"
	oidcSuffix = "/.well-known/openid-configuration"
)

// insertWellKnown builds the well-known URL of an identifier by inserting
// suffix between its host and its path, after removing a terminating "/"
// from the path; the query is kept (RFC 9728 §3.1, RFC 8414 §3.1).
func insertWellKnown(id *url.URL, suffix string) string {
	u := url.URL{Scheme: id.Scheme, Host: id.Host, RawQuery: id.RawQuery,
		Path: suffix + strings.TrimSuffix(id.Path, "/")}
	if id.RawPath != "" {
		u.RawPath = suffix + strings.TrimSuffix(id.RawPath, "/")
	}
	return u.String()
}

// rootWellKnown is the well-known URL at the root of id's origin.
func rootWellKnown(id *url.URL, suffix string) string {
	return (&url.URL{Scheme: id.Scheme, Host: id.Host, Path: suffix}).String()
}

// appendWellKnown is the OpenID Connect Discovery 1.0 form: suffix after
// the issuer's path.
func appendWellKnown(id *url.URL, suffix string) string {
	u := url.URL{Scheme: id.Scheme, Host: id.Host, Path: strings.TrimSuffix(id.Path, "/") + suffix}
	if id.RawPath != "" {
		u.RawPath = strings.TrimSuffix(id.RawPath, "/") + suffix
	}
	return u.String()
}

// isLoopback reports whether host (without port) is localhost or a
// loopback address.
func isLoopback(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// checkURL returns "" when raw is an absolute https URL (http only on
// loopback) without a fragment, else what is wrong with it.
func checkURL(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "is not a URL"
	case !u.IsAbs() || u.Host == "":
		return "is not an absolute URL"
	case u.Fragment != "":
		return "has a fragment"
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return ""
	case u.Scheme == "http":
		return "uses http on a host that is not loopback"
	}
	return "is not an https URL"
}

// canonical normalises a resource identifier for comparison: lowercase
// scheme and host, no default port, "/" for an empty path (RFC 3986
// §6.2.3: https://h and https://h/ are the same; /mcp and /mcp/ are
// not).
func canonical(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return "", false
	}
	u.Scheme = strings.ToLower(u.Scheme)
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	u.Host = host
	if u.Path == "" {
		u.Path = "/"
		u.RawPath = ""
	}
	return u.String(), true
}

// isOriginOnly reports whether u names an origin: no path but "/" and no
// query.
func isOriginOnly(u *url.URL) bool {
	return (u.Path == "" || u.Path == "/") && u.RawQuery == ""
}

// compareIdentifiers explains how got differs from want, "" when they
// are byte-identical.
func compareIdentifiers(got, want string) string {
	if got == want {
		return ""
	}
	switch {
	case got+"/" == want:
		return "lacks the trailing slash of " + quote(want)
	case want+"/" == got:
		return "has a trailing slash " + quote(want) + " does not have"
	case strings.EqualFold(got, want):
		return "differs from " + quote(want) + " in letter case"
	}
	g, err1 := url.Parse(got)
	w, err2 := url.Parse(want)
	if err1 != nil || err2 != nil {
		return "differs from " + quote(want)
	}
	switch {
	case !strings.EqualFold(g.Scheme, w.Scheme):
		return "has scheme " + g.Scheme + ", not " + w.Scheme + " as in " + quote(want)
	case !strings.EqualFold(g.Hostname(), w.Hostname()):
		return "has host " + g.Hostname() + ", not " + w.Hostname() + " as in " + quote(want)
	case g.Port() != w.Port():
		return "has port " + orNone(g.Port()) + ", not " + orNone(w.Port()) + " as in " + quote(want)
	case g.Path != w.Path:
		return "has path " + orNone(g.Path) + ", not " + orNone(w.Path) + " as in " + quote(want)
	}
	return "differs from " + quote(want)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func quote(s string) string { return `"` + s + `"` }
