-- Guildhall hub storage, PostgreSQL profile: schema version 1.
CREATE TABLE tenants (
    server          bytea PRIMARY KEY,
    quota_bytes     bigint  NOT NULL DEFAULT 0,
    quota_envelopes bigint  NOT NULL DEFAULT 0,
    quota_blobs     bigint  NOT NULL DEFAULT 0,
    used_bytes      bigint  NOT NULL DEFAULT 0,
    used_envelopes  bigint  NOT NULL DEFAULT 0,
    used_blobs      bigint  NOT NULL DEFAULT 0,
    next_event_seq  bigint  NOT NULL DEFAULT 1,
    suspended       boolean NOT NULL DEFAULT false,
    created         bigint  NOT NULL
);

CREATE TABLE events (
    server bytea  NOT NULL,
    seq    bigint NOT NULL,
    id     bytea  NOT NULL UNIQUE,
    raw    bytea  NOT NULL,
    PRIMARY KEY (server, seq)
);

-- One row per channel: the sequence counter (locked by each writer until it
-- commits) and the channel's live ciphertext bytes.
CREATE TABLE channels (
    server   bytea  NOT NULL,
    channel  bytea  NOT NULL,
    next_seq bigint NOT NULL DEFAULT 1,
    bytes    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (server, channel)
);

CREATE TABLE envelopes (
    id        bytea   PRIMARY KEY,
    server    bytea   NOT NULL,
    channel   bytea   NOT NULL,
    seq       bigint  NOT NULL,
    time      bigint  NOT NULL,
    sender    bytea   NOT NULL,
    stored_at bigint  NOT NULL,
    size      integer NOT NULL,
    raw       bytea,
    tombstone bytea
);
-- Ciphertext does not compress: do not try.
ALTER TABLE envelopes ALTER COLUMN raw SET STORAGE EXTERNAL;
CREATE UNIQUE INDEX envelopes_by_seq ON envelopes (server, channel, seq);
CREATE INDEX envelopes_by_key ON envelopes (server, channel, time, id);

CREATE TABLE blob_refs (
    server bytea  NOT NULL,
    id     bytea  NOT NULL,
    size   bigint NOT NULL,
    PRIMARY KEY (server, id)
);
CREATE INDEX blob_refs_by_id ON blob_refs (id);
