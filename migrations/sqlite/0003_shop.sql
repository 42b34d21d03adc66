-- caddymcp schema version 3: the back office the MCP tools work on —
-- products, bookings, orders with their items, forms with their
-- submissions. Money is in integer minor units with an ISO 4217 code.
-- Every row records who created and last changed it, and when. Times are
-- stored as Unix microseconds (the store's connection settings).

CREATE TABLE products (
    id          TEXT PRIMARY KEY,
    sku         TEXT NOT NULL,
    name        TEXT NOT NULL,
    -- name_fold is the lower-cased name, for case-insensitive search
    -- (SQLite's lower() folds ASCII only).
    name_fold   TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    price_minor INTEGER NOT NULL CHECK (price_minor >= 0),
    currency    TEXT NOT NULL,
    stock       INTEGER NOT NULL CHECK (stock >= 0),
    deleted_at  TIMESTAMP,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    created_by  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
);
-- A SKU is unique among the products that are not deleted.
CREATE UNIQUE INDEX products_sku_active_idx ON products (sku) WHERE deleted_at IS NULL;
CREATE INDEX products_name_idx ON products (name, id);

-- Bookings of one resource never overlap while confirmed. The store
-- checks that in a transaction, and SQLite runs one writing transaction
-- at a time.
CREATE TABLE bookings (
    id         TEXT PRIMARY KEY,
    resource   TEXT NOT NULL,
    customer   TEXT NOT NULL,
    notes      TEXT NOT NULL DEFAULT '',
    start_at   TIMESTAMP NOT NULL,
    end_at     TIMESTAMP NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('confirmed', 'cancelled')),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    created_by TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    CHECK (end_at > start_at),
    -- The overlap check relies on this bound (31 days in microseconds)
    -- to scan only the bookings that start less than 31 days before a
    -- new one.
    CHECK (end_at - start_at <= 2678400000000)
);
CREATE INDEX bookings_resource_idx ON bookings (resource, start_at) WHERE status = 'confirmed';
CREATE INDEX bookings_start_idx ON bookings (start_at, id);

CREATE TABLE orders (
    id          TEXT PRIMARY KEY,
    customer    TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled')),
    total_minor INTEGER NOT NULL CHECK (total_minor >= 0),
    currency    TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    created_by  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
);
CREATE INDEX orders_created_idx ON orders (created_at, id);
CREATE INDEX orders_status_created_idx ON orders (status, created_at, id);

-- The lines of an order, priced when it was placed. Products are only
-- ever soft-deleted, so an item always finds its product.
CREATE TABLE order_items (
    order_id         TEXT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_no          INTEGER NOT NULL,
    product_id       TEXT NOT NULL REFERENCES products (id),
    name             TEXT NOT NULL,
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_minor INTEGER NOT NULL CHECK (unit_price_minor >= 0),
    line_minor       INTEGER NOT NULL CHECK (line_minor >= 0),
    PRIMARY KEY (order_id, line_no)
);
CREATE INDEX order_items_product_idx ON order_items (product_id);

-- fields is the form's field definitions as a JSON array.
CREATE TABLE forms (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    fields      TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    created_by  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
);
CREATE INDEX forms_created_idx ON forms (created_at, id);

-- answers is a JSON object keyed by field name.
CREATE TABLE form_submissions (
    id         TEXT PRIMARY KEY,
    form_id    TEXT NOT NULL REFERENCES forms (id) ON DELETE CASCADE,
    answers    TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    created_by TEXT NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE INDEX form_submissions_form_idx ON form_submissions (form_id, created_at, id);
