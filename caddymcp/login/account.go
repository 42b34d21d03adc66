package login

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/internal/page"
	"github.com/caddymcp/caddymcp/caddymcp/oauth"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// The account page's form fields and the actions it accepts.
const (
	actionRevokeApplication = "revoke_application"
	actionEndSession        = "end_session"
	actionSignOut           = "sign_out"
	// accountTokenLabel is what the forms' anti-forgery token is the
	// HMAC of, keyed with the session id.
	accountTokenLabel = "caddymcp account page forms"
	// maxGrantIDLen bounds a grant id from a form before it reaches the
	// store.
	maxGrantIDLen = 128
)

// accountNotices confirm, after the redirect that follows a form, what
// it did. The query names one of them: a page reached through a link
// shows only these sentences, never text from the link.
var accountNotices = map[string]string{
	"application": "The application's access was revoked. It has to ask you again before it can use your account.",
	"session":     "The session was ended.",
}

// accountLogin is where a signed-out visitor of the account page signs
// in, to come back to it.
var accountLogin = LoginPath + "?" + url.Values{"return_to": {AccountPath}}.Encode()

// accountToken returns the anti-forgery token of the account page's
// forms in the session whose id is sessionID: an HMAC keyed with the id.
// Only the holder of the session cookie (HttpOnly) can know it; it
// changes with every sign-in, dies with the session, and reveals nothing
// of the id.
func accountToken(sessionID string) string {
	m := hmac.New(sha256.New, []byte(sessionID))
	m.Write([]byte(accountTokenLabel))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// serveAccount answers /auth/account: the page on GET and HEAD, a form
// on POST. Without a live session a GET is sent to sign in and back.
func (s *Server) serveAccount(w http.ResponseWriter, r *http.Request) {
	live, err := s.liveSession(r)
	if err != nil {
		s.internalError(w, "reading the session", err)
		return
	}
	if live == nil {
		if r.Method == http.MethodPost {
			s.render(w, http.StatusUnauthorized, "Signed out", page.Message{
				Text:  "Your session has ended, so nothing was changed. Sign in again to manage your applications.",
				Links: []page.Link{{Label: "Sign in", URL: accountLogin}},
			})
			return
		}
		// Back to the page itself, without a notice from before.
		back := r.Clone(r.Context())
		back.URL = &url.URL{Path: AccountPath}
		s.Login(w, back)
		return
	}
	if r.Method == http.MethodPost {
		s.accountForm(w, r, live)
		return
	}
	s.showAccount(w, r, live, accountNotices[r.URL.Query().Get("done")])
}

// showAccount renders the account page of a signed-in user.
func (s *Server) showAccount(w http.ResponseWriter, r *http.Request, live *signedIn, notice string) {
	ctx, now := r.Context(), s.cfg.Now()
	grants, err := s.cfg.Store.ListUserGrants(ctx, live.user.ID, now)
	if err != nil {
		s.internalError(w, "listing a user's applications", err)
		return
	}
	sessions, err := s.cfg.Store.ListSessionsByUser(ctx, live.user.ID, now)
	if err != nil {
		s.internalError(w, "listing a user's sessions", err)
		return
	}
	acc := page.Account{
		SignedInAs: page.SignedInAs(live.user.Name, live.user.Email),
		Notice:     notice,
		FormAction: AccountPath,
		CSRFToken:  accountToken(live.id),
	}
	for _, g := range grants {
		app := page.Application{
			Grant:       g.ID,
			Name:        s.applicationName(g),
			ClientID:    g.ClientID,
			RedirectURI: g.RedirectURI,
			Resource:    g.Resource,
			Scopes:      oauth.DescribeScopes(strings.Fields(g.Scope), s.cfg.ScopeTools),
			Authorized:  pageTime(g.CreatedAt),
			LastUsed:    pageTime(g.LastUsedAt),
		}
		if g.RedirectURI != "" {
			app.RedirectHost = oauth.RedirectHost(g.RedirectURI)
		}
		acc.Applications = append(acc.Applications, app)
	}
	current := store.Hash(live.id)
	for _, se := range sessions {
		acc.Sessions = append(acc.Sessions, page.Session{
			ID:       base64.RawURLEncoding.EncodeToString(se.IDHash),
			Browser:  describeUserAgent(se.UserAgent),
			Address:  se.RemoteAddr,
			Started:  pageTime(se.CreatedAt),
			LastSeen: pageTime(se.LastSeenAt),
			Current:  subtle.ConstantTimeCompare(se.IDHash, current) == 1,
		})
	}
	nonce, err := page.NewNonce(s.cfg.Random)
	if err != nil {
		nonce = "unavailable" // the page is still readable, unstyled
	}
	err = page.Write(w, http.StatusOK, page.Page{
		Name:   page.AccountName,
		Title:  "Your account",
		Nonce:  nonce,
		PostTo: []string{page.Self},
		Data:   acc,
	})
	if err != nil {
		s.log.Error("rendering a page failed", "error", err.Error())
	}
}

// applicationName is how the account page names a grant's client: its
// registered name, the name it is configured with, the host of its
// metadata document's URL, or its client_id.
func (s *Server) applicationName(g store.UserGrant) string {
	if g.ClientName != "" {
		return g.ClientName
	}
	if n := s.cfg.ClientNames[g.ClientID]; n != "" {
		return n
	}
	if u, err := url.Parse(g.ClientID); err == nil && u.Scheme == "https" && u.Host != "" {
		return u.Hostname()
	}
	return g.ClientID
}

// accountForm carries out a form posted from the account page. A form
// whose token is not the session's changes nothing.
func (s *Server) accountForm(w http.ResponseWriter, r *http.Request, live *signedIn) {
	r.Body = http.MaxBytesReader(w, r.Body, maxAccountForm)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.accountError(w, http.StatusRequestEntityTooLarge, "Request too large", "The form was too large, so nothing was changed.")
			return
		}
		s.accountError(w, http.StatusBadRequest, "Invalid request", "The form could not be read, so nothing was changed.")
		return
	}
	form := r.PostForm // never the query: a link cannot fill in a form
	want := accountToken(live.id)
	if got := form.Get("csrf_token"); subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		s.audit(EventAccountFormRefused, "user_id", live.user.ID)
		s.accountError(w, http.StatusForbidden, "Request refused",
			"This form was not issued to this session, so nothing was changed. Reload your account page and try again.")
		return
	}
	switch form.Get("action") {
	case actionRevokeApplication:
		s.revokeApplication(w, r, live, form.Get("grant"))
	case actionEndSession:
		s.endSession(w, r, live, form.Get("session"))
	case actionSignOut:
		s.signOut(w, r, live)
	default:
		s.accountError(w, http.StatusBadRequest, "Invalid request", "The form asked for nothing this page does, so nothing was changed.")
	}
}

// revokeApplication revokes one of the user's grants with its tokens,
// and forgets the consent to its client. Revoking a revoked grant again
// changes nothing and confirms it all the same.
func (s *Server) revokeApplication(w http.ResponseWriter, r *http.Request, live *signedIn, grantID string) {
	notFound := func() {
		s.accountError(w, http.StatusNotFound, "Application not found",
			"None of your applications has this authorization, so nothing was changed. It may have expired.")
	}
	if grantID == "" || len(grantID) > maxGrantIDLen {
		notFound()
		return
	}
	ctx := r.Context()
	g, err := s.cfg.Store.RevokeUserGrant(ctx, live.user.ID, grantID, s.cfg.Now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		notFound()
		return
	case err != nil:
		s.internalError(w, "revoking an application", err)
		return
	}
	if g.RevokedAt.IsZero() {
		s.revoked(ctx)
		s.audit(EventGrantRevoked, "reason", "revoked by the user", "user_id", live.user.ID,
			"client_id", g.ClientID, "grant_id", g.ID)
	}
	s.accountDone(w, r, "application")
}

// endSession ends one of the user's sessions, given by its handle (the
// base64url of its IDHash). Ending the current session signs out.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request, live *signedIn, handle string) {
	h, err := base64.RawURLEncoding.DecodeString(handle)
	if err != nil || len(h) != sha256.Size {
		h = nil
	}
	if h != nil && subtle.ConstantTimeCompare(h, store.Hash(live.id)) == 1 {
		s.signOut(w, r, live)
		return
	}
	if h != nil {
		err = s.cfg.Store.EndUserSession(r.Context(), live.user.ID, h)
	}
	switch {
	case h == nil || errors.Is(err, store.ErrNotFound):
		s.accountError(w, http.StatusNotFound, "Session not found",
			"None of your sessions has this id, so nothing was changed. It may have ended already.")
		return
	case err != nil:
		s.internalError(w, "ending a session", err)
		return
	}
	s.audit(EventSessionEnded, "user_id", live.user.ID)
	s.accountDone(w, r, "session")
}

// signOut ends the current session, deletes its cookie and says so.
func (s *Server) signOut(w http.ResponseWriter, r *http.Request, live *signedIn) {
	if err := s.cfg.Store.DeleteSession(r.Context(), live.id); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.internalError(w, "ending a session", err)
		return
	}
	s.audit(EventLogout, "user_id", live.user.ID)
	s.setCookie(w, r, s.sessionCookieName(r), "", -1)
	s.render(w, http.StatusOK, "Signed out", page.Message{
		Text:  "You are signed out on this browser. The applications you authorized keep their access until you revoke it.",
		Links: []page.Link{{Label: "Sign in again", URL: accountLogin}},
	})
}

// accountDone redirects to the account page after a form that changed
// something (303, so that reloading does not post it again), with the
// notice named done.
func (s *Server) accountDone(w http.ResponseWriter, r *http.Request, done string) {
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, AccountPath+"?done="+done, http.StatusSeeOther)
}

// accountError answers a refused account form with a page leading back
// to the account page.
func (s *Server) accountError(w http.ResponseWriter, status int, title, message string) {
	s.render(w, status, title, page.Message{Text: message,
		Links: []page.Link{{Label: "Back to your account", URL: AccountPath}}})
}

// revoked tells OnRevoke that tokens were revoked.
func (s *Server) revoked(ctx context.Context) {
	if s.cfg.OnRevoke != nil {
		s.cfg.OnRevoke(ctx)
	}
}

// pageTime is a moment as the account page shows it.
func pageTime(t time.Time) page.Time {
	if t.IsZero() {
		return page.Time{Text: "unknown"}
	}
	t = t.UTC()
	return page.Time{Text: t.Format("2 Jan 2006, 15:04 UTC"), ISO: t.Format(time.RFC3339)}
}
