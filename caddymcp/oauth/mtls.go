package oauth

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/caddymcp/caddymcp/caddymcp/internal/web"
	"github.com/caddymcp/caddymcp/caddymcp/jose"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// Token endpoint authentication methods of mutual TLS (RFC 8705 §2.1.1,
// §2.2.1).
const (
	// TLSClientAuth is the PKI method: the client presents a certificate
	// whose chain the TLS server verified, with the subject the client
	// registered (RFC 8705 §2.1).
	TLSClientAuth = "tls_client_auth"
	// SelfSignedTLSClientAuth is the self-signed method: the client
	// presents a certificate whose public key is one of those it
	// registered in its jwks; the chain is not verified (RFC 8705 §2.2).
	SelfSignedTLSClientAuth = "self_signed_tls_client_auth"
)

// The kinds of certificate subject a tls_client_auth client registers
// exactly one of (RFC 8705 §2.1.2), as store.CertificateSubject.Kind.
const (
	// SubjectDN is the certificate's subject distinguished name, an RFC
	// 4514 string (tls_client_auth_subject_dn).
	SubjectDN = "subject_dn"
	// SANDNS is a dNSName subject alternative name (tls_client_auth_san_dns).
	SANDNS = "san_dns"
	// SANURI is a uniformResourceIdentifier subject alternative name
	// (tls_client_auth_san_uri).
	SANURI = "san_uri"
	// SANIP is an iPAddress subject alternative name, compared in binary
	// form (tls_client_auth_san_ip).
	SANIP = "san_ip"
	// SANEmail is an rfc822Name subject alternative name
	// (tls_client_auth_san_email).
	SANEmail = "san_email"
)

// SubjectKinds lists the certificate subject kinds in the order of RFC
// 8705 §2.1.2.
var SubjectKinds = []string{SubjectDN, SANDNS, SANURI, SANIP, SANEmail}

// Limits on the mutual-TLS metadata a client may register.
const (
	maxDNLen    = 1024
	maxJWKSKeys = 10
)

// MTLSConfig configures mutual TLS (RFC 8705) at the token, revocation
// and introspection endpoints. The TLS client certificate is the one of
// the request's connection (r.TLS), which the TLS server requested (and,
// for the PKI method, verified) during the handshake: in Caddy, a site's
// tls client_auth settings. By default client certificates are used for
// client authentication and access tokens are bound to them.
type MTLSConfig struct {
	// Disabled ignores client certificates: tls_client_auth and
	// self_signed_tls_client_auth are neither offered nor accepted, and
	// no token is bound to a certificate.
	Disabled bool
	// BindOnRequest binds access tokens to the client certificate only
	// for clients that registered tls_client_certificate_bound_access_tokens
	// (RFC 8705 §3.4). Default: an access token is bound whenever the
	// token request came with a client certificate (§3).
	BindOnRequest bool
	// Endpoint is the base URL of mutual-TLS aliases of the token,
	// revocation and introspection endpoints, published as
	// mtls_endpoint_aliases (RFC 8705 §5): for example
	// "https://mtls.example.com", a host whose TLS server requests client
	// certificates, which the regular host then need not do. Requests to
	// it must reach this server. It needs a configured Issuer. Empty: no
	// aliases; the regular endpoints use the client certificate, if any.
	Endpoint string
}

// checkMTLSConfig checks the mutual-TLS configuration of a server.
func checkMTLSConfig(c *MTLSConfig, issuer string) (endpointPath string, err error) {
	if c.Endpoint == "" || c.Disabled {
		return "", nil
	}
	if err := web.ValidateIssuer(c.Endpoint); err != nil {
		return "", fmt.Errorf("mtls endpoint: %w", err)
	}
	if issuer == "" {
		return "", errors.New("an mtls endpoint needs a configured issuer: requests to it must not take their issuer from their host")
	}
	u, _ := url.Parse(c.Endpoint) // validated above
	return u.EscapedPath(), nil
}

// MTLSEndpointAliases are the mutual-TLS endpoint aliases of the
// metadata (RFC 8705 §5).
type MTLSEndpointAliases struct {
	// TokenEndpoint is the token endpoint on the mutual-TLS host.
	TokenEndpoint string `json:"token_endpoint"`
	// RevocationEndpoint is the revocation endpoint on the mutual-TLS host.
	RevocationEndpoint string `json:"revocation_endpoint"`
	// IntrospectionEndpoint is the introspection endpoint on the
	// mutual-TLS host.
	IntrospectionEndpoint string `json:"introspection_endpoint"`
}

// mtlsAliases returns the endpoint aliases of the metadata, or nil.
func (s *Server) mtlsAliases() *MTLSEndpointAliases {
	if s.cfg.MTLS.Disabled || s.cfg.MTLS.Endpoint == "" {
		return nil
	}
	base := s.cfg.MTLS.Endpoint
	return &MTLSEndpointAliases{TokenEndpoint: base + TokenPath, RevocationEndpoint: base + RevokePath,
		IntrospectionEndpoint: base + IntrospectPath}
}

// endpointBase is the base URL of the endpoints a request addressed: the
// mutual-TLS endpoint when it came to that origin and path, else the
// issuer.
func (s *Server) endpointBase(r *http.Request, issuer string) string {
	alias := s.cfg.MTLS.Endpoint
	if alias == "" || s.cfg.MTLS.Disabled || !strings.HasPrefix(r.URL.EscapedPath(), s.mtlsPath+"/") {
		return issuer
	}
	origin, err := web.RequestOrigin(r)
	if err != nil || origin+s.mtlsPath != alias {
		return issuer
	}
	return alias
}

// requestCertificate is the client certificate the authorization server
// uses: none when mutual TLS is off.
func (s *Server) requestCertificate(r *http.Request) *x509.Certificate {
	if s.cfg.MTLS.Disabled {
		return nil
	}
	return web.ClientCertificate(r)
}

// mtlsClient reports whether a client authenticates with mutual TLS.
func mtlsClient(c *store.Client) bool {
	return c.TokenEndpointAuthMethod == TLSClientAuth || c.TokenEndpointAuthMethod == SelfSignedTLSClientAuth
}

// publicClient reports whether a client has no credentials of its own:
// neither a secret nor a certificate (RFC 6749 §2.1).
func publicClient(c *store.Client) bool {
	return c.SecretHash == nil && !mtlsClient(c)
}

// authenticateCertificate authenticates a mutual-TLS client by the
// certificate of the request's connection (RFC 8705 §2): for
// tls_client_auth a chain the TLS server verified and the registered
// subject (§2.1), for self_signed_tls_client_auth a public key of the
// registered jwks (§2.2). A failure is invalid_client (§2).
func (s *Server) authenticateCertificate(r *http.Request, c *store.Client, invalid *oauthError) *oauthError {
	fail := func(desc string) *oauthError {
		e := *invalid
		e.Description = desc
		return &e
	}
	if s.cfg.MTLS.Disabled {
		return fail("mutual-TLS client authentication is turned off on this server")
	}
	cert := web.ClientCertificate(r)
	if cert == nil {
		return fail("this client authenticates with a TLS client certificate: make the request over mutual TLS")
	}
	if c.TokenEndpointAuthMethod == TLSClientAuth {
		// §2.1: the handshake validated the chain with the TLS server's
		// trust anchors (Caddy's client_auth trust_pool).
		if len(r.TLS.VerifiedChains) == 0 {
			return fail("the client certificate's chain was not verified by a trusted CA (tls_client_auth needs one)")
		}
		if !subjectMatches(c.TLSSubject, cert) {
			return fail("the client certificate's subject is not the one registered for this client")
		}
		return nil
	}
	keys, err := jwksPublicKeys(c.JWKS)
	if err != nil {
		return fail("this client has no usable registered certificates")
	}
	for _, k := range keys {
		if jose.PublicKeysEqual(k, cert.PublicKey) {
			return nil
		}
	}
	return fail("the client certificate's public key is not one of those registered for this client")
}

// mtlsMetadata is the client metadata of mutual TLS (RFC 8705 §2.1.2,
// §3.4, RFC 7591 jwks), embedded in clientMetadata.
type mtlsMetadata struct {
	TLSClientAuthSubjectDN                string          `json:"tls_client_auth_subject_dn,omitempty"`
	TLSClientAuthSANDNS                   string          `json:"tls_client_auth_san_dns,omitempty"`
	TLSClientAuthSANURI                   string          `json:"tls_client_auth_san_uri,omitempty"`
	TLSClientAuthSANIP                    string          `json:"tls_client_auth_san_ip,omitempty"`
	TLSClientAuthSANEmail                 string          `json:"tls_client_auth_san_email,omitempty"`
	JWKS                                  json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                               string          `json:"jwks_uri,omitempty"`
	TLSClientCertificateBoundAccessTokens bool            `json:"tls_client_certificate_bound_access_tokens,omitempty"`
}

// subjects returns pointers to the subject parameters, in the order of
// SubjectKinds.
func (m *mtlsMetadata) subjects() []*string {
	return []*string{&m.TLSClientAuthSubjectDN, &m.TLSClientAuthSANDNS, &m.TLSClientAuthSANURI,
		&m.TLSClientAuthSANIP, &m.TLSClientAuthSANEmail}
}

// tlsSubject is the registered certificate subject.
func (m *mtlsMetadata) tlsSubject() store.CertificateSubject {
	for i, v := range m.subjects() {
		if *v != "" {
			return store.CertificateSubject{Kind: SubjectKinds[i], Value: *v}
		}
	}
	return store.CertificateSubject{}
}

// checkMTLSMetadata validates the mutual-TLS metadata of a registration
// whose token_endpoint_auth_method is method. Parameters another method
// has no use for are dropped (RFC 7591 §2 lets the server ignore them).
func (s *Server) checkMTLSMetadata(md *mtlsMetadata, method string) *oauthError {
	meta := func(d string) *oauthError { return badRequest("invalid_client_metadata", d) }
	if s.cfg.MTLS.Disabled {
		// No certificate-bound tokens here: the registration answer says
		// so by leaving the parameter out.
		md.TLSClientCertificateBoundAccessTokens = false
	}
	if method == TLSClientAuth {
		// §2.1.2: exactly one subject parameter.
		set := 0
		for _, v := range md.subjects() {
			if *v != "" {
				set++
			}
		}
		if set != 1 {
			return meta("a tls_client_auth client must register exactly one of tls_client_auth_subject_dn, tls_client_auth_san_dns, " +
				"tls_client_auth_san_uri, tls_client_auth_san_ip and tls_client_auth_san_email")
		}
		if err := CheckCertificateSubject(md.tlsSubject()); err != nil {
			return meta(err.Error())
		}
	} else {
		for _, v := range md.subjects() {
			*v = ""
		}
	}
	jwksURI := md.JWKSURI
	md.JWKSURI = ""
	if method != SelfSignedTLSClientAuth {
		md.JWKS = nil
		return nil
	}
	// §2.2.2: the certificates come in the jwks, each in the x5c of a JWK.
	if jwksURI != "" {
		return meta("jwks_uri is not supported: register the client's certificates in jwks")
	}
	if !present(md.JWKS) {
		return meta("a self_signed_tls_client_auth client must register its certificates in jwks (x5c)")
	}
	if _, err := jwksPublicKeys(md.JWKS); err != nil {
		return meta("jwks: " + err.Error())
	}
	return nil
}

// CheckCertificateSubject checks the subject a tls_client_auth client
// registers (RFC 8705 §2.1.2): a distinguished name in RFC 4514 syntax,
// a DNS name, an absolute URI, an IP address or an email address.
func CheckCertificateSubject(sub store.CertificateSubject) error {
	v := sub.Value
	if v == "" {
		return errors.New("the certificate subject is empty")
	}
	switch sub.Kind {
	case SubjectDN:
		if len(v) > maxDNLen {
			return errors.New("tls_client_auth_subject_dn is too long")
		}
		if _, err := parseDN(v); err != nil {
			return fmt.Errorf("tls_client_auth_subject_dn is not an RFC 4514 distinguished name: %v", err)
		}
	case SANDNS:
		if !validDNSName(v) {
			return errors.New("tls_client_auth_san_dns is not a DNS name")
		}
	case SANURI:
		u, err := url.Parse(v)
		if err != nil || !u.IsAbs() || len(v) > maxURILen {
			return errors.New("tls_client_auth_san_uri is not an absolute URI")
		}
	case SANIP:
		if a, err := netip.ParseAddr(v); err != nil || a.Zone() != "" {
			return errors.New("tls_client_auth_san_ip is not an IPv4 or IPv6 address")
		}
	case SANEmail:
		local, domain, ok := strings.Cut(v, "@")
		if !ok || local == "" || !validDNSName(domain) || len(v) > 320 || strings.ContainsAny(local, " \t\r\n\"<>@") {
			return errors.New("tls_client_auth_san_email is not an email address")
		}
	default:
		return fmt.Errorf("unknown certificate subject kind %q", sub.Kind)
	}
	return nil
}

// validDNSName reports whether s is a DNS name (letters, digits, '-' and
// dots; a leading "*." wildcard label allowed), at most 253 characters.
func validDNSName(s string) bool {
	s = strings.TrimSuffix(strings.TrimPrefix(s, "*."), ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// subjectMatches reports whether a certificate carries the registered
// subject (RFC 8705 §2.1.2): its subject DN under distinguishedNameMatch
// (§2.1), or a SAN entry of the registered kind; IP addresses are
// compared in binary form (RFC 5952 §8).
func subjectMatches(sub store.CertificateSubject, cert *x509.Certificate) bool {
	switch sub.Kind {
	case SubjectDN:
		dn, err := parseDN(sub.Value)
		return err == nil && dn.matches(cert.RawSubject)
	case SANDNS:
		want := strings.TrimSuffix(sub.Value, ".")
		for _, n := range cert.DNSNames {
			if strings.EqualFold(strings.TrimSuffix(n, "."), want) {
				return true
			}
		}
	case SANURI:
		want, err := url.Parse(sub.Value)
		if err != nil {
			return false
		}
		for _, u := range cert.URIs {
			if u.String() == sub.Value || u.String() == want.String() {
				return true
			}
		}
	case SANIP:
		want, err := netip.ParseAddr(sub.Value)
		if err != nil {
			return false
		}
		for _, ip := range cert.IPAddresses {
			if a, ok := netip.AddrFromSlice(ip); ok && a.Unmap() == want.Unmap() {
				return true
			}
		}
	case SANEmail:
		local, domain, _ := strings.Cut(sub.Value, "@")
		for _, e := range cert.EmailAddresses {
			l, d, ok := strings.Cut(e, "@")
			if ok && l == local && strings.EqualFold(d, domain) {
				return true
			}
		}
	}
	return false
}

// ---- the certificates of self-signed clients ----

// jwksPublicKeys reads a client's JWK Set (RFC 7517 §5) for the
// self-signed method (RFC 8705 §2.2.2): at most maxJWKSKeys public keys
// (EC, RSA of 2048 bits or more, or Ed25519; never a private or
// symmetric key), each with an x5c whose first certificate holds that
// same public key. It returns the keys.
func jwksPublicKeys(raw []byte) ([]crypto.PublicKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, errors.New("not a jose.JWK Set (a JSON object with keys)")
	}
	switch {
	case len(set.Keys) == 0:
		return nil, errors.New("no keys")
	case len(set.Keys) > maxJWKSKeys:
		return nil, fmt.Errorf("more than %d keys", maxJWKSKeys)
	}
	keys := make([]crypto.PublicKey, 0, len(set.Keys))
	for i, rawKey := range set.Keys {
		k, pk, err := jose.ParsePublicJWK(rawKey)
		switch {
		case errors.Is(err, jose.ErrMalformed):
			return nil, fmt.Errorf("key %d is malformed", i+1)
		case errors.Is(err, jose.ErrNotPublic):
			return nil, fmt.Errorf("key %d holds private or symmetric key material", i+1)
		case len(k.X5C) == 0:
			// x5c holds standard base64, not base64url (RFC 7517 §4.7).
			return nil, fmt.Errorf("key %d has no x5c certificate", i+1)
		}
		if _, cerr := k.Certificate(); cerr != nil && !errors.Is(cerr, jose.ErrUnusable) {
			return nil, fmt.Errorf("key %d: %w", i+1, cerr)
		}
		if err != nil {
			return nil, fmt.Errorf("key %d is not a usable EC, RSA or Ed25519 public key", i+1)
		}
		keys = append(keys, pk.Key)
	}
	return keys, nil
}

// certificatesJWKS makes the JWK Set of certificates (each key with its
// certificate in x5c), as a self-signed client registers it.
func certificatesJWKS(certs []*x509.Certificate) ([]byte, error) {
	keys := make([]jose.JWK, 0, len(certs))
	for _, c := range certs {
		k, err := jose.NewJWK(c.PublicKey, "", "")
		if err != nil {
			return nil, fmt.Errorf("certificate key: %w", err)
		}
		k.X5C = []string{base64.StdEncoding.EncodeToString(c.Raw)}
		keys = append(keys, k)
	}
	raw, err := json.Marshal(jose.JWKS{Keys: keys})
	if err != nil {
		return nil, err
	}
	if _, err := jwksPublicKeys(raw); err != nil {
		return nil, err
	}
	return raw, nil
}
