-- Billing: a customer label per tenant; the usage ledger (a sample per
-- tenant per interval, with the egress served in it); deleted tenants,
-- which admission does not bring back; and blobs waiting to be deleted
-- from the blob store after their last tenant was deleted.
ALTER TABLE tenants ADD COLUMN label text NOT NULL DEFAULT '';

CREATE TABLE usage_samples (
    at           bigint NOT NULL,
    server       bytea  NOT NULL,
    label        text   NOT NULL,
    bytes        bigint NOT NULL,
    envelopes    bigint NOT NULL,
    blobs        bigint NOT NULL,
    egress_bytes bigint NOT NULL,
    PRIMARY KEY (at, server)
);

CREATE TABLE deleted_tenants (
    server  bytea  PRIMARY KEY,
    deleted bigint NOT NULL
);

CREATE TABLE blob_deletes (
    id bytea PRIMARY KEY
);
