package oauth

import (
	"errors"
	"net/url"
	"strings"
)

// pickResource validates the resource parameters of a request (RFC 8707
// §2) against the resources tokens may be issued for, and returns the one
// to bind. With none, the first configured resource is used.
func (s *Server) pickResource(values []string, issuer string) (string, error) {
	allowed := s.allowedResources(issuer)
	switch len(values) {
	case 0:
		if len(allowed) == 0 {
			return "", errors.New("no protected resource is configured on this server")
		}
		return allowed[0], nil
	case 1:
	default:
		return "", errors.New("a token can be issued for one resource at a time")
	}
	want, err := canonicalResource(values[0])
	if err != nil {
		return "", err
	}
	for _, a := range allowed {
		if a == want {
			return a, nil
		}
	}
	return "", errors.New("the resource " + want + " is not served by this authorization server")
}

// allowedResources resolves the configured resources against the issuer's
// origin and puts them in canonical form.
func (s *Server) allowedResources(issuer string) []string {
	origin := issuer
	if u, err := url.Parse(issuer); err == nil {
		origin = u.Scheme + "://" + u.Host
	}
	var out []string
	for _, r := range s.cfg.Resources() {
		if r == "" || strings.HasPrefix(r, "/") {
			r = origin + strings.TrimSuffix(r, "/")
		}
		if c, err := canonicalResource(r); err == nil {
			out = append(out, c)
		}
	}
	return out
}

// canonicalResource checks a resource indicator (absolute, no fragment)
// and lowercases its scheme and host. "https://h/" and "https://h" are the
// same resource (RFC 3986 §6.2.3); "/mcp" and "/mcp/" are not.
func canonicalResource(raw string) (string, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "":
		return "", errors.New("resource must be an absolute URI")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "", errors.New("resource must not contain a fragment")
	case u.User != nil:
		return "", errors.New("resource must not contain user information")
	}
	u.Scheme, u.Host = strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	if u.Path == "/" && u.RawQuery == "" {
		u.Path = ""
	}
	return u.String(), nil
}
