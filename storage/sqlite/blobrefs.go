package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/guildhall/guildhall/internal/ledger"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// AddBlobRef records that server references a blob, charging its quota.
func (s *Store) AddBlobRef(ctx context.Context, server, id policy.ID, size int64) error {
	if size < 0 {
		return fmt.Errorf("sqlite: add blob ref: %w: negative size", storage.ErrInvalid)
	}
	err := s.write(ctx, func(b *batch) error {
		tx := b.tx
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM blob_refs WHERE server = ? AND id = ?`, server[:], id[:]).Scan(&one)
		if err == nil {
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err := b.charge(ctx, server, ledger.Delta{Bytes: size, Blobs: 1}); err != nil {
			return err
		}
		_, err = b.exec(ctx, `INSERT INTO blob_refs (server, id, size) VALUES (?, ?, ?)`, server[:], id[:], size)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: add blob ref: %w", err)
	}
	return nil
}

// RemoveBlobRef drops a reference and reports whether others remain.
func (s *Store) RemoveBlobRef(ctx context.Context, server, id policy.ID) (bool, error) {
	var still bool
	err := s.write(ctx, func(b *batch) error {
		tx := b.tx
		var size int64
		err := tx.QueryRowContext(ctx, `SELECT size FROM blob_refs WHERE server = ? AND id = ?`, server[:], id[:]).Scan(&size)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			if err := b.charge(ctx, server, ledger.Delta{Bytes: -size, Blobs: -1}); err != nil {
				return err
			}
			if _, err := b.exec(ctx, `DELETE FROM blob_refs WHERE server = ? AND id = ?`, server[:], id[:]); err != nil {
				return err
			}
		}
		return tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM blob_refs WHERE id = ?)`, id[:]).Scan(&still)
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: remove blob ref: %w", err)
	}
	return still, nil
}

// HasBlobRef reports whether server references a blob.
func (s *Store) HasBlobRef(ctx context.Context, server, id policy.ID) (bool, error) {
	var ok bool
	if err := s.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM blob_refs WHERE server = ? AND id = ?)`, server[:], id[:]).Scan(&ok); err != nil {
		return false, fmt.Errorf("sqlite: has blob ref: %w", unavailable(err))
	}
	return ok, nil
}
