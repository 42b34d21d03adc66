package oauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddymcp/caddymcp/caddymcp/internal/dpop"
	"github.com/caddymcp/caddymcp/caddymcp/internal/web"
	"github.com/caddymcp/caddymcp/caddymcp/jose"
	"github.com/caddymcp/caddymcp/caddymcp/signing"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// tokenResponse is a successful token response (RFC 6749 §5.1).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
}

// serveToken answers the token endpoint (RFC 6749 §3.2).
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, issuer string) {
	form, client, ok := s.clientRequest(w, r, func(form map[string]string) *oauthError {
		switch form["grant_type"] {
		case "authorization_code", "refresh_token":
			return nil
		case "":
			return badRequest("invalid_request", "grant_type is missing")
		default:
			return badRequest("unsupported_grant_type", "supported grant types: authorization_code, refresh_token")
		}
	})
	if !ok {
		return
	}
	grantType := form["grant_type"]
	if !slices.Contains(client.GrantTypes, grantType) {
		badRequest("unauthorized_client", "this client is not registered for "+grantType).write(w)
		return
	}
	// RFC 8705 §3: the certificate of a mutual-TLS connection binds the
	// access token, unless the operator binds only for clients that ask
	// (§3.4). A client that asked gets no unbound token: the AS may
	// refuse (§3.4), and the code or refresh token stays usable.
	thumb := ""
	if cert := s.requestCertificate(r); cert != nil {
		thumb = jose.CertificateThumbprint(cert.Raw)
	}
	if client.CertificateBoundTokens && thumb == "" {
		badRequest("invalid_request", "this client gets only certificate-bound access tokens "+
			"(tls_client_certificate_bound_access_tokens): send the request over mutual TLS with its certificate").write(w)
		return
	}
	// RFC 9449 §5: a valid proof makes the tokens DPoP-bound. It is
	// checked (nonce included) before the code or refresh token is
	// looked at, so that a retry can still use them, and recorded as
	// used only once the grant is found valid (useProof). At the mutual-TLS
	// alias (RFC 8705 §5) the proof's htu is the alias, and nonces are
	// made for it.
	proof, ok := s.tokenProof(w, r, s.endpointBase(r, issuer))
	if !ok {
		return
	}
	ks, err := s.cfg.Keys.KeySet(r.Context())
	if err != nil {
		s.internalError(w, r, "loading signing keys", err)
		return
	}
	t := &tokenIssuer{s: s, issuer: issuer, keys: ks, client: client, now: s.cfg.Now(), proof: proof, cert: thumb,
		bindCert: thumb != "" && (!s.cfg.MTLS.BindOnRequest || client.CertificateBoundTokens)}
	if grantType == "authorization_code" {
		t.redeemCode(w, r, form)
	} else {
		t.refresh(w, r, form)
	}
}

// tokenIssuer holds what one token request needs.
type tokenIssuer struct {
	s      *Server
	issuer string
	keys   *signing.KeySet
	client *store.Client
	now    time.Time
	proof  *dpop.Proof // nil: a bearer token request
	// cert is the x5t#S256 of the request's TLS client certificate, or
	// "" (RFC 8705 §3.1); bindCert binds the new tokens to it.
	cert     string
	bindCert bool
}

// jkt is the thumbprint of the request's DPoP key, or "".
func (t *tokenIssuer) jkt() string {
	if t.proof == nil {
		return ""
	}
	return t.proof.JKT
}

// boundCert is the thumbprint new access tokens are bound to, or "".
func (t *tokenIssuer) boundCert() string {
	if !t.bindCert {
		return ""
	}
	return t.cert
}

// checkBinding checks that the request proves possession of the DPoP key
// a code or refresh token is bound to (RFC 9449 §5, §10); bound "" means
// it is not bound.
func (t *tokenIssuer) checkBinding(bound, what string) *oauthError {
	switch {
	case bound == "":
		return nil
	case t.proof == nil:
		return badRequest("invalid_grant", "the "+what+" is bound to a DPoP key: send a DPoP proof made with that key")
	case t.proof.JKT != bound:
		return badRequest("invalid_grant", "the DPoP proof is made with another key than the "+what+" is bound to")
	}
	return nil
}

// checkCertificate checks that the request comes over a connection with
// the TLS client certificate a refresh token is bound to (RFC 8705 §4);
// bound "" means it is not bound.
func (t *tokenIssuer) checkCertificate(bound, what string) *oauthError {
	switch {
	case bound == "":
		return nil
	case t.cert == "":
		return badRequest("invalid_grant", "the "+what+" is bound to a TLS client certificate: send the request over mutual TLS with that certificate")
	case subtle.ConstantTimeCompare([]byte(t.cert), []byte(bound)) != 1:
		return badRequest("invalid_grant", "the TLS client certificate is not the one the "+what+" is bound to")
	}
	return nil
}

// redeemCode exchanges an authorization code (RFC 6749 §4.1.3).
func (t *tokenIssuer) redeemCode(w http.ResponseWriter, r *http.Request, form map[string]string) {
	code, verifier := form["code"], form["code_verifier"]
	switch {
	case code == "":
		badRequest("invalid_request", "code is missing").write(w)
		return
	case verifier == "":
		badRequest("invalid_request", "code_verifier is missing (PKCE is required)").write(w)
		return
	case !validVerifier(verifier):
		badRequest("invalid_request", "code_verifier must be 43 to 128 unreserved characters").write(w)
		return
	}
	var resp *tokenResponse
	c, err := t.s.cfg.Store.RedeemCode(r.Context(), code, t.now, func(c *store.AuthCode) (*store.Issue, error) {
		if oe := t.checkCode(c, form); oe != nil {
			return nil, oe
		}
		if oe := t.useProof(); oe != nil {
			return nil, oe
		}
		out, res, err := t.issue(c.GrantID, c.UserID, c.Scope, c.Resource, time.Time{})
		if err != nil {
			return nil, err
		}
		out.Grant = &store.Grant{ID: c.GrantID, ClientID: c.ClientID, UserID: c.UserID, Scope: c.Scope,
			Resource: c.Resource, RedirectURI: c.RedirectURI, CreatedAt: t.now, UpdatedAt: t.now, ExpiresAt: t.grantExpiry(out)}
		resp = res
		return out, nil
	})
	if err == nil {
		// The user may have been dropped by the access policy since the
		// code was issued. The policy is asked after the redemption, whose
		// callback runs in the store's transaction and may not use the
		// store again: the code is spent, and what it issued is revoked
		// before anything leaves.
		err = t.checkCodePolicy(r, c)
	}
	var oe *oauthError
	switch {
	case err == nil:
		t.s.audit(EventTokenIssued, "grant", "authorization_code", "client_id", c.ClientID, "user_id", c.UserID,
			"scope", c.Scope, "resource", c.Resource, "grant_id", c.GrantID, "dpop_jkt", t.jkt(), "x5t_s256", t.boundCert())
		writeTokenResponse(w, resp)
	case errors.As(err, &oe):
		oe.write(w)
	case errors.Is(err, store.ErrNotFound):
		badRequest("invalid_grant", "the authorization code is unknown or has expired").write(w)
	case errors.Is(err, store.ErrAlreadyUsed):
		// OAuth 2.1 §4.1.3: a second valid redemption revokes what the
		// first one issued; a replay that would fail anyway revokes
		// nothing, so an attacker cannot revoke the real client's tokens.
		// Nor does a replay of the first redemption's own proof (sent
		// twice at once, both passed tokenProof's look-up).
		if t.checkCode(c, form) == nil {
			if oe := t.useProof(); oe != nil {
				oe.write(w)
				return
			}
			if err := t.s.cfg.Store.RevokeGrant(r.Context(), c.GrantID, t.now); err != nil && !errors.Is(err, store.ErrNotFound) {
				t.s.internalError(w, r, "revoking a replayed code's grant", err)
				return
			}
			t.s.revoked(r.Context())
			t.s.audit(EventCodeReplayed, "client_id", c.ClientID, "user_id", c.UserID, "grant_id", c.GrantID, "revoked", true)
		} else {
			t.s.audit(EventCodeReplayed, "client_id", t.client.ID, "revoked", false)
		}
		badRequest("invalid_grant", "the authorization code was already used").write(w)
	default:
		t.s.internalError(w, r, "redeeming a code", err)
	}
}

// checkCodePolicy asks the access policy about the user of a redeemed
// code. When the user may no longer grant every scope of the code (the
// policy removed the user, or narrowed what the user may grant since the
// consent), the grant just created is revoked and an invalid_grant
// *oauthError returned: the client authorizes again, and the consent
// offers what the policy allows now.
func (t *tokenIssuer) checkCodePolicy(r *http.Request, c *store.AuthCode) error {
	scope, err := t.s.policyScope(r.Context(), c.UserID, c.Scope)
	if err == nil && scope != "" && scopeCovers(scope, c.Scope) {
		return nil
	}
	if rerr := t.s.cfg.Store.RevokeGrant(r.Context(), c.GrantID, t.now); rerr != nil && !errors.Is(rerr, store.ErrNotFound) {
		return errors.Join(err, fmt.Errorf("revoking the grant of a code refused by the access policy: %w", rerr))
	}
	t.s.revoked(r.Context())
	if err != nil {
		return err
	}
	t.s.audit(EventGrantRevoked, "reason", "access policy", "client_id", c.ClientID, "user_id", c.UserID, "grant_id", c.GrantID)
	if scope != "" {
		return badRequest("invalid_grant", "the user may no longer grant all of this code's scope: authorize again")
	}
	return badRequest("invalid_grant", "the user may no longer use this server")
}

// checkCode verifies that a code may be redeemed by this request: same
// client, same redirect URI, the PKCE verifier, the resource, and the
// DPoP key of dpop_jkt.
func (t *tokenIssuer) checkCode(c *store.AuthCode, form map[string]string) *oauthError {
	if c.ClientID != t.client.ID {
		return badRequest("invalid_grant", "the code was issued to another client")
	}
	// RFC 9449 §10: a code requested with dpop_jkt is redeemed only with
	// a proof of that key.
	if oe := t.checkBinding(c.DPoPJKT, "code"); oe != nil {
		return oe
	}
	// OAuth 2.1 §4.1.3: redirect_uri is optional, but enforced when sent.
	if ru, ok := form["redirect_uri"]; ok && ru != c.RedirectURI {
		return badRequest("invalid_grant", "redirect_uri differs from the authorization request")
	}
	sum := sha256.Sum256([]byte(form["code_verifier"]))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(c.CodeChallenge)) != 1 {
		return badRequest("invalid_grant", "code_verifier does not match the code_challenge")
	}
	if res, ok := form["resource"]; ok {
		if canon, err := canonicalResource(res); err != nil || canon != c.Resource {
			return badRequest("invalid_target", "resource differs from the one authorized")
		}
	}
	return nil
}

// refresh rotates a refresh token (RFC 6749 §6, OAuth 2.1 §4.3.1): it
// parses the grant's parameters, decides against the token being rotated
// (decideRefresh, inside the store's rotation), and responds.
func (t *tokenIssuer) refresh(w http.ResponseWriter, r *http.Request, form map[string]string) {
	p, oe := parseRefresh(form)
	if oe != nil {
		oe.write(w)
		return
	}
	// The access policy is read before the rotation's transaction: the
	// callback below runs inside it and must not use the store again (it
	// would need a second connection from the pool).
	policy, err := t.prefetchPolicy(r, p.token)
	if err != nil {
		t.s.internalError(w, r, "reading the access policy", err)
		return
	}
	var resp *tokenResponse
	old, err := t.s.cfg.Store.RefreshGrant(r.Context(), p.token, t.now, func(old *store.RefreshToken, g *store.Grant) (*store.Issue, error) {
		scopes, err := t.decideRefresh(p, policy, old)
		if err != nil {
			return nil, err
		}
		if oe := t.useProof(); oe != nil {
			return nil, oe
		}
		out, res, err := t.rotateRefresh(p.token, old, g, scopes)
		if err != nil {
			return nil, err
		}
		resp = res
		return out, nil
	})
	t.respondRefresh(w, r, p.token, old, resp, err)
}

// refreshRequest holds the parameters of a refresh_token grant (RFC 6749 §6).
type refreshRequest struct {
	token string
	// scope narrows the scope of the new access token; "" keeps it.
	scope string
	// resource, if hasResource, must be the grant's resource.
	resource    string
	hasResource bool
}

// parseRefresh reads the parameters of a refresh_token grant.
func parseRefresh(form map[string]string) (refreshRequest, *oauthError) {
	p := refreshRequest{token: form["refresh_token"], scope: form["scope"]}
	p.resource, p.hasResource = form["resource"]
	if p.token == "" {
		return p, badRequest("invalid_request", "refresh_token is missing")
	}
	return p, nil
}

// refreshScopes are the scopes of the tokens a rotation issues.
type refreshScopes struct {
	access  string // of the new access token
	refresh string // of the new refresh token
}

// decideRefresh applies the rules of a refresh to the token being
// rotated: its client, its DPoP key or certificate, the scope asked
// for, the access policy as it is now, and the resource. A refusal
// rotates nothing; errUserNotAllowed ends the grant.
func (t *tokenIssuer) decideRefresh(p refreshRequest, policy userPolicy, old *store.RefreshToken) (refreshScopes, error) {
	if old.ClientID != t.client.ID {
		return refreshScopes{}, badRequest("invalid_grant", "the refresh token was issued to another client")
	}
	// RFC 9449 §5: a bound refresh token needs a proof of its key;
	// refusing here rotates nothing.
	if oe := t.checkBinding(old.DPoPJKT, "refresh token"); oe != nil {
		return refreshScopes{}, oe
	}
	// RFC 8705 §4: so does one bound to a certificate.
	if oe := t.checkCertificate(old.CertThumbprint, "refresh token"); oe != nil {
		return refreshScopes{}, oe
	}
	sc := refreshScopes{access: old.Scope, refresh: old.Scope}
	if p.scope != "" {
		if !scopeCovers(old.Scope, p.scope) {
			return refreshScopes{}, badRequest("invalid_scope", "a refresh may not widen the scope")
		}
		sc.access = strings.Join(strings.Fields(p.scope), " ")
	}
	// The access policy as it is now: a user no longer allowed loses
	// the grant, and narrowed scopes apply to the new tokens.
	if policy.userID != old.UserID || !policy.allowed {
		return refreshScopes{}, errUserNotAllowed
	}
	if userScopes := policy.scopes; userScopes != nil {
		sc.access = t.s.grantableScope(sc.access, t.client, userScopes)
		sc.refresh = t.s.grantableScope(sc.refresh, t.client, userScopes)
		if sc.access == "" {
			return refreshScopes{}, errUserNotAllowed
		}
	}
	if p.hasResource {
		if canon, err := canonicalResource(p.resource); err != nil || canon != old.Resource {
			return refreshScopes{}, badRequest("invalid_target", "resource differs from the one authorized")
		}
	}
	return sc, nil
}

// rotateRefresh issues the tokens that replace old, and seals the
// response under the old token, for a replay within the grace window.
func (t *tokenIssuer) rotateRefresh(token string, old *store.RefreshToken, g *store.Grant, sc refreshScopes) (*store.Issue, *tokenResponse, error) {
	out, res, err := t.issue(g.ID, old.UserID, sc.access, old.Resource, g.CreatedAt)
	if err != nil {
		return nil, nil, err
	}
	if out.Refreshed != nil {
		// OAuth 2.1 §4.3.1: a narrower scope applies to the access
		// token; the new refresh token keeps the scope of the old one.
		out.Refreshed.Scope = sc.refresh
		// A certificate binding is kept whatever binds new tokens now.
		if old.CertThumbprint != "" {
			out.Refreshed.CertThumbprint = old.CertThumbprint
		}
	}
	body, err := json.Marshal(res)
	if err != nil {
		return nil, nil, err
	}
	if out.Sealed, err = seal(token, body, t.s.cfg.Random); err != nil {
		return nil, nil, err
	}
	return out, res, nil
}

// respondRefresh answers a refresh with the outcome of the rotation: the
// new tokens, or why there are none.
func (t *tokenIssuer) respondRefresh(w http.ResponseWriter, r *http.Request, token string, old *store.RefreshToken, resp *tokenResponse, err error) {
	var oe *oauthError
	switch {
	case errors.Is(err, errUserNotAllowed):
		// The grant is over: revoke it, so its access tokens stop too.
		if old, gerr := t.s.cfg.Store.GetRefreshToken(r.Context(), token, t.now); gerr == nil {
			if rerr := t.s.cfg.Store.RevokeGrant(r.Context(), old.GrantID, t.now); rerr == nil {
				t.s.revoked(r.Context())
				t.s.audit(EventGrantRevoked, "reason", "access policy", "client_id", old.ClientID, "user_id", old.UserID, "grant_id", old.GrantID)
			}
		}
		badRequest("invalid_grant", "the user may no longer use this server").write(w)
	case err == nil:
		t.s.audit(EventTokenRefreshed, "client_id", old.ClientID, "user_id", old.UserID, "grant_id", old.GrantID, "scope", resp.Scope,
			"dpop_jkt", t.jkt(), "x5t_s256", t.boundCert())
		writeTokenResponse(w, resp)
	case errors.As(err, &oe):
		oe.write(w)
	case errors.Is(err, store.ErrNotFound):
		badRequest("invalid_grant", "the refresh token is unknown, expired or revoked").write(w)
	case errors.Is(err, store.ErrAlreadyUsed):
		t.replayedRefresh(w, r, token, old)
	default:
		t.s.internalError(w, r, "refreshing a token", err)
	}
}

// errUserNotAllowed means the access policy no longer lets the grant's
// user in.
var errUserNotAllowed = errors.New("user no longer allowed")

// userPolicy is what the access policy says about a refresh token's user.
type userPolicy struct {
	userID  string
	allowed bool
	scopes  []string // nil: no limit
}

// prefetchPolicy reads the user of a live refresh token and asks the
// Authenticator about them; without an Authenticator nothing limits the
// grant. An unknown token yields no user, which the rotation refuses
// anyway.
func (t *tokenIssuer) prefetchPolicy(r *http.Request, token string) (userPolicy, error) {
	rt, err := t.s.cfg.Store.GetRefreshToken(r.Context(), token, t.now)
	if errors.Is(err, store.ErrNotFound) {
		return userPolicy{}, nil
	}
	if err != nil {
		return userPolicy{}, err
	}
	if t.s.cfg.Users == nil {
		return userPolicy{userID: rt.UserID, allowed: true}, nil
	}
	scopes, allowed, err := t.s.cfg.Users.UserScopes(r.Context(), rt.UserID)
	if err != nil {
		return userPolicy{}, err
	}
	return userPolicy{userID: rt.UserID, allowed: allowed, scopes: scopes}, nil
}

// replayedRefresh answers a rotated refresh token presented again: within
// the grace window with the same response as the first time (concurrent
// refreshes of one client), after it by revoking the whole grant.
func (t *tokenIssuer) replayedRefresh(w http.ResponseWriter, r *http.Request, token string, old *store.RefreshToken) {
	resp, oe := t.decideReplay(token, old)
	switch {
	case oe != nil:
		oe.write(w)
		return
	case resp != nil:
		writeTokenResponse(w, resp)
		return
	}
	if err := t.s.cfg.Store.RevokeGrant(r.Context(), old.GrantID, t.now); err != nil && !errors.Is(err, store.ErrNotFound) {
		t.s.internalError(w, r, "revoking a grant after refresh reuse", err)
		return
	}
	t.s.revoked(r.Context())
	t.s.audit(EventRefreshReuseDetected, "client_id", old.ClientID, "user_id", old.UserID, "grant_id", old.GrantID, "revoked", true)
	badRequest("invalid_grant", "the refresh token was already used; the grant has been revoked").write(w)
}

// decideReplay decides about a rotated refresh token presented again:
// refused without revoking anything (an error), answered again (the
// first response), or neither, which is reuse: the grant is revoked.
func (t *tokenIssuer) decideReplay(token string, old *store.RefreshToken) (*tokenResponse, *oauthError) {
	if old.ClientID != t.client.ID {
		return nil, badRequest("invalid_grant", "the refresh token was issued to another client")
	}
	// A replay without the key of a DPoP-bound token is refused without
	// revoking: whoever sends it cannot use the token, and must not be
	// able to end the client's grant either.
	if oe := t.checkBinding(old.DPoPJKT, "refresh token"); oe != nil {
		t.s.audit(EventRefreshReplayWithoutKey, "client_id", old.ClientID, "grant_id", old.GrantID, "revoked", false)
		return nil, oe
	}
	// Nor with another certificate than the one it is bound to (RFC 8705 §4).
	if oe := t.checkCertificate(old.CertThumbprint, "refresh token"); oe != nil {
		t.s.audit(EventRefreshReplayWithoutCertificate, "client_id", old.ClientID, "grant_id", old.GrantID, "revoked", false)
		return nil, oe
	}
	// A proof already used (the rotation's own, sent twice at once) gets
	// neither the first response again nor a revocation.
	if oe := t.useProof(); oe != nil {
		return nil, oe
	}
	if t.now.Sub(old.RotatedAt) <= t.s.cfg.RefreshGrace && old.Successor != nil {
		if body, err := unseal(token, old.Successor); err == nil {
			var resp tokenResponse
			if json.Unmarshal(body, &resp) == nil {
				return &resp, nil
			}
		}
	}
	return nil, nil
}

// issue signs an access token and makes the next refresh token.
// grantCreated is zero for a new grant. With a DPoP proof the access
// token is bound to its key (RFC 9449 §5, §6.1), and so is the refresh
// token of a public client; a confidential client's refresh token stays
// bound to its credentials alone (§5). Likewise with a TLS client
// certificate to bind to (RFC 8705 §3, §4): a token with both is bound
// both ways.
func (t *tokenIssuer) issue(grantID, userID, scope, resource string, grantCreated time.Time) (*store.Issue, *tokenResponse, error) {
	jti, err := t.s.randomToken(16)
	if err != nil {
		return nil, nil, err
	}
	exp := t.now.Add(t.s.cfg.AccessTokenLifetime)
	claims := &jose.AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: t.issuer, Subject: userID, Audience: jwt.ClaimStrings{resource},
			IssuedAt: jwt.NewNumericDate(t.now), ExpiresAt: jwt.NewNumericDate(exp), ID: jti,
		},
		ClientID: t.client.ID, Scope: scope,
	}
	tokenType, rtKey, rtCert := "Bearer", "", ""
	if t.proof != nil {
		claims.Cnf = &jose.Confirmation{JKT: t.proof.JKT}
		tokenType = dpop.Scheme
		if publicClient(t.client) {
			rtKey = t.proof.JKT
		}
	}
	if t.bindCert {
		if claims.Cnf == nil {
			claims.Cnf = &jose.Confirmation{}
		}
		claims.Cnf.X5TS256 = t.cert
		if publicClient(t.client) {
			rtCert = t.cert
		}
	}
	at, err := t.keys.Sign(claims)
	if err != nil {
		return nil, nil, err
	}
	out := &store.Issue{Access: &store.AccessToken{JTI: jti, GrantID: grantID, ClientID: t.client.ID, UserID: userID,
		Scope: scope, Resource: resource, CreatedAt: t.now, ExpiresAt: exp}}
	resp := &tokenResponse{AccessToken: at, TokenType: tokenType, ExpiresIn: int64(t.s.cfg.AccessTokenLifetime / time.Second), Scope: scope}
	if slices.Contains(t.client.GrantTypes, "refresh_token") {
		if grantCreated.IsZero() {
			grantCreated = t.now
		}
		rt, err := t.s.randomToken(32)
		if err != nil {
			return nil, nil, err
		}
		rexp := t.now.Add(t.s.cfg.RefreshIdle)
		if end := grantCreated.Add(t.s.cfg.RefreshLifetime); end.Before(rexp) {
			rexp = end
		}
		out.Refresh = rt
		out.Refreshed = &store.RefreshToken{GrantID: grantID, ClientID: t.client.ID, UserID: userID, Scope: scope,
			Resource: resource, DPoPJKT: rtKey, CertThumbprint: rtCert, CreatedAt: t.now, ExpiresAt: rexp}
		resp.RefreshToken = rt
	}
	return out, resp, nil
}

// grantExpiry is when a new grant ends: with its refresh token, or with
// its only access token.
func (t *tokenIssuer) grantExpiry(out *store.Issue) time.Time {
	end := out.Access.ExpiresAt
	if out.Refreshed != nil && t.now.Add(t.s.cfg.RefreshLifetime).After(end) {
		end = t.now.Add(t.s.cfg.RefreshLifetime)
	}
	return end
}

func writeTokenResponse(w http.ResponseWriter, resp *tokenResponse) {
	w.Header().Set("Pragma", "no-cache")
	web.WriteJSON(w, http.StatusOK, resp, "no-store")
}

// validVerifier checks a PKCE code verifier: 43 to 128 characters of
// [A-Z] [a-z] [0-9] "-" "." "_" "~" (RFC 7636 §4.1).
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// sealKey derives the key that seals a rotated refresh token's response
// from the token itself, which only the client holds (the store keeps a
// different hash of it).
func sealKey(token string) []byte {
	sum := sha256.Sum256([]byte("caddymcp refresh successor\x00" + token))
	return sum[:]
}

// seal encrypts plaintext with AES-256-GCM under the token's seal key.
func seal(token string, plaintext []byte, random io.Reader) ([]byte, error) {
	return signing.SealGCM(sealKey(token), plaintext, nil, random)
}

// unseal reverses seal.
func unseal(token string, sealed []byte) ([]byte, error) {
	return signing.OpenGCM(sealKey(token), sealed, nil)
}
