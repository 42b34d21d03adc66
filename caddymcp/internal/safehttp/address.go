package safehttp

import "net/netip"

// specialPrefixes are the special-purpose address blocks of RFC 6890 and
// the IANA registries it set up, which nothing is fetched from.
// IPv6 outside the global unicast space 2000::/3 (unique local, link-local,
// multicast, loopback, unspecified, ...) is refused before this list.
var specialPrefixes = func() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range []string{
		"0.0.0.0/8",         // "this network" (RFC 791)
		"10.0.0.0/8",        // private (RFC 1918)
		"100.64.0.0/10",     // shared address space, CGNAT (RFC 6598)
		"127.0.0.0/8",       // loopback
		"169.254.0.0/16",    // link-local (RFC 3927)
		"172.16.0.0/12",     // private (RFC 1918)
		"192.0.0.0/24",      // IETF protocol assignments (RFC 6890)
		"192.0.2.0/24",      // documentation, TEST-NET-1 (RFC 5737)
		"192.31.196.0/24",   // AS112-v4 (RFC 7535)
		"192.52.193.0/24",   // AMT (RFC 7450)
		"192.88.99.0/24",    // 6to4 relay anycast (RFC 7526)
		"192.168.0.0/16",    // private (RFC 1918)
		"192.175.48.0/24",   // AS112 direct delegation (RFC 7534)
		"198.18.0.0/15",     // benchmarking (RFC 2544)
		"198.51.100.0/24",   // documentation, TEST-NET-2 (RFC 5737)
		"203.0.113.0/24",    // documentation, TEST-NET-3 (RFC 5737)
		"224.0.0.0/4",       // multicast
		"240.0.0.0/4",       // reserved, and the limited broadcast address
		"2001::/23",         // IETF protocol assignments, Teredo (RFC 2928)
		"2001:db8::/32",     // documentation (RFC 3849)
		"2002::/16",         // 6to4 (RFC 3056)
		"2620:4f:8000::/48", // AS112-v6 (RFC 7534)
		"3fff::/20",         // documentation (RFC 9637)
	} {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}()

var (
	// globalUnicast6 is the IPv6 global unicast space (RFC 4291 §2.4).
	globalUnicast6 = netip.MustParsePrefix("2000::/3")
	// nat64 is the well-known NAT64 prefix (RFC 6052), whose addresses
	// carry an IPv4 address in their last 32 bits.
	nat64 = netip.MustParsePrefix("64:ff9b::/96")
)

// PublicAddress reports whether addr may be the address of a host whose
// URL another party chose (the default policy of Options.Allow): not
// loopback, private, link-local, shared
// (CGNAT), multicast, unspecified, documentation or any other
// special-purpose address (RFC 6890, CIMD §6.5). IPv6 addresses must be
// global unicast; an IPv4-mapped address or one of the well-known NAT64
// prefix is judged by the IPv4 address it carries.
func PublicAddress(addr netip.Addr) bool {
	addr = addr.WithZone("").Unmap()
	if !addr.IsValid() {
		return false
	}
	if nat64.Contains(addr) {
		b := addr.As16()
		return PublicAddress(netip.AddrFrom4([4]byte(b[12:])))
	}
	if addr.Is6() && !globalUnicast6.Contains(addr) {
		return false
	}
	for _, p := range specialPrefixes {
		if p.Contains(addr) {
			return false
		}
	}
	return true
}
