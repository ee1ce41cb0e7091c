-- What the operator removed (takedowns: envelopes, blobs, whole servers),
-- with the signed record kept in the content's place, and the audit log of
-- the operator's acts.
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
