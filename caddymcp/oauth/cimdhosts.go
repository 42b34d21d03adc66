package oauth

// The operator's policy on the hosts of client metadata documents
// (ClientMetadataDocuments.AllowDomains) and on the addresses they may
// be fetched from.

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
)

// normalHost is the form of a host name or address that allow-lists
// compare: lowercase, without a trailing dot or IPv6 brackets, and an IP
// address in its canonical form.
func normalHost(h string) string {
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if a, err := netip.ParseAddr(h); err == nil {
		return a.WithZone("").Unmap().String()
	}
	return h
}

// hostPolicy is the allow-list of document hosts.
type hostPolicy struct {
	exact    map[string]bool
	suffixes []string // ".example.com" for *.example.com
	loopback map[string]bool
}

// newHostPolicy parses AllowDomains.
func newHostPolicy(entries []string) (hostPolicy, error) {
	p := hostPolicy{exact: map[string]bool{}, loopback: map[string]bool{}}
	for _, e := range entries {
		h := normalHost(e)
		rest, wildcard := strings.CutPrefix(h, "*.")
		_, ipErr := netip.ParseAddr(rest)
		if ipErr == nil && wildcard || ipErr != nil && !validDomain(rest) {
			return hostPolicy{}, fmt.Errorf("client metadata documents: allowed domain %q is not a host name, *.domain or IP address", e)
		}
		if wildcard {
			p.suffixes = append(p.suffixes, "."+rest)
			continue
		}
		p.exact[h] = true
		if a, err := netip.ParseAddr(h); h == "localhost" || err == nil && a.IsLoopback() {
			p.loopback[h] = true
		}
	}
	return p, nil
}

// CheckAllowDomains checks entries for ClientMetadataDocuments.AllowDomains:
// each a host name, *.domain or IP address.
func CheckAllowDomains(entries []string) error {
	_, err := newHostPolicy(entries)
	return err
}

// validDomain checks the form of a DNS name: labels of letters, digits
// and inner hyphens (lowercase, as normalHost leaves them).
func validDomain(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// allows reports whether documents may come from host.
func (p hostPolicy) allows(host string) bool {
	if len(p.exact) == 0 && len(p.suffixes) == 0 {
		return true
	}
	h := normalHost(host)
	if p.exact[h] {
		return true
	}
	for _, s := range p.suffixes {
		if strings.HasSuffix(h, s) {
			return true
		}
	}
	return false
}

// allowAddress is the default address policy: public addresses, and
// loopback ones for a loopback host named in the allow-list.
func (p hostPolicy) allowAddress(host string, addr netip.Addr) bool {
	return PublicAddress(addr) || addr.WithZone("").Unmap().IsLoopback() && p.loopback[normalHost(host)]
}

// logDocumentSettings notes settings an operator should know about.
func logDocumentSettings(log *slog.Logger, p hostPolicy) {
	for h := range p.loopback {
		log.Warn("client metadata documents may be fetched from the loopback host "+h+"; use this only for tests",
			"host", h)
	}
}
