package login

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"

	"golang.org/x/oauth2"

	"github.com/caddymcp/caddymcp/caddymcp/internal/page"
)

// Calls to a provider are bounded by Config.HTTPTimeout, and a failed
// one is told apart for the browser: a provider that could not be
// reached (502), one that did not answer in time (504), and one that
// answered wrongly (502). The cause is logged, never shown.

// outage is how a call to a provider failed.
type outage int

const (
	// badAnswer: the provider answered, but not as it should (a status,
	// a document or an ID token that does not verify).
	badAnswer outage = iota
	// unreachable: no connection could be made to the provider (refused,
	// no such host, no route), or it broke before the answer began.
	unreachable
	// tooSlow: the provider did not answer in full within HTTPTimeout.
	tooSlow
)

// The reasons of the login_denied events of failed calls.
const (
	reasonUnreachable = "provider_unreachable"
	reasonTimeout     = "provider_timeout"
	reasonBadAnswer   = "invalid_response"
)

// errTooSlow marks the error of a call that ran out of time, so that it
// is recognised even where the error chain lost context.DeadlineExceeded
// (golang.org/x/oauth2 flattens the error of reading the token response).
var errTooSlow = errors.New("no complete answer in time")

// callContext bounds one call to a provider by HTTPTimeout — waiting for
// another request's fetch, connecting, sending and reading the whole
// answer — and hands golang.org/x/oauth2 the login server's HTTP client,
// which it would otherwise replace with http.DefaultClient.
func (s *Server) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.HTTPTimeout)
	return context.WithValue(ctx, oauth2.HTTPClient, s.cfg.HTTPClient), cancel
}

// callError returns err, the error of a call made with ctx, marked with
// errTooSlow when ctx ran out of time.
func (s *Server) callError(ctx context.Context, err error) error {
	if err == nil || errors.Is(err, errTooSlow) || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w (%s): %w", errTooSlow, s.cfg.HTTPTimeout, err)
}

// outageOf tells how a call to a provider failed.
func outageOf(err error) outage {
	var timeout interface{ Timeout() bool }
	if errors.Is(err, errTooSlow) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &timeout) && timeout.Timeout() {
		return tooSlow
	}
	var opErr *net.OpError
	var dnsErr *net.DNSError
	if errors.As(err, &opErr) || errors.As(err, &dnsErr) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return unreachable
	}
	return badAnswer
}

// outageReason is the reason of the login_denied event of a failed call.
func outageReason(err error) string {
	switch outageOf(err) {
	case unreachable:
		return reasonUnreachable
	case tooSlow:
		return reasonTimeout
	}
	return reasonBadAnswer
}

// retryLogin is where a "Try again" button sends the browser after a
// callback failed: a new login that comes back to returnTo, the
// authorization request that is still waiting for it.
func retryLogin(returnTo string) string {
	if !safeReturn(returnTo) {
		return LoginPath
	}
	return LoginPath + "?" + url.Values{"return_to": {returnTo}}.Encode()
}

// upstreamError answers a failure to talk to a provider, logging the
// cause: 502 when it could not be reached or answered wrongly, 504 when
// it did not answer in time. retry, a local path, is where the page's
// "Try again" button leads; "" shows none.
func (s *Server) upstreamError(w http.ResponseWriter, p *provider, during string, err error, retry string) {
	s.log.Error("sign-in provider failed", "provider", p.Name, "during", during, "error", err.Error())
	status := http.StatusBadGateway
	var text string
	switch outageOf(err) {
	case unreachable:
		text = "Sign-in with " + p.Label + " is unavailable: " + p.Label + " could not be reached. " +
			"Try again in a few minutes; if it keeps failing, tell the operator of this server."
	case tooSlow:
		status = http.StatusGatewayTimeout
		text = "Sign-in with " + p.Label + " is unavailable: " + p.Label + " did not answer in time. " +
			"Try again in a few minutes; if it keeps failing, tell the operator of this server."
	default:
		text = "Signing in with " + p.Label + " failed. Try again in a moment; if it keeps failing, tell the operator of this server."
	}
	m := page.Message{Text: text}
	if retry != "" {
		m.Links = []page.Link{{Label: "Try again", URL: retry}}
	}
	s.render(w, status, "Sign-in unavailable", m)
}
