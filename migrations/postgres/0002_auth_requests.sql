-- caddymcp schema version 2: pending authorization requests (kept while
-- the user consents), and the sealed response of a rotated refresh token,
-- which lets a client that retries a refresh within the grace window get
-- the same answer (it is encrypted with a key only that client holds).

CREATE TABLE auth_requests (
    id_hash     BYTEA PRIMARY KEY,
    client_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL DEFAULT '',
    csrf_hash   BYTEA,
    params      TEXT NOT NULL DEFAULT '{}',
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    consumed_at TIMESTAMPTZ
);
CREATE INDEX auth_requests_expires_idx ON auth_requests (expires_at);

ALTER TABLE refresh_tokens ADD COLUMN successor BYTEA;
