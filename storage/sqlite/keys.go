package sqlite

import (
	"context"
	"fmt"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// PutKeyEntries records where devices' sealed keys lie in stored envelopes.
func (s *Store) PutKeyEntries(ctx context.Context, entries []storage.KeyEntry) error {
	if len(entries) == 0 {
		return nil
	}
	err := s.write(ctx, func(b *batch) error {
		for _, e := range entries {
			if _, err := b.exec(ctx, `INSERT OR IGNORE INTO key_entries (server, channel, device, seq, envelope, epoch, key_id, off, len)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, e.Server[:], e.Channel[:], e.Device[:], int64(e.Seq), e.Envelope[:], int64(e.Epoch), e.KeyID[:], e.Off, e.Len); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: key entries: %w", err)
	}
	return nil
}

// ReadKeyEntries returns a device's sealed keys in a channel after a sequence number.
func (s *Store) ReadKeyEntries(ctx context.Context, server, channel policy.ID, device policy.PublicKey, after uint64, limit int) ([]storage.SealedKey, error) {
	if err := storage.CheckPage(limit); err != nil {
		return nil, fmt.Errorf("sqlite: key entries: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT k.seq, k.envelope, k.epoch, k.key_id, substr(e.raw, k.off + 1, k.len)
		FROM key_entries k JOIN envelopes e ON e.id = k.envelope
		WHERE k.server = ? AND k.channel = ? AND k.device = ? AND k.seq > ? AND e.raw IS NOT NULL
		ORDER BY k.seq LIMIT ?`, server[:], channel[:], device[:], int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: key entries: %w", err)
	}
	defer rows.Close()
	var out []storage.SealedKey
	for rows.Next() {
		var k storage.SealedKey
		var env, id []byte
		if err := rows.Scan(&k.Seq, &env, &k.Epoch, &id, &k.Sealed); err != nil {
			return nil, fmt.Errorf("sqlite: key entries: %w", err)
		}
		k.Envelope = policy.ID(env)
		copy(k.KeyID[:], id)
		out = append(out, k)
	}
	return out, rows.Err()
}
