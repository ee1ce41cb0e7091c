// Package ledger is the usage accounting the metadata backends share inside
// one group commit: the tenant rows a group has read (and, where the
// database supports it, locked), the changes each write function of the
// group proposes, checked against quotas and suspension before anything is
// written, and the rows to write back once before COMMIT. It never touches a
// database itself.
package ledger

import (
	"fmt"
	"iter"
	"maps"
	"slices"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// Delta is a change of a tenant's usage.
type Delta struct{ Bytes, Envelopes, Blobs int64 }

func (d Delta) add(o Delta) Delta {
	return Delta{d.Bytes + o.Bytes, d.Envelopes + o.Envelopes, d.Blobs + o.Blobs}
}

// Row is a tenant's quota, usage and suspension as read in this group.
type Row struct {
	Quota     Delta // zero fields: no limit
	Used      Delta
	Suspended bool
	dirty     bool
}

// Ledger holds the rows of one group and the running function's changes.
// It is not safe for concurrent use: a group runs its functions one by one.
type Ledger struct {
	rows    map[policy.ID]*Row
	pending map[policy.ID]Delta
}

// New returns an empty ledger.
func New() *Ledger {
	return &Ledger{rows: map[policy.ID]*Row{}, pending: map[policy.ID]Delta{}}
}

// Has reports whether the server's row is loaded.
func (l *Ledger) Has(server policy.ID) bool { _, ok := l.rows[server]; return ok }

// Load records a row read from the database.
func (l *Ledger) Load(server policy.ID, r Row) { l.rows[server] = &r }

// Charge checks d against the server's row, counting the running function's
// earlier changes, and records it as pending. Growth is refused for a server
// whose row is not loaded (not hosted), that is suspended, or that would
// exceed a quota; shrinking always passes.
func (l *Ledger) Charge(server policy.ID, d Delta) error {
	row, ok := l.rows[server]
	if !ok {
		return fmt.Errorf("server %s: %w", server, storage.ErrNotHosted)
	}
	p := l.pending[server]
	add := [3]int64{d.Bytes, d.Envelopes, d.Blobs}
	if (add[0] > 0 || add[1] > 0 || add[2] > 0) && row.Suspended {
		return fmt.Errorf("server %s: %w", server, storage.ErrSuspended)
	}
	used := row.Used.add(p)
	for i, c := range []struct {
		r           storage.Resource
		quota, used int64
	}{{storage.ResourceBytes, row.Quota.Bytes, used.Bytes}, {storage.ResourceEnvelopes, row.Quota.Envelopes, used.Envelopes}, {storage.ResourceBlobs, row.Quota.Blobs, used.Blobs}} {
		if add[i] > 0 && c.quota > 0 && c.used+add[i] > c.quota {
			return &storage.QuotaError{Resource: c.r, Limit: uint64(c.quota), Used: uint64(c.used), Want: uint64(add[i])}
		}
	}
	l.pending[server] = p.add(d)
	return nil
}

// Refund takes back part of the running function's pending change (an
// envelope found already stored after it was charged).
func (l *Ledger) Refund(server policy.ID, d Delta) {
	l.pending[server] = l.pending[server].add(Delta{-d.Bytes, -d.Envelopes, -d.Blobs})
}

// Settle folds the running function's changes into the rows: it succeeded.
func (l *Ledger) Settle() {
	for server, d := range l.pending {
		row := l.rows[server]
		row.Used = row.Used.add(d)
		row.dirty = true
	}
	clear(l.pending)
}

// Discard drops the running function's changes: it failed.
func (l *Ledger) Discard() { clear(l.pending) }

// Dirty yields the rows whose usage changed, in server order.
func (l *Ledger) Dirty() iter.Seq2[policy.ID, Delta] {
	return func(yield func(policy.ID, Delta) bool) {
		for _, server := range slices.SortedFunc(maps.Keys(l.rows), policy.ID.Compare) {
			if row := l.rows[server]; row.dirty && !yield(server, row.Used) {
				return
			}
		}
	}
}

// Forget drops a row (before a statement changes it directly) and returns
// its usage if that must be written back first.
func (l *Ledger) Forget(server policy.ID) (used Delta, dirty bool) {
	row, ok := l.rows[server]
	if !ok {
		return Delta{}, false
	}
	delete(l.rows, server)
	return row.Used, row.dirty
}

// Charge is what one server is charged for a set of envelopes.
type Charge struct {
	Server policy.ID
	Delta  Delta
}

// EnvelopeCharges adds up, per server, the bytes and count of the envelopes
// for which include(i) is true, in server order (the order charges and row
// locks are taken in, so that concurrent writers do not deadlock).
func EnvelopeCharges(envs []storage.Envelope, include func(i int) bool) []Charge {
	sums := map[policy.ID]Delta{}
	for i, e := range envs {
		if include(i) {
			d := sums[e.Server]
			sums[e.Server] = Delta{d.Bytes + int64(len(e.Raw)), d.Envelopes + 1, d.Blobs}
		}
	}
	out := make([]Charge, 0, len(sums))
	for _, server := range slices.SortedFunc(maps.Keys(sums), policy.ID.Compare) {
		out = append(out, Charge{server, sums[server]})
	}
	return out
}
