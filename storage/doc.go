// Package storage is the hub's storage contract: the small interfaces the
// hub writes through and reads from (state logs, envelopes, tombstones and
// retention, blobs, tenants and usage), the records they carry and the typed
// errors they return. Backends live in subpackages named after what they
// adapt (sqlite, fs, postgres, s3); storagetest is the one conformance suite
// every backend passes.
//
// Rules every backend follows:
//   - an acknowledged write is durable: it survives a crash of the process
//     and of the machine the moment the call returns;
//   - a failed write writes nothing (no partial batch, no usage counted);
//   - per-channel sequence numbers are dense and never become visible out of
//     order, even with several hub processes sharing one database;
//   - a write over a tenant's quota fails with a *QuotaError and writes nothing.
//
// storage never interprets ciphertext and never decides authority: callers
// hand it records they have already verified with policy.
package storage
