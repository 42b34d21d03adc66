package login

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/caddymcp/caddymcp/caddymcp/internal/web"
	"github.com/caddymcp/caddymcp/caddymcp/oauth"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// Me is the JSON body of /auth/me.
type Me struct {
	// ID is caddymcp's user id (the sub of access tokens).
	ID string `json:"id"`
	// Email, Name and Picture are as the provider last asserted them.
	Email   string `json:"email"`
	Name    string `json:"name"`
	Picture string `json:"picture"`
	// Provider names the provider the user signed in with.
	Provider string `json:"provider"`
	// Scopes are the scopes the policy lets the user grant; null means
	// every scope.
	Scopes []string `json:"scopes"`
}

// CurrentUser returns the user signed in on r, or nil when there is no
// live session or the policy no longer lets the user in. It re-applies
// the policy on every call, so that a change takes effect at once, and
// extends the session's idle timeout (at most once a minute). A store
// failure is returned as an error.
func (s *Server) CurrentUser(r *http.Request) (*oauth.User, error) {
	u, scopes, err := s.session(r)
	if err != nil || u == nil {
		return nil, err
	}
	return &oauth.User{ID: u.ID, Name: u.Name, Email: u.Email, Scopes: scopes}, nil
}

// UserScopes applies the access policy to a user as they are now: whether
// they may still use the server, and the scopes they may grant (nil: all).
// The authorization server asks at every refresh, so that a policy change
// reaches issued grants.
func (s *Server) UserScopes(ctx context.Context, userID string) ([]string, bool, error) {
	u, err := s.cfg.Store.GetUser(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading a user: %w", err)
	}
	allowed, scopes := s.policy.scopes(u)
	return scopes, allowed, nil
}

// session returns the user of r's session and the scopes the policy
// grants them, or nil.
func (s *Server) session(r *http.Request) (*store.User, []string, error) {
	live, err := s.liveSession(r)
	if err != nil || live == nil {
		return nil, nil, err
	}
	return live.user, live.scopes, nil
}

// signedIn is a live session and its user.
type signedIn struct {
	// id is the session id, the cookie's value.
	id     string
	user   *store.User
	scopes []string
}

// liveSession returns r's session with its user and the scopes the
// policy grants them, or nil when there is no live session or the policy
// no longer lets the user in. It extends the session's idle timeout (at
// most once a minute).
func (s *Server) liveSession(r *http.Request) (*signedIn, error) {
	c, err := r.Cookie(s.sessionCookieName(r))
	if err != nil || !validToken(c.Value) {
		return nil, nil
	}
	ctx := r.Context()
	now := s.cfg.Now()
	se, err := s.cfg.Store.GetSession(ctx, c.Value, now)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the session: %w", err)
	}
	u, err := s.cfg.Store.GetUser(ctx, se.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the session's user: %w", err)
	}
	ok, scopes := s.policy.scopes(u)
	if !ok {
		return nil, nil
	}
	if now.Sub(se.LastSeenAt) >= touchInterval {
		err := s.cfg.Store.TouchSession(ctx, c.Value, now, now.Add(s.cfg.SessionIdle))
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("extending a session failed", "user_id", u.ID, "error", err.Error())
		}
	}
	return &signedIn{id: c.Value, user: u, scopes: scopes}, nil
}

// openSession creates a new session for userID, with a new id, and sets
// its cookie. A session the browser already had is ended: an id is never
// carried across a login (session fixation).
func (s *Server) openSession(w http.ResponseWriter, r *http.Request, userID string) error {
	ctx := r.Context()
	id, err := s.randomToken(tokenBytes)
	if err != nil {
		return err
	}
	name := s.sessionCookieName(r)
	if c, err := r.Cookie(name); err == nil && validToken(c.Value) {
		if err := s.cfg.Store.DeleteSession(ctx, c.Value); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	now := s.cfg.Now()
	expires := now.Add(s.cfg.SessionLifetime)
	idle := now.Add(s.cfg.SessionIdle)
	if idle.After(expires) {
		idle = expires
	}
	remote := r.RemoteAddr
	if host, _, err := net.SplitHostPort(remote); err == nil {
		remote = host
	}
	err = s.cfg.Store.CreateSession(ctx, id, &store.Session{
		UserID:        userID,
		UserAgent:     clip(r.UserAgent(), maxUserAgentLen),
		RemoteAddr:    clip(remote, 64),
		CreatedAt:     now,
		LastSeenAt:    now,
		IdleExpiresAt: idle,
		ExpiresAt:     expires,
	})
	if err != nil {
		return err
	}
	s.setCookie(w, r, name, id, int(s.cfg.SessionLifetime.Seconds()))
	return nil
}

// sessionCookieName is the session cookie's name for r.
func (s *Server) sessionCookieName(r *http.Request) string {
	if s.secure(r) {
		return SessionCookie
	}
	return InsecureSessionCookie
}

// bindingCookieName is the login-binding cookie's name for r.
func (s *Server) bindingCookieName(r *http.Request) string {
	if s.secure(r) {
		return bindingCookie
	}
	return insecureBindingCookie
}

// setCookie sets an HttpOnly, SameSite=Lax, host-only cookie for the
// whole site; Secure over HTTPS. maxAge < 0 deletes it.
func (s *Server) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		Secure:   s.secure(r),
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
}

// serveMe answers /auth/me with the signed-in user.
func (s *Server) serveMe(w http.ResponseWriter, r *http.Request) {
	u, scopes, err := s.session(r)
	switch {
	case err != nil:
		s.log.Warn("reading a session failed", "error", err.Error())
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable"})
	case u == nil:
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized"})
	default:
		writeJSON(w, http.StatusOK, Me{
			ID: u.ID, Email: u.Email, Name: u.Name, Picture: u.Picture,
			Provider: u.Provider, Scopes: scopes,
		})
	}
}

// sameOrigin reports whether a state-changing request comes from a page
// of this site: its Origin is the request's (or the base URL's), or the
// browser says Sec-Fetch-Site: same-origin.
func (s *Server) sameOrigin(r *http.Request) bool {
	if r.Header.Get("Sec-Fetch-Site") == "same-origin" {
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" || origin == "null" {
		return false
	}
	if s.base != "" && origin == s.base {
		return true
	}
	own, err := web.RequestOrigin(r)
	return err == nil && origin == own
}

// serveLogout answers POST /auth/logout: it deletes the session and its
// cookie, then answers 204, or 303 to a local return_to.
func (s *Server) serveLogout(w http.ResponseWriter, r *http.Request) {
	if !s.sameOrigin(r) {
		s.page(w, http.StatusForbidden, "Sign-out refused", "Sign out from a page of this site.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormSize)
	if err := r.ParseForm(); err != nil {
		s.page(w, http.StatusBadRequest, "Invalid request", "The request could not be read.")
		return
	}
	name := s.sessionCookieName(r)
	if c, err := r.Cookie(name); err == nil && validToken(c.Value) {
		ctx := r.Context()
		userID := ""
		if se, err := s.cfg.Store.GetSession(ctx, c.Value, s.cfg.Now()); err == nil {
			userID = se.UserID
		}
		if err := s.cfg.Store.DeleteSession(ctx, c.Value); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.internalError(w, "ending a session", err)
			return
		}
		if userID != "" {
			s.audit(EventLogout, "user_id", userID)
		}
	}
	s.setCookie(w, r, name, "", -1)
	w.Header().Set("Cache-Control", "no-store")
	if rt := r.Form.Get("return_to"); safeReturn(rt) {
		http.Redirect(w, r, rt, http.StatusSeeOther)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Sessions returns a user's live sessions, newest first (for
// administration).
func (s *Server) Sessions(ctx context.Context, userID string) ([]store.Session, error) {
	return s.cfg.Store.ListSessionsByUser(ctx, userID, s.cfg.Now())
}

// RevokeSessions ends all of a user's sessions and returns how many there
// were (for administration).
func (s *Server) RevokeSessions(ctx context.Context, userID string) (int64, error) {
	n, err := s.cfg.Store.DeleteSessionsByUser(ctx, userID)
	if err != nil {
		return 0, err
	}
	s.audit(EventSessionsRevoked, "user_id", userID, "count", n)
	return n, nil
}

// writeJSON writes v as an uncached JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"server_error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
