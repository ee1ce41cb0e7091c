// Package wire defines the messages of the hub's API, version 1: the bodies
// of its HTTP requests and responses, the frames of its WebSocket, and the
// hub-to-hub replication messages (replica.go). It is the contract between
// hubs and clients (docs/API.md) and between hubs (docs/PROTOCOL.md §8),
// shared by every side so that none re-declares it; it holds no behaviour
// beyond encoding, and decides nothing about who may do what.
//
// Every message has a CBOR form (integer keys, deterministic, decoded with
// limits) for programs and a JSON form (IDs and keys as text, bytes as
// base64) for people and browsers. Signed objects travel as their exact
// bytes: the hub never re-encodes what someone signed.
package wire

import (
	"fmt"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/reconcile"
)

// Media types of the two encodings.
const (
	CBOR = "application/cbor"
	JSON = "application/json"
)

// Error is the body of every failed request and the payload of an error
// frame: a stable machine code (docs/API.md lists them) and a message for
// people. Codes never change meaning.
type Error struct {
	Code    string `cbor:"1,keyasint" json:"code"`
	Message string `cbor:"2,keyasint" json:"message"`
}

// Info describes a hub: GET /v1/info.
type Info struct {
	Node    policy.PublicKey `cbor:"1,keyasint" json:"node"`
	Version string           `cbor:"2,keyasint" json:"version"`
	// Limits the hub applies to requests.
	MaxBody     int64 `cbor:"3,keyasint" json:"max_body"`
	MaxBlob     int64 `cbor:"4,keyasint" json:"max_blob"`
	MaxBatch    int   `cbor:"5,keyasint" json:"max_batch"`
	MaxFrame    int64 `cbor:"6,keyasint" json:"max_frame"`
	MaxPage     int   `cbor:"7,keyasint" json:"max_page"`
	PresignBlob bool  `cbor:"8,keyasint" json:"presign_blob"`
	// NodeCert is a home node's certificate from its owner (the node key
	// certified as one of the owner's devices), absent on other hubs: a
	// home node's receipts are checked with it (policy.State.CheckReceipt).
	NodeCert []byte `cbor:"9,keyasint,omitempty" json:"node_cert,omitempty"`
	// Incarnation identifies the hub's copy of its data; it changes when
	// the store is restored from a backup. Cursors (Envelopes.Next, a
	// channel's seq) are only comparable within one incarnation.
	Incarnation string `cbor:"10,keyasint,omitempty" json:"incarnation,omitempty"`
	// PublicURL is the address at which members reach the hub (its
	// configured public_url), absent when not configured: clients put it
	// in invites instead of whatever URL they used.
	PublicURL string `cbor:"11,keyasint,omitempty" json:"public_url,omitempty"`
}

// Challenge is what POST /v1/auth/challenge returns: bytes to sign in a
// policy auth proof, usable until Expires (Unix ms).
type Challenge struct {
	Challenge []byte `cbor:"1,keyasint" json:"challenge"`
	Expires   int64  `cbor:"2,keyasint" json:"expires"`
}

// SessionRequest carries a signed policy auth proof: POST /v1/auth/session.
type SessionRequest struct {
	Proof []byte `cbor:"1,keyasint" json:"proof"`
}

// Session is a bearer token for the identity and device that proved
// themselves, valid until Expires (Unix ms).
type Session struct {
	Token    string           `cbor:"1,keyasint" json:"token"`
	Identity policy.PublicKey `cbor:"2,keyasint" json:"identity"`
	Device   policy.PublicKey `cbor:"3,keyasint" json:"device"`
	Expires  int64            `cbor:"4,keyasint" json:"expires"`
}

// Objects is a batch of signed objects (state events, envelopes or
// tombstones), each as its exact signed bytes.
type Objects struct {
	Objects [][]byte `cbor:"1,keyasint" json:"objects"`
}

// EventResult is the outcome of one published state event.
type EventResult struct {
	ID     policy.ID `cbor:"1,keyasint" json:"id"`
	Folded bool      `cbor:"2,keyasint" json:"folded"`
	// Reason is set when the folded event was rejected, for whatever reason
	// (unauthorised, conflict, an unusable invite, a clock rule), and so has
	// no effect. Folded is true for rejected events too.
	Reason *Error `cbor:"3,keyasint,omitempty" json:"reason,omitempty"`
}

// EventResults answers POST /v1/servers/{server}/events.
type EventResults struct {
	Results []EventResult `cbor:"1,keyasint" json:"results"`
}

// Event is a stored state event with the hub's per-server cursor.
type Event struct {
	Seq uint64 `cbor:"1,keyasint" json:"seq"`
	Raw []byte `cbor:"2,keyasint" json:"raw"`
}

// Events is a page of a server's state log; Next is the cursor to ask
// after, More whether more were available.
type Events struct {
	Events []Event `cbor:"1,keyasint" json:"events"`
	Next   uint64  `cbor:"2,keyasint" json:"next"`
	More   bool    `cbor:"3,keyasint" json:"more"`
}

// Result is the outcome of one posted object: a signed receipt (envelopes),
// or nothing (tombstones), or an error. Results are in request order.
type Result struct {
	Receipt []byte `cbor:"1,keyasint,omitempty" json:"receipt,omitempty"`
	Error   *Error `cbor:"2,keyasint,omitempty" json:"error,omitempty"`
}

// Results answers a batch of envelopes or tombstones.
type Results struct {
	Results []Result `cbor:"1,keyasint" json:"results"`
}

// Envelope is a stored envelope with the hub's per-channel cursor. Raw is
// empty and Tombstone set once it was deleted.
type Envelope struct {
	Seq       uint64    `cbor:"1,keyasint" json:"seq"`
	ID        policy.ID `cbor:"2,keyasint" json:"id"`
	StoredAt  int64     `cbor:"3,keyasint" json:"stored_at"`
	Raw       []byte    `cbor:"4,keyasint,omitempty" json:"raw,omitempty"`
	Tombstone []byte    `cbor:"5,keyasint,omitempty" json:"tombstone,omitempty"`
	// BundleEpoch is set, and Raw left out, for a key bundle when the read
	// asked bundles=omit: the reader gets its own entries from the keys
	// endpoint (SealedKeys) and learns here that the epoch exists.
	BundleEpoch uint64 `cbor:"6,keyasint,omitempty" json:"bundle_epoch,omitempty"`
	// TakenDown, with no Raw and no Tombstone, is the hub's signed record
	// (policy.Takedown) of its operator removing the envelope.
	TakenDown []byte `cbor:"7,keyasint,omitempty" json:"taken_down,omitempty"`
}

// SealedKey is one entry of a key bundle sealed to the asking device.
type SealedKey struct {
	Seq      uint64    `cbor:"1,keyasint" json:"seq"`      // the bundle envelope's sequence number
	Envelope policy.ID `cbor:"2,keyasint" json:"envelope"` // the bundle envelope
	Epoch    uint64    `cbor:"3,keyasint" json:"epoch"`
	KeyID    []byte    `cbor:"4,keyasint" json:"key_id"` // 8 bytes
	Sealed   []byte    `cbor:"5,keyasint" json:"sealed"` // HPKE enc || ciphertext of the epoch key
}

// SealedKeys is a page of the keys endpoint.
type SealedKeys struct {
	Keys []SealedKey `cbor:"1,keyasint" json:"keys"`
	Next uint64      `cbor:"2,keyasint" json:"next"`
	More bool        `cbor:"3,keyasint" json:"more"`
}

// Envelopes is a page of a channel.
type Envelopes struct {
	Envelopes []Envelope `cbor:"1,keyasint" json:"envelopes"`
	Next      uint64     `cbor:"2,keyasint" json:"next"`
	More      bool       `cbor:"3,keyasint" json:"more"`
	// Incarnation is Info.Incarnation: the sequence numbers of this page
	// and its Next belong to it.
	Incarnation string `cbor:"4,keyasint,omitempty" json:"incarnation,omitempty"`
}

// Key orders envelopes for reconciliation: by time (Unix ms), then ID. The
// zero Key is the lowest; a Key with Time math.MaxInt64 and the all-ones ID
// the highest.
type Key struct {
	Time int64     `cbor:"1,keyasint" json:"time"`
	ID   policy.ID `cbor:"2,keyasint" json:"id"`
}

// Range is one range [From, To) of a reconciliation round. A request range
// carries its sender's Fingerprint (Count, Sum); a reply range carries
// either the replier's fingerprint (the range was split and the sender
// should compare again), or, when the range is small or the fingerprints
// differ and the range is small enough, the replier's IDs in it (Keys,
// with Listed true). A reply range that matched is omitted.
type Range struct {
	From   Key    `cbor:"1,keyasint" json:"from"`
	To     Key    `cbor:"2,keyasint" json:"to"`
	Count  uint64 `cbor:"3,keyasint" json:"count"`
	Sum    []byte `cbor:"4,keyasint" json:"sum"` // 32 bytes: the sum of the IDs as in storage.Fingerprint
	Listed bool   `cbor:"5,keyasint,omitempty" json:"listed,omitempty"`
	Keys   []Key  `cbor:"6,keyasint,omitempty" json:"keys,omitempty"`
}

// Reconcile is one round: POST .../reconcile with the sender's ranges,
// answered with the replier's ranges that differ.
type Reconcile struct {
	Ranges []Range `cbor:"1,keyasint" json:"ranges"`
}

// BlobTicket answers a request for a presigned blob URL: the client moves
// the bytes directly to or from the store, sending Header with a PUT.
type BlobTicket struct {
	URL     string              `cbor:"1,keyasint" json:"url"`
	Header  map[string][]string `cbor:"2,keyasint,omitempty" json:"header,omitempty"`
	Expires int64               `cbor:"3,keyasint" json:"expires"`
}

// Topic is a channel to follow over the WebSocket. In a sub frame, After is
// the last sequence number the client has: the hub replays what is stored
// after it, and with 0 replays nothing (live messages only; read history by
// cursor first). In a cut frame it is the last one sent, to resume from.
type Topic struct {
	Server  policy.ID `cbor:"1,keyasint" json:"server"`
	Channel policy.ID `cbor:"2,keyasint" json:"channel"`
	After   uint64    `cbor:"3,keyasint,omitempty" json:"after,omitempty"`
}

// WebSocket operations. A WebSocket message is an array of frames (binary
// messages in CBOR, text messages in JSON); the hub coalesces the frames it
// has ready into one message.
const (
	OpPost  = "post"  // client: Objects are envelopes; answered by OpAck
	OpTomb  = "tomb"  // client: Objects are tombstones; answered by OpAck
	OpSub   = "sub"   // client: follow Topics; answered by OpAck, then OpMsg frames
	OpUnsub = "unsub" // client: stop following Topics; answered by OpAck
	OpAck   = "ack"   // hub: the request ID finished; Results for posts
	OpMsg   = "msg"   // hub: a stored envelope of a followed channel
	OpErr   = "err"   // hub: request ID failed as a whole (Error)
	OpCut   = "cut"   // hub: the subscription ended (Error says why); Topics carry resume cursors
)

// Frame is one operation on the WebSocket.
type Frame struct {
	Op      string    `cbor:"1,keyasint" json:"op"`
	ID      uint64    `cbor:"2,keyasint,omitempty" json:"id,omitempty"`
	Objects [][]byte  `cbor:"3,keyasint,omitempty" json:"objects,omitempty"`
	Results []Result  `cbor:"4,keyasint,omitempty" json:"results,omitempty"`
	Topics  []Topic   `cbor:"5,keyasint,omitempty" json:"topics,omitempty"`
	Server  policy.ID `cbor:"6,keyasint,omitzero" json:"server,omitzero"`
	Channel policy.ID `cbor:"7,keyasint,omitzero" json:"channel,omitzero"`
	Seq     uint64    `cbor:"8,keyasint,omitempty" json:"seq,omitempty"`
	Raw     []byte    `cbor:"9,keyasint,omitempty" json:"raw,omitempty"`
	Error   *Error    `cbor:"10,keyasint,omitempty" json:"error,omitempty"`
}

// Quota bounds what a tenant may store; zero in a field means no limit.
type Quota struct {
	Bytes     uint64 `cbor:"1,keyasint" json:"bytes"`
	Envelopes uint64 `cbor:"2,keyasint" json:"envelopes"`
	Blobs     uint64 `cbor:"3,keyasint" json:"blobs"`
}

// QuotaUpdate is the body of PATCH /v1/admin/tenants/{server}: it changes
// only the limits it names. An absent field keeps its value; a present one
// sets it, 0 meaning no limit.
type QuotaUpdate struct {
	Bytes     *uint64 `cbor:"1,keyasint,omitempty" json:"bytes,omitempty"`
	Envelopes *uint64 `cbor:"2,keyasint,omitempty" json:"envelopes,omitempty"`
	Blobs     *uint64 `cbor:"3,keyasint,omitempty" json:"blobs,omitempty"`
	// Label, when present, replaces the customer label ("" clears it).
	Label *string `cbor:"4,keyasint,omitempty" json:"label,omitempty"`
}

// Usage is what a tenant stores now.
type Usage struct {
	Bytes     uint64 `cbor:"1,keyasint" json:"bytes"`
	Envelopes uint64 `cbor:"2,keyasint" json:"envelopes"`
	Blobs     uint64 `cbor:"3,keyasint" json:"blobs"`
}

// Tenant is a hosted server as the admin API shows it.
type Tenant struct {
	Server    policy.ID `cbor:"1,keyasint" json:"server"`
	Quota     Quota     `cbor:"2,keyasint" json:"quota"`
	Usage     Usage     `cbor:"3,keyasint" json:"usage"`
	Suspended bool      `cbor:"4,keyasint" json:"suspended"`
	Created   int64     `cbor:"5,keyasint" json:"created"`
	// Label is the operator's customer label ("" when none).
	Label string `cbor:"6,keyasint,omitempty" json:"label"`
}

// Tenants lists tenants; At is when usage was read (Unix ms).
type Tenants struct {
	Tenants []Tenant `cbor:"1,keyasint" json:"tenants"`
	At      int64    `cbor:"2,keyasint" json:"at"`
}

// TenantRequest creates a tenant or replaces its quota: POST /v1/admin/tenants.
type TenantRequest struct {
	Server policy.ID `cbor:"1,keyasint" json:"server"`
	Quota  Quota     `cbor:"2,keyasint" json:"quota"`
	// Label, when present, sets the customer label; absent, an existing
	// tenant keeps its label.
	Label *string `cbor:"3,keyasint,omitempty" json:"label,omitempty"`
}

// Sample is one row of the usage ledger, GET /v1/admin/usage/ledger (in
// JSON Lines, one object a line, or CSV with these names as the header):
// a tenant's usage at At and the bytes served to its readers in the
// sampling interval that ends at At.
type Sample struct {
	At          string    `json:"at"` // RFC 3339, UTC, whole seconds
	Server      policy.ID `json:"server"`
	Label       string    `json:"label"`
	Bytes       uint64    `json:"bytes"`
	Envelopes   uint64    `json:"envelopes"`
	Blobs       uint64    `json:"blobs"`
	EgressBytes uint64    `json:"egress_bytes"`
}

// SampleFields are the ledger's CSV header, in Sample's field order.
var SampleFields = []string{"at", "server", "label", "bytes", "envelopes", "blobs", "egress_bytes"}

// TenantDeleted answers DELETE /v1/admin/tenants/{server}: Deleted is
// false when the tenant had been deleted before (the call is idempotent).
type TenantDeleted struct {
	Server  policy.ID `cbor:"1,keyasint" json:"server"`
	Deleted bool      `cbor:"2,keyasint" json:"deleted"`
}

// FromRanges converts reconciliation ranges to their wire form.
func FromRanges(in []reconcile.Range) []Range {
	out := make([]Range, len(in))
	for i, q := range in {
		out[i] = Range{From: Key(q.From), To: Key(q.To), Count: q.FP.Count, Sum: append([]byte(nil), q.FP.Sum[:]...), Listed: q.Listed}
		for _, k := range q.Keys {
			out[i].Keys = append(out[i].Keys, Key(k))
		}
	}
	return out
}

// ToRanges converts wire ranges back, refusing malformed fingerprints.
func ToRanges(in []Range) ([]reconcile.Range, error) {
	out := make([]reconcile.Range, len(in))
	for i, q := range in {
		if len(q.Sum) != 32 && !(len(q.Sum) == 0 && q.Count == 0) {
			return nil, fmt.Errorf("%w: fingerprint sum of %d bytes", ErrMalformed, len(q.Sum))
		}
		out[i] = reconcile.Range{From: reconcile.Key(q.From), To: reconcile.Key(q.To), FP: reconcile.Fingerprint{Count: q.Count}, Listed: q.Listed}
		copy(out[i].FP.Sum[:], q.Sum)
		for _, k := range q.Keys {
			out[i].Keys = append(out[i].Keys, reconcile.Key(k))
		}
	}
	return out, nil
}
