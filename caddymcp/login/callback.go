package login

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/oauth2"

	"github.com/caddymcp/caddymcp/caddymcp/internal/page"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// A provider's callback is answered in three steps, each testable on its
// own: parseCallback reads and checks the request, decideLogin redeems
// the code and decides who is signed in, and completeLogin or
// refuseCallback answer the browser.

// callbackRequest is a callback that parseCallback accepted: the pending
// login it completes and the authorization code to redeem.
type callbackRequest struct {
	pending pendingLogin
	code    string
}

// failureKind tells how a refused callback is answered.
type failureKind int

const (
	// refused: the request or the user was turned away; the page says
	// why.
	refused failureKind = iota
	// upstream: the provider could not be reached or gave an answer that
	// does not verify; the cause is logged, the page stays vague.
	upstream
	// internal: the store or the randomness source failed (see
	// internalError).
	internal
)

// callbackError is why a callback ends on an error page instead of a
// session. Its cause is logged, never shown.
type callbackError struct {
	kind failureKind
	// reason is the reason of the login_denied audit event; "" records
	// none. audit are further attributes of that event.
	reason string
	audit  []any
	// status, title and message are the page of a refused callback,
	// with link as its button, if any.
	status         int
	title, message string
	link           *page.Link
	// during and err say what failed, for the log of upstream and
	// internal failures.
	during string
	err    error
	// retry is where the page of an upstream failure offers to try
	// again; "" offers nothing.
	retry string
}

func (e *callbackError) Error() string {
	switch {
	case e.err != nil:
		return e.during + ": " + e.err.Error()
	case e.reason != "":
		return "login refused: " + e.reason
	}
	return "login refused: " + e.title
}

func (e *callbackError) Unwrap() error { return e.err }

// refusal is a callback turned away with a page.
func refusal(status int, reason, title, message string, audit ...any) *callbackError {
	return &callbackError{kind: refused, reason: reason, audit: audit, status: status, title: title, message: message}
}

// expiredLogin is a callback whose state is missing, unknown, expired or
// already used: a one-time state is what stops a replayed or forged
// callback (RFC 6749 §10.12).
func expiredLogin(reason string) *callbackError {
	return refusal(http.StatusBadRequest, reason, "Sign-in expired",
		"This login expired or was already used: login expired, start again from your application.")
}

// upstreamFailure is a failure of the provider during a step, recorded
// as a denied login for the reason outageReason gives. The browser may
// try again from a new login that comes back to returnTo: the state and
// the code are used up, the authorization request is not.
func upstreamFailure(during string, err error, returnTo string) *callbackError {
	return &callbackError{kind: upstream, reason: outageReason(err), during: during, err: err, retry: retryLogin(returnTo)}
}

// internalFailure is a failure of the store or of the randomness source.
func internalFailure(during string, err error) *callbackError {
	return &callbackError{kind: internal, during: during, err: err}
}

// serveCallback answers /auth/callback/{provider}: it checks the state,
// redeems the code, verifies the ID token, records the user, applies the
// policy and opens a session.
func (s *Server) serveCallback(w http.ResponseWriter, r *http.Request, p *provider) {
	// The callback URL holds the code and state: keep it out of Referer.
	w.Header().Set("Referrer-Policy", "no-referrer")
	cb, err := s.parseCallback(r, p)
	if err != nil {
		s.refuseCallback(w, p, err)
		return
	}
	user, err := s.decideLogin(r.Context(), p, cb)
	if err != nil {
		s.refuseCallback(w, p, err)
		return
	}
	s.completeLogin(w, r, p, user, cb.pending.ReturnTo)
}

// parseCallback reads a provider's answer and checks it against the
// pending login it names: an error from the provider, the one-time state
// (consumed here, so that it never serves twice), the provider, the
// browser that started the login (its binding cookie, RFC 6749 §10.12)
// and the code. Every error is a *callbackError.
func (s *Server) parseCallback(r *http.Request, p *provider) (*callbackRequest, error) {
	ctx := r.Context()
	q := r.URL.Query()
	state := q.Get("state")
	if e := q.Get("error"); e != "" {
		// RFC 6749 §4.1.2.1: the provider refused. Burn the state so the
		// same login cannot be completed with a guessed code.
		if validToken(state) {
			_, _ = s.cfg.Store.ConsumeAuthRequest(ctx, state, s.cfg.Now())
		}
		code := errorCode(e)
		status := http.StatusBadRequest
		if code == "access_denied" {
			status = http.StatusForbidden
		}
		return nil, refusal(status, "provider_error", "Sign-in was not completed",
			p.Label+" did not sign you in (error: "+code+"). Go back to your application and try again.",
			"error", code)
	}
	if !validToken(state) {
		return nil, expiredLogin("missing_state")
	}
	a, err := s.cfg.Store.ConsumeAuthRequest(ctx, state, s.cfg.Now())
	switch {
	case errors.Is(err, store.ErrAlreadyUsed):
		return nil, expiredLogin("replayed_state")
	case errors.Is(err, store.ErrNotFound):
		return nil, expiredLogin("unknown_state")
	case err != nil:
		return nil, internalFailure("reading a pending login", err)
	}
	var pl pendingLogin
	if a.ClientID != clientIDPrefix+p.Name || json.Unmarshal(a.Params, &pl) != nil || pl.Provider != p.Name {
		return nil, refusal(http.StatusBadRequest, "provider_mismatch", "Sign-in failed",
			"This answer does not belong to a sign-in with "+p.Label+". Go back to your application and start again.")
	}
	if c, err := r.Cookie(s.bindingCookieName(r)); err != nil || !store.SecretMatches(a.CSRFHash, c.Value) {
		return nil, refusal(http.StatusBadRequest, "browser_mismatch", "Sign-in failed",
			"This sign-in was started in another browser, or its cookie was blocked. Start again in this browser.")
	}
	code := q.Get("code")
	if code == "" {
		return nil, refusal(http.StatusBadRequest, "missing_code", "Sign-in failed",
			p.Label+" sent no authorization code. Start again.")
	}
	return &callbackRequest{pending: pl, code: code}, nil
}

// decideLogin redeems the code of a checked callback, records the user
// the verified ID token names, and applies the access policy: the user
// to open a session for, or a *callbackError.
func (s *Server) decideLogin(ctx context.Context, p *provider, cb *callbackRequest) (*store.User, error) {
	d, err := s.discovery(ctx, p)
	if err != nil {
		return nil, upstreamFailure("discovery", err, cb.pending.ReturnTo)
	}
	claims, err := s.redeem(ctx, p, d, &cb.pending, cb.code)
	if err != nil {
		return nil, upstreamFailure("redeeming the code", err, cb.pending.ReturnTo)
	}
	return s.admit(ctx, p, profileOf(claims))
}

// admit records the user a provider vouched for and applies the access
// policy: the user to open a session for, or a *callbackError.
func (s *Server) admit(ctx context.Context, p *provider, pr profile) (*store.User, error) {
	userID, err := s.randomToken(userIDBytes)
	if err != nil {
		return nil, internalFailure("recording the user", err)
	}
	// Recorded before the policy applies, so that a refusal is audited
	// with the user's id.
	user, err := s.cfg.Store.UpsertUser(ctx, newUser(p.Name, pr, userID, s.cfg.Now()))
	if err != nil {
		return nil, internalFailure("recording the user", err)
	}
	if ok, _ := s.policy.scopes(user); !ok {
		who := user.Email
		if who == "" {
			who = "this account"
		}
		return nil, refusal(http.StatusForbidden, "policy", "Access denied",
			"Access denied: "+who+" is not allowed to use this server.",
			"user_id", user.ID, "email", user.Email)
	}
	return user, nil
}

// redeem exchanges the code with the PKCE verifier and verifies the ID
// token that comes back. The exchange, the reading of its answer
// included, is one call bounded by HTTPTimeout, made with the login
// server's HTTP client.
func (s *Server) redeem(ctx context.Context, p *provider, d *discovery, pl *pendingLogin, code string) (*idClaims, error) {
	xctx, cancel := s.callContext(ctx)
	defer cancel()
	tok, err := oauth2Config(p, d, pl.RedirectURI).Exchange(xctx, code, oauth2.VerifierOption(pl.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) { // its Error() would include the response body
			status := 0
			if re.Response != nil {
				status = re.Response.StatusCode
			}
			return nil, fmt.Errorf("token endpoint answered %d %s", status, errorCode(re.ErrorCode))
		}
		return nil, s.callError(xctx, fmt.Errorf("token request failed: %w", err))
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, errors.New("the token response has no id_token")
	}
	return s.verifyIDToken(ctx, p, d, raw, pl.Nonce)
}

// profile is what a login keeps of a verified ID token: the user's
// profile, nothing the provider could use to act for them.
type profile struct {
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
	Picture       string
	HostedDomain  string
}

// profileOf reads the profile of verified ID token claims.
func profileOf(c *idClaims) profile {
	return profile{Subject: c.Subject, Email: c.Email, EmailVerified: c.emailVerified(), Name: c.Name,
		Picture: c.Picture, HostedDomain: c.HostedDomain}
}

// newUser is the user row a login records: the provider's subject is the
// identity (OIDC Core §5.7: the email may change hands), and every text
// is bounded, so that a provider cannot fill the database.
func newUser(providerName string, pr profile, id string, now time.Time) *store.User {
	return &store.User{
		ID:            id,
		Provider:      providerName,
		Subject:       pr.Subject,
		Email:         clip(pr.Email, 320),
		EmailVerified: pr.EmailVerified,
		Name:          clip(pr.Name, 256),
		Picture:       pictureURL(pr.Picture),
		HostedDomain:  clip(pr.HostedDomain, 253),
		CreatedAt:     now,
		UpdatedAt:     now,
		LastLoginAt:   now,
	}
}

// completeLogin opens a session for user and sends the browser back to
// where the login started (a local path only).
func (s *Server) completeLogin(w http.ResponseWriter, r *http.Request, p *provider, user *store.User, returnTo string) {
	if err := s.openSession(w, r, user.ID); err != nil {
		s.internalError(w, "opening a session", err)
		return
	}
	s.audit(EventLoginSucceeded, "provider", p.Name, "user_id", user.ID, "email", user.Email)
	if !safeReturn(returnTo) {
		returnTo = MePath
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, returnTo, http.StatusSeeOther)
}

// refuseCallback answers a callback that opens no session: it records
// the denied login, logs the cause, and shows the page of err.
func (s *Server) refuseCallback(w http.ResponseWriter, p *provider, err error) {
	var ce *callbackError
	if !errors.As(err, &ce) {
		ce = internalFailure("answering a callback", err)
	}
	if ce.reason != "" {
		s.audit(EventLoginDenied, append([]any{"reason", ce.reason, "provider", p.Name}, ce.audit...)...)
	}
	switch ce.kind {
	case upstream:
		s.upstreamError(w, p, ce.during, ce.err, ce.retry)
	case internal:
		s.internalError(w, ce.during, ce.err)
	default:
		m := page.Message{Text: ce.message}
		if ce.link != nil {
			m.Links = []page.Link{*ce.link}
		}
		s.render(w, ce.status, ce.title, m)
	}
}
