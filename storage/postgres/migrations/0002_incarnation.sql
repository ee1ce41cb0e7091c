-- The store's incarnation: a random ID that changes when the database is
-- restored, recorded with the OID of the tenants table it was created with
-- (pg_restore recreates tables, so a restored database has another OID).
CREATE TABLE incarnation (
    id text NOT NULL,
    table_oid bigint NOT NULL
);
