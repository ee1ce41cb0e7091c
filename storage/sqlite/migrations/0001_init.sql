-- Guildhall hub storage, embedded profile: schema version 1.
CREATE TABLE tenants (
    server          BLOB PRIMARY KEY,
    quota_bytes     INTEGER NOT NULL DEFAULT 0,
    quota_envelopes INTEGER NOT NULL DEFAULT 0,
    quota_blobs     INTEGER NOT NULL DEFAULT 0,
    used_bytes      INTEGER NOT NULL DEFAULT 0,
    used_envelopes  INTEGER NOT NULL DEFAULT 0,
    used_blobs      INTEGER NOT NULL DEFAULT 0,
    next_event_seq  INTEGER NOT NULL DEFAULT 1,
    suspended       INTEGER NOT NULL DEFAULT 0,
    created         INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE events (
    server BLOB NOT NULL,
    seq    INTEGER NOT NULL,
    id     BLOB NOT NULL UNIQUE,
    raw    BLOB NOT NULL,
    PRIMARY KEY (server, seq)
) WITHOUT ROWID;

-- One row per channel: the sequence counter and the channel's live totals.
CREATE TABLE channels (
    server   BLOB NOT NULL,
    channel  BLOB NOT NULL,
    next_seq INTEGER NOT NULL,
    bytes    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (server, channel)
) WITHOUT ROWID;

CREATE TABLE envelopes (
    id        BLOB PRIMARY KEY,
    server    BLOB NOT NULL,
    channel   BLOB NOT NULL,
    seq       INTEGER NOT NULL,
    time      INTEGER NOT NULL,
    sender    BLOB NOT NULL,
    stored_at INTEGER NOT NULL,
    size      INTEGER NOT NULL,
    raw       BLOB,
    tombstone BLOB
);
CREATE UNIQUE INDEX envelopes_by_seq ON envelopes (server, channel, seq);
CREATE INDEX envelopes_by_key ON envelopes (server, channel, time, id);

CREATE TABLE blob_refs (
    server BLOB NOT NULL,
    id     BLOB NOT NULL,
    size   INTEGER NOT NULL,
    PRIMARY KEY (server, id)
) WITHOUT ROWID;
CREATE INDEX blob_refs_by_id ON blob_refs (id);
