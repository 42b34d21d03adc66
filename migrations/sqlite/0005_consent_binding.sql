-- caddymcp schema version 5: a remembered consent is bound to the exact
-- redirect URI and resource it was given for, so that a code is never
-- issued silently to another address (another loopback port, say).
ALTER TABLE consents ADD COLUMN redirect_uri TEXT NOT NULL DEFAULT '';
ALTER TABLE consents ADD COLUMN resource TEXT NOT NULL DEFAULT '';
