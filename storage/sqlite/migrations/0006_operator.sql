-- What the operator removed (takedowns: envelopes, blobs, whole servers),
-- with the signed record kept in the content's place, members' abuse
-- reports, and the audit log of the operator's acts.
CREATE TABLE takedowns (
    target BLOB PRIMARY KEY,
    server BLOB NOT NULL,
    kind   TEXT NOT NULL,
    record BLOB NOT NULL,
    at     INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX takedowns_by_server ON takedowns (server, at);
CREATE TABLE audit_log (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    source TEXT NOT NULL,
    action TEXT NOT NULL,
    server BLOB,
    target TEXT NOT NULL,
    result TEXT NOT NULL
);
CREATE TABLE reports (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    server   BLOB NOT NULL,
    channel  BLOB NOT NULL,
    envelope BLOB NOT NULL,
    author   BLOB NOT NULL,
    reporter BLOB NOT NULL,
    reason   TEXT NOT NULL,
    evidence BLOB NOT NULL,
    msg_key  BLOB NOT NULL,
    at       INTEGER NOT NULL
);
CREATE INDEX reports_by_server ON reports (server, seq);
