-- Where each device's sealed channel key lies within a stored key-bundle
-- envelope (offset and length in its signed bytes), so that a device is
-- served only its own entries without the bytes being stored twice.
CREATE TABLE key_entries (
    server   BLOB NOT NULL,
    channel  BLOB NOT NULL,
    device   BLOB NOT NULL,
    seq      INTEGER NOT NULL,
    envelope BLOB NOT NULL,
    epoch    INTEGER NOT NULL,
    key_id   BLOB NOT NULL,
    off      INTEGER NOT NULL,
    len      INTEGER NOT NULL,
    PRIMARY KEY (server, channel, device, seq, off)
) WITHOUT ROWID;
