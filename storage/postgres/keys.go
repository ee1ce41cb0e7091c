package postgres

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
	cols := make([][][]byte, 5)
	var seqs, epochs []int64
	var offs, lens []int32
	for _, e := range entries {
		cols[0] = append(cols[0], e.Server[:])
		cols[1] = append(cols[1], e.Channel[:])
		cols[2] = append(cols[2], e.Device[:])
		cols[3] = append(cols[3], e.Envelope[:])
		cols[4] = append(cols[4], e.KeyID[:])
		seqs, epochs = append(seqs, int64(e.Seq)), append(epochs, int64(e.Epoch))
		offs, lens = append(offs, int32(e.Off)), append(lens, int32(e.Len))
	}
	err := s.write(ctx, func(b *batch) error {
		_, err := b.exec(ctx, `INSERT INTO key_entries (server, channel, device, envelope, key_id, seq, epoch, off, len)
			SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::bytea[], $5::bytea[], $6::bigint[], $7::bigint[], $8::integer[], $9::integer[])
			ON CONFLICT DO NOTHING`, cols[0], cols[1], cols[2], cols[3], cols[4], seqs, epochs, offs, lens)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: key entries: %w", err)
	}
	return nil
}

// ReadKeyEntries returns a device's sealed keys in a channel after a sequence number.
func (s *Store) ReadKeyEntries(ctx context.Context, server, channel policy.ID, device policy.PublicKey, after uint64, limit int) ([]storage.SealedKey, error) {
	if err := storage.CheckPage(limit); err != nil {
		return nil, fmt.Errorf("postgres: key entries: %w", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT k.seq, k.envelope, k.epoch, k.key_id, substring(e.raw from k.off + 1 for k.len)
		FROM key_entries k JOIN envelopes e ON e.id = k.envelope
		WHERE k.server = $1 AND k.channel = $2 AND k.device = $3 AND k.seq > $4 AND e.raw IS NOT NULL
		ORDER BY k.seq LIMIT $5`, server[:], channel[:], device[:], int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: key entries: %w", unavailable(err))
	}
	defer rows.Close()
	var out []storage.SealedKey
	for rows.Next() {
		var k storage.SealedKey
		var env, id []byte
		if err := rows.Scan(&k.Seq, &env, &k.Epoch, &id, &k.Sealed); err != nil {
			return nil, fmt.Errorf("postgres: key entries: %w", err)
		}
		k.Envelope = policy.ID(env)
		copy(k.KeyID[:], id)
		out = append(out, k)
	}
	return out, rows.Err()
}
