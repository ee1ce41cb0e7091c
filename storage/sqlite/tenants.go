package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// PutTenant admits a server or replaces its quota; a deleted server is
// not hosted (ProvisionTenant re-admits it).
func (s *Store) PutTenant(ctx context.Context, server policy.ID, q storage.Quota) error {
	if err := q.Validate(); err != nil {
		return fmt.Errorf("sqlite: put tenant: %w", err)
	}
	return s.write(ctx, func(b *batch) error {
		var deleted bool
		if err := b.tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM deleted_tenants WHERE server = ?)`, server[:]).Scan(&deleted); err != nil {
			return err
		}
		if deleted {
			return fmt.Errorf("sqlite: tenant %s was deleted by the operator: %w", server, storage.ErrNotHosted)
		}
		if err := b.forget(ctx, server); err != nil {
			return err
		}
		_, err := b.exec(ctx, `INSERT INTO tenants (server, quota_bytes, quota_envelopes, quota_blobs, created)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (server) DO UPDATE SET quota_bytes = excluded.quota_bytes,
				quota_envelopes = excluded.quota_envelopes, quota_blobs = excluded.quota_blobs`,
			server[:], int64(q.Bytes), int64(q.Envelopes), int64(q.Blobs), s.now())
		return err
	})
}

const tenantCols = `server, quota_bytes, quota_envelopes, quota_blobs, used_bytes, used_envelopes, used_blobs, suspended, created, label`

func scanTenant(row interface{ Scan(...any) error }) (storage.Tenant, error) {
	var t storage.Tenant
	var server []byte
	var qb, qe, qbl, ub, ue, ubl int64
	if err := row.Scan(&server, &qb, &qe, &qbl, &ub, &ue, &ubl, &t.Suspended, &t.Created, &t.Label); err != nil {
		return t, err
	}
	copy(t.Server[:], server)
	t.Quota = storage.Quota{Bytes: uint64(qb), Envelopes: uint64(qe), Blobs: uint64(qbl)}
	t.Usage = storage.Usage{Bytes: uint64(ub), Envelopes: uint64(ue), Blobs: uint64(ubl)}
	return t, nil
}

// Tenant returns one tenant.
func (s *Store) Tenant(ctx context.Context, server policy.ID) (storage.Tenant, error) {
	t, err := scanTenant(s.r.QueryRowContext(ctx, `SELECT `+tenantCols+` FROM tenants WHERE server = ?`, server[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("sqlite: tenant %s: %w", server, storage.ErrNotFound)
	}
	return t, err
}

// Tenants returns every tenant ordered by server ID.
func (s *Store) Tenants(ctx context.Context) ([]storage.Tenant, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+tenantCols+` FROM tenants ORDER BY server`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: tenants: %w", err)
	}
	defer rows.Close()
	var out []storage.Tenant
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: tenants: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// SetSuspended suspends or resumes a tenant's writes.
func (s *Store) SetSuspended(ctx context.Context, server policy.ID, suspended bool) error {
	return s.write(ctx, func(b *batch) error {
		if err := b.forget(ctx, server); err != nil {
			return err
		}
		res, err := b.exec(ctx, `UPDATE tenants SET suspended = ? WHERE server = ?`, suspended, server[:])
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			b.wrote = false // the update matched nothing: nothing was written
			return fmt.Errorf("sqlite: tenant %s: %w", server, storage.ErrNotFound)
		}
		return nil
	})
}
