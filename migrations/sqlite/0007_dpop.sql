-- caddymcp schema version 7: DPoP (RFC 9449). An authorization code
-- requested with dpop_jkt, and a public client's refresh token obtained
-- with a DPoP proof, are bound to that key's RFC 7638 thumbprint ('' is
-- unbound). server_secrets holds secrets that every instance on the
-- database shares, such as the one DPoP nonces are derived from.
ALTER TABLE authorization_codes ADD COLUMN dpop_jkt TEXT NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ADD COLUMN dpop_jkt TEXT NOT NULL DEFAULT '';
CREATE TABLE server_secrets (
    name       TEXT PRIMARY KEY,
    secret     BLOB NOT NULL,
    created_at TIMESTAMP NOT NULL
);
