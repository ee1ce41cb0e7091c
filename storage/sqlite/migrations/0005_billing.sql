-- Billing: a customer label per tenant; the usage ledger (a sample per
-- tenant per interval, with the egress served in it); deleted tenants,
-- which admission does not bring back; and blobs waiting to be deleted
-- from the blob store after their last tenant was deleted.
ALTER TABLE tenants ADD COLUMN label TEXT NOT NULL DEFAULT '';

CREATE TABLE usage_samples (
    at           INTEGER NOT NULL,
    server       BLOB NOT NULL,
    label        TEXT NOT NULL,
    bytes        INTEGER NOT NULL,
    envelopes    INTEGER NOT NULL,
    blobs        INTEGER NOT NULL,
    egress_bytes INTEGER NOT NULL,
    PRIMARY KEY (at, server)
) WITHOUT ROWID;

CREATE TABLE deleted_tenants (
    server  BLOB PRIMARY KEY,
    deleted INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE blob_deletes (
    id BLOB PRIMARY KEY
) WITHOUT ROWID;
