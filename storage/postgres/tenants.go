package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// PutTenant admits a server or replaces its quota; a deleted server is
// not hosted (ProvisionTenant re-admits it).
func (s *Store) PutTenant(ctx context.Context, server policy.ID, q storage.Quota) error {
	if err := q.Validate(); err != nil {
		return fmt.Errorf("postgres: put tenant: %w", err)
	}
	return s.write(ctx, func(b *batch) error {
		var deleted bool
		if err := b.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM deleted_tenants WHERE server = $1)`, server[:]).Scan(&deleted); err != nil {
			return err
		}
		if deleted {
			return fmt.Errorf("postgres: tenant %s was deleted by the operator: %w", server, storage.ErrNotHosted)
		}
		if err := b.forget(ctx, server); err != nil {
			return err
		}
		_, err := b.exec(ctx, `INSERT INTO tenants (server, quota_bytes, quota_envelopes, quota_blobs, created)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (server) DO UPDATE SET quota_bytes = excluded.quota_bytes,
				quota_envelopes = excluded.quota_envelopes, quota_blobs = excluded.quota_blobs`,
			server[:], int64(q.Bytes), int64(q.Envelopes), int64(q.Blobs), s.now())
		return err
	})
}

const tenantCols = `server, quota_bytes, quota_envelopes, quota_blobs, used_bytes, used_envelopes, used_blobs, suspended, created, label`

func scanTenant(row pgx.Row) (storage.Tenant, error) {
	var t storage.Tenant
	var server []byte
	var qb, qe, qbl, ub, ue, ubl int64
	if err := row.Scan(&server, &qb, &qe, &qbl, &ub, &ue, &ubl, &t.Suspended, &t.Created, &t.Label); err != nil {
		return t, err
	}
	t.Server = policy.ID(server)
	t.Quota = storage.Quota{Bytes: uint64(qb), Envelopes: uint64(qe), Blobs: uint64(qbl)}
	t.Usage = storage.Usage{Bytes: uint64(ub), Envelopes: uint64(ue), Blobs: uint64(ubl)}
	return t, nil
}

// Tenant returns one tenant.
func (s *Store) Tenant(ctx context.Context, server policy.ID) (storage.Tenant, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	t, err := scanTenant(s.pool.QueryRow(ctx, `SELECT `+tenantCols+` FROM tenants WHERE server = $1`, server[:]))
	if isNoRows(err) {
		return t, fmt.Errorf("postgres: tenant %s: %w", server, storage.ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("postgres: tenant: %w", unavailable(err))
	}
	return t, nil
}

// Tenants returns every tenant ordered by server ID.
func (s *Store) Tenants(ctx context.Context) ([]storage.Tenant, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT `+tenantCols+` FROM tenants ORDER BY server`)
	if err != nil {
		return nil, fmt.Errorf("postgres: tenants: %w", unavailable(err))
	}
	defer rows.Close()
	var out []storage.Tenant
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: tenants: %w", err)
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
		n, err := b.exec(ctx, `UPDATE tenants SET suspended = $1 WHERE server = $2`, suspended, server[:])
		if err != nil {
			return err
		}
		if n == 0 {
			b.wrote = false // matched nothing: nothing was written
			return fmt.Errorf("postgres: tenant %s: %w", server, storage.ErrNotFound)
		}
		return nil
	})
}
