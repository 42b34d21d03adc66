-- caddymcp schema version 10: a grant keeps the redirect URI its code was
-- sent to, so that the account page can show each user where every
-- application they authorized is sent back to. Grants made before this
-- version have none ('').
ALTER TABLE grants ADD COLUMN redirect_uri TEXT NOT NULL DEFAULT '';
