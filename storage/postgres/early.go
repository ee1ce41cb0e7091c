package postgres

import (
	"context"
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
		return false, fmt.Errorf("postgres: early tombstone: %w: needs a tombstone and a time, and no ciphertext", storage.ErrInvalid)
	}
	stored := false
	err := s.write(ctx, func(b *batch) error {
		charge := ledger.Delta{Bytes: int64(len(e.Tombstone))}
		if err := b.charge(ctx, e.Server, charge); err != nil { // the tenant's row first, then the channel's, as puts lock them
			return err
		}
		ch, err := b.channel(ctx, e.Server, e.Channel)
		if err != nil {
			return err
		}
		n, err := b.exec(ctx, `INSERT INTO envelopes (id, server, channel, seq, time, sender, stored_at, size, tombstone)
			VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8) ON CONFLICT (id) DO NOTHING`,
			e.ID[:], e.Server[:], e.Channel[:], ch.nextSeq, e.Time, make([]byte, len(policy.PublicKey{})), b.s.now(), e.Tombstone)
		if err != nil {
			return err
		}
		if n == 0 { // stored already: take the charge back
			return b.charge(ctx, e.Server, ledger.Delta{Bytes: -charge.Bytes})
		}
		ch.nextSeq++
		ch.dirty = true
		stored = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("postgres: early tombstone: %w", err)
	}
	return stored, nil
}

// DropEarlyTombstone removes an early tombstone's row.
func (s *Store) DropEarlyTombstone(ctx context.Context, id policy.ID) error {
	err := s.write(ctx, func(b *batch) error {
		var server []byte
		if err := b.tx.QueryRow(ctx, `SELECT server FROM envelopes WHERE id = $1 AND size = 0 AND raw IS NULL`, id[:]).Scan(&server); err != nil {
			if isNoRows(err) {
				return nil
			}
			return err
		}
		if err := b.lockTenants(ctx, []policy.ID{policy.ID(server)}); err != nil {
			return err
		}
		var tomb []byte
		err := b.tx.QueryRow(ctx, `DELETE FROM envelopes WHERE id = $1 AND size = 0 AND raw IS NULL RETURNING tombstone`, id[:]).Scan(&tomb)
		if isNoRows(err) { // another process dropped it meanwhile
			return nil
		}
		if err != nil {
			return err
		}
		b.wrote = true
		return b.charge(ctx, policy.ID(server), ledger.Delta{Bytes: -int64(len(tomb))})
	})
	if err != nil {
		return fmt.Errorf("postgres: drop early tombstone: %w", err)
	}
	return nil
}

// TombstoneRangeKeys returns the keys of a channel's tombstoned rows in [from, to).
func (s *Store) TombstoneRangeKeys(ctx context.Context, server, channel policy.ID, from, to storage.Key, limit int) ([]storage.Key, error) {
	return s.rangeKeys(ctx, queryTombRangeKeys, server, channel, from, to, limit)
}

// TombstoneRangeFingerprint returns the fingerprint of a channel's tombstoned rows in [from, to).
func (s *Store) TombstoneRangeFingerprint(ctx context.Context, server, channel policy.ID, from, to storage.Key) (storage.Fingerprint, error) {
	return s.rangeFingerprint(ctx, queryTombRangeIDs, server, channel, from, to)
}
