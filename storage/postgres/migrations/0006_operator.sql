-- What the operator removed (takedowns: envelopes, blobs, whole servers),
-- with the signed record kept in the content's place, and the audit log of
-- the operator's acts.
CREATE TABLE takedowns (
    target bytea PRIMARY KEY,
    server bytea NOT NULL,
    kind   text NOT NULL,
    record bytea NOT NULL,
    at     bigint NOT NULL
);
CREATE INDEX takedowns_by_server ON takedowns (server, at);
CREATE TABLE audit_log (
    seq    bigserial PRIMARY KEY,
    at     bigint NOT NULL,
    actor  text NOT NULL,
    source text NOT NULL,
    action text NOT NULL,
    server bytea,
    target text NOT NULL,
    result text NOT NULL
);
