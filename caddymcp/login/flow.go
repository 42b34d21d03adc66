package login

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"golang.org/x/oauth2"

	"github.com/caddymcp/caddymcp/caddymcp/internal/page"
	"github.com/caddymcp/caddymcp/caddymcp/internal/web"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// pendingLogin is what a login in progress keeps server-side, under its
// state, until the provider sends the browser back.
type pendingLogin struct {
	Provider    string `json:"provider"`
	Nonce       string `json:"nonce"`
	Verifier    string `json:"code_verifier"`
	RedirectURI string `json:"redirect_uri"`
	ReturnTo    string `json:"return_to"`
}

// pendingReturn is where a login started by Login comes back to, kept
// while the user chooses a provider.
type pendingReturn struct {
	ReturnTo string `json:"return_to"`
}

// Login answers r by sending the browser to sign in, after which it comes
// back to r's URL (path and query, kept server-side). With one provider
// the browser goes straight to it (to its form, for a development
// sign-in); with several, to the picker page.
func (s *Server) Login(w http.ResponseWriter, r *http.Request) {
	returnTo := r.URL.RequestURI()
	if !safeReturn(returnTo) {
		returnTo = MePath
	}
	if len(s.order) == 1 && !s.order[0].Dev && s.onBase(r) {
		s.startUpstream(w, r, s.order[0], returnTo)
		return
	}
	id, err := s.randomToken(tokenBytes)
	if err != nil {
		s.internalError(w, "starting a login", err)
		return
	}
	if err = s.savePending(r.Context(), id, returnClientID, nil, pendingReturn{ReturnTo: returnTo}); err != nil {
		s.internalError(w, "saving a pending login", err)
		return
	}
	to := LoginPath
	if len(s.order) == 1 && s.order[0].Dev {
		to = ProviderLoginPrefix + s.order[0].Name
	}
	http.Redirect(w, r, s.base+to+"?return_to="+url.QueryEscape(id), http.StatusFound)
}

// savePending keeps params (as JSON) server-side under id for
// pendingLifetime, as an authorization request of the pseudo-client
// clientID; csrfHash, when set, binds it to the browser.
func (s *Server) savePending(ctx context.Context, id, clientID string, csrfHash []byte, params any) error {
	raw, _ := json.Marshal(params) // cannot fail: plain structs of strings
	now := s.cfg.Now()
	return s.cfg.Store.CreateAuthRequest(ctx, id, &store.AuthRequest{
		ClientID:  clientID,
		CSRFHash:  csrfHash,
		Params:    raw,
		CreatedAt: now,
		ExpiresAt: now.Add(pendingLifetime),
	})
}

// onBase reports whether r came to the configured base URL (always true
// without one). A login must start on the host its callback goes to, or
// the browser would not send back the cookie that binds it.
func (s *Server) onBase(r *http.Request) bool {
	if s.base == "" {
		return true
	}
	origin, err := web.RequestOrigin(r)
	if err != nil {
		return false
	}
	// Behind a proxy that terminates TLS the request arrives over plain
	// HTTP for the same host: it is on the base all the same, or the
	// redirect to the base would come back here forever.
	return origin == s.base ||
		(r.TLS == nil && strings.HasPrefix(origin, "http://") && s.base == "https://"+strings.TrimPrefix(origin, "http://"))
}

// returnParam cleans a return_to parameter: the id of a pending return,
// a safe local path, or "".
func returnParam(v string) string {
	if validToken(v) || safeReturn(v) {
		return v
	}
	return ""
}

// servePicker answers /auth/login: the provider picker, or with one
// provider the start of its login.
func (s *Server) servePicker(w http.ResponseWriter, r *http.Request) {
	if !s.onBase(r) {
		http.Redirect(w, r, s.base+r.URL.RequestURI(), http.StatusFound)
		return
	}
	rt := returnParam(r.URL.Query().Get("return_to"))
	if len(s.order) == 1 {
		if u := ProviderLoginPrefix + s.order[0].Name; s.order[0].Dev {
			// The form posts to its own address: show it there.
			if rt != "" {
				u += "?" + url.Values{"return_to": {rt}}.Encode()
			}
			http.Redirect(w, r, u, http.StatusFound)
			return
		}
		s.serveStart(w, r, s.order[0])
		return
	}
	links := make([]page.Link, 0, len(s.order))
	for _, p := range s.order {
		u := ProviderLoginPrefix + p.Name
		if rt != "" {
			u += "?" + url.Values{"return_to": {rt}}.Encode()
		}
		label := "Sign in with " + p.Label
		if p.Dev {
			label = p.Label + " (any email address)"
		}
		links = append(links, page.Link{Label: label, URL: u})
	}
	s.render(w, http.StatusOK, "Sign in", page.Message{Text: "Choose how to sign in.", Links: links})
}

// startReturn is the first step of every sign-in start: it sends a request
// made on another origin to the base URL, and reads where the browser
// goes back to afterwards (return_to). It returns false when it has
// answered the request.
func (s *Server) startReturn(w http.ResponseWriter, r *http.Request) (string, bool) {
	if !s.onBase(r) {
		http.Redirect(w, r, s.base+r.URL.RequestURI(), http.StatusFound)
		return "", false
	}
	returnTo, err := s.resolveReturn(r.Context(), returnParam(r.URL.Query().Get("return_to")))
	if err != nil {
		s.internalError(w, "reading a pending login", err)
		return "", false
	}
	return returnTo, true
}

// serveStart answers /auth/login/{provider}.
func (s *Server) serveStart(w http.ResponseWriter, r *http.Request, p *provider) {
	returnTo, ok := s.startReturn(w, r)
	if !ok {
		return
	}
	s.startUpstream(w, r, p, returnTo)
}

// resolveReturn turns a cleaned return_to parameter into a local path:
// a pending return's URL (which may be read again until it expires, so
// that the back button and a second choice of provider work), the path
// itself, or MePath.
func (s *Server) resolveReturn(ctx context.Context, v string) (string, error) {
	if !validToken(v) {
		if v == "" {
			return MePath, nil
		}
		return v, nil
	}
	now := s.cfg.Now()
	a, err := s.cfg.Store.ConsumeAuthRequest(ctx, v, now)
	switch {
	case errors.Is(err, store.ErrAlreadyUsed) && a != nil && a.ExpiresAt.After(now):
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrAlreadyUsed):
		return MePath, nil
	case err != nil:
		return "", err
	}
	var pr pendingReturn
	if a.ClientID != returnClientID || json.Unmarshal(a.Params, &pr) != nil || !safeReturn(pr.ReturnTo) {
		return MePath, nil
	}
	return pr.ReturnTo, nil
}

// safeReturn reports whether v is a local path to send the browser to:
// it starts with one '/', and holds no backslash, control character or
// space, which browsers may turn into "//host".
func safeReturn(v string) bool {
	if len(v) == 0 || len(v) > 8192 || v[0] != '/' || strings.HasPrefix(v, "//") {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c == '\\' || c >= 0x7f {
			return false
		}
	}
	u, err := url.Parse(v)
	return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil
}

// startUpstream sends the browser to the provider's authorization
// endpoint, keeping the state, nonce, PKCE verifier and return path
// server-side for the callback.
func (s *Server) startUpstream(w http.ResponseWriter, r *http.Request, p *provider, returnTo string) {
	ctx := r.Context()
	d, err := s.discovery(ctx, p)
	if err != nil {
		// Nothing is used up yet: the same address starts the login
		// again, and the authorization request waits behind it.
		retry := r.URL.RequestURI()
		if !safeReturn(retry) {
			retry = LoginPath
		}
		s.audit(EventLoginDenied, "reason", outageReason(err), "provider", p.Name)
		s.upstreamError(w, p, "discovery", err, retry)
		return
	}
	base, err := s.baseURL(r)
	if err != nil {
		s.page(w, http.StatusBadRequest, "Invalid request", "The request's host name is not valid.")
		return
	}
	var state, nonce, verifier string
	for _, v := range []*string{&state, &nonce, &verifier} {
		if *v, err = s.randomToken(tokenBytes); err != nil {
			s.internalError(w, "starting a login", err)
			return
		}
	}
	binding, err := s.binding(r)
	if err != nil {
		s.internalError(w, "starting a login", err)
		return
	}
	pl := pendingLogin{
		Provider:    p.Name,
		Nonce:       nonce,
		Verifier:    verifier,
		RedirectURI: base + CallbackPrefix + p.Name,
		ReturnTo:    returnTo,
	}
	if err = s.savePending(ctx, state, clientIDPrefix+p.Name, store.Hash(binding), pl); err != nil {
		s.internalError(w, "saving a pending login", err)
		return
	}
	s.setCookie(w, r, s.bindingCookieName(r), binding, int(pendingLifetime.Seconds()))
	u := oauth2Config(p, d, pl.RedirectURI).AuthCodeURL(state,
		oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("nonce", nonce))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, u, http.StatusFound)
}

// binding returns the browser's login-binding value: the one its cookie
// already holds, so that logins in several tabs do not undo each other,
// or a new one.
func (s *Server) binding(r *http.Request) (string, error) {
	if c, err := r.Cookie(s.bindingCookieName(r)); err == nil && validToken(c.Value) {
		return c.Value, nil
	}
	return s.randomToken(tokenBytes)
}

// errorCode keeps an upstream error code printable and short.
func errorCode(e string) string {
	if e == "" || len(e) > 64 {
		return "unknown_error"
	}
	for i := 0; i < len(e); i++ {
		c := e[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return "unknown_error"
		}
	}
	return e
}

// clip cuts s to at most n bytes of valid UTF-8.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "")
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// pictureURL keeps a profile picture only if it is an https URL.
func pictureURL(v string) string {
	if len(v) > 2048 {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return ""
	}
	return v
}

// internalError answers a store or randomness failure: 503 when the
// store is unavailable, else 500.
func (s *Server) internalError(w http.ResponseWriter, what string, err error) {
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn("store unavailable", "during", what, "error", err.Error())
		w.Header().Set("Retry-After", "5")
		s.page(w, http.StatusServiceUnavailable, "Temporarily unavailable", "The service is temporarily unavailable. Try again shortly.")
		return
	}
	s.log.Error("internal error", "during", what, "error", err.Error())
	s.page(w, http.StatusInternalServerError, "Something went wrong", "The server could not complete the request.")
}
