package sqlite

import (
	"context"
	"fmt"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

var _ storage.Billing = (*Store)(nil)

// ProvisionTenant admits or re-admits a server, or replaces its quota, and
// sets its label unless label is nil.
func (s *Store) ProvisionTenant(ctx context.Context, server policy.ID, q storage.Quota, label *string) error {
	if err := q.Validate(); err != nil {
		return fmt.Errorf("sqlite: provision tenant: %w", err)
	}
	lbl := ""
	if label != nil {
		if err := storage.CheckLabel(*label); err != nil {
			return fmt.Errorf("sqlite: provision tenant: %w", err)
		}
		lbl = *label
	}
	return s.write(ctx, func(b *batch) error {
		if err := b.forget(ctx, server); err != nil {
			return err
		}
		if _, err := b.exec(ctx, `DELETE FROM deleted_tenants WHERE server = ?`, server[:]); err != nil {
			return err
		}
		_, err := b.exec(ctx, `INSERT INTO tenants (server, quota_bytes, quota_envelopes, quota_blobs, created, label)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (server) DO UPDATE SET quota_bytes = excluded.quota_bytes,
				quota_envelopes = excluded.quota_envelopes, quota_blobs = excluded.quota_blobs,
				label = CASE WHEN ? THEN excluded.label ELSE tenants.label END`,
			server[:], int64(q.Bytes), int64(q.Envelopes), int64(q.Blobs), s.now(), lbl, label != nil)
		return err
	})
}

// RecordSamples samples every tenant at at and adds egress. Usage is read
// as committed: a group commit running beside it shows in the next sample.
func (s *Store) RecordSamples(ctx context.Context, at int64, egress map[policy.ID]uint64) (int, error) {
	var n int64
	err := s.write(ctx, func(b *batch) error {
		res, err := b.exec(ctx, `INSERT INTO usage_samples (at, server, label, bytes, envelopes, blobs, egress_bytes)
			SELECT ?, server, label, used_bytes, used_envelopes, used_blobs, 0 FROM tenants WHERE true
			ON CONFLICT (at, server) DO UPDATE SET label = excluded.label, bytes = excluded.bytes,
				envelopes = excluded.envelopes, blobs = excluded.blobs`, at)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		for server, bytes := range egress {
			if bytes > 1<<63-1 {
				bytes = 1<<63 - 1
			}
			if _, err := b.exec(ctx, `INSERT INTO usage_samples (at, server, label, bytes, envelopes, blobs, egress_bytes)
				VALUES (?, ?, '', 0, 0, 0, ?)
				ON CONFLICT (at, server) DO UPDATE SET egress_bytes = usage_samples.egress_bytes + excluded.egress_bytes`,
				at, server[:], int64(bytes)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: record samples: %w", err)
	}
	return int(n), nil
}

// Samples returns a page of the ledger in (At, Server) order.
func (s *Store) Samples(ctx context.Context, from, to int64, after storage.SampleCursor, limit int) ([]storage.Sample, error) {
	if err := storage.CheckPage(limit); err != nil {
		return nil, fmt.Errorf("sqlite: samples: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT at, server, label, bytes, envelopes, blobs, egress_bytes FROM usage_samples
		WHERE at >= ? AND at < ? AND (at > ? OR (at = ? AND server > ?))
		ORDER BY at, server LIMIT ?`, from, to, after.At, after.At, after.Server[:], limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: samples: %w", unavailable(err))
	}
	defer rows.Close()
	var out []storage.Sample
	for rows.Next() {
		var sm storage.Sample
		var server []byte
		var ub, ue, ubl, eg int64
		if err := rows.Scan(&sm.At, &server, &sm.Label, &ub, &ue, &ubl, &eg); err != nil {
			return nil, fmt.Errorf("sqlite: samples: %w", err)
		}
		copy(sm.Server[:], server)
		sm.Usage = storage.Usage{Bytes: uint64(ub), Envelopes: uint64(ue), Blobs: uint64(ubl)}
		sm.Egress = uint64(eg)
		out = append(out, sm)
	}
	return out, rows.Err()
}

// tenantData lists, in deletion order, every table holding a tenant's
// data by a server column.
var tenantData = []string{"key_entries", "envelope_blobs", "envelopes", "events", "channels", "blob_refs", "tenants"}

// DeleteTenant removes a tenant and its data in one transaction, queueing
// the blobs only it referenced, and returns the freed pages to the file
// system.
func (s *Store) DeleteTenant(ctx context.Context, server policy.ID) (bool, error) {
	var deleted bool
	err := s.write(ctx, func(b *batch) error {
		var hosted, gone bool
		if err := b.tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM tenants WHERE server = ?),
			EXISTS (SELECT 1 FROM deleted_tenants WHERE server = ?)`, server[:], server[:]).Scan(&hosted, &gone); err != nil {
			return err
		}
		switch {
		case !hosted && gone:
			return nil
		case !hosted:
			return fmt.Errorf("tenant %s: %w", server, storage.ErrNotFound)
		}
		b.usage.Forget(server) // the row goes: nothing to write back
		for k := range b.channels {
			if k.server == server {
				delete(b.channels, k)
			}
		}
		if _, err := b.exec(ctx, `INSERT INTO blob_deletes (id)
			SELECT r.id FROM blob_refs r WHERE r.server = ?
				AND NOT EXISTS (SELECT 1 FROM blob_refs o WHERE o.id = r.id AND o.server <> r.server)
			ON CONFLICT DO NOTHING`, server[:]); err != nil {
			return err
		}
		for _, table := range tenantData {
			if _, err := b.exec(ctx, `DELETE FROM `+table+` WHERE server = ?`, server[:]); err != nil {
				return err
			}
		}
		if _, err := b.exec(ctx, `INSERT INTO deleted_tenants (server, deleted) VALUES (?, ?)`, server[:], s.now()); err != nil {
			return err
		}
		rows, err := b.query(ctx, `PRAGMA incremental_vacuum`)
		if err != nil {
			return err
		}
		for rows.Next() {
		}
		rows.Close()
		deleted = true
		return rows.Err()
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: delete tenant: %w", err)
	}
	return deleted, nil
}

// PendingBlobDeletes returns queued blobs no server references.
func (s *Store) PendingBlobDeletes(ctx context.Context, limit int) ([]policy.ID, error) {
	if err := storage.CheckPage(limit); err != nil {
		return nil, fmt.Errorf("sqlite: pending blob deletes: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT d.id FROM blob_deletes d
		WHERE NOT EXISTS (SELECT 1 FROM blob_refs r WHERE r.id = d.id) ORDER BY d.id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: pending blob deletes: %w", unavailable(err))
	}
	defer rows.Close()
	var out []policy.ID
	for rows.Next() {
		var id []byte
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("sqlite: pending blob deletes: %w", err)
		}
		out = append(out, policy.ID(id))
	}
	return out, rows.Err()
}

// BlobDeleted takes a blob off the deletion queue.
func (s *Store) BlobDeleted(ctx context.Context, id policy.ID) error {
	err := s.write(ctx, func(b *batch) error {
		_, err := b.exec(ctx, `DELETE FROM blob_deletes WHERE id = ?`, id[:])
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: blob deleted: %w", err)
	}
	return nil
}
