package oauth

import (
	"errors"
	"net/http"
	"strings"

	"github.com/caddymcp/caddymcp/caddymcp/signing"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// serveRevoke answers token revocation (RFC 7009). It answers 200 for any
// token the client may not or cannot revoke, so that it reveals nothing.
func (s *Server) serveRevoke(w http.ResponseWriter, r *http.Request, issuer string) {
	form, client, ok := s.clientRequest(w, r, nil)
	if !ok {
		return
	}
	token := form["token"]
	if token == "" {
		badRequest("invalid_request", "token is missing").write(w)
		return
	}
	ctx, now := r.Context(), s.cfg.Now()
	// The hint only orders the look-ups (RFC 7009 §2.1).
	if looksLikeJWT(token) || form["token_type_hint"] == "access_token" {
		if revoked, err := s.revokeAccessToken(r, issuer, client, token); err != nil {
			s.internalError(w, r, "revoking an access token", err)
			return
		} else if revoked {
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusOK)
			return
		}
	}
	rt, err := s.cfg.Store.GetRefreshToken(ctx, token, now)
	switch {
	case err == nil && rt.ClientID == client.ID:
		// Revoking a refresh token ends its grant and every token of it.
		if err := s.cfg.Store.RevokeRefreshToken(ctx, token, now); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.internalError(w, r, "revoking a refresh token", err)
			return
		}
		s.revoked(ctx)
		s.audit(EventTokenRevoked, "type", "refresh_token", "client_id", client.ID, "grant_id", rt.GrantID)
	case err != nil && !errors.Is(err, store.ErrNotFound):
		s.internalError(w, r, "looking up a refresh token", err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// revokeAccessToken puts an access token of this client on the deny-list.
// It reports whether the token was one.
func (s *Server) revokeAccessToken(r *http.Request, issuer string, client *store.Client, token string) (bool, error) {
	ks, err := s.cfg.Keys.KeySet(r.Context())
	if err != nil {
		return false, err
	}
	claims, err := ks.Verify(token, signing.VerifyOptions{Issuer: issuer, Now: s.cfg.Now})
	if err != nil || claims.ClientID != client.ID {
		return false, nil // expired, foreign or not ours: nothing to do
	}
	err = s.cfg.Store.RevokeAccessToken(r.Context(), claims.ID, s.cfg.Now())
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	s.revoked(r.Context())
	s.audit(EventTokenRevoked, "type", "access_token", "client_id", client.ID, "jti", claims.ID)
	return true, nil
}

// looksLikeJWT reports whether a token has the three parts of a JWS.
func looksLikeJWT(token string) bool { return strings.Count(token, ".") == 2 }

// clientRequest does what the token, revocation and introspection
// endpoints share: CORS, the form body, an optional check of the form
// before the client is looked up, and client authentication. It returns
// false when it has answered the request.
func (s *Server) clientRequest(w http.ResponseWriter, r *http.Request, check func(map[string]string) *oauthError) (map[string]string, *store.Client, bool) {
	if !s.preflight(w, r, "POST, OPTIONS") {
		return nil, nil, false
	}
	form, oe := readForm(w, r)
	if oe == nil && check != nil {
		oe = check(form)
	}
	if oe != nil {
		oe.write(w)
		return nil, nil, false
	}
	client, oe, err := s.authenticateClient(r, form)
	if err != nil {
		s.internalError(w, r, "authenticating a client", err)
		return nil, nil, false
	}
	if oe != nil {
		oe.write(w)
		return nil, nil, false
	}
	return form, client, true
}
