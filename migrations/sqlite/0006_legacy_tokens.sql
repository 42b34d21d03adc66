-- caddymcp schema version 6: the opaque access tokens of the system that
-- predates OAuth, accepted by mcp_bearer only where an operator enables
-- them, and created and revoked with `caddy mcp-token`. Stored only as
-- SHA-256 hashes; id is a public handle for listing and revoking.
CREATE TABLE legacy_tokens (
    id         TEXT PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    user_id    TEXT NOT NULL,
    scope      TEXT NOT NULL DEFAULT '',
    name       TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE INDEX legacy_tokens_user_idx ON legacy_tokens (user_id);
