package storage

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/guildhall/guildhall/policy"
)

// MaxLabel bounds a tenant's customer label, in bytes of UTF-8.
const MaxLabel = 256

// CheckLabel rejects a label a backend will not store: over MaxLabel bytes,
// not UTF-8, or holding control characters (it goes into CSV rows).
func CheckLabel(label string) error {
	if len(label) > MaxLabel || !utf8.ValidString(label) {
		return fmt.Errorf("%w: label must be UTF-8 of at most %d bytes", ErrInvalid, MaxLabel)
	}
	for _, r := range label {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: label holds a control character", ErrInvalid)
		}
	}
	return nil
}

// Sample is one row of the usage ledger: a tenant's usage as of a sampling
// time, and the bytes the hub served to its readers in the interval that
// ends at At.
type Sample struct {
	At     int64 // Unix ms: the end of the sampling interval (a multiple of it)
	Server policy.ID
	Label  string // the tenant's customer label when sampled
	Usage  Usage
	Egress uint64 // bytes of envelopes, events, keys and blobs served
}

// SampleCursor is where a page of Samples resumes: after (At, Server).
type SampleCursor struct {
	At     int64
	Server policy.ID
}

// Billing is what a hosting provider bills from: tenants' labels, the
// usage ledger, and the deletion of a tenant with everything it stores.
type Billing interface {
	// ProvisionTenant is the operator's PutTenant: it admits server with
	// quota (re-admitting one deleted earlier) or replaces the quota of an
	// existing tenant, and sets its label unless label is nil, in one
	// transaction. PutTenant itself, which admission calls, refuses a
	// deleted server with ErrNotHosted: only the operator brings it back.
	ProvisionTenant(ctx context.Context, server policy.ID, q Quota, label *string) error
	// RecordSamples stores, in one transaction, a sample at at of every
	// tenant (its usage and label now) and of every server named in egress,
	// adding egress[server] to the sample's egress. A sample of (at,
	// server) already stored (by another process sharing the store, or an
	// earlier call) gets the new usage and label and the sum of egress.
	// It returns how many tenants it sampled.
	RecordSamples(ctx context.Context, at int64, egress map[policy.ID]uint64) (int, error)
	// Samples returns the samples with from <= At < to that come after the
	// cursor, ordered by (At, Server), at most limit (CheckPage).
	Samples(ctx context.Context, from, to int64, after SampleCursor, limit int) ([]Sample, error)
	// DeleteTenant removes, in one transaction, a tenant and everything
	// stored for it (state events, envelopes, channels, key entries, blob
	// references), records the deletion, and queues for deletion the blobs
	// no other server references (PendingBlobDeletes). Its samples stay:
	// they are the bill. It reports whether it deleted anything now: false
	// for a server deleted earlier. A server that never was a tenant is
	// ErrNotFound.
	DeleteTenant(ctx context.Context, server policy.ID) (bool, error)
	// PendingBlobDeletes returns up to limit queued blobs that no server
	// references: the caller deletes them from the BlobStore, then calls
	// BlobDeleted. The queue survives restarts.
	PendingBlobDeletes(ctx context.Context, limit int) ([]policy.ID, error)
	// BlobDeleted takes a blob off the deletion queue.
	BlobDeleted(ctx context.Context, id policy.ID) error
}
