package policy

import (
	"crypto/sha256"
	"slices"
)

// Limits on discovery records.
const (
	MaxRecordSize  = 4096
	MaxRecordTTL   = 24 * 3600 * 1000 // ms between Issued and Expires
	maxRecordAddrs = 16
	maxRecordCaps  = 16
)

// Node roles a discovery record may announce.
const (
	RoleRelay   = "relay"
	RoleHub     = "hub"
	RoleStorage = "storage"
)

// RecordBody is a node's signed rendezvous record: where it listens and what
// it offers, for at most MaxRecordTTL.
type RecordBody struct {
	Node    PublicKey `cbor:"1,keyasint"`
	Seq     uint64    `cbor:"2,keyasint"` // increases with every new record of the node
	Roles   []string  `cbor:"3,keyasint"` // subset of relay, hub, storage; strictly ascending
	Addrs   []string  `cbor:"4,keyasint"` // multiaddrs or URLs
	Caps    []string  `cbor:"5,keyasint,omitempty"`
	Issued  int64     `cbor:"6,keyasint"`
	Expires int64     `cbor:"7,keyasint"`
}

// Record is a verified discovery record.
type Record struct {
	RecordBody
	Raw []byte
	ID  ID
}

// NewRecord signs a discovery record with the node key; body.Node is set from it.
func NewRecord(node Signer, body RecordBody) (*Record, error) {
	body.Node = node.Identity
	return ParseRecord(seal(KindDiscovery, body, node.Key))
}

// ParseRecord decodes and verifies a record's structure and signature. Its
// freshness depends on the clock: see Record.Check.
func ParseRecord(b []byte) (*Record, error) {
	r := &Record{Raw: b}
	body, sig, err := decodeSigned(KindDiscovery, b, MaxRecordSize, &r.RecordBody)
	if err != nil {
		return nil, err
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	if err := verifySig(KindDiscovery, r.Node, body, sig); err != nil {
		return nil, err
	}
	r.ID = Sum(b)
	return r, nil
}

func (r *RecordBody) validate() error {
	if len(r.Roles) == 0 || !slices.IsSorted(r.Roles) || len(slices.Compact(slices.Clone(r.Roles))) != len(r.Roles) {
		return errf(CodeMalformed, "record roles %v must be non-empty and strictly ascending", r.Roles)
	}
	for _, role := range r.Roles {
		if role != RoleRelay && role != RoleHub && role != RoleStorage {
			return errf(CodeMalformed, "unknown node role %q", role)
		}
	}
	if len(r.Addrs) == 0 || len(r.Addrs) > maxRecordAddrs || len(r.Caps) > maxRecordCaps {
		return errf(CodeTooLarge, "record has %d addresses (1..%d) and %d capabilities (limit %d)", len(r.Addrs), maxRecordAddrs, len(r.Caps), maxRecordCaps)
	}
	for _, s := range append(slices.Clone(r.Addrs), r.Caps...) {
		if err := checkName("record entry", s, maxHintLen, true); err != nil {
			return err
		}
	}
	if r.Expires <= r.Issued || r.Expires-r.Issued > MaxRecordTTL {
		return errf(CodeMalformed, "record lifetime [%d, %d] is empty or over 24 h", r.Issued, r.Expires)
	}
	return nil
}

// Check reports whether the record is usable at now (Unix ms): issued no
// later than MaxClockSkew ahead, and not expired.
func (r *Record) Check(now int64) error {
	if r.Issued > now+MaxClockSkew {
		return errf(CodeClock, "record issued at %d, in the future of %d", r.Issued, now)
	}
	if now >= r.Expires {
		return errf(CodeExpired, "record expired at %d", r.Expires)
	}
	return nil
}

// Newer reports whether r supersedes o for the same node: higher Seq, then
// later Issued, then the larger ID, so every node picks the same winner.
func (r *Record) Newer(o *Record) bool {
	if r.Seq != o.Seq {
		return r.Seq > o.Seq
	}
	if r.Issued != o.Issued {
		return r.Issued > o.Issued
	}
	return r.ID.Compare(o.ID) > 0
}

// ServerKey is the DHT key under which hubs announce a server:
// SHA-256("server" || ServerID).
func ServerKey(server ID) [32]byte { return sha256.Sum256(append([]byte("server"), server[:]...)) }

// ChatKey is the DHT key of a small chat room: SHA-256("chat" || RoomID).
func ChatKey(room ID) [32]byte { return sha256.Sum256(append([]byte("chat"), room[:]...)) }
