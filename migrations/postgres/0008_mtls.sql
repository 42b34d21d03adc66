-- caddymcp schema version 8: mutual TLS (RFC 8705). A client that
-- authenticates with tls_client_auth has the subject its certificate
-- must carry (tls_subject_kind names the RFC 8705 §2.1.2 parameter:
-- subject_dn, san_dns, san_uri, san_ip or san_email; '' for other
-- clients); a self_signed_tls_client_auth client has its JWK Set of
-- certificates in jwks ('' when none); tls_bound_tokens records
-- tls_client_certificate_bound_access_tokens (§3.4). A public client's
-- refresh token obtained over mutual TLS is bound to the certificate's
-- SHA-256 thumbprint (§4; '' is unbound).
ALTER TABLE oauth_clients ADD COLUMN tls_subject_kind TEXT NOT NULL DEFAULT '';
ALTER TABLE oauth_clients ADD COLUMN tls_subject TEXT NOT NULL DEFAULT '';
ALTER TABLE oauth_clients ADD COLUMN jwks TEXT NOT NULL DEFAULT '';
ALTER TABLE oauth_clients ADD COLUMN tls_bound_tokens BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE refresh_tokens ADD COLUMN cert_thumbprint TEXT NOT NULL DEFAULT '';
