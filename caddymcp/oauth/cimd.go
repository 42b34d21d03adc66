package oauth

// Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document,
// "CIMD"): a client_id that is an https URL names a JSON document of the
// client's metadata. Instead of a registration, the server fetches that
// document, checks it and keeps it for as long as its cache headers say.

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/internal/safehttp"
	"github.com/caddymcp/caddymcp/caddymcp/internal/web"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// Limits of client metadata documents.
const (
	// DefaultDocumentTimeout bounds one fetch of a client metadata
	// document: connecting, TLS and reading it.
	DefaultDocumentTimeout = 5 * time.Second
	// MaxDocumentBytes is the size of the largest document accepted
	// (CIMD §6.6 recommends 5 kilobytes).
	MaxDocumentBytes = 5 << 10
	// MinDocumentCache is the shortest time a fetched document is used,
	// whatever its cache headers say (CIMD §4.4 lets the server bound
	// them), unless they forbid caching; it is also how long a document
	// without freshness information is used.
	MinDocumentCache = 5 * time.Minute
	// MaxDocumentCache is the longest time a fetched document is used
	// before it is fetched again.
	MaxDocumentCache = 24 * time.Hour

	// maxDocumentStale is how long after it went stale a document may
	// still serve the token endpoint while its host cannot be reached.
	maxDocumentStale = 24 * time.Hour
	// maxCachedDocuments bounds the cache.
	maxCachedDocuments = 1000
)

// ClientMetadataDocuments configures clients whose client_id is the https
// URL of their metadata document (CIMD). They are on by default, for any
// host whose addresses are public.
type ClientMetadataDocuments struct {
	// Disabled turns metadata documents off: an https client_id is then
	// an unknown client, and the metadata no longer advertises
	// client_id_metadata_document_supported.
	Disabled bool
	// AllowDomains limits the hosts documents may come from: a host name
	// such as claude.ai matches itself only, *.example.com matches every
	// subdomain of example.com (not example.com itself), and an IP
	// address matches itself. Empty means any host. Addresses must still
	// be public, except that a loopback host named exactly (localhost,
	// 127.0.0.1, ::1) may be reached on its loopback addresses, which only
	// tests need.
	AllowDomains []string
	// Timeout bounds one fetch. Default: DefaultDocumentTimeout (5s).
	Timeout time.Duration
	// AllowPorts are the ports other than 443 that documents may be
	// fetched on. Default: none, 443 only, so that a client_id cannot
	// make this server probe other services' ports.
	AllowPorts []int
	// RootCAs verify the certificates of document hosts. Default (nil):
	// the system's roots.
	RootCAs *x509.CertPool
	// Resolver looks up the addresses of document hosts. Default:
	// net.DefaultResolver.
	Resolver Resolver
	// AllowAddress decides whether a fetch of a document on host may
	// connect to addr. It is asked about the address of every connection
	// as it is made (not about what a name resolved to beforehand), so a
	// name that resolves to another address by the time of the connection
	// cannot get around it. Default: PublicAddress, plus loopback
	// addresses for loopback hosts named in AllowDomains.
	AllowAddress func(host string, addr netip.Addr) bool
}

// Resolver looks up host names; *net.Resolver is one.
type Resolver = safehttp.Resolver

// PublicAddress reports whether addr may be the address of a client
// metadata document's host: not loopback, private, link-local, shared
// (CGNAT), multicast, unspecified, documentation or any other
// special-purpose address (RFC 6890, CIMD §6.5). IPv6 addresses must be
// global unicast; an IPv4-mapped address or one of the well-known NAT64
// prefix is judged by the IPv4 address it carries.
func PublicAddress(addr netip.Addr) bool { return safehttp.PublicAddress(addr) }

// isDocumentURL reports whether a client_id names a metadata document
// rather than a registration: such a client_id is an https URL (CIMD §3),
// which the random client_ids of registration never are (CIMD §6.9).
func isDocumentURL(id string) bool { return strings.HasPrefix(id, "https://") }

// checkDocumentURL checks a client_id URL (CIMD §3): https, a host, a path
// other than "/", no dot segments, no fragment, no user information; and,
// a SHOULD NOT of the draft made a rule here, no query.
func checkDocumentURL(raw string) (*url.URL, error) {
	if len(raw) > maxURILen {
		return nil, errors.New("the URL is too long")
	}
	u, err := url.Parse(raw)
	switch {
	case uriHasControlChar(raw):
		return nil, errors.New("the URL contains a control or bidirectional formatting character")
	case err != nil || u.Scheme != "https" || u.Host == "" || u.Opaque != "":
		return nil, errors.New("it is not an https URL")
	case u.User != nil:
		return nil, errors.New("the URL contains user information")
	case strings.Contains(raw, "#"):
		return nil, errors.New("the URL contains a fragment")
	case strings.Contains(raw, "?"):
		return nil, errors.New("the URL contains a query")
	case u.Path == "" || u.Path == "/":
		return nil, errors.New("the URL has no path")
	case u.Hostname() == "" || !web.ValidPort(u.Port()):
		return nil, errors.New("the URL has no valid host")
	}
	for _, seg := range strings.Split(u.EscapedPath(), "/") {
		switch strings.ToLower(seg) {
		case ".", "..", "%2e", "%2e%2e", ".%2e", "%2e.":
			return nil, errors.New("the URL contains a dot segment")
		}
	}
	return u, nil
}

// documentError is why a client metadata document cannot be used. Its
// text completes "the metadata document … cannot be used: ".
type documentError struct {
	reason string
	// transient: the host could not be reached, or failed (5xx); a
	// cached document may still serve token requests.
	transient bool
	// cause is the underlying error, for the log only.
	cause error
}

func (e *documentError) Error() string { return e.reason }

// noPublicAddress is what the client and the user learn of a host the
// policy refused or that does not resolve: the same words, so that
// client_ids cannot be used to learn what this server's resolver knows
// (such as the addresses of internal names).
const noPublicAddress = "its host has no public address"

// DocumentFetchFailed is what the client and the user learn of any
// failure to fetch a document — the connection, TLS, a redirect, an HTTP
// status other than 200 — so that client_ids cannot be used to tell
// which ports and services a host has. The details are logged.
const DocumentFetchFailed = "it could not be fetched"

// documents fetches, checks and caches client metadata documents.
type documents struct {
	hosts   hostPolicy
	timeout time.Duration
	ports   []int // allowed besides 443
	client  *http.Client

	mu      sync.Mutex
	cache   map[string]*cachedDocument
	pending map[string]*pendingDocument
}

// cachedDocument is a checked document, as a client.
type cachedDocument struct {
	client  *store.Client
	expires time.Time
}

// pendingDocument is a fetch in progress, which concurrent lookups of the
// same client_id wait for instead of fetching it again.
type pendingDocument struct {
	done   chan struct{}
	client *store.Client
	err    error
}

// newDocuments sets up the fetcher of cfg.
func newDocuments(cfg ClientMetadataDocuments) (*documents, error) {
	hosts, err := newHostPolicy(cfg.AllowDomains)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout < 0 {
		return nil, errors.New("client metadata documents: the timeout must not be negative")
	}
	if err := CheckAllowPorts(cfg.AllowPorts); err != nil {
		return nil, err
	}
	d := &documents{hosts: hosts, timeout: cfg.Timeout, ports: cfg.AllowPorts,
		cache: map[string]*cachedDocument{}, pending: map[string]*pendingDocument{}}
	if d.timeout == 0 {
		d.timeout = DefaultDocumentTimeout
	}
	allow := cfg.AllowAddress
	if allow == nil {
		allow = hosts.allowAddress
	}
	// CIMD §6.5: the client connects only to addresses allow accepts,
	// judged as each connection is made; and CIMD §4: it follows no
	// redirects, so a 3xx is an error.
	d.client = safehttp.NewClient(safehttp.Options{Resolver: cfg.Resolver, Allow: allow, Timeout: d.timeout, RootCAs: cfg.RootCAs})
	return d, nil
}

// clientDocument returns the client a metadata document describes: from
// the cache while it is fresh, else fetched and checked again. With
// staleOK (token requests), a document whose host cannot be reached is
// used up to maxDocumentStale past its freshness; an authorization always
// needs a fresh one (CIMD §4.3).
func (s *Server) clientDocument(ctx context.Context, id string, staleOK bool) (*store.Client, error) {
	d := s.docs
	if d == nil {
		return nil, &documentError{reason: "this server does not accept client metadata documents"}
	}
	u, err := checkDocumentURL(id)
	if err != nil {
		return nil, &documentError{reason: err.Error()}
	}
	if !d.hosts.allows(u.Hostname()) {
		return nil, &documentError{reason: "this server does not accept applications from " + normalHost(u.Hostname())}
	}
	if !d.allowsPort(u.Port()) {
		return nil, &documentError{reason: "this server fetches metadata documents on port 443 only"}
	}
	now := s.cfg.Now()
	d.mu.Lock()
	cached := d.cache[id]
	d.mu.Unlock()
	if cached != nil && now.Before(cached.expires) {
		return cached.client, nil
	}
	c, err := s.fetchShared(ctx, id)
	var de *documentError
	if err != nil && staleOK && cached != nil && errors.As(err, &de) && de.transient &&
		now.Before(cached.expires.Add(maxDocumentStale)) {
		s.log.Warn("using a stale client metadata document", "client_id", id, "error", err.Error())
		return cached.client, nil
	}
	return c, err
}

// fetchShared fetches a document once for all concurrent lookups, and
// updates the cache with the result.
func (s *Server) fetchShared(ctx context.Context, id string) (*store.Client, error) {
	d := s.docs
	d.mu.Lock()
	if p, ok := d.pending[id]; ok {
		d.mu.Unlock()
		select {
		case <-p.done:
			return p.client, p.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	p := &pendingDocument{done: make(chan struct{})}
	d.pending[id] = p
	d.mu.Unlock()

	c, lifetime, err := s.loadDocument(ctx, id)
	now := s.cfg.Now()
	d.mu.Lock()
	delete(d.pending, id)
	var de *documentError
	switch {
	case err == nil && lifetime > 0:
		d.store(id, &cachedDocument{client: c, expires: now.Add(lifetime)}, now)
	case err != nil && errors.As(err, &de) && de.transient:
		// Keep what was there: it may still serve token requests.
	default:
		// CIMD §4.4: neither errors nor invalid documents are cached, and
		// a document that became invalid (or no-store) replaces the old.
		delete(d.cache, id)
	}
	d.mu.Unlock()
	p.client, p.err = c, err
	close(p.done)
	return c, err
}

// store adds an entry, making room by dropping entries long stale, else
// the one that expires first. d.mu is held.
func (d *documents) store(id string, e *cachedDocument, now time.Time) {
	if _, ok := d.cache[id]; !ok && len(d.cache) >= maxCachedDocuments {
		var first string
		for k, v := range d.cache {
			if !now.Before(v.expires.Add(maxDocumentStale)) {
				delete(d.cache, k)
			} else if first == "" || v.expires.Before(d.cache[first].expires) {
				first = k
			}
		}
		if len(d.cache) >= maxCachedDocuments {
			delete(d.cache, first)
		}
	}
	d.cache[id] = e
}

// loadDocument fetches and checks a document, and says how long it may be
// cached (0: not at all).
func (s *Server) loadDocument(ctx context.Context, id string) (*store.Client, time.Duration, error) {
	body, header, err := s.docs.fetch(ctx, id)
	if err != nil {
		attrs := []any{"client_id", id, "error", err.Error()}
		if de := (*documentError)(nil); errors.As(err, &de) && de.cause != nil {
			attrs = append(attrs, "cause", de.cause.Error())
		}
		s.log.Info("client metadata document not fetched", attrs...)
		return nil, 0, err
	}
	now := s.cfg.Now()
	c, err := s.parseDocument(id, body, now)
	if err != nil {
		s.log.Info("client metadata document refused", "client_id", id, "error", err.Error())
		return nil, 0, err
	}
	lifetime := documentLifetime(header, now)
	s.audit(EventClientDocumentFetched, "client_id", id, "client_name", c.Name, "redirect_uris", c.RedirectURIs,
		"cache_seconds", int64(lifetime/time.Second))
	return c, lifetime, nil
}

// fetch GETs a document: status 200 only, no redirects, at most
// MaxDocumentBytes (CIMD §4, §6.6).
func (d *documents) fetch(ctx context.Context, id string) ([]byte, http.Header, error) {
	// One client's impatience does not fail the others waiting for it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, id, nil)
	if err != nil {
		return nil, nil, &documentError{reason: "it is not an https URL"}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "caddymcp (client metadata document)")
	res, err := d.client.Do(req)
	if err != nil {
		return nil, nil, fetchError(err)
	}
	defer res.Body.Close()
	switch code := res.StatusCode; {
	case code >= 300 && code < 400:
		return nil, nil, &documentError{reason: DocumentFetchFailed,
			cause: fmt.Errorf("its URL redirects (HTTP %d), and redirects are not followed", code)}
	case code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout:
		return nil, nil, &documentError{reason: DocumentFetchFailed, transient: true, cause: fmt.Errorf("its host answered HTTP %d", code)}
	case code != http.StatusOK:
		return nil, nil, &documentError{reason: DocumentFetchFailed, cause: fmt.Errorf("its URL answered HTTP %d, not 200", code)}
	}
	body, err := safehttp.ReadBody(res, MaxDocumentBytes)
	switch {
	case errors.Is(err, safehttp.ErrTooLarge):
		return nil, nil, &documentError{reason: fmt.Sprintf("it is larger than %d bytes", MaxDocumentBytes)}
	case err != nil:
		return nil, nil, fetchError(err)
	}
	return body, res.Header, nil
}

// fetchError describes a failed fetch without details: a refused or
// unknown host as noPublicAddress, anything else (connection, TLS,
// timeout) as DocumentFetchFailed. The cause is logged.
func fetchError(err error) error {
	var refused *safehttp.RefusedAddressError
	var dnsErr *net.DNSError
	if errors.As(err, &refused) || errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return &documentError{reason: noPublicAddress, cause: err}
	}
	return &documentError{reason: DocumentFetchFailed, transient: true, cause: err}
}

// allowsPort reports whether documents may be fetched on port ("" is 443).
func (d *documents) allowsPort(port string) bool {
	if port == "" || port == "443" {
		return true
	}
	n, err := strconv.Atoi(port)
	return err == nil && slices.Contains(d.ports, n)
}

// CheckAllowPorts checks ports for ClientMetadataDocuments.AllowPorts:
// each between 1 and 65535.
func CheckAllowPorts(ports []int) error {
	for _, p := range ports {
		if p < 1 || p > 65535 {
			return fmt.Errorf("client metadata documents: allowed port %d is not between 1 and 65535", p)
		}
	}
	return nil
}

// documentLifetime is how long a document may be cached according to
// its response's headers (RFC 9111 §4.2.1), bounded to MinDocumentCache
// and MaxDocumentCache; 0 for no-store and no-cache.
func documentLifetime(h http.Header, now time.Time) time.Duration {
	var maxAge, sMaxAge time.Duration = -1, -1
	for _, line := range h.Values("Cache-Control") {
		for _, dir := range strings.Split(line, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(dir), "=")
			value = strings.Trim(strings.TrimSpace(value), `"`)
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "no-cache":
				return 0
			case "max-age":
				maxAge = seconds(value)
			case "s-maxage":
				sMaxAge = seconds(value)
			}
		}
	}
	age := max(seconds(h.Get("Age")), 0)
	lifetime := MinDocumentCache
	switch {
	case sMaxAge >= 0: // this cache serves many users: a shared cache
		lifetime = sMaxAge - age
	case maxAge >= 0:
		lifetime = maxAge - age
	case h.Get("Expires") != "":
		date, err := http.ParseTime(h.Get("Date"))
		if err != nil {
			date = now
		}
		lifetime = 0 // an invalid Expires means already expired
		if exp, err := http.ParseTime(h.Get("Expires")); err == nil {
			lifetime = exp.Sub(date)
		}
	}
	return min(max(lifetime, MinDocumentCache), MaxDocumentCache)
}

// seconds parses a delta-seconds value; -1 if it is not one (an invalid
// max-age is ignored).
func seconds(v string) time.Duration {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return time.Duration(min(n, int64(MaxDocumentCache/time.Second))) * time.Second
}

// clientDocumentBody is a client metadata document: client metadata
// (RFC 7591 §2) with the client_id, and the members it must not have.
type clientDocumentBody struct {
	ClientID              string          `json:"client_id"`
	ClientSecret          json.RawMessage `json:"client_secret"`
	ClientSecretExpiresAt json.RawMessage `json:"client_secret_expires_at"`
	JWKS                  json.RawMessage `json:"jwks"`
	JWKSURI               string          `json:"jwks_uri"`
	clientMetadata
}

// parseDocument checks a fetched document (CIMD §4.1, MCP "Client ID
// Metadata Documents") and turns it into a client.
func (s *Server) parseDocument(id string, body []byte, now time.Time) (*store.Client, error) {
	invalid := func(format string, args ...any) error {
		return &documentError{reason: fmt.Sprintf(format, args...)}
	}
	var doc clientDocumentBody
	dec := json.NewDecoder(bytes.NewReader(body))
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' ||
		dec.Decode(&doc) != nil || !endOfJSON(dec) {
		return nil, invalid("it is not a JSON object of client metadata")
	}
	// RFC 3986 §6.2.1: simple string comparison.
	if doc.ClientID != id {
		return nil, invalid("its client_id %s differs from its URL", asciiQuote(doc.ClientID))
	}
	if present(doc.ClientSecret) || present(doc.ClientSecretExpiresAt) {
		return nil, invalid("it contains a client secret, which a metadata document must not (CIMD §4.1)")
	}
	md := doc.clientMetadata
	switch md.TokenEndpointAuthMethod {
	case "", "none":
	case "private_key_jwt":
		// CIMD §6.2 allows it with the client's public keys; this server
		// authenticates no client that way, so it cannot be used here.
		if present(doc.JWKS) == (doc.JWKSURI != "") {
			return nil, invalid("it uses private_key_jwt without exactly one of jwks and jwks_uri")
		}
		return nil, invalid("it uses private_key_jwt, which this server does not support; it accepts public clients (token_endpoint_auth_method none)")
	default:
		return nil, invalid("its token_endpoint_auth_method %s is not allowed: a metadata document cannot hold a shared secret, so it must be none (or private_key_jwt)",
			asciiQuote(md.TokenEndpointAuthMethod))
	}
	md.TokenEndpointAuthMethod = "none"
	if cleanText(md.ClientName) == "" {
		return nil, invalid("it has no client_name")
	}
	if len(md.RedirectURIs) == 0 {
		return nil, invalid("it has no redirect_uris")
	}
	// The document is written for every server: what this one does not
	// offer (grant types, scopes) is left out rather than refused.
	if md.GrantTypes != nil {
		md.GrantTypes = slices.DeleteFunc(md.GrantTypes, func(g string) bool { return g != "authorization_code" && g != "refresh_token" })
		if !slices.Contains(md.GrantTypes, "authorization_code") {
			return nil, invalid("its grant_types lack authorization_code")
		}
	}
	if md.ResponseTypes != nil {
		if !slices.Contains(md.ResponseTypes, "code") {
			return nil, invalid(`its response_types lack "code"`)
		}
		md.ResponseTypes = []string{"code"}
	}
	var scopes []string
	for _, sc := range strings.Fields(md.Scope) {
		if slices.Contains(s.cfg.Scopes, sc) && !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	md.Scope = strings.Join(scopes, " ")
	// Display links this server does not show are dropped when malformed.
	for _, u := range []*string{&md.ClientURI, &md.LogoURI, &md.TOSURI, &md.PolicyURI} {
		if p, err := url.Parse(*u); err != nil || p.Scheme != "https" || p.Host == "" || len(*u) > maxURILen || uriHasControlChar(*u) {
			*u = ""
		}
	}
	md.Contacts = nil
	// The redirect URIs and everything else pass the registration policy.
	if oe := s.checkMetadata(&md); oe != nil {
		return nil, invalid("%s", oe.Description)
	}
	meta, err := json.Marshal(struct {
		ClientID string `json:"client_id"`
		clientMetadata
	}{id, md})
	if err != nil {
		return nil, invalid("it cannot be encoded")
	}
	return &store.Client{
		ID: id, Name: md.ClientName, RedirectURIs: md.RedirectURIs, GrantTypes: md.GrantTypes,
		ResponseTypes: md.ResponseTypes, Scope: md.Scope, TokenEndpointAuthMethod: "none", Metadata: meta,
		CreatedAt: now, UpdatedAt: now,
	}, nil
}

// present reports whether a member was given a value other than null.
func present(raw json.RawMessage) bool {
	return len(raw) > 0 && !bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// documentClient reports whether a client comes from a metadata document
// (and not from a static client that has an https URL as its id).
func (s *Server) documentClient(id string) bool {
	_, static := s.static[id]
	return !static && isDocumentURL(id)
}

// documentHost is the host of a client_id URL, shown on the consent page
// (CIMD §6.4).
func documentHost(id string) string {
	u, err := url.Parse(id)
	if err != nil {
		return id
	}
	return u.Host
}

// localRedirect reports whether a redirect URI leads back to the user's
// own device (a loopback address or an app's private-use scheme), where
// any local program could be listening: such a client_id can be borrowed
// by software that is not the application the document describes.
func localRedirect(uri string) bool {
	u, err := url.Parse(uri)
	if err != nil {
		return true
	}
	return !strings.EqualFold(u.Scheme, "https")
}

// documentErrorPage is the page that tells the user why the
// application's document cannot be used, and its status; nothing is
// redirected, as the redirect URI is unverified.
func documentErrorPage(id string, err *documentError) (int, errorPage) {
	status := http.StatusBadRequest
	if err.transient {
		status = http.StatusBadGateway
	}
	return status, errorPage{Title: "Application not verified",
		Message: "This application identifies itself by the metadata document at " + id +
			", which cannot be used (invalid_client): " + err.reason + "."}
}
