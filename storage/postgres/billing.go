package postgres

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

var _ storage.Billing = (*Store)(nil)

// ProvisionTenant admits or re-admits a server, or replaces its quota, and
// sets its label unless label is nil.
func (s *Store) ProvisionTenant(ctx context.Context, server policy.ID, q storage.Quota, label *string) error {
	if err := q.Validate(); err != nil {
		return fmt.Errorf("postgres: provision tenant: %w", err)
	}
	lbl := ""
	if label != nil {
		if err := storage.CheckLabel(*label); err != nil {
			return fmt.Errorf("postgres: provision tenant: %w", err)
		}
		lbl = *label
	}
	return s.write(ctx, func(b *batch) error {
		if err := b.forget(ctx, server); err != nil {
			return err
		}
		if _, err := b.exec(ctx, `DELETE FROM deleted_tenants WHERE server = $1`, server[:]); err != nil {
			return err
		}
		_, err := b.exec(ctx, `INSERT INTO tenants (server, quota_bytes, quota_envelopes, quota_blobs, created, label)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (server) DO UPDATE SET quota_bytes = excluded.quota_bytes,
				quota_envelopes = excluded.quota_envelopes, quota_blobs = excluded.quota_blobs,
				label = CASE WHEN $7 THEN excluded.label ELSE tenants.label END`,
			server[:], int64(q.Bytes), int64(q.Envelopes), int64(q.Blobs), s.now(), lbl, label != nil)
		return err
	})
}

// RecordSamples samples every tenant at at and adds egress, in server
// order (hub processes sharing the database update the same rows).
func (s *Store) RecordSamples(ctx context.Context, at int64, egress map[policy.ID]uint64) (int, error) {
	var n int64
	err := s.write(ctx, func(b *batch) error {
		var err error
		n, err = b.exec(ctx, `INSERT INTO usage_samples (at, server, label, bytes, envelopes, blobs, egress_bytes)
			SELECT $1, server, label, used_bytes, used_envelopes, used_blobs, 0 FROM tenants ORDER BY server
			ON CONFLICT (at, server) DO UPDATE SET label = excluded.label, bytes = excluded.bytes,
				envelopes = excluded.envelopes, blobs = excluded.blobs`, at)
		if err != nil || len(egress) == 0 {
			return err
		}
		servers := slices.SortedFunc(maps.Keys(egress), policy.ID.Compare)
		ids, bytes := make([][]byte, len(servers)), make([]int64, len(servers))
		for i, sv := range servers {
			ids[i], bytes[i] = sv[:], int64(min(egress[sv], 1<<63-1))
		}
		_, err = b.exec(ctx, `INSERT INTO usage_samples (at, server, label, bytes, envelopes, blobs, egress_bytes)
			SELECT $1, u.server, '', 0, 0, 0, u.egress FROM unnest($2::bytea[], $3::bigint[]) AS u(server, egress)
			ON CONFLICT (at, server) DO UPDATE SET egress_bytes = usage_samples.egress_bytes + excluded.egress_bytes`,
			at, ids, bytes)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: record samples: %w", err)
	}
	return int(n), nil
}

// Samples returns a page of the ledger in (At, Server) order.
func (s *Store) Samples(ctx context.Context, from, to int64, after storage.SampleCursor, limit int) ([]storage.Sample, error) {
	if err := storage.CheckPage(limit); err != nil {
		return nil, fmt.Errorf("postgres: samples: %w", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT at, server, label, bytes, envelopes, blobs, egress_bytes FROM usage_samples
		WHERE at >= $1 AND at < $2 AND (at, server) > ($3, $4)
		ORDER BY at, server LIMIT $5`, from, to, after.At, after.Server[:], limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: samples: %w", unavailable(err))
	}
	defer rows.Close()
	var out []storage.Sample
	for rows.Next() {
		var sm storage.Sample
		var server []byte
		var ub, ue, ubl, eg int64
		if err := rows.Scan(&sm.At, &server, &sm.Label, &ub, &ue, &ubl, &eg); err != nil {
			return nil, fmt.Errorf("postgres: samples: %w", err)
		}
		sm.Server = policy.ID(server)
		sm.Usage = storage.Usage{Bytes: uint64(ub), Envelopes: uint64(ue), Blobs: uint64(ubl)}
		sm.Egress = uint64(eg)
		out = append(out, sm)
	}
	return out, rows.Err()
}

// tenantData lists, in deletion order, every table holding a tenant's
// data by a server column.
var tenantData = []string{"key_entries", "envelope_blobs", "envelopes", "events", "channels", "blob_refs", "tenants"}

// DeleteTenant removes a tenant and its data in one transaction of its own
// (not a group commit, whose envelope puts run at its end): it first locks
// the tenant row, as every write of the tenant does, so a write either
// commits before it and is deleted with the rest or finds no tenant.
func (s *Store) DeleteTenant(ctx context.Context, server policy.ID) (bool, error) {
	for attempt := 0; ; attempt++ {
		deleted, err := s.deleteTenant(ctx, server)
		if err == nil || !retryable(err) || attempt == s.cfg.Retries {
			if err != nil {
				return false, fmt.Errorf("postgres: delete tenant: %w", err)
			}
			return deleted, nil
		}
	}
}

func (s *Store) deleteTenant(ctx context.Context, server policy.ID) (bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, unavailable(err)
	}
	defer tx.Rollback(context.Background()) // no-op after Commit
	var one int
	switch err := tx.QueryRow(ctx, `SELECT 1 FROM tenants WHERE server = $1 FOR UPDATE`, server[:]).Scan(&one); {
	case isNoRows(err):
		var gone bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM deleted_tenants WHERE server = $1)`, server[:]).Scan(&gone); err != nil {
			return false, unavailable(err)
		}
		if gone {
			return false, nil
		}
		return false, fmt.Errorf("tenant %s: %w", server, storage.ErrNotFound)
	case err != nil:
		return false, unavailable(err)
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO blob_deletes (id)
		SELECT r.id FROM blob_refs r WHERE r.server = $1
			AND NOT EXISTS (SELECT 1 FROM blob_refs o WHERE o.id = r.id AND o.server <> r.server)
		ORDER BY r.id ON CONFLICT DO NOTHING`, server[:])
	for _, table := range tenantData {
		b.Queue(`DELETE FROM `+table+` WHERE server = $1`, server[:])
	}
	b.Queue(`INSERT INTO deleted_tenants (server, deleted) VALUES ($1, $2)`, server[:], s.now())
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return false, unavailable(err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, unavailable(err)
	}
	return true, nil
}

// PendingBlobDeletes returns queued blobs no server references.
func (s *Store) PendingBlobDeletes(ctx context.Context, limit int) ([]policy.ID, error) {
	if err := storage.CheckPage(limit); err != nil {
		return nil, fmt.Errorf("postgres: pending blob deletes: %w", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT d.id FROM blob_deletes d
		WHERE NOT EXISTS (SELECT 1 FROM blob_refs r WHERE r.id = d.id) ORDER BY d.id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: pending blob deletes: %w", unavailable(err))
	}
	defer rows.Close()
	var out []policy.ID
	for rows.Next() {
		var id []byte
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("postgres: pending blob deletes: %w", err)
		}
		out = append(out, policy.ID(id))
	}
	return out, rows.Err()
}

// BlobDeleted takes a blob off the deletion queue.
func (s *Store) BlobDeleted(ctx context.Context, id policy.ID) error {
	err := s.write(ctx, func(b *batch) error {
		_, err := b.exec(ctx, `DELETE FROM blob_deletes WHERE id = $1`, id[:])
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: blob deleted: %w", err)
	}
	return nil
}
