package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/caddymcp/caddymcp/caddymcp/internal/web"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// authRequest is a validated authorization request (RFC 6749 §4.1.1).
type authRequest struct {
	ClientID      string `json:"client_id"`
	RedirectURI   string `json:"redirect_uri"`
	State         string `json:"state,omitempty"`
	Scope         string `json:"scope"`
	Resource      string `json:"resource"`
	CodeChallenge string `json:"code_challenge"`
	// DPoPJKT binds the code to a DPoP key (RFC 9449 §10).
	DPoPJKT string `json:"dpop_jkt,omitempty"`
}

const maxStateLen = 2048

// serveAuthorize answers the authorization endpoint (GET or a form POST)
// in three steps: parse the request, decide what comes next (sign-in,
// consent, a code), and respond.
func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request, issuer string) {
	params, e := authorizeValues(w, r)
	if e != nil {
		s.refuseAuthorize(w, r, issuer, nil, e)
		return
	}
	p, e := s.parseAuthorize(r.Context(), params, issuer)
	if e != nil {
		s.refuseAuthorize(w, r, issuer, p, e)
		return
	}
	d := s.decideAuthorize(r, p)
	if d.err != nil {
		s.refuseAuthorize(w, r, issuer, p, d.err)
		return
	}
	s.respondAuthorize(w, r, issuer, p, d)
}

// authorizeParams is a parsed authorization request: the validated
// request, its client, and what the decision still needs.
type authorizeParams struct {
	req    authRequest
	client *store.Client
	// prompt is the prompt parameter ("none", "consent"); "" when absent
	// or repeated.
	prompt string
	// params are the request's parameters, for the sign-in round trip of
	// a form POST.
	params url.Values
}

// authorizeError is why an authorization request is refused. With a code,
// it is an OAuth error (RFC 6749 §4.1.2.1) that may be redirected to the
// client; without, it is a page shown to the user only: a request whose
// client and redirect URI are not known good, or a failure of this
// server (cause).
type authorizeError struct {
	code, description string
	status            int
	page              errorPage
	allow             string // the Allow header of a 405
	cause             error  // an internal failure, while doing during
	during            string
}

// redirectable reports whether the error may go to the client's redirect
// URI (RFC 6749 §4.1.2.1); refuseAuthorize still checks that the URI is
// trusted.
func (e *authorizeError) redirectable() bool { return e.code != "" }

// clientError is an OAuth error for the client.
func clientError(code, description string) *authorizeError {
	return &authorizeError{code: code, description: description}
}

// userError is an error page, never redirected.
func userError(status int, title, message string) *authorizeError {
	return &authorizeError{status: status, page: errorPage{Title: title, Message: message}}
}

// internalFailure is a failure of this server, shown by errorPage.
func internalFailure(during string, cause error) *authorizeError {
	return &authorizeError{cause: cause, during: during}
}

// authorizeValues reads the parameters of a GET's query or a form POST.
func authorizeValues(w http.ResponseWriter, r *http.Request) (url.Values, *authorizeError) {
	switch r.Method {
	case http.MethodGet:
		return r.URL.Query(), nil
	case http.MethodPost:
		if _, oe := readForm(w, r); oe != nil {
			return nil, userError(oe.Status, "Invalid request", oe.Description)
		}
		return r.PostForm, nil
	}
	e := userError(http.StatusMethodNotAllowed, "Invalid request", "Use GET or POST.")
	e.allow = "GET, POST"
	return nil, e
}

// single returns the one value of a parameter, "" if it is absent, and
// false if it is repeated.
func single(params url.Values, name string) (string, bool) {
	vs := params[name]
	if len(vs) > 1 {
		return "", false
	}
	if len(vs) == 0 {
		return "", true
	}
	return vs[0], true
}

// parseAuthorize reads and checks an authorization request. Once the
// client and its redirect URI are known, it returns them in p also with
// an error, which is then redirectable.
func (s *Server) parseAuthorize(ctx context.Context, params url.Values, issuer string) (*authorizeParams, *authorizeError) {
	client, redirectURI, e := s.parseClient(ctx, params)
	if e != nil {
		return nil, e
	}
	p := &authorizeParams{client: client, params: params, req: authRequest{ClientID: client.ID, RedirectURI: redirectURI}}
	p.prompt, _ = single(params, "prompt")
	return p, s.parseRequest(params, issuer, p)
}

// parseClient finds the client and the redirect URI of a request. Until
// both are known good, errors are shown to the user and never redirected
// (OAuth 2.1 §4.1.2.1).
func (s *Server) parseClient(ctx context.Context, params url.Values) (*store.Client, string, *authorizeError) {
	clientID, ok := single(params, "client_id")
	if !ok || clientID == "" {
		return nil, "", userError(http.StatusBadRequest, "Invalid request", "The request names no application (client_id).")
	}
	client, err := s.client(ctx, clientID, false)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", userError(http.StatusBadRequest, "Unknown application",
			"This application is not registered here. It may need to register again.")
	}
	// CIMD §4.3: an unusable metadata document ends the request here.
	var docErr *documentError
	if errors.As(err, &docErr) {
		status, page := documentErrorPage(clientID, docErr)
		return nil, "", &authorizeError{status: status, page: page}
	}
	if err != nil {
		return nil, "", internalFailure("looking up a client", err)
	}
	redirectURI, ok := single(params, "redirect_uri")
	if ok && redirectURI == "" && len(client.RedirectURIs) == 1 {
		redirectURI = client.RedirectURIs[0]
	}
	if !ok || !matchRedirectURI(client.RedirectURIs, redirectURI) {
		return nil, "", userError(http.StatusBadRequest, "Invalid redirect",
			"The address this application wants to send you back to is not registered for it.")
	}
	return client, redirectURI, nil
}

// parseRequest checks the parameters of a request whose client and
// redirect URI are known, filling in p.req. Its errors are redirectable.
func (s *Server) parseRequest(params url.Values, issuer string, p *authorizeParams) *authorizeError {
	state, ok := single(params, "state")
	if !ok || len(state) > maxStateLen {
		return clientError("invalid_request", "state is repeated or too long")
	}
	p.req.State = state
	switch rt, ok := single(params, "response_type"); {
	case !ok || rt == "":
		return clientError("invalid_request", "response_type=code is required")
	case rt != "code":
		return clientError("unsupported_response_type", "only response_type=code is supported")
	}
	challenge, ok1 := single(params, "code_challenge")
	method, ok2 := single(params, "code_challenge_method")
	switch {
	case !ok1 || !ok2:
		return clientError("invalid_request", "code_challenge and code_challenge_method may appear once")
	case challenge == "":
		return clientError("invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256")
	case method != "S256":
		// RFC 7636 §4.3: a missing method means plain, which is refused.
		return clientError("invalid_request", "code_challenge_method must be S256")
	case !validChallenge(challenge):
		return clientError("invalid_request", "code_challenge must be 43 base64url characters")
	}
	p.req.CodeChallenge = challenge
	// RFC 9449 §10: dpop_jkt binds the code to the thumbprint of a DPoP
	// key, a SHA-256 hash (43 base64url characters).
	if jkt, ok := single(params, "dpop_jkt"); !s.cfg.DPoP.Disabled && (!ok || jkt != "") {
		if !ok || !validChallenge(jkt) {
			return clientError("invalid_request", "dpop_jkt must be the 43-character base64url SHA-256 thumbprint of a DPoP key, given once")
		}
		p.req.DPoPJKT = jkt
	}
	var err error
	if p.req.Resource, err = s.pickResource(params["resource"], issuer); err != nil {
		return clientError("invalid_target", err.Error())
	}
	scope, ok := single(params, "scope")
	if !ok {
		return clientError("invalid_scope", "scope is repeated")
	}
	if p.req.Scope = s.grantableScope(scope, p.client, nil); p.req.Scope == "" {
		return clientError("invalid_scope", "none of the requested scopes can be granted to this client")
	}
	return nil
}

// authorizeNext is what the authorization endpoint does with a request.
type authorizeNext int

const (
	// authorizeLogin sends the user to sign in first.
	authorizeLogin authorizeNext = iota + 1
	// authorizeAsk asks the user for consent.
	authorizeAsk
	// authorizeIssue issues a code on a remembered consent.
	authorizeIssue
)

// authorizeDecision is the outcome of decideAuthorize.
type authorizeDecision struct {
	next authorizeNext
	err  *authorizeError // the request is refused
	user *User
	// req is the request with the scope the user may grant.
	req authRequest
}

// decideAuthorize decides who decides a parsed request, and whether they
// have already: the signed-in user, and the consent they gave before.
func (s *Server) decideAuthorize(r *http.Request, p *authorizeParams) authorizeDecision {
	refuse := func(e *authorizeError) authorizeDecision { return authorizeDecision{err: e} }
	if s.cfg.Users == nil {
		return refuse(userError(http.StatusServiceUnavailable, "Sign-in unavailable",
			"This server has no way to sign you in. Its operator must configure a login provider."))
	}
	user, err := s.cfg.Users.CurrentUser(r)
	if err != nil {
		return refuse(internalFailure("reading the session", err))
	}
	if user == nil {
		if p.prompt == "none" {
			return refuse(clientError("login_required", "the user is not signed in"))
		}
		return authorizeDecision{next: authorizeLogin}
	}
	req := p.req
	req.Scope = s.grantableScope(req.Scope, p.client, user.Scopes)
	if req.Scope == "" {
		s.audit(EventConsentDenied, "client_id", req.ClientID, "user_id", user.ID, "reason", "policy")
		return refuse(clientError("access_denied", "you may not grant any of the requested scopes"))
	}

	// Consent: remembered per user, client and scopes.
	consent, err := s.cfg.Store.GetConsent(r.Context(), user.ID, req.ClientID)
	switch {
	case err == nil && p.prompt != "consent" && scopeCovers(consent.Scope, req.Scope) &&
		consent.RedirectURI == req.RedirectURI && consent.Resource == req.Resource:
		// Remembered only for the exact redirect URI and resource approved:
		// a code never goes silently to another address, such as another
		// loopback port where any local program may listen (RFC 8252 §8.6).
		return authorizeDecision{next: authorizeIssue, user: user, req: req}
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return refuse(internalFailure("reading consent", err))
	case p.prompt == "none":
		return refuse(clientError("consent_required", "the user has not approved this application yet"))
	}
	return authorizeDecision{next: authorizeAsk, user: user, req: req}
}

// respondAuthorize carries out a decision.
func (s *Server) respondAuthorize(w http.ResponseWriter, r *http.Request, issuer string, p *authorizeParams, d authorizeDecision) {
	switch d.next {
	case authorizeLogin:
		if r.Method == http.MethodPost {
			// The login round trip can only come back to a URL.
			u := issuer + AuthorizePath + "?" + p.params.Encode()
			http.Redirect(w, r, u, http.StatusSeeOther)
			return
		}
		s.cfg.Users.Login(w, r)
	case authorizeIssue:
		s.issueCode(w, r, issuer, d.req, d.user, "remembered")
	case authorizeAsk:
		s.askConsent(w, r, issuer, d.req, p.client, d.user)
	}
}

// refuseAuthorize answers a refused request: an internal failure or a
// user error with a page, an OAuth error by redirecting it to the client
// when that is safe.
func (s *Server) refuseAuthorize(w http.ResponseWriter, r *http.Request, issuer string, p *authorizeParams, e *authorizeError) {
	switch {
	case e.cause != nil:
		s.errorPage(w, e.during, e.cause)
	case e.redirectable():
		// RFC 9700 §4.11.2: redirect errors only to a redirect URI the
		// server trusts — a configured client's, or one the signed-in user
		// has approved — so that open registration cannot turn this host
		// into an open redirector. Otherwise the user sees the error.
		if s.trustedRedirect(r, p.client) {
			s.redirectError(w, r, issuer, p.req, e.code, e.description)
			return
		}
		writeErrorPage(w, http.StatusBadRequest, errorPage{Title: "Authorization failed",
			Message: "The application's request could not be completed (" + e.code + "): " + e.description + "."})
	default:
		if e.allow != "" {
			w.Header().Set("Allow", e.allow)
		}
		writeErrorPage(w, e.status, e.page)
	}
}

// askConsent keeps the request server-side and shows the consent page.
func (s *Server) askConsent(w http.ResponseWriter, r *http.Request, issuer string, req authRequest, client *store.Client, user *User) {
	id, err1 := s.randomToken(32)
	csrf, err2 := s.randomToken(32)
	params, err3 := json.Marshal(req)
	if err := errors.Join(err1, err2, err3); err != nil {
		s.errorPage(w, "preparing consent", err)
		return
	}
	now := s.cfg.Now()
	err := s.cfg.Store.CreateAuthRequest(r.Context(), id, &store.AuthRequest{
		ClientID: req.ClientID, UserID: user.ID, CSRFHash: store.Hash(csrf), Params: params,
		CreatedAt: now, ExpiresAt: now.Add(authRequestLifetime),
	})
	if err != nil {
		s.errorPage(w, "saving the authorization request", err)
		return
	}
	page := consentPage{
		ClientName: client.Name, ClientID: client.ID, RedirectURI: req.RedirectURI,
		UserName: user.Name, UserEmail: user.Email, Resource: req.Resource,
		Scopes: strings.Fields(req.Scope), FormAction: issuer + ConsentPath,
		RequestID: id, CSRFToken: csrf, FormActionSources: []string{redirectOrigin(req.RedirectURI)},
		ScopeTools: s.cfg.ScopeTools, AccountURL: s.cfg.AccountURL,
	}
	if s.documentClient(client.ID) {
		// CIMD §6.4: the host vouching for the name; and a warning when
		// the code goes to this device, where any program may listen.
		page.ClientHost = documentHost(client.ID)
		page.LocalRedirect = localRedirect(req.RedirectURI)
	}
	writeConsentPage(w, page)
}

// serveConsent receives the decision posted from the consent page.
func (s *Server) serveConsent(w http.ResponseWriter, r *http.Request, issuer string) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeErrorPage(w, http.StatusMethodNotAllowed, errorPage{Title: "Invalid request", Message: "Use the consent form."})
		return
	}
	form, oe := readForm(w, r)
	if oe != nil {
		writeErrorPage(w, oe.Status, errorPage{Title: "Invalid request", Message: oe.Description})
		return
	}
	if s.cfg.Users == nil || s.cfg.Store == nil {
		writeErrorPage(w, http.StatusServiceUnavailable, errorPage{Title: "Sign-in unavailable", Message: "This server cannot sign you in."})
		return
	}
	user, err := s.cfg.Users.CurrentUser(r)
	if err != nil {
		s.errorPage(w, "reading the session", err)
		return
	}
	if user == nil {
		writeErrorPage(w, http.StatusUnauthorized, errorPage{Title: "Signed out",
			Message: "Your session ended before you decided. Go back to the application and start again."})
		return
	}
	decision := form["decision"]
	if decision != "approve" && decision != "deny" {
		writeErrorPage(w, http.StatusBadRequest, errorPage{Title: "Invalid request", Message: "Choose Approve or Deny."})
		return
	}
	pending, err := s.cfg.Store.ConsumeAuthRequest(r.Context(), form["request_id"], s.cfg.Now())
	switch {
	case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrAlreadyUsed):
		writeErrorPage(w, http.StatusBadRequest, errorPage{Title: "Request expired",
			Message: "This authorization request has expired or was already answered. Go back to the application and start again."})
		return
	case err != nil:
		s.errorPage(w, "reading the authorization request", err)
		return
	}
	var req authRequest
	if pending.UserID != user.ID || !store.SecretMatches(pending.CSRFHash, form["csrf_token"]) ||
		json.Unmarshal(pending.Params, &req) != nil {
		writeErrorPage(w, http.StatusForbidden, errorPage{Title: "Request refused",
			Message: "This form was not issued to you. Go back to the application and start again."})
		return
	}
	if decision == "deny" {
		s.audit(EventConsentDenied, "client_id", req.ClientID, "user_id", user.ID, "scope", req.Scope)
		s.redirectError(w, r, issuer, req, "access_denied", "the user denied the request")
		return
	}
	// The page lives up to authRequestLifetime: the access policy is
	// asked again, and narrows or ends the request as it would now.
	scope, err := s.policyScope(r.Context(), user.ID, req.Scope)
	if err != nil {
		s.errorPage(w, "reading the access policy", err)
		return
	}
	if scope == "" {
		s.audit(EventConsentDenied, "client_id", req.ClientID, "user_id", user.ID, "reason", "policy")
		s.redirectError(w, r, issuer, req, "access_denied", "you may not grant any of the requested scopes")
		return
	}
	req.Scope = scope
	now := s.cfg.Now()
	if prev, err := s.cfg.Store.GetConsent(r.Context(), user.ID, req.ClientID); err == nil &&
		prev.RedirectURI == req.RedirectURI && prev.Resource == req.Resource {
		scope = web.UnionScope(prev.Scope, req.Scope)
	}
	if err := s.cfg.Store.SaveConsent(r.Context(), &store.Consent{UserID: user.ID, ClientID: req.ClientID,
		Scope: scope, RedirectURI: req.RedirectURI, Resource: req.Resource, CreatedAt: now, UpdatedAt: now}); err != nil {
		s.errorPage(w, "saving consent", err)
		return
	}
	s.audit(EventConsentGranted, "client_id", req.ClientID, "user_id", user.ID, "scope", req.Scope)
	s.issueCode(w, r, issuer, req, user, "approved")
}

// issueCode stores an authorization code and redirects to the client.
func (s *Server) issueCode(w http.ResponseWriter, r *http.Request, issuer string, req authRequest, user *User, how string) {
	code, err1 := s.randomToken(32)
	grantID, err2 := s.randomToken(16)
	if err := errors.Join(err1, err2); err != nil {
		s.errorPage(w, "issuing a code", err)
		return
	}
	now := s.cfg.Now()
	err := s.cfg.Store.CreateCode(r.Context(), code, &store.AuthCode{
		GrantID: grantID, ClientID: req.ClientID, UserID: user.ID, RedirectURI: req.RedirectURI,
		Scope: req.Scope, Resource: req.Resource, CodeChallenge: req.CodeChallenge, CodeChallengeMethod: "S256", DPoPJKT: req.DPoPJKT,
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.CodeLifetime),
	})
	if err != nil {
		s.errorPage(w, "saving a code", err)
		return
	}
	if _, static := s.static[req.ClientID]; !static && !isDocumentURL(req.ClientID) {
		// Registered clients in use are kept by the clean-up.
		if err := s.cfg.Store.TouchClient(r.Context(), req.ClientID, now); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("recording client use", "client_id", req.ClientID, "error", err.Error())
		}
	}
	s.audit(EventCodeIssued, "client_id", req.ClientID, "user_id", user.ID, "scope", req.Scope,
		"resource", req.Resource, "grant_id", grantID, "consent", how)
	s.redirect(w, r, req.RedirectURI, map[string]string{"code": code, "state": req.State, "iss": issuer})
}

// trustedRedirect reports whether errors may be redirected to the
// client: it is configured, or the signed-in user has approved it.
func (s *Server) trustedRedirect(r *http.Request, client *store.Client) bool {
	if _, static := s.static[client.ID]; static {
		return true
	}
	if s.cfg.Users == nil || s.cfg.Store == nil {
		return false
	}
	user, err := s.cfg.Users.CurrentUser(r)
	if err != nil || user == nil {
		return false
	}
	_, err = s.cfg.Store.GetConsent(r.Context(), user.ID, client.ID)
	return err == nil
}

// redirectError sends an error to the client's redirect URI, with state
// and iss (RFC 6749 §4.1.2.1, RFC 9207).
func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, issuer string, req authRequest, code, description string) {
	s.redirect(w, r, req.RedirectURI, map[string]string{"error": code, "error_description": description,
		"state": req.State, "iss": issuer})
}

// redirect sends the browser to uri with params added to its query: 302
// after a GET, 303 after a POST, never 307 (RFC 9700 §4.12).
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, uri string, params map[string]string) {
	u, err := url.Parse(uri)
	if err != nil { // registered URIs are parsed at registration
		writeErrorPage(w, http.StatusBadRequest, errorPage{Title: "Invalid redirect", Message: "The redirect address is malformed."})
		return
	}
	// RFC 6749 §3.1.2: keep the registered query and add to it.
	add := url.Values{}
	for k, v := range params {
		if v != "" {
			add.Set(k, v)
		}
	}
	if u.RawQuery != "" {
		u.RawQuery += "&" + add.Encode()
	} else {
		u.RawQuery = add.Encode()
	}
	status := http.StatusFound
	if r.Method == http.MethodPost {
		status = http.StatusSeeOther
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Location", u.String())
	w.WriteHeader(status)
}

// errorPage shows a generic error page for an internal failure.
func (s *Server) errorPage(w http.ResponseWriter, what string, cause error) {
	if errors.Is(cause, store.ErrUnavailable) {
		s.log.Warn("store unavailable", "during", what, "error", cause.Error())
		w.Header().Set("Retry-After", "5")
		writeErrorPage(w, http.StatusServiceUnavailable, errorPage{Title: "Temporarily unavailable",
			Message: "The service is temporarily unavailable. Try again in a moment."})
		return
	}
	s.log.Error("internal error", "during", what, "error", cause.Error())
	writeErrorPage(w, http.StatusInternalServerError, errorPage{Title: "Something went wrong",
		Message: "The server could not complete your request."})
}

// validChallenge checks an S256 code challenge: BASE64URL(SHA-256) is 43
// characters of the base64url alphabet (RFC 7636 §4.2).
func validChallenge(c string) bool {
	return len(c) == 43 && web.IsBase64URL(c)
}

// grantableScope returns requested ∩ scopes_supported ∩ the scopes of a
// configured client ∩ userScopes (nil: no user limit), in the order
// requested. An empty request means the client's registered scope, or
// every scope. The scope a client gave at dynamic registration is only
// that default, not a cap: MCP clients register with the scope of their
// first challenge and must be able to step up later.
func (s *Server) grantableScope(requested string, client *store.Client, userScopes []string) string {
	want := strings.Fields(requested)
	if len(want) == 0 {
		want = s.cfg.Scopes
		if client.Scope != "" {
			want = strings.Fields(client.Scope)
		}
	}
	var clientScopes []string
	if _, static := s.static[client.ID]; static && client.Scope != "" {
		clientScopes = strings.Fields(client.Scope)
	}
	var out []string
	for _, sc := range want {
		if !slices.Contains(s.cfg.Scopes, sc) || slices.Contains(out, sc) ||
			(clientScopes != nil && !slices.Contains(clientScopes, sc)) ||
			(userScopes != nil && !slices.Contains(userScopes, sc)) {
			continue
		}
		out = append(out, sc)
	}
	return strings.Join(out, " ")
}

// policyScope applies the access policy as it is now to a scope the user
// is about to grant: the part of scope they may still grant, "" when the
// policy no longer lets them in or leaves nothing. Without an
// Authenticator nothing limits the scope.
func (s *Server) policyScope(ctx context.Context, userID, scope string) (string, error) {
	if s.cfg.Users == nil {
		return scope, nil
	}
	scopes, allowed, err := s.cfg.Users.UserScopes(ctx, userID)
	switch {
	case err != nil:
		return "", fmt.Errorf("asking the access policy: %w", err)
	case !allowed:
		return "", nil
	case scopes == nil:
		return scope, nil
	}
	var out []string
	for _, sc := range strings.Fields(scope) {
		if slices.Contains(scopes, sc) {
			out = append(out, sc)
		}
	}
	return strings.Join(out, " "), nil
}

// scopeCovers reports whether every scope of want is in have.
func scopeCovers(have, want string) bool {
	h := strings.Fields(have)
	for _, sc := range strings.Fields(want) {
		if !slices.Contains(h, sc) {
			return false
		}
	}
	return true
}

// redirectOrigin is the CSP form-action source that lets the consent form
// lead to the redirect URI: its origin, or its scheme for a native app.
func redirectOrigin(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return ""
	}
	if u.Scheme == "http" || u.Scheme == "https" {
		return u.Scheme + "://" + u.Host
	}
	return u.Scheme + ":"
}
