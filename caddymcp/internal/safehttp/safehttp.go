// Package safehttp fetches documents at URLs that other parties choose,
// such as client metadata documents (draft-ietf-oauth-client-id-metadata-
// document) and jwks_uri key sets, without letting those parties reach
// the server's own network: loopback, private, link-local and other
// special-purpose addresses are refused, a defence against server-side
// request forgery (CIMD §6.5).
//
// The check is made on the address of each connection as it is made,
// not on what a name resolved to beforehand, so a name whose DNS answer
// changes in between (DNS rebinding) gains nothing.
//
// It imports no other caddymcp package.
package safehttp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"syscall"
	"time"
)

// Defaults of Options.
const (
	// DefaultTimeout bounds one request: connecting, TLS, and reading the
	// response.
	DefaultTimeout = 5 * time.Second
	// DefaultMaxAddrs is how many of a host's addresses are tried.
	DefaultMaxAddrs = 4
	// DefaultMaxHeaderBytes bounds the header of a response.
	DefaultMaxHeaderBytes = 16 << 10
)

// Resolver looks up host names; *net.Resolver is one.
type Resolver interface {
	// LookupNetIP returns the addresses of host; network is "ip".
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Options configures a Dialer or a Client. The zero value is usable.
type Options struct {
	// Resolver looks up the addresses of hosts. Default:
	// net.DefaultResolver.
	Resolver Resolver
	// Allow decides whether a connection for host (as named in the URL)
	// may go to addr. It is asked about the address of every connection
	// just before it is made. Default: PublicAddress.
	Allow func(host string, addr netip.Addr) bool
	// Timeout bounds one request of a Client: connecting, the TLS
	// handshake, waiting for the response header and reading the body.
	// Default: DefaultTimeout.
	Timeout time.Duration
	// RootCAs verify the certificates of https hosts. Default (nil): the
	// system's roots.
	RootCAs *x509.CertPool
	// MaxAddrs bounds the addresses tried for one host, so that a DNS
	// answer cannot make one request try many. Default: DefaultMaxAddrs.
	MaxAddrs int
	// MaxHeaderBytes bounds a response header, in bytes. Default:
	// DefaultMaxHeaderBytes.
	MaxHeaderBytes int64
}

// RefusedAddressError is the refusal of a connection to an address that
// the policy (Options.Allow) does not allow.
type RefusedAddressError struct {
	// Addr is the refused address (or the dialer's text for it, if it
	// could not be parsed).
	Addr string
}

func (e *RefusedAddressError) Error() string {
	return "refused to connect to " + e.Addr + ", which is not a public address"
}

// Dialer connects only to addresses its policy allows.
type Dialer struct {
	resolver Resolver
	allow    func(host string, addr netip.Addr) bool
	maxAddrs int
}

// NewDialer returns a Dialer with the resolver, policy and address limit
// of o.
func NewDialer(o Options) *Dialer {
	d := &Dialer{resolver: o.Resolver, allow: o.Allow, maxAddrs: o.MaxAddrs}
	if d.resolver == nil {
		d.resolver = net.DefaultResolver
	}
	if d.allow == nil {
		d.allow = func(_ string, addr netip.Addr) bool { return PublicAddress(addr) }
	}
	if d.maxAddrs <= 0 {
		d.maxAddrs = DefaultMaxAddrs
	}
	return d
}

// DialContext connects to address (host:port), as http.Transport's
// DialContext. It resolves the name itself, and checks the address of
// each connection in the socket's Control hook, just before connect(2):
// what is checked is what is connected to, so a DNS answer that changes
// between a check and the connection (DNS rebinding) gains nothing. The
// addresses are tried in the order of the answer; if none connects and
// one was refused, the error is a *RefusedAddressError.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, portText, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("invalid port %q", portText)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else if addrs, err = d.resolver.LookupNetIP(ctx, "ip", host); err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
	}
	if len(addrs) > d.maxAddrs {
		addrs = addrs[:d.maxAddrs]
	}
	dialer := &net.Dialer{ControlContext: func(_ context.Context, _, conn string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(conn)
		if err != nil {
			return &RefusedAddressError{Addr: conn}
		}
		if !d.allow(host, ap.Addr()) {
			return &RefusedAddressError{Addr: ap.Addr().String()}
		}
		return nil
	}}
	var first, refused error
	for _, a := range addrs {
		c, err := dialer.DialContext(ctx, network, netip.AddrPortFrom(a.Unmap(), uint16(port)).String())
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if refused == nil && errors.As(err, new(*RefusedAddressError)) {
			refused = err
		}
	}
	if refused != nil {
		return nil, refused
	}
	return nil, first
}

// NewClient returns an http.Client that connects through a Dialer of o,
// with o's timeouts and limits. It uses no proxy, which would connect on
// its behalf, past the check of the connected address; keeps no
// connections alive; and follows no redirects: a 3xx is returned as the
// response, for the caller to refuse (CIMD §4 allows none), as following
// it would fetch from a second URL the other party chose.
func NewClient(o Options) *http.Client {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	maxHeader := o.MaxHeaderBytes
	if maxHeader <= 0 {
		maxHeader = DefaultMaxHeaderBytes
	}
	return &http.Client{
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{
			Proxy:                  nil,
			DialContext:            NewDialer(o).DialContext,
			TLSClientConfig:        &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:    timeout,
			ResponseHeaderTimeout:  timeout,
			MaxResponseHeaderBytes: maxHeader,
			DisableKeepAlives:      true,
		},
	}
}

// ErrTooLarge means a response body is larger than the limit.
var ErrTooLarge = errors.New("the response body is too large")

// ReadBody reads a response body of at most limit bytes; a larger one
// (by its Content-Length, or as read) is ErrTooLarge.
func ReadBody(res *http.Response, limit int64) ([]byte, error) {
	if res.ContentLength > limit {
		return nil, ErrTooLarge
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > limit {
		return nil, ErrTooLarge
	}
	return body, nil
}
