package postgres

import (
	"context"
	"fmt"

	"github.com/guildhall/guildhall/internal/ledger"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// AddBlobRef records that server references a blob, charging its quota.
func (s *Store) AddBlobRef(ctx context.Context, server, id policy.ID, size int64) error {
	if size < 0 {
		return fmt.Errorf("postgres: add blob ref: %w: negative size", storage.ErrInvalid)
	}
	err := s.write(ctx, func(b *batch) error {
		if err := b.lockTenants(ctx, []policy.ID{server}); err != nil {
			return err
		}
		var one int
		err := b.tx.QueryRow(ctx, `SELECT 1 FROM blob_refs WHERE server = $1 AND id = $2`, server[:], id[:]).Scan(&one)
		if err == nil {
			return nil
		}
		if !isNoRows(err) {
			return err
		}
		if err := b.charge(ctx, server, ledger.Delta{Bytes: size, Blobs: 1}); err != nil {
			return err
		}
		_, err = b.exec(ctx, `INSERT INTO blob_refs (server, id, size) VALUES ($1, $2, $3)`, server[:], id[:], size)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: add blob ref: %w", err)
	}
	return nil
}

// RemoveBlobRef drops a reference and reports whether others remain.
func (s *Store) RemoveBlobRef(ctx context.Context, server, id policy.ID) (bool, error) {
	var still bool
	err := s.write(ctx, func(b *batch) error {
		if err := b.lockTenants(ctx, []policy.ID{server}); err != nil {
			return err
		}
		var size int64
		err := b.tx.QueryRow(ctx, `SELECT size FROM blob_refs WHERE server = $1 AND id = $2`, server[:], id[:]).Scan(&size)
		switch {
		case isNoRows(err):
		case err != nil:
			return err
		default:
			if err := b.charge(ctx, server, ledger.Delta{Bytes: -size, Blobs: -1}); err != nil {
				return err
			}
			if _, err := b.exec(ctx, `DELETE FROM blob_refs WHERE server = $1 AND id = $2`, server[:], id[:]); err != nil {
				return err
			}
		}
		return b.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM blob_refs WHERE id = $1)`, id[:]).Scan(&still)
	})
	if err != nil {
		return false, fmt.Errorf("postgres: remove blob ref: %w", err)
	}
	return still, nil
}

// HasBlobRef reports whether server references a blob.
func (s *Store) HasBlobRef(ctx context.Context, server, id policy.ID) (bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var ok bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM blob_refs WHERE server = $1 AND id = $2)`, server[:], id[:]).Scan(&ok); err != nil {
		return false, fmt.Errorf("postgres: has blob ref: %w", unavailable(err))
	}
	return ok, nil
}
