package ratelimit

import (
	"net"
	"net/http"
	"net/netip"
)

// DefaultIPv6Prefix is the length of the IPv6 network IPKey counts as one
// client: a /64 is the smallest network a subscriber is usually given, and
// a host can pick any address in it.
const DefaultIPv6Prefix = 64

// IPKey returns the rate-limit key of a client address: an IPv4 address
// as it is, an IPv6 address by its network of ipv6Bits bits (outside
// 1..128: DefaultIPv6Prefix), so that a client hopping between addresses
// of its own network still counts once. An IPv4-mapped IPv6 address
// counts as its IPv4 address, a zone is ignored, and a port ("ip:port",
// "[ip]:port") is allowed. Anything else gives "".
func IPKey(addr string, ipv6Bits int) string {
	a, err := netip.ParseAddr(addr)
	if err == nil && a.Is4() {
		return addr // ParseAddr accepts only the canonical dotted form
	}
	if err != nil {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			return ""
		}
		a = ap.Addr()
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	if ipv6Bits < 1 || ipv6Bits > 128 {
		ipv6Bits = DefaultIPv6Prefix
	}
	p, err := a.Prefix(ipv6Bits)
	if err != nil {
		return ""
	}
	var buf [len("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128")]byte
	return string(p.AppendTo(buf[:0]))
}

// RemoteAddrKey keys requests by IPKey of their TCP peer (r.RemoteAddr).
// Behind a reverse proxy every request has the proxy's address; key by
// the client address the proxy reports instead (in Caddy: the client IP
// it determined with the server's trusted_proxies).
func RemoteAddrKey(ipv6Bits int) KeyFunc {
	return func(r *http.Request) string {
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			return IPKey(host, ipv6Bits)
		}
		return IPKey(r.RemoteAddr, ipv6Bits)
	}
}
