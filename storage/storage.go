package storage

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/guildhall/guildhall/policy"
)

// Event is a state event as stored: its ID, its signed bytes and the
// store's per-server insertion sequence (1, 2, ...), a resume cursor.
type Event struct {
	ID  policy.ID
	Raw []byte
	Seq uint64
}

// Envelope is an envelope as stored. The header fields are copied from the
// verified policy.Envelope; Seq and StoredAt are assigned by the store.
type Envelope struct {
	ID       policy.ID
	Server   policy.ID
	Channel  policy.ID
	Sender   policy.PublicKey
	Time     int64  // sender's time, Unix ms; with ID, the reconciliation key
	Raw      []byte // signed bytes; nil once tombstoned
	Size     int    // len(Raw) when stored; kept after a tombstone
	Seq      uint64 // per-channel sequence: 1, 2, ... in commit order
	StoredAt int64  // Unix ms
	// Tombstone holds the signed tombstone once the envelope was deleted.
	Tombstone []byte
}

// Stored is the outcome of storing one envelope.
type Stored struct {
	Seq       uint64
	StoredAt  int64
	Duplicate bool // the ID was already stored; Seq and StoredAt are the original ones
	// Early marks a duplicate whose stored row holds only an early
	// tombstone (PutEarlyTombstone): the envelope itself was not stored.
	Early bool
}

// Key orders envelopes for set reconciliation: by Time, then ID.
type Key struct {
	Time int64
	ID   policy.ID
}

// Less orders keys.
func (k Key) Less(o Key) bool {
	if k.Time != o.Time {
		return k.Time < o.Time
	}
	return k.ID.Compare(o.ID) < 0
}

// Fingerprint summarises the envelopes in a key range: how many there are
// and the sum of their IDs as 256-bit little-endian integers modulo 2^256.
// Two ranges holding the same IDs have the same fingerprint, whatever the
// store; differing fingerprints mean differing sets.
type Fingerprint struct {
	Count uint64
	Sum   [32]byte
}

// Add adds one ID to the fingerprint.
func (f *Fingerprint) Add(id policy.ID) {
	f.Count++
	var carry uint16
	for i := range 32 {
		s := uint16(f.Sum[i]) + uint16(id[i]) + carry
		f.Sum[i] = byte(s)
		carry = s >> 8
	}
}

// Retention bounds a channel: envelopes whose own time is before OlderThan
// (Unix ms, 0: no age limit) are deleted, then the oldest by sequence until
// at most MaxBytes (0: no size limit) of ciphertext remain.
type Retention struct {
	OlderThan int64
	MaxBytes  uint64
}

// Swept reports what a retention sweep freed.
type Swept struct {
	Envelopes uint64
	Bytes     uint64
}

// Quota bounds what a tenant may store. Zero in a field means no limit.
type Quota struct {
	Bytes     uint64
	Envelopes uint64
	Blobs     uint64
}

// MaxPage bounds the records one read returns (ReadChannel, Events, RangeKeys).
const MaxPage = 10_000

// CheckPage rejects a page size outside 1..MaxPage: a read is always bounded.
func CheckPage(limit int) error {
	if limit < 1 || limit > MaxPage {
		return fmt.Errorf("%w: page of %d records, want 1..%d", ErrInvalid, limit, MaxPage)
	}
	return nil
}

// Validate rejects limits a backend cannot store (above 2^63-1).
func (q Quota) Validate() error {
	for _, v := range []uint64{q.Bytes, q.Envelopes, q.Blobs} {
		if v > 1<<63-1 {
			return fmt.Errorf("%w: quota above 2^63-1", ErrInvalid)
		}
	}
	return nil
}

// Usage is what a tenant stores now: bytes of envelopes, state events and
// blobs; envelopes (tombstoned ones excluded); blobs.
type Usage struct {
	Bytes     uint64
	Envelopes uint64
	Blobs     uint64
}

// Tenant is a server this hub hosts, with its quota and live usage.
type Tenant struct {
	Server    policy.ID
	Quota     Quota
	Usage     Usage
	Suspended bool
	Created   int64  // Unix ms
	Label     string // the operator's customer label (Billing); "" if none
}

// Tenants admits servers and meters them. Writes for a server that is not
// a tenant fail with ErrNotHosted, for a suspended one with ErrSuspended.
type Tenants interface {
	// PutTenant admits server with quota, or replaces the quota of an
	// existing tenant (usage is kept; a quota below usage blocks new writes).
	PutTenant(ctx context.Context, server policy.ID, q Quota) error
	// Tenant returns one tenant, or ErrNotFound.
	Tenant(ctx context.Context, server policy.ID) (Tenant, error)
	// Tenants returns every tenant, ordered by server ID.
	Tenants(ctx context.Context) ([]Tenant, error)
	// SetSuspended suspends or resumes a tenant's writes (reads continue).
	SetSuspended(ctx context.Context, server policy.ID, suspended bool) error
}

// EventLog stores servers' state logs.
type EventLog interface {
	// AppendEvents stores events of one server in one transaction, skipping
	// IDs already stored, and returns how many were new. Counts toward the
	// tenant's byte quota.
	AppendEvents(ctx context.Context, server policy.ID, events []Event) (int, error)
	// Events returns the server's events with Seq > after, in Seq order, at
	// most limit.
	Events(ctx context.Context, server policy.ID, after uint64, limit int) ([]Event, error)
}

// EnvelopeStore stores envelopes and serves them by cursor, by ID and by
// reconciliation range.
type EnvelopeStore interface {
	// PutEnvelopes stores a batch atomically: either every envelope is
	// stored (or found already stored) or none is. Results are in input
	// order. A batch over quota fails with *QuotaError.
	PutEnvelopes(ctx context.Context, envs []Envelope) ([]Stored, error)
	// ReadChannel returns a channel's envelopes with Seq > after, in Seq
	// order, at most limit. Tombstoned envelopes are included without Raw.
	ReadChannel(ctx context.Context, server, channel policy.ID, after uint64, limit int) ([]Envelope, error)
	// GetEnvelope returns one envelope by ID, or ErrNotFound.
	GetEnvelope(ctx context.Context, id policy.ID) (Envelope, error)
	// RangeKeys returns the keys of a channel's envelopes in [from, to), in
	// key order, at most limit.
	RangeKeys(ctx context.Context, server, channel policy.ID, from, to Key, limit int) ([]Key, error)
	// RangeFingerprint returns the fingerprint of a channel's envelopes in [from, to).
	RangeFingerprint(ctx context.Context, server, channel policy.ID, from, to Key) (Fingerprint, error)
	// ApplyTombstone deletes the ciphertext of an envelope and keeps the
	// signed tombstone in its place; the freed bytes leave the tenant's usage.
	// Applying a tombstone twice is a no-op; an unknown target is ErrNotFound.
	ApplyTombstone(ctx context.Context, target policy.ID, tombstone []byte) error
	// Sweep applies a channel's retention and reports what it freed.
	Sweep(ctx context.Context, server, channel policy.ID, r Retention) (Swept, error)

	// PutEarlyTombstone keeps a tombstone that arrived before its envelope
	// in the envelope's place: a row of e.ID with e's Server, Channel and
	// Time (the tombstone's target time), no Raw, no Sender, Size 0, the
	// next sequence number of the channel, and e.Tombstone. It is charged
	// the tombstone's bytes and no envelope. It reports whether it stored
	// the row: false when the ID is stored already (then nothing changes).
	PutEarlyTombstone(ctx context.Context, e Envelope) (bool, error)
	// DropEarlyTombstone removes a row PutEarlyTombstone stored, refunding
	// its charge, so that the envelope can be stored in its place (its
	// tombstone was not authorised for it). Any other row is left alone.
	DropEarlyTombstone(ctx context.Context, id policy.ID) error
	// TombstoneRangeKeys and TombstoneRangeFingerprint are RangeKeys and
	// RangeFingerprint over a channel's tombstoned rows only: the set of
	// deletions, which hubs reconcile beside the set of envelopes.
	TombstoneRangeKeys(ctx context.Context, server, channel policy.ID, from, to Key, limit int) ([]Key, error)
	TombstoneRangeFingerprint(ctx context.Context, server, channel policy.ID, from, to Key) (Fingerprint, error)
}

// Meta is the whole metadata contract a hub needs from one backend
// (PostgreSQL or SQLite): tenants, state logs, envelopes and blob
// references, all in the same database so that one group commit spans them.
type Meta interface {
	Tenants
	EventLog
	EnvelopeStore
	BlobRefs
	KeyIndex
	Operator
	Billing
	// Incarnation identifies this copy of the data: it stays the same
	// across restarts and changes when the store is restored from a backup
	// (so that sequence numbers a client saw before may be handed out
	// again). Cursors are only comparable within one incarnation.
	Incarnation(ctx context.Context) (string, error)
}

// KeyEntry says where one device's sealed channel key lies in a stored
// key-bundle envelope: Off and Len within the envelope's signed bytes.
type KeyEntry struct {
	Server, Channel policy.ID
	Device          policy.PublicKey
	Seq             uint64 // the envelope's sequence number in its channel
	Envelope        policy.ID
	Epoch           uint64
	KeyID           [8]byte
	Off, Len        int
}

// SealedKey is a device's entry of a key bundle, as served to it.
type SealedKey struct {
	Seq      uint64
	Envelope policy.ID
	Epoch    uint64
	KeyID    [8]byte
	Sealed   []byte
}

// Takedown is an operator's removal of content from its hub: an
// envelope's ciphertext, a blob, or a whole server (a block), with the
// signed record (policy.Takedown) kept in its place.
type Takedown struct {
	Server policy.ID
	Kind   string    // policy.TakedownEnvelope, TakedownBlob or TakedownServer
	Target policy.ID // the envelope or blob; the server for a block
	Record []byte    // the signed policy.Takedown
	At     time.Time
}

// AuditEntry is one act on the operator's API, as the audit log keeps it.
type AuditEntry struct {
	Seq    uint64    // assigned by AppendAudit, ascending
	At     time.Time // when the act was answered
	Actor  string    // who: the admin credential's name
	Source string    // the request's source address
	Action string    // method and route, e.g. "POST /v1/admin/takedowns"
	Server policy.ID // the tenant acted on, if any
	Target string    // what else it named (an envelope, a blob), if anything
	Result string    // "ok", or the error code answered
}

// Report is a member's abuse report of one message: the envelope and the
// message's own key (payload), checked by the hub when it was filed.
type Report struct {
	Seq      uint64 // assigned by PutReport, ascending
	Server   policy.ID
	Channel  policy.ID
	Envelope policy.ID
	Author   policy.PublicKey // the reported message's sender
	Reporter policy.PublicKey // the member who filed it
	Reason   string
	Evidence []byte // the envelope's signed bytes
	Key      []byte // the message key that opens it
	At       time.Time
}

// Operator holds what the hub's operator does beyond tenancy: takedowns,
// members' abuse reports and the audit log of its acts.
type Operator interface {
	// PutTakedown records t. For an envelope it also deletes the
	// envelope's ciphertext and releases its bytes from the tenant's usage,
	// keeping the envelope's row so that it is never stored again; the
	// hub deletes a blob's bytes itself (BlobStore) after this returns.
	// Recording a target again replaces its record.
	PutTakedown(ctx context.Context, t Takedown) error
	// DropTakedown removes the takedown of target (lifting a block; an
	// envelope's ciphertext does not come back); ErrNotFound if none.
	DropTakedown(ctx context.Context, target policy.ID) error
	// TakenDown returns the takedowns among targets, by target.
	TakenDown(ctx context.Context, targets []policy.ID) (map[policy.ID]Takedown, error)
	// Takedowns lists the takedowns of server (every server's when zero)
	// by their time (then target), at most limit.
	Takedowns(ctx context.Context, server policy.ID, limit int) ([]Takedown, error)
	// PutReport keeps an abuse report, durably, and returns its Seq.
	PutReport(ctx context.Context, r Report) (uint64, error)
	// Reports returns the reports of server (every server's when zero)
	// with Seq > after, ascending, at most limit.
	Reports(ctx context.Context, server policy.ID, after uint64, limit int) ([]Report, error)
	// AppendAudit adds e to the audit log, durably, and returns its Seq.
	AppendAudit(ctx context.Context, e AuditEntry) (uint64, error)
	// Audit returns the audit log's entries with Seq > after, ascending,
	// at most limit.
	Audit(ctx context.Context, after uint64, limit int) ([]AuditEntry, error)
}

// KeyIndex indexes key bundles by recipient device.
type KeyIndex interface {
	// PutKeyEntries records entries of stored envelopes; recording one
	// twice is a no-op.
	PutKeyEntries(ctx context.Context, entries []KeyEntry) error
	// ReadKeyEntries returns a device's entries in a channel with Seq >
	// after, in Seq order, at most limit, only of envelopes whose
	// ciphertext is still stored (not deleted or swept).
	ReadKeyEntries(ctx context.Context, server, channel policy.ID, device policy.PublicKey, after uint64, limit int) ([]SealedKey, error)
}

// BlobStore stores client-encrypted blobs by content ID. It knows nothing of
// tenants: the hub records which server references a blob (BlobRefs).
type BlobStore interface {
	// PutBlob stores size bytes from r under id, verifying while streaming
	// that they hash to id; on a mismatch it returns ErrBlobMismatch and
	// stores nothing. Storing an existing blob is a no-op.
	PutBlob(ctx context.Context, id policy.ID, r io.Reader, size int64) error
	// GetBlob streams a blob. The caller closes it.
	GetBlob(ctx context.Context, id policy.ID) (io.ReadCloser, int64, error)
	// StatBlob returns a blob's size, or ErrNotFound.
	StatBlob(ctx context.Context, id policy.ID) (int64, error)
	// DeleteBlob removes a blob; deleting a missing blob is a no-op.
	DeleteBlob(ctx context.Context, id policy.ID) error
}

// BlobRefs records which servers reference which blobs, for quotas and
// garbage collection.
type BlobRefs interface {
	// AddBlobRef records that server references a blob of size bytes,
	// counting it toward the server's quota; an existing reference is a no-op.
	AddBlobRef(ctx context.Context, server, id policy.ID, size int64) error
	// RemoveBlobRef drops a reference and reports whether any server still
	// references the blob (when none does, the blob may be deleted).
	RemoveBlobRef(ctx context.Context, server, id policy.ID) (stillReferenced bool, err error)
	// HasBlobRef reports whether server references a blob: a blob is
	// served only under a server that references it.
	HasBlobRef(ctx context.Context, server, id policy.ID) (bool, error)
	// AddEnvelopeBlobs records that a stored envelope names blobs (its
	// attachments); recording it twice is a no-op.
	AddEnvelopeBlobs(ctx context.Context, server, envelope policy.ID, blobs []policy.ID) error
	// DropEnvelopeBlobs forgets what a deleted envelope named and returns
	// the blobs no other envelope of the server names any more.
	DropEnvelopeBlobs(ctx context.Context, server, envelope policy.ID) (orphans []policy.ID, err error)
	// DropSweptBlobs forgets what the server's envelopes that are no
	// longer stored (swept by retention, purged) named, and returns the
	// blobs no envelope of the server names any more.
	DropSweptBlobs(ctx context.Context, server policy.ID) (orphans []policy.ID, err error)
}

// Presigner issues time-limited URLs with which clients move blob bytes
// directly to and from the store. The store still verifies what is uploaded:
// a presigned upload carries the blob's checksum, and the store refuses
// bytes that do not match it.
type Presigner interface {
	// PresignPut returns a URL and the headers the client must send with
	// its PUT of the blob's bytes; the length is signed, so the store
	// refuses a body of any other size.
	PresignPut(ctx context.Context, id policy.ID, size int64, ttl time.Duration) (*url.URL, http.Header, error)
	// PresignGet returns a URL from which the blob can be fetched.
	PresignGet(ctx context.Context, id policy.ID, ttl time.Duration) (*url.URL, error)
}
