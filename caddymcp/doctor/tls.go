package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// expiryWarning is how close to its expiry a certificate gets a warning:
// 14 days, or a sixth of its lifetime for short-lived certificates (Caddy
// renews when a third is left; its local CA issues 12-hour ones).
func expiryWarning(c *x509.Certificate) time.Duration {
	return min(14*24*time.Hour, c.NotAfter.Sub(c.NotBefore)/6)
}

// checkTransport checks the certificate of an https endpoint (or notes a
// plain-http one) and the HTTP to HTTPS redirect. It returns false when
// the host cannot be reached securely, which ends the run.
func (r *runner) checkTransport(ctx context.Context) bool {
	host := r.endpoint.Hostname()
	if r.endpoint.Scheme == "http" {
		if isLoopback(host) {
			r.info("tls.certificate", "plain http on a loopback host: fine for development only", "")
			return true
		}
		r.fail("tls.certificate", impact{everyClient(),
			"Serve the endpoint over HTTPS: give the site a domain name in its address and Caddy gets a certificate."},
			"the endpoint uses plain http on a host that is not loopback", "MCP requires HTTPS for every authorization URL")
		return true
	}
	port := r.endpoint.Port()
	if port == "" {
		port = "443"
	}
	dialCtx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{ServerName: host, RootCAs: r.opts.RootCAs, InsecureSkipVerify: r.opts.Insecure}}
	conn, err := d.DialContext(dialCtx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		if isCertificateError(err) {
			r.fail("tls.certificate", impact{everyClient(),
				"Let Caddy manage the certificate (a public domain name in the site address); for a private CA such as Caddy's local one, pass its root with --ca-cert."},
				"the certificate is not valid for "+host, err.Error()+"; the other checks need a trusted connection (--ca-cert <root.crt>, or --insecure)")
		} else {
			r.fail("tls.certificate", impact{everyClient(), "Check that Caddy runs and listens on " + net.JoinHostPort(host, port) + "."},
				"cannot connect to "+net.JoinHostPort(host, port), err.Error())
		}
		return false
	}
	state := conn.(*tls.Conn).ConnectionState()
	_ = conn.Close()
	leaf := state.PeerCertificates[0]
	left := leaf.NotAfter.Sub(r.opts.Now())
	about := fmt.Sprintf("issued by %s, expires %s", issuerName(leaf), leaf.NotAfter.UTC().Format("2006-01-02"))
	switch {
	case r.opts.Insecure:
		r.info("tls.certificate", "certificate not verified (--insecure)", about)
	case left < expiryWarning(leaf):
		r.warn("tls.certificate", impact{everyClient(), "Check that Caddy can renew the certificate (its logs say why it cannot)."},
			fmt.Sprintf("the certificate expires in %s", roundDuration(left)), about)
	default:
		r.pass("tls.certificate", "the certificate is valid for "+host+", "+about)
	}
	r.checkHTTPRedirect(ctx)
	return true
}

// isCertificateError reports whether a TLS dial failed on certificate
// verification rather than on the network.
func isCertificateError(err error) bool {
	var (
		cv  *tls.CertificateVerificationError
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		inv x509.CertificateInvalidError
	)
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &inv)
}

func issuerName(c *x509.Certificate) string {
	if c.Issuer.CommonName != "" {
		return c.Issuer.CommonName
	}
	if len(c.Issuer.Organization) > 0 {
		return c.Issuer.Organization[0]
	}
	return c.Issuer.String()
}

func roundDuration(d time.Duration) string {
	if d <= 0 {
		return "0s (expired)"
	}
	if d >= 48*time.Hour {
		return strconv.Itoa(int(d.Hours()/24)) + " days"
	}
	return d.Round(time.Minute).String()
}

// checkHTTPRedirect notes whether http://host[:HTTPPort]/path redirects to
// https. It is informational: MCP clients use the https URL.
func (r *runner) checkHTTPRedirect(ctx context.Context) {
	if r.opts.HTTPPort < 0 {
		return
	}
	u := url.URL{Scheme: "http", Host: r.endpoint.Hostname(), Path: r.endpoint.Path, RawQuery: r.endpoint.RawQuery}
	if strings.Contains(u.Host, ":") {
		u.Host = "[" + u.Host + "]"
	}
	if r.opts.HTTPPort != 80 {
		u.Host += ":" + strconv.Itoa(r.opts.HTTPPort)
	}
	res := r.do(ctx, http.MethodGet, u.String(), nil, "")
	loc := ""
	if res.err == nil {
		loc = res.header.Get("Location")
	}
	if res.err == nil && res.status >= 300 && res.status < 400 && strings.HasPrefix(strings.ToLower(loc), "https://") {
		detail := fmt.Sprintf("HTTP %d to %s", res.status, loc)
		if loc != r.endpoint.String() {
			detail += " (the endpoint is " + r.endpoint.String() + ")"
		}
		r.info("tls.http_redirect", u.String()+" redirects to HTTPS", detail)
		return
	}
	r.info("tls.http_redirect", "no redirect from "+u.String()+" to HTTPS (clients use the https URL, so only people typing the address notice)", res.describe())
}
