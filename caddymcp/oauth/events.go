package oauth

import "github.com/caddymcp/caddymcp/caddymcp/internal/audit"

// The audit events of the authorization server (Config.Events).
const (
	// EventClientRegistered: a client registered dynamically (RFC 7591).
	EventClientRegistered audit.Kind = "client_registered"
	// EventClientEvicted: the registry was full (max_clients), and the
	// oldest client that never completed an authorization was deleted to
	// make way for a new one.
	EventClientEvicted audit.Kind = "client_evicted"
	// EventClientDocumentFetched: a client ID metadata document was
	// fetched and accepted.
	EventClientDocumentFetched audit.Kind = "client_document_fetched"
	// EventConsentGranted: a user approved a client's request.
	EventConsentGranted audit.Kind = "consent_granted"
	// EventConsentDenied: a user refused a client's request, or the
	// access policy did.
	EventConsentDenied audit.Kind = "consent_denied"
	// EventCodeIssued: an authorization code was issued.
	EventCodeIssued audit.Kind = "code_issued"
	// EventCodeReplayed: a used authorization code was presented again
	// (its grant is revoked when it could be found, RFC 6749 §4.1.2).
	EventCodeReplayed audit.Kind = "code_replayed"
	// EventTokenIssued: a code was exchanged for tokens.
	EventTokenIssued audit.Kind = "token_issued"
	// EventTokenRefreshed: a refresh token was rotated.
	EventTokenRefreshed audit.Kind = "token_refreshed"
	// EventRefreshReuseDetected: a rotated-out refresh token was used
	// again; its grant is revoked (OAuth 2.1 §4.3.1).
	EventRefreshReuseDetected audit.Kind = "refresh_reuse_detected"
	// EventRefreshReplayWithoutKey: a DPoP-bound refresh token was
	// replayed without its key.
	EventRefreshReplayWithoutKey audit.Kind = "refresh_replay_without_key"
	// EventRefreshReplayWithoutCertificate: a certificate-bound refresh
	// token was replayed without its certificate.
	EventRefreshReplayWithoutCertificate audit.Kind = "refresh_replay_without_certificate"
	// EventGrantRevoked: a grant was revoked because the access policy no
	// longer allows it.
	EventGrantRevoked audit.Kind = "grant_revoked"
	// EventTokenRevoked: a token was revoked (RFC 7009).
	EventTokenRevoked audit.Kind = "token_revoked"
)

// audit reports a security-relevant event. Callers never pass secrets.
func (s *Server) audit(kind audit.Kind, attrs ...any) {
	s.events(audit.Event{Kind: kind, Attrs: attrs})
}
