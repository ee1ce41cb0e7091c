-- Which envelopes name which blobs (their attachments), so that deleting
-- the last envelope of a server that names a blob releases the blob.
CREATE TABLE envelope_blobs (
    server   BLOB NOT NULL,
    blob     BLOB NOT NULL,
    envelope BLOB NOT NULL,
    PRIMARY KEY (server, blob, envelope)
) WITHOUT ROWID;
CREATE INDEX envelope_blobs_by_envelope ON envelope_blobs (envelope);
