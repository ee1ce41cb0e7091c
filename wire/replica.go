package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/guildhall/guildhall/policy"
)

// Hub-to-hub replication (docs/PROTOCOL.md §8): over a libp2p stream of
// protocol /guildhall/replicate/1, one ReplicaRequest and one
// ReplicaResponse per stream, each a CBOR map (integer keys) preceded by its
// length as a uvarint:
//
//	uvarint(len) | CBOR body, len <= MaxReplicaMessage
//
// A peer's messages are decoded by the same limited decoder as a client's
// (no unknown fields, duplicate keys, indefinite lengths or tags; nesting
// at most 8), with one limit of their own: an array may hold up to
// maxPeerArray elements, as a hello lists every hosted server and an
// events request every state event the requester holds.

// Operations of a ReplicaRequest.
const (
	OpHello      = "hello"      // Servers: the requester's; answered with those both host that it may replicate
	OpEvents     = "events"     // Server, Have: event IDs held; answered with Events it lacks (More if cut short)
	OpRanges     = "ranges"     // Server, Channel, Ranges: one reconciliation round
	OpFetch      = "fetch"      // Server, IDs: envelopes wanted; answered with Objects
	OpPush       = "push"       // Server, Objects: envelopes newly stored at the requester
	OpTombstones = "tombstones" // Objects: tombstones newly applied at the requester
	OpBlob       = "blob"       // Server, IDs: the one blob wanted; answered with Objects holding its bytes
)

// MaxReplicaMessage bounds one replication message, in bytes.
const MaxReplicaMessage = 32 << 20

// ReplicaRequest is a hub's request to another.
type ReplicaRequest struct {
	Op      string      `cbor:"1,keyasint"`
	Server  policy.ID   `cbor:"2,keyasint,omitzero"`
	Channel policy.ID   `cbor:"3,keyasint,omitzero"`
	Have    []policy.ID `cbor:"4,keyasint,omitempty"`
	Ranges  []Range     `cbor:"5,keyasint,omitempty"`
	IDs     []policy.ID `cbor:"6,keyasint,omitempty"`
	Objects [][]byte    `cbor:"7,keyasint,omitempty"`
	Cert    []byte      `cbor:"8,keyasint,omitempty"` // the requester's certificate as a home node
	Servers []policy.ID `cbor:"9,keyasint,omitempty"`
	Set     string      `cbor:"10,keyasint,omitempty"` // ranges, fetch: SetEnvelopes (omitted) or SetTombstones
}

// The sets of a channel that ranges and fetch work on: its envelopes
// (every stored row, deleted ones included), or its deletions (the rows
// holding a tombstone), whose fetch answers with the signed tombstones.
const (
	SetEnvelopes  = ""
	SetTombstones = "tombstones"
)

// ReplicaResponse answers a ReplicaRequest: Error set, or the operation's
// fields.
type ReplicaResponse struct {
	Cert    []byte      `cbor:"7,keyasint,omitempty"` // the responder's certificate as a home node
	Error   string      `cbor:"1,keyasint,omitempty"`
	Servers []policy.ID `cbor:"2,keyasint,omitempty"`
	Events  [][]byte    `cbor:"3,keyasint,omitempty"`
	Ranges  []Range     `cbor:"4,keyasint,omitempty"`
	Objects [][]byte    `cbor:"5,keyasint,omitempty"`
	More    bool        `cbor:"6,keyasint,omitempty"`
}

// WriteReplica writes one replication message (a ReplicaRequest or
// ReplicaResponse) with its length prefix.
func WriteReplica(w io.Writer, v any) error {
	b, err := encMode.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > MaxReplicaMessage {
		return fmt.Errorf("%w: replication message of %d bytes, limit %d", ErrTooLarge, len(b), MaxReplicaMessage)
	}
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(b)))
	if _, err := w.Write(hdr[:n]); err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// ReadReplica reads one replication message into v (a *ReplicaRequest or
// *ReplicaResponse). A message over MaxReplicaMessage is refused with
// ErrTooLarge before its body is read, one that does not decode within the
// limits with ErrMalformed; other errors are the stream's.
func ReadReplica(r *bufio.Reader, v any) error {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return err
	}
	if n > MaxReplicaMessage {
		return fmt.Errorf("%w: replication message of %d bytes, limit %d", ErrTooLarge, n, MaxReplicaMessage)
	}
	// Grow the buffer as bytes arrive instead of allocating what the peer
	// announced: a peer that announces 32 MiB and sends nothing costs
	// nothing.
	var buf bytes.Buffer
	if m, err := buf.ReadFrom(io.LimitReader(r, int64(n))); err != nil {
		return err
	} else if uint64(m) != n {
		return fmt.Errorf("%w: replication message cut short at %d of %d bytes", ErrMalformed, m, n)
	}
	return UnmarshalReplica(buf.Bytes(), v)
}

// UnmarshalReplica decodes the body of a replication message with the
// peer limits; every failure wraps ErrMalformed.
func UnmarshalReplica(b []byte, v any) error {
	if err := peerDecMode.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}
