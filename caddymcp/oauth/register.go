package oauth

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/caddymcp/caddymcp/caddymcp/internal/web"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// clientMetadata is the client metadata this server registers (RFC 7591
// §2). Other members of a request are ignored.
type clientMetadata struct {
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              string   `json:"client_name,omitempty"`
	ClientURI               string   `json:"client_uri,omitempty"`
	LogoURI                 string   `json:"logo_uri,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
	Contacts                []string `json:"contacts,omitempty"`
	TOSURI                  string   `json:"tos_uri,omitempty"`
	PolicyURI               string   `json:"policy_uri,omitempty"`
	SoftwareID              string   `json:"software_id,omitempty"`
	SoftwareVersion         string   `json:"software_version,omitempty"`
	ApplicationType         string   `json:"application_type,omitempty"`
	mtlsMetadata
}

// registrationResponse is the client information response (RFC 7591 §3.2.1).
type registrationResponse struct {
	ClientID              string `json:"client_id"`
	ClientSecret          string `json:"client_secret,omitempty"`
	ClientIDIssuedAt      int64  `json:"client_id_issued_at"`
	ClientSecretExpiresAt *int64 `json:"client_secret_expires_at,omitempty"`
	clientMetadata
}

const (
	maxNameLen     = 200
	maxURILen      = 2000
	maxContacts    = 5
	maxSoftwareLen = 200
)

func (s *Server) serveRegister(w http.ResponseWriter, r *http.Request) {
	if !s.preflight(w, r, "POST, OPTIONS") {
		return
	}
	reg := s.cfg.Registration
	if reg.Disabled || s.cfg.Store == nil {
		web.WriteError(w, http.StatusForbidden, "access_denied", "dynamic client registration is disabled on this server")
		return
	}
	if reg.InitialAccessToken != "" {
		tok, err := web.BearerToken(r)
		if err != nil || subtle.ConstantTimeCompare([]byte(tok), []byte(reg.InitialAccessToken)) != 1 {
			w.Header().Set("WWW-Authenticate", web.Challenge("Bearer", web.ChallengeParams{Error: "invalid_token",
				Description: "registration requires an initial access token"}))
			web.WriteError(w, http.StatusUnauthorized, "invalid_token", "registration requires a valid initial access token")
			return
		}
	}
	if mt, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); !strings.EqualFold(strings.TrimSpace(mt), "application/json") {
		web.WriteError(w, http.StatusBadRequest, "invalid_client_metadata", "the body must be a JSON object (Content-Type: application/json)")
		return
	}
	body, err := readLimited(w, r)
	if err != nil {
		web.WriteError(w, http.StatusRequestEntityTooLarge, "invalid_client_metadata", "the request body is too large")
		return
	}
	var md clientMetadata
	dec := json.NewDecoder(bytes.NewReader(body))
	// Nothing but white space may follow the object: dec.More alone
	// misses a stray ']' or '}'.
	if err := dec.Decode(&md); err != nil || !endOfJSON(dec) {
		web.WriteError(w, http.StatusBadRequest, "invalid_client_metadata", "the body is not a valid JSON object of client metadata")
		return
	}
	if oe := s.checkMetadata(&md); oe != nil {
		oe.write(w)
		return
	}
	ctx := r.Context()
	if n, err := s.cfg.Store.CountClients(ctx); err != nil {
		s.internalError(w, r, "counting clients", err)
		return
	} else if n >= reg.MaxClients {
		// A full registry makes way: the oldest client that never
		// completed an authorization goes, so that junk registrations
		// cannot lock out the clients people use.
		evicted, err := s.cfg.Store.EvictUnusedClient(ctx)
		switch {
		case errors.Is(err, store.ErrNotFound):
			// RFC 7591 has no code for a full registry; the client can do
			// nothing but try later.
			w.Header().Set("Retry-After", "3600")
			web.WriteError(w, http.StatusBadRequest, "invalid_client_metadata", "this server accepts no more client registrations at the moment")
			return
		case err != nil:
			s.internalError(w, r, "evicting an unused client", err)
			return
		}
		s.audit(EventClientEvicted, "client_id", evicted, "reason", "max_clients")
	}

	now := s.cfg.Now().UTC().Truncate(time.Second)
	id, err := s.randomToken(16)
	if err != nil {
		s.internalError(w, r, "registering a client", err)
		return
	}
	resp := registrationResponse{ClientID: id, ClientIDIssuedAt: now.Unix(), clientMetadata: md}
	c := &store.Client{
		ID: id, Name: md.ClientName, RedirectURIs: md.RedirectURIs, GrantTypes: md.GrantTypes,
		ResponseTypes: md.ResponseTypes, Scope: md.Scope, TokenEndpointAuthMethod: md.TokenEndpointAuthMethod,
		TLSSubject: md.tlsSubject(), CertificateBoundTokens: md.TLSClientCertificateBoundAccessTokens,
		CreatedAt: now, UpdatedAt: now,
	}
	if present(md.JWKS) {
		c.JWKS = md.JWKS
	}
	if md.TokenEndpointAuthMethod == "client_secret_basic" || md.TokenEndpointAuthMethod == "client_secret_post" {
		secret, err := s.randomToken(32)
		if err != nil {
			s.internalError(w, r, "registering a client", err)
			return
		}
		var exp int64 // 0: the secret does not expire (RFC 7591 §3.2.1)
		if reg.SecretLifetime > 0 {
			c.SecretExpiresAt = now.Add(reg.SecretLifetime)
			exp = c.SecretExpiresAt.Unix()
		}
		c.SecretHash = store.Hash(secret)
		resp.ClientSecret, resp.ClientSecretExpiresAt = secret, &exp
	}
	if c.Metadata, err = json.Marshal(md); err != nil {
		s.internalError(w, r, "registering a client", err)
		return
	}
	if err := s.cfg.Store.CreateClient(ctx, c); err != nil {
		s.internalError(w, r, "registering a client", err)
		return
	}
	s.audit(EventClientRegistered, "client_id", id, "client_name", md.ClientName,
		"token_endpoint_auth_method", md.TokenEndpointAuthMethod, "redirect_uris", md.RedirectURIs)
	web.WriteJSON(w, http.StatusCreated, resp, "no-store")
}

// endOfJSON reports whether dec has nothing left but white space.
func endOfJSON(dec *json.Decoder) bool {
	_, err := dec.Token()
	return err == io.EOF
}

// readLimited reads a body of at most maxBodyBytes.
func readLimited(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	return buf.Bytes(), err
}

// checkMetadata validates registration metadata and fills in defaults
// (RFC 7591 §2).
func (s *Server) checkMetadata(md *clientMetadata) *oauthError {
	meta := func(d string) *oauthError { return badRequest("invalid_client_metadata", d) }
	if len(md.RedirectURIs) == 0 {
		return badRequest("invalid_redirect_uri", "redirect_uris is required")
	}
	if n := s.cfg.Registration.MaxRedirectURIs; len(md.RedirectURIs) > n {
		return badRequest("invalid_redirect_uri", "too many redirect_uris")
	}
	for _, u := range md.RedirectURIs {
		if len(u) > maxURILen {
			return badRequest("invalid_redirect_uri", "a redirect URI is too long")
		}
		if err := checkRedirectURI(u); err != nil {
			return badRequest("invalid_redirect_uri", err.Error())
		}
	}
	switch md.TokenEndpointAuthMethod {
	case "":
		md.TokenEndpointAuthMethod = "client_secret_basic" // RFC 7591 §2 default
	case "none", "client_secret_basic", "client_secret_post":
	case TLSClientAuth, SelfSignedTLSClientAuth:
		if s.cfg.MTLS.Disabled {
			return meta("token_endpoint_auth_method " + md.TokenEndpointAuthMethod + " is not supported: mutual TLS is turned off on this server")
		}
	default:
		return meta("token_endpoint_auth_method must be one of " + strings.Join(s.authMethods, ", "))
	}
	if oe := s.checkMTLSMetadata(&md.mtlsMetadata, md.TokenEndpointAuthMethod); oe != nil {
		return oe
	}
	if len(md.GrantTypes) == 0 {
		// RFC 7591 §2 names authorization_code as the default; clients
		// that send no grant_types still expect to refresh, as most MCP
		// authorization servers allow. The response echoes both.
		md.GrantTypes = []string{"authorization_code", "refresh_token"}
	}
	for _, g := range md.GrantTypes {
		if g != "authorization_code" && g != "refresh_token" {
			return meta("grant type " + asciiQuote(g) + " is not supported; use authorization_code and refresh_token")
		}
	}
	if !slices.Contains(md.GrantTypes, "authorization_code") {
		return meta("grant_types must include authorization_code")
	}
	if len(md.ResponseTypes) == 0 {
		md.ResponseTypes = []string{"code"}
	}
	if len(md.ResponseTypes) != 1 || md.ResponseTypes[0] != "code" {
		return meta(`response_types must be ["code"]`)
	}
	md.GrantTypes, md.ResponseTypes = slices.Compact(slices.Sorted(slices.Values(md.GrantTypes))), []string{"code"}
	if md.Scope != "" {
		var kept []string
		for _, sc := range strings.Fields(md.Scope) {
			if !web.ValidScopeToken(sc) {
				return meta("scope contains an invalid scope token")
			}
			if slices.Contains(s.cfg.Scopes, sc) && !slices.Contains(kept, sc) {
				kept = append(kept, sc)
			}
		}
		if len(kept) == 0 {
			return meta("none of the requested scopes is offered by this server")
		}
		// RFC 7591 §2: the server may replace the requested scope.
		md.Scope = strings.Join(kept, " ")
	}
	md.ClientName = cleanText(md.ClientName)
	if len(md.ClientName) > maxNameLen {
		return meta("client_name is too long")
	}
	for _, u := range []*string{&md.ClientURI, &md.LogoURI, &md.TOSURI, &md.PolicyURI} {
		if *u == "" {
			continue
		}
		p, err := url.Parse(*u)
		if err != nil || p.Scheme != "https" || p.Host == "" || len(*u) > maxURILen || uriHasControlChar(*u) {
			return meta("client_uri, logo_uri, tos_uri and policy_uri must be https URLs")
		}
	}
	if len(md.Contacts) > maxContacts {
		return meta("too many contacts")
	}
	for i, c := range md.Contacts {
		md.Contacts[i] = cleanText(c)
		if len(md.Contacts[i]) > maxNameLen {
			return meta("a contact is too long")
		}
	}
	md.SoftwareID, md.SoftwareVersion = cleanText(md.SoftwareID), cleanText(md.SoftwareVersion)
	if len(md.SoftwareID) > maxSoftwareLen || len(md.SoftwareVersion) > maxSoftwareLen {
		return meta("software_id or software_version is too long")
	}
	switch md.ApplicationType {
	case "", "web", "native":
	default:
		return meta("application_type must be web or native")
	}
	return nil
}

// asciiQuote quotes a value of the request for an error description,
// which must be ASCII text (RFC 7591 §3.2.2), shortened to 100 bytes.
func asciiQuote(s string) string {
	q := strconv.QuoteToASCII(s)
	if len(q) > 100 {
		q = q[:96] + `..."`
	}
	return q
}

// cleanText drops control and formatting characters (which could disguise
// a client's name) and trims spaces.
func cleanText(s string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) || r == unicode.ReplacementChar {
			return -1
		}
		return r
	}, s))
}
