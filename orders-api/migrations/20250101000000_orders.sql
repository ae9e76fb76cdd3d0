-- Orders, the idempotency keys that protect their creation, and a little bookkeeping.

CREATE TABLE orders (
    -- The number behind the id; AUTOINCREMENT so a deleted order's id is never reused.
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The id as the API spells it (ORD-001), for people reading the file with sqlite3.
    id TEXT GENERATED ALWAYS AS ('ORD-' || printf('%03d', seq)) VIRTUAL,
    owner_oid TEXT NOT NULL,
    customer_name TEXT NOT NULL,
    product TEXT NOT NULL CHECK (length(product) BETWEEN 1 AND 200),
    quantity INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    status TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'shipped', 'delivered', 'cancelled')),
    -- RFC 3339 UTC, fixed width (2025-01-15T09:30:00.000Z), so text order is time order.
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

-- A user's orders in id order, all or of one status: the list queries.
CREATE INDEX orders_by_owner ON orders (owner_oid, seq);
CREATE INDEX orders_by_owner_status ON orders (owner_oid, status, seq);

-- One row per (user, key): the primary key is what makes concurrent retries create one order.
CREATE TABLE idempotency_keys (
    owner_oid TEXT NOT NULL,
    key TEXT NOT NULL,
    -- SHA-256 of the normalised request, to tell a retry from a different request.
    fingerprint TEXT NOT NULL,
    -- The body of the first response, returned again to retries.
    response TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (owner_oid, key)
) STRICT, WITHOUT ROWID;

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
