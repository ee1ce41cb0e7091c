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

// An early tombstone's row: raw NULL, size 0, a tombstone. A stored
// envelope always has size > 0, so size = 0 tells the two apart.

// PutEarlyTombstone keeps a tombstone that arrived before its envelope.
func (s *Store) PutEarlyTombstone(ctx context.Context, e storage.Envelope) (bool, error) {
	if len(e.Tombstone) == 0 || e.Raw != nil || e.Time <= 0 {
		return false, fmt.Errorf("sqlite: early tombstone: %w: needs a tombstone and a time, and no ciphertext", storage.ErrInvalid)
	}
	stored := false
	err := s.write(ctx, func(b *batch) error {
		var one int
		switch err := b.tx.QueryRowContext(ctx, `SELECT 1 FROM envelopes WHERE id = ?`, e.ID[:]).Scan(&one); {
		case err == nil:
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if err := b.charge(ctx, e.Server, ledger.Delta{Bytes: int64(len(e.Tombstone))}); err != nil {
			return err
		}
		ch, err := b.channel(ctx, e.Server, e.Channel)
		if err != nil {
			return err
		}
		if _, err := b.exec(ctx, `INSERT INTO envelopes (id, server, channel, seq, time, sender, stored_at, size, tombstone)
			VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)`, e.ID[:], e.Server[:], e.Channel[:], ch.nextSeq, e.Time, make([]byte, len(policy.PublicKey{})), s.now(), e.Tombstone); err != nil {
			return err
		}
		ch.nextSeq++
		ch.dirty = true
		stored = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: early tombstone: %w", err)
	}
	return stored, nil
}

// DropEarlyTombstone removes an early tombstone's row.
func (s *Store) DropEarlyTombstone(ctx context.Context, id policy.ID) error {
	err := s.write(ctx, func(b *batch) error {
		var server, tomb []byte
		err := b.tx.QueryRowContext(ctx, `SELECT server, tombstone FROM envelopes WHERE id = ? AND size = 0 AND raw IS NULL`, id[:]).Scan(&server, &tomb)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := b.exec(ctx, `DELETE FROM envelopes WHERE id = ?`, id[:]); err != nil {
			return err
		}
		return b.charge(ctx, policy.ID(server), ledger.Delta{Bytes: -int64(len(tomb))})
	})
	if err != nil {
		return fmt.Errorf("sqlite: drop early tombstone: %w", err)
	}
	return nil
}

// TombstoneRangeKeys returns the keys of a channel's tombstoned rows in [from, to).
func (s *Store) TombstoneRangeKeys(ctx context.Context, server, channel policy.ID, from, to storage.Key, limit int) ([]storage.Key, error) {
	return s.rangeKeys(ctx, server, channel, from, to, limit, ` AND tombstone IS NOT NULL`)
}

// TombstoneRangeFingerprint returns the fingerprint of a channel's tombstoned rows in [from, to).
func (s *Store) TombstoneRangeFingerprint(ctx context.Context, server, channel policy.ID, from, to storage.Key) (storage.Fingerprint, error) {
	return s.rangeFingerprint(ctx, server, channel, from, to, ` AND tombstone IS NOT NULL`)
}
