-- The store's incarnation: a random ID that an operator renews after a
-- restore by file copy, which the store cannot detect itself.
CREATE TABLE incarnation (
    id TEXT NOT NULL
);
