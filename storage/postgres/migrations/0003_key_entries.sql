-- Where each device's sealed channel key lies within a stored key-bundle
-- envelope (offset and length in its signed bytes), so that a device is
-- served only its own entries without the bytes being stored twice.
CREATE TABLE key_entries (
    server   bytea NOT NULL,
    channel  bytea NOT NULL,
    device   bytea NOT NULL,
    seq      bigint NOT NULL,
    envelope bytea NOT NULL,
    epoch    bigint NOT NULL,
    key_id   bytea NOT NULL,
    off      integer NOT NULL,
    len      integer NOT NULL,
    PRIMARY KEY (server, channel, device, seq, off)
);
