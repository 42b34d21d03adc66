package oauth

import (
	"errors"
	"net/http"
	"strings"

	"github.com/caddymcp/caddymcp/caddymcp/internal/dpop"
	"github.com/caddymcp/caddymcp/caddymcp/internal/web"
	"github.com/caddymcp/caddymcp/caddymcp/jose"
	"github.com/caddymcp/caddymcp/caddymcp/signing"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// introspection is an RFC 7662 §2.2 response.
type introspection struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Sub       string   `json:"sub,omitempty"`
	Aud       []string `json:"aud,omitempty"`
	Iss       string   `json:"iss,omitempty"`
	Exp       int64    `json:"exp,omitempty"`
	Iat       int64    `json:"iat,omitempty"`
	JTI       string   `json:"jti,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	// Cnf carries the jkt of a DPoP-bound token (RFC 9449 §6.2) and the
	// x5t#S256 of a certificate-bound one (RFC 8705 §3.2).
	Cnf *jose.Confirmation `json:"cnf,omitempty"`
}

// serveIntrospect answers token introspection (RFC 7662). Only clients
// with credentials (a secret or a TLS client certificate) may call it,
// and a registered client only about its own tokens, so that it cannot
// be used to probe stolen ones.
func (s *Server) serveIntrospect(w http.ResponseWriter, r *http.Request, issuer string) {
	form, client, ok := s.clientRequest(w, r, nil)
	if !ok {
		return
	}
	if publicClient(client) {
		(&oauthError{Status: http.StatusUnauthorized, Code: "invalid_client",
			Description:    "introspection requires a client that authenticates with a secret or a TLS client certificate",
			basicChallenge: r.Header.Get("Authorization") != ""}).write(w)
		return
	}
	token := form["token"]
	if token == "" {
		badRequest("invalid_request", "token is missing").write(w)
		return
	}
	resp, err := s.introspect(r, issuer, token)
	if err != nil {
		s.internalError(w, r, "introspecting a token", err)
		return
	}
	// A dynamically registered client learns only about its own tokens;
	// configured clients (resource servers) may introspect any token.
	if _, static := s.static[client.ID]; !static && resp.ClientID != client.ID {
		resp = introspection{Active: false}
	}
	web.WriteJSON(w, http.StatusOK, resp, "no-store")
}

func (s *Server) introspect(r *http.Request, issuer, token string) (introspection, error) {
	ctx, now := r.Context(), s.cfg.Now()
	inactive := introspection{Active: false}
	if looksLikeJWT(token) {
		ks, err := s.cfg.Keys.KeySet(ctx)
		if err != nil {
			return inactive, err
		}
		c, err := ks.Verify(token, signing.VerifyOptions{Issuer: issuer, Now: s.cfg.Now})
		if err != nil {
			return inactive, nil
		}
		ok, err := s.cfg.Store.AccessTokenActive(ctx, c.ID, now)
		if err != nil || !ok {
			return inactive, err
		}
		tokenType := "Bearer" // also for a certificate-bound token (RFC 8705 §3.2)
		if c.Cnf != nil && c.Cnf.JKT != "" {
			tokenType = dpop.Scheme // RFC 9449 §6.2
		}
		return introspection{Active: true, Scope: c.Scope, ClientID: c.ClientID, Sub: c.Subject, Aud: c.Audience,
			Iss: c.Issuer, Exp: c.ExpiresAt.Unix(), Iat: c.IssuedAt.Unix(), JTI: c.ID, TokenType: tokenType, Cnf: c.Cnf}, nil
	}
	if strings.ContainsAny(token, " \t\r\n") {
		return inactive, nil
	}
	rt, err := s.cfg.Store.GetRefreshToken(ctx, token, now)
	if errors.Is(err, store.ErrNotFound) {
		return inactive, nil
	}
	if err != nil {
		return inactive, err
	}
	return introspection{Active: true, Scope: rt.Scope, ClientID: rt.ClientID, Sub: rt.UserID, Aud: []string{rt.Resource},
		Iss: issuer, Exp: rt.ExpiresAt.Unix(), Iat: rt.CreatedAt.Unix(), TokenType: "refresh_token"}, nil
}
