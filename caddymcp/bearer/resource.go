// Package bearer is caddymcp's resource server: what the mcp_bearer
// directive runs in front of any route. It serves Protected Resource
// Metadata (RFC 9728), finds the access token of a request (RFC 6750,
// RFC 9449 §7), verifies it — tokens of the co-located authorization
// server with its published keys, tokens of external issuers with theirs
// (RemoteIssuer), legacy opaque tokens through a lookup — checks its
// audience, scope, revocation (DenyList) and sender binding (DPoP,
// mutual TLS), remembers verified tokens briefly, and answers refusals
// with the challenge MCP clients act on. A verified request carries its
// Principal in the context.
//
// It imports store (revocation rows), signing (the local issuer's keys),
// jose, internal/dpop and internal/web; never the authorization server
// (oauth), login, tools or Caddy.
package bearer

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/internal/dpop"
	"github.com/caddymcp/caddymcp/caddymcp/internal/web"
	"github.com/caddymcp/caddymcp/caddymcp/jose"
	"github.com/caddymcp/caddymcp/caddymcp/signing"
)

// ResourceConfig describes a protected resource (an MCP endpoint or any
// route guarded by bearer tokens).
type ResourceConfig struct {
	// Resource is the resource identifier: an absolute URL, or a path
	// ("/mcp") taken relative to BaseOrigin, else to each request's
	// origin. Empty means the origin itself.
	Resource string
	// BaseOrigin is the public origin ("https://host[:port]") a path
	// Resource is relative to, e.g. the issuer's when Caddy sits behind a
	// proxy that terminates TLS. Empty: the request's origin.
	BaseOrigin string
	// AuthorizationServers are the issuers whose tokens Keys verifies (a
	// co-located authorization server), published in this order. Empty,
	// with no Remote either: the request's origin, the default issuer of
	// a co-located authorization server.
	AuthorizationServers []string
	// Remote are external authorization servers whose tokens are verified
	// with the keys they publish. Their issuers are accepted, and
	// published after AuthorizationServers.
	Remote []*RemoteIssuer
	// Scopes are published as scopes_supported.
	Scopes []string
	// ResourceName is the human-readable name (resource_name).
	ResourceName string
	// ResourceDocumentation is a URL of documentation for developers.
	ResourceDocumentation string
	// Keys verifies access tokens. Without it every token is refused.
	Keys signing.KeySource
	// Active reports whether the token with a jti is still valid (not
	// revoked). When it fails, because the database is down, the token
	// is accepted on its signature alone, so that issued tokens keep
	// working through an outage. nil: no revocation check.
	Active func(ctx context.Context, jti string) (bool, error)
	// Legacy looks up an opaque (non-JWT) access token of the system that
	// predates OAuth. It returns the token's claims (Subject, ClientID,
	// Scope, ExpiresAt), an error wrapping ErrInvalidToken for an unknown,
	// expired or revoked token, or another error when the lookup failed.
	// A found token is remembered for LegacyCacheTTL. nil: opaque tokens
	// are refused.
	Legacy func(ctx context.Context, token string) (*jose.AccessClaims, error)
	// Required are the scopes a request needs; by default any one of
	// them (RequireAll: every one). Empty: any valid token.
	Required []string
	// RequireAll makes Required an all-of list.
	RequireAll bool
	// RequireDPoP refuses bearer tokens: every request must present a
	// DPoP-bound access token with the DPoP scheme and a DPoP proof
	// (RFC 9449 §7), and the metadata says
	// dpop_bound_access_tokens_required. Default: both are accepted, and
	// a DPoP-bound token is refused only when sent as a bearer token
	// (§7.2).
	RequireDPoP bool
	// Leeway tolerates clock skew on the exp, nbf and iat of the local
	// issuer's tokens, which are signed by the same clock that verifies
	// them: a token is accepted at most this long after its exp, and the
	// verified-token cache honours the same bound. Default and maximum:
	// 5s (MaxLocalLeeway); a larger value is refused. External issuers
	// have their own (RemoteIssuerConfig.Leeway).
	Leeway time.Duration
	// MaxTokenLifetime is the longest life (exp − iat) of an accepted
	// token of the local issuer: a longer-lived one, or one without iat,
	// is refused, so that a token signed with a leaked key stops working
	// at the latest this long after it claims to have been issued, even
	// if it names an exp years ahead. It matches the longest access
	// token lifetime mcp_oauth allows. Default: 24h
	// (DefaultMaxTokenLifetime).
	MaxTokenLifetime time.Duration
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Logger receives warnings. Default: discard.
	Logger *slog.Logger
}

// MaxLocalLeeway is the default and largest ResourceConfig.Leeway.
const MaxLocalLeeway = 5 * time.Second

// DefaultMaxTokenLifetime is the default ResourceConfig.MaxTokenLifetime.
const DefaultMaxTokenLifetime = 24 * time.Hour

// LegacyCacheTTL is how long a legacy token found in the database is
// accepted without looking it up again, and so the longest a revocation
// of one takes to apply.
const LegacyCacheTTL = 5 * time.Second

// Resource is the resource-server side of MCP authorization: it serves
// Protected Resource Metadata (RFC 9728) and challenges requests.
type Resource struct {
	cache      *verifiedCache
	replay     *dpop.ReplayCache // DPoP proofs seen here
	cfg        ResourceConfig
	remote     map[string]*RemoteIssuer // by issuer
	absolute   bool                     // cfg.Resource is an absolute URL
	path       string                   // the resource's path, "" for the origin
	wellKnown  string                   // PRMPath + path
	rootOrigin string                   // origin of an absolute resource
}

// NewResource checks cfg and returns a resource.
func NewResource(cfg ResourceConfig) (*Resource, error) {
	r := &Resource{cfg: cfg}
	switch {
	case cfg.Resource == "" || cfg.Resource == "/":
		r.cfg.Resource = ""
	case strings.HasPrefix(cfg.Resource, "/"):
		u, err := url.Parse(cfg.Resource)
		if err != nil || u.RawQuery != "" || u.Fragment != "" || strings.HasPrefix(cfg.Resource, "//") {
			return nil, errors.New("resource path must be a plain path such as /mcp")
		}
		r.path = strings.TrimSuffix(u.EscapedPath(), "/")
	default:
		if err := web.ValidateResource(cfg.Resource); err != nil {
			return nil, err
		}
		u, _ := url.Parse(cfg.Resource) // validated above
		r.absolute = true
		r.rootOrigin = u.Scheme + "://" + u.Host
		r.path = strings.TrimSuffix(u.EscapedPath(), "/")
	}
	if cfg.BaseOrigin != "" {
		if u, err := url.Parse(cfg.BaseOrigin); err != nil || web.ValidateResource(cfg.BaseOrigin) != nil || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("base origin %q must be an origin such as https://mcp.example.com", cfg.BaseOrigin)
		}
		r.cfg.BaseOrigin = strings.TrimSuffix(cfg.BaseOrigin, "/")
	}
	for _, as := range cfg.AuthorizationServers {
		if err := web.ValidateIssuer(as); err != nil {
			return nil, err
		}
	}
	r.remote = map[string]*RemoteIssuer{}
	r.cfg.AuthorizationServers = slices.Clone(cfg.AuthorizationServers)
	for _, ri := range cfg.Remote {
		if _, dup := r.remote[ri.Issuer()]; dup {
			return nil, fmt.Errorf("issuer %q is configured twice", ri.Issuer())
		}
		r.remote[ri.Issuer()] = ri
		if !slices.Contains(r.cfg.AuthorizationServers, ri.Issuer()) {
			r.cfg.AuthorizationServers = append(r.cfg.AuthorizationServers, ri.Issuer())
		}
	}
	if cfg.ResourceDocumentation != "" {
		if u, err := url.Parse(cfg.ResourceDocumentation); err != nil || !u.IsAbs() {
			return nil, errors.New("resource_documentation must be an absolute URL")
		}
	}
	if r.cfg.Scopes == nil {
		r.cfg.Scopes = web.DefaultScopes
	}
	for _, sc := range cfg.Required {
		if !web.ValidScopeToken(sc) {
			return nil, fmt.Errorf("invalid required scope %q", sc)
		}
	}
	switch {
	case r.cfg.Leeway < 0 || r.cfg.Leeway > MaxLocalLeeway:
		return nil, fmt.Errorf("the leeway on the local issuer's tokens must be between 0 and %v, not %v", MaxLocalLeeway, r.cfg.Leeway)
	case r.cfg.Leeway == 0:
		r.cfg.Leeway = MaxLocalLeeway
	}
	if r.cfg.MaxTokenLifetime <= 0 {
		r.cfg.MaxTokenLifetime = DefaultMaxTokenLifetime
	}
	if r.cfg.Now == nil {
		r.cfg.Now = time.Now
	}
	if r.cfg.Logger == nil {
		r.cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r.wellKnown = PRMPath + r.path
	r.cache = newVerifiedCache(verifiedCacheSize)
	r.replay = dpop.NewReplayCache()
	return r, nil
}

// Check inspects a request's credentials. It returns the verified
// principal, or the failure to send. A CORS preflight is not special
// here: it carries no token and is refused, so the caller answers it
// with ServePreflight first and never passes it on.
//
// It reads the request (parse), finds the token's claims (claims: the
// verified-token cache, a legacy lookup or the signature) and decides
// whether they admit this request (admit).
func (rs *Resource) Check(r *http.Request) (*Principal, *Failure) {
	in, f := rs.parse(r)
	if f != nil {
		return nil, f
	}
	entry, f := rs.claims(r.Context(), in)
	if f != nil {
		return nil, f
	}
	return rs.admit(r, in, entry)
}

// PreflightMethods are the methods a CORS preflight to a resource may
// ask for: those of MCP's Streamable HTTP transport.
const PreflightMethods = "GET, POST, DELETE, OPTIONS"

// ServePreflight answers a CORS preflight (IsPreflight) itself: 204 with
// the CORS headers of a credential-free answer (web.SetCORS). A
// preflight carries no token, so it must never reach what the resource
// guards (behind a reverse proxy, the upstream would receive an
// unauthenticated request); browsers send the real request next, with
// its token, and that one is checked.
func (rs *Resource) ServePreflight(w http.ResponseWriter, _ *http.Request) {
	web.SetCORS(w, PreflightMethods)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// presented is what a request presents to the resource, read and checked
// by parse.
type presented struct {
	resource     string // the resource identifier it addressed
	metadataURL  string // this resource's metadata URL, for challenges
	publicOrigin string // the origin clients address (DPoP's htu)
	origin       string // the expected issuer when none is configured
	scheme       string // Bearer or DPoP
	token        string
	proof        *dpop.Proof // nil with the Bearer scheme
	now          time.Time
	rf           refusal
}

// refuse is the failure of a request, challenged in its own scheme.
func (in *presented) refuse(status int, code, desc, scope string) *Failure {
	return in.rf.fail(in.scheme, status, code, desc, scope)
}

// parse reads the request's resource, token and DPoP proof, and refuses
// a request without credentials, with malformed ones, with a bearer
// token where DPoP is required, or with an invalid proof.
func (rs *Resource) parse(r *http.Request) (*presented, *Failure) {
	resource, metadataURL, publicOrigin, err := rs.identity(r)
	if err != nil {
		return nil, &Failure{Status: http.StatusBadRequest, Code: "invalid_request", Description: err.Error(),
			Challenge: web.Challenge("Bearer", web.ChallengeParams{Error: "invalid_request", Description: err.Error()})}
	}
	in := &presented{resource: resource, metadataURL: metadataURL, publicOrigin: publicOrigin, now: rs.cfg.Now(),
		rf: refusal{metadataURL: metadataURL, bearerOK: !rs.cfg.RequireDPoP}}
	// The token's syntax is checked later, on a cache miss: a token in
	// the cache passed it when it was first seen.
	in.scheme, in.token, err = web.AccessTokenHeader(r)
	switch {
	case errors.Is(err, web.ErrNoToken):
		return nil, rs.missingToken(metadataURL)
	case err != nil:
		return nil, in.refuse(http.StatusBadRequest, "invalid_request", err.Error(), "")
	case in.scheme != dpop.Scheme && rs.cfg.RequireDPoP:
		return nil, in.refuse(http.StatusUnauthorized, "invalid_token",
			"this resource accepts only DPoP-bound access tokens, sent with the DPoP scheme and a DPoP proof", "")
	}
	if in.scheme == dpop.Scheme {
		// RFC 9449 §4.3 and §7.1: the proof is checked on every request;
		// the token cache never stands in for it.
		in.proof, err = dpop.CheckProof(r.Header.Values(dpop.Header), r.Method, publicOrigin+r.URL.EscapedPath(), in.token, in.now)
		if err != nil {
			return nil, in.refuse(http.StatusUnauthorized, "invalid_dpop_proof", err.Error(), "")
		}
	}
	// With no configured issuer, the request's origin is the issuer.
	if len(rs.cfg.AuthorizationServers) == 0 {
		if !rs.absolute && rs.cfg.BaseOrigin == "" {
			in.origin = publicOrigin // the request's, worked out once
		} else if in.origin, err = web.RequestOrigin(r); err != nil {
			return nil, in.refuse(http.StatusBadRequest, "invalid_request", err.Error(), "")
		}
	}
	return in, nil
}

// missingToken is the answer to a request without credentials: no error
// code (RFC 6750 §3.1, RFC 9449 §7.2), the scopes to ask for, and a DPoP
// challenge beside the bearer one unless only DPoP is accepted.
func (rs *Resource) missingToken(metadataURL string) *Failure {
	scope := strings.Join(rs.cfg.Required, " ")
	if scope == "" {
		scope = strings.Join(rs.cfg.Scopes, " ")
	}
	dpopChallenge := web.Challenge(dpop.Scheme, web.ChallengeParams{ResourceMetadata: metadataURL, Scope: scope, Algs: dpopAlgs})
	if rs.cfg.RequireDPoP {
		return &Failure{Status: http.StatusUnauthorized, Code: "unauthorized", Description: missingDPoPDescription,
			Challenge: dpopChallenge}
	}
	return &Failure{Status: http.StatusUnauthorized, Code: "unauthorized", Description: missingTokenDescription,
		Challenge: web.Challenge("Bearer", web.ChallengeParams{ResourceMetadata: metadataURL, Scope: scope}), MoreChallenges: []string{dpopChallenge}}
}

// claims finds the claims of the presented token: a token verified before
// for the same origin and resource skips the signature check until it
// expires, for at most VerifiedCacheTTL, and only while the key that
// signed it is still published (revocation and scope are checked on
// every request by admit);
// an opaque token is looked up as a legacy token when those are
// accepted; any other is verified with its issuer's keys.
func (rs *Resource) claims(ctx context.Context, in *presented) (*cachedToken, *Failure) {
	if entry, ok := rs.cache.get(in.token, in.origin, in.resource, in.now); ok {
		if rs.keyPublished(ctx, entry) {
			return entry, nil
		}
		// Its key was withdrawn (or cannot be read): verified again,
		// which refuses it if the key is gone.
		rs.cache.drop(in.token)
	}
	if err := web.TokenSyntax(in.scheme, in.token); err != nil {
		return nil, in.refuse(http.StatusBadRequest, "invalid_request", err.Error(), "")
	}
	unavailable := func() *Failure {
		return in.refuse(http.StatusServiceUnavailable, "temporarily_unavailable", "tokens cannot be verified right now; retry shortly", "")
	}
	if rs.cfg.Legacy != nil && strings.Count(in.token, ".") != 2 {
		claims, err := rs.cfg.Legacy(ctx, in.token)
		switch {
		case errors.Is(err, jose.ErrInvalidToken):
			return nil, in.refuse(http.StatusUnauthorized, "invalid_token", "the access token is invalid, expired or revoked", "")
		case err != nil:
			rs.cfg.Logger.Warn("legacy token lookup failed", "error", err.Error())
			return nil, unavailable()
		}
		// Remembered briefly, so that a revocation takes effect within
		// LegacyCacheTTL without a query per request.
		until := in.now.Add(LegacyCacheTTL)
		if claims.ExpiresAt != nil && claims.ExpiresAt.Before(until) {
			until = claims.ExpiresAt.Time
		}
		return rs.cache.putLegacy(in.token, in.origin, in.resource, claims, until), nil
	}
	claims, ri, err := rs.verify(ctx, in.token, in.origin, in.resource)
	switch {
	case errors.Is(err, jose.ErrKeysUnavailable):
		rs.cfg.Logger.Warn("signing keys unavailable", "error", err.Error())
		return nil, unavailable()
	case err != nil:
		return nil, in.refuse(http.StatusUnauthorized, "invalid_token", "the access token is invalid, expired, or not meant for this resource", "")
	}
	e := newCachedToken(in.origin, in.resource, claims, time.Time{})
	e.kid, e.alg = signingKey(in.token)
	e.remote = ri
	// Cached no longer than the issuer's leeway lets the token be used
	// after its exp.
	leeway := rs.cfg.Leeway
	if ri != nil {
		leeway = ri.cfg.Leeway
	}
	return rs.cache.put(in.token, e, in.now, leeway), nil
}

// keyPublished reports whether the key that signed a cached token is
// still a published key of its issuer: the local issuer's current key
// set (reloaded every signing.ReloadInterval), or the keys an external
// issuer publishes now. Keys that cannot be read count as withdrawn.
func (rs *Resource) keyPublished(ctx context.Context, e *cachedToken) bool {
	switch {
	case e.legacy:
		return true // no key: a legacy token is looked up again soon
	case e.remote != nil:
		set, err := e.remote.keys.Current(ctx)
		if err != nil {
			return false
		}
		_, err = set.Lookup(e.kid, e.alg)
		return err == nil
	case rs.cfg.Keys == nil:
		return false
	}
	ks, err := rs.cfg.Keys.KeySet(ctx)
	if err != nil {
		return false
	}
	_, ok := ks.PublicKey(e.kid)
	return ok
}

// signingKey reads the kid and alg of a JWT's header, which named the
// key that verified it.
func signingKey(token string) (kid, alg string) {
	head, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return "", ""
	}
	var h struct {
		Kid string `json:"kid"`
		Alg string `json:"alg"`
	}
	_ = json.Unmarshal(raw, &h) // it was parsed when the token verified
	return h.Kid, h.Alg
}

// admit decides whether a token's claims admit the request: bound to the
// certificate and DPoP key it was presented with, not revoked, its DPoP
// proof never seen before, and holding the scopes this resource requires.
func (rs *Resource) admit(r *http.Request, in *presented, entry *cachedToken) (*Principal, *Failure) {
	claims := entry.claims
	// RFC 8705 §3: a certificate-bound token only over a connection with
	// that certificate, compared on every request like the DPoP proof.
	if why := certificateMismatch(claims.Cnf, r); why != "" {
		return nil, in.refuse(http.StatusUnauthorized, "invalid_token", why, "")
	}
	if f := rs.checkBinding(claims, in.scheme, in.proof, in.refuse); f != nil {
		return nil, f
	}
	if rs.cfg.Active != nil && claims.ID != "" {
		active, err := rs.cfg.Active(r.Context(), claims.ID)
		switch {
		case err != nil:
			rs.cfg.Logger.Warn("revocation check unavailable; accepting the token on its signature", "error", err.Error())
		case !active:
			f := in.refuse(http.StatusUnauthorized, "invalid_token", "the access token has been revoked", "")
			f.Reason = "revoked"
			return nil, f
		}
	}
	if in.proof != nil {
		// RFC 9449 §11.1: each proof once. Recorded only now, so that
		// proofs sent with invalid tokens take no room.
		if !rs.replay.FirstUse(in.proof, in.now) {
			return nil, in.refuse(http.StatusUnauthorized, "invalid_dpop_proof", "the DPoP proof was already used: make a new proof for each request", "")
		}
	}
	p := &Principal{Subject: claims.Subject, ClientID: claims.ClientID, Scopes: entry.scopes, Scope: claims.Scope, Email: claims.Email,
		Audience: claims.Audience, Issuer: claims.Issuer, JTI: claims.ID, ResourceMetadata: in.metadataURL, Local: entry.remote == nil}
	if in.proof != nil {
		p.DPoPKey = in.proof.JKT
	}
	if claims.ExpiresAt != nil {
		p.ExpiresAt = claims.ExpiresAt.Time
	}
	if !rs.scopeSufficient(p.Scopes) {
		// MCP step-up: name every scope needed, with those already held.
		need := web.UnionScope(claims.Scope, strings.Join(rs.cfg.Required, " "))
		if !rs.cfg.RequireAll {
			need = web.UnionScope(claims.Scope, rs.cfg.Required[0])
		}
		return nil, in.refuse(http.StatusForbidden, "insufficient_scope", "the access token lacks the scope this request needs", need)
	}
	return p, nil
}

// checkBinding matches a token's key binding with how it was presented:
// a DPoP-bound token only with the DPoP scheme and a proof of its key
// (RFC 9449 §7.1, §6), never as a bearer token (§7.2); a token not
// DPoP-bound never with the DPoP scheme; a token bound by a method other
// than DPoP or a certificate (checked before) not at all.
func (rs *Resource) checkBinding(claims *jose.AccessClaims, scheme string, proof *dpop.Proof,
	refuse func(status int, code, desc, scope string) *Failure) *Failure {
	jkt := ""
	if claims.Cnf != nil {
		jkt = claims.Cnf.JKT
	}
	switch {
	case claims.Cnf != nil && jkt == "" && claims.Cnf.X5TS256 == "":
		return refuse(http.StatusUnauthorized, "invalid_token", "the access token is bound to a key by a method this resource cannot verify", "")
	case jkt != "" && proof == nil:
		return refuse(http.StatusUnauthorized, "invalid_token", "the access token is DPoP-bound: send it with the DPoP scheme and a DPoP proof", "")
	case jkt == "" && proof != nil:
		return refuse(http.StatusUnauthorized, "invalid_token", "the access token is not DPoP-bound: it cannot be used with the DPoP scheme", "")
	case jkt != "" && jkt != proof.JKT:
		return refuse(http.StatusUnauthorized, "invalid_token", "the DPoP proof is not made with the key the access token is bound to", "")
	}
	return nil
}

// verify checks a token with the keys of the issuer it names, if this
// resource accepts that issuer: a remote issuer's keys (returned with the
// claims), or the local keys for the issuers of the co-located
// authorization server (origin, when none is configured), whose tokens
// may live at most MaxTokenLifetime.
func (rs *Resource) verify(ctx context.Context, token, origin, resource string) (*jose.AccessClaims, *RemoteIssuer, error) {
	iss, err := unverifiedIssuer(token)
	if err != nil {
		return nil, nil, err
	}
	if ri := rs.remote[iss]; ri != nil {
		claims, err := ri.Verify(ctx, token, resource)
		return claims, ri, err
	}
	local := iss == origin
	if origin == "" {
		local = slices.Contains(rs.cfg.AuthorizationServers, iss)
	}
	if !local || rs.cfg.Keys == nil {
		return nil, nil, fmt.Errorf("%w: issuer %q is not accepted here", jose.ErrInvalidToken, iss)
	}
	ks, err := rs.cfg.Keys.KeySet(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", jose.ErrKeysUnavailable, err)
	}
	// RFC 9068 §4 and RFC 8707: signature, typ, iss, exp, and an aud that
	// names this resource.
	claims, err := ks.Verify(token, signing.VerifyOptions{Issuer: iss, Audience: resource, Now: rs.cfg.Now, Leeway: rs.cfg.Leeway})
	if err != nil {
		return nil, nil, err
	}
	// Our own tokens always carry iat, and live at most as long as
	// mcp_oauth allows: a longer life is a forgery.
	if claims.IssuedAt == nil || claims.ExpiresAt.Sub(claims.IssuedAt.Time) > rs.cfg.MaxTokenLifetime {
		return nil, nil, fmt.Errorf("%w: lifetime (exp - iat) missing or longer than %v", jose.ErrInvalidToken, rs.cfg.MaxTokenLifetime)
	}
	return claims, nil, nil
}

// unverifiedIssuer reads the iss claim of a JWT without verifying it, to
// choose the keys that will.
func unverifiedIssuer(token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("%w: not a JWT", jose.ErrInvalidToken)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("%w: payload is not base64url", jose.ErrInvalidToken)
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if err := json.Unmarshal(payload, &c); err != nil || c.Iss == "" {
		return "", fmt.Errorf("%w: no iss", jose.ErrInvalidToken)
	}
	return c.Iss, nil
}

// scopeSufficient applies the route's scope requirement.
func (rs *Resource) scopeSufficient(have []string) bool {
	if len(rs.cfg.Required) == 0 {
		return true
	}
	for _, need := range rs.cfg.Required {
		held := slices.Contains(have, need)
		if held && !rs.cfg.RequireAll {
			return true
		}
		if !held && rs.cfg.RequireAll {
			return false
		}
	}
	return rs.cfg.RequireAll
}

// certificateMismatch tells why a request does not prove possession of
// the certificate an access token is bound to (RFC 8705 §3): its TLS
// connection has no client certificate, or another one. It returns ""
// when the token has no x5t#S256 or the certificate matches.
func certificateMismatch(cnf *jose.Confirmation, r *http.Request) string {
	if cnf == nil || cnf.X5TS256 == "" {
		return ""
	}
	cert := web.ClientCertificate(r)
	if cert == nil {
		return "the access token is bound to a TLS client certificate: send it over mutual TLS with that certificate"
	}
	if subtle.ConstantTimeCompare([]byte(jose.CertificateThumbprint(cert.Raw)), []byte(cnf.X5TS256)) != 1 {
		return "the TLS client certificate is not the one the access token is bound to"
	}
	return ""
}

// ---- registration metadata ----
