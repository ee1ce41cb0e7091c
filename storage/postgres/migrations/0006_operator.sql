-- What the operator removed (takedowns: envelopes, blobs, whole servers),
-- with the signed record kept in the content's place, members' abuse
-- reports, and the audit log of the operator's acts.
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
CREATE TABLE reports (
    seq      bigserial PRIMARY KEY,
    server   bytea NOT NULL,
    channel  bytea NOT NULL,
    envelope bytea NOT NULL,
    author   bytea NOT NULL,
    reporter bytea NOT NULL,
    reason   text NOT NULL,
    evidence bytea NOT NULL,
    msg_key  bytea NOT NULL,
    at       bigint NOT NULL
);
CREATE INDEX reports_by_server ON reports (server, seq);
