-- caddymcp schema version 4: every instance polls for newly revoked
-- access tokens to keep its in-memory deny-list current.
CREATE INDEX access_tokens_revoked_idx ON access_tokens (revoked_at) WHERE revoked_at IS NOT NULL;
