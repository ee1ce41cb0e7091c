// Package policy is Guildhall's authority model: the keys, the canonical
// encoding, the signed objects and the state log that together are a
// community server, and the pure decisions every node derives from them
// (is this envelope valid, may this node store this channel, is this invite
// usable, who may read this channel, is this receipt genuine).
//
// The normative description is docs/PROTOCOL.md; the test vectors under
// testdata/vectors let another implementation check itself against this one.
//
// policy is deterministic and pure: it performs no I/O, reads no clock (every
// time-dependent decision takes "now" as an argument), keeps no global state
// and depends only on the standard library and the CBOR library. It must never
// learn to read content: ciphertext is opaque bytes here.
package policy
