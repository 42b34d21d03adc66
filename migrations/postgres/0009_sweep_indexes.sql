-- caddymcp schema version 9: the background sweep deletes expired grants
-- and idle sessions in small batches; these indexes let each batch find
-- its rows without reading the whole table.
CREATE INDEX grants_expires_idx ON grants (expires_at);
CREATE INDEX sessions_idle_expires_idx ON sessions (idle_expires_at);
