package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/guildhall/guildhall/internal/ledger"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// PutEnvelopes stores a batch atomically. The work is deferred to the end of
// the commit group so that every put of the group shares one existence
// query and one COPY.
func (s *Store) PutEnvelopes(ctx context.Context, envs []storage.Envelope) ([]storage.Stored, error) {
	for _, e := range envs {
		if len(e.Raw) == 0 || policy.Sum(e.Raw) != e.ID {
			return nil, fmt.Errorf("postgres: put envelopes: %w: envelope %s does not hash to its id", storage.ErrInvalid, e.ID)
		}
	}
	var req *putReq
	err := s.write(ctx, func(b *batch) error {
		req = &putReq{envs: envs, out: make([]storage.Stored, len(envs))}
		b.puts = append(b.puts, req)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: put envelopes: %w", err)
	}
	return req.out, nil
}

const envelopeCols = `id, server, channel, seq, time, sender, stored_at, size, raw, tombstone`

func scanEnvelope(row pgx.Row) (storage.Envelope, error) {
	var e storage.Envelope
	var id, server, channel, sender []byte
	if err := row.Scan(&id, &server, &channel, &e.Seq, &e.Time, &sender, &e.StoredAt, &e.Size, &e.Raw, &e.Tombstone); err != nil {
		return e, err
	}
	e.ID, e.Server, e.Channel, e.Sender = policy.ID(id), policy.ID(server), policy.ID(channel), policy.PublicKey(sender)
	return e, nil
}

// ReadChannel returns a channel's envelopes after a sequence number.
func (s *Store) ReadChannel(ctx context.Context, server, channel policy.ID, after uint64, limit int) ([]storage.Envelope, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := storage.CheckPage(limit); err != nil {
		return nil, fmt.Errorf("postgres: read channel: %w", err)
	}
	rows, err := s.pool.Query(ctx, queryReadChannel, server[:], channel[:], int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: read channel: %w", unavailable(err))
	}
	defer rows.Close()
	out := make([]storage.Envelope, 0, min(limit, 1024))
	for rows.Next() {
		e, err := scanEnvelope(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: read channel: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// The read queries, named so the EXPLAIN test checks each of them.
const (
	queryReadChannel   = `SELECT ` + envelopeCols + ` FROM envelopes WHERE server = $1 AND channel = $2 AND seq > $3 ORDER BY seq LIMIT $4`
	queryGetEnvelope   = `SELECT ` + envelopeCols + ` FROM envelopes WHERE id = $1`
	rangeWhere         = `server = $1 AND channel = $2 AND (time, id) >= ($3, $4) AND (time, id) < ($5, $6)`
	queryRangeKeys     = `SELECT time, id FROM envelopes WHERE ` + rangeWhere + ` ORDER BY time, id LIMIT $7`
	queryRangeIDs      = `SELECT id FROM envelopes WHERE ` + rangeWhere
	queryTombRangeKeys = `SELECT time, id FROM envelopes WHERE ` + rangeWhere + ` AND tombstone IS NOT NULL ORDER BY time, id LIMIT $7`
	queryTombRangeIDs  = `SELECT id FROM envelopes WHERE ` + rangeWhere + ` AND tombstone IS NOT NULL`
	queryAgeSweep      = `DELETE FROM envelopes WHERE ctid = ANY(ARRAY(SELECT ctid FROM envelopes
		WHERE server = $1 AND channel = $2 AND time < $3 LIMIT $4)) RETURNING size, tombstone IS NOT NULL`
	querySizeSweep = `DELETE FROM envelopes WHERE ctid = ANY(ARRAY(SELECT ctid FROM envelopes
		WHERE server = $1 AND channel = $2 AND (time, id) <= ($3, $4) ORDER BY time, id LIMIT $5)) RETURNING size, tombstone IS NOT NULL`
	queryTombstoneTarget = `SELECT server, channel, size, tombstone IS NOT NULL, raw IS NULL FROM envelopes WHERE id = $1`
)

// GetEnvelope returns one envelope by ID.
func (s *Store) GetEnvelope(ctx context.Context, id policy.ID) (storage.Envelope, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	e, err := scanEnvelope(s.pool.QueryRow(ctx, queryGetEnvelope, id[:]))
	if isNoRows(err) {
		return e, fmt.Errorf("postgres: envelope %s: %w", id, storage.ErrNotFound)
	}
	if err != nil {
		return e, fmt.Errorf("postgres: get envelope: %w", unavailable(err))
	}
	return e, nil
}

func rangeArgs(server, channel policy.ID, from, to storage.Key) []any {
	return []any{server[:], channel[:], from.Time, from.ID[:], to.Time, to.ID[:]}
}

// RangeKeys returns the keys of a channel's envelopes in [from, to).
func (s *Store) RangeKeys(ctx context.Context, server, channel policy.ID, from, to storage.Key, limit int) ([]storage.Key, error) {
	return s.rangeKeys(ctx, queryRangeKeys, server, channel, from, to, limit)
}

func (s *Store) rangeKeys(ctx context.Context, query string, server, channel policy.ID, from, to storage.Key, limit int) ([]storage.Key, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := storage.CheckPage(limit); err != nil {
		return nil, fmt.Errorf("postgres: range keys: %w", err)
	}
	rows, err := s.pool.Query(ctx, query, append(rangeArgs(server, channel, from, to), limit)...)
	if err != nil {
		return nil, fmt.Errorf("postgres: range keys: %w", unavailable(err))
	}
	defer rows.Close()
	var out []storage.Key
	for rows.Next() {
		var k storage.Key
		var id []byte
		if err := rows.Scan(&k.Time, &id); err != nil {
			return nil, fmt.Errorf("postgres: range keys: %w", err)
		}
		k.ID = policy.ID(id)
		out = append(out, k)
	}
	return out, rows.Err()
}

// RangeFingerprint returns the fingerprint of a channel's envelopes in [from, to).
func (s *Store) RangeFingerprint(ctx context.Context, server, channel policy.ID, from, to storage.Key) (storage.Fingerprint, error) {
	return s.rangeFingerprint(ctx, queryRangeIDs, server, channel, from, to)
}

func (s *Store) rangeFingerprint(ctx context.Context, query string, server, channel policy.ID, from, to storage.Key) (storage.Fingerprint, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var fp storage.Fingerprint
	rows, err := s.pool.Query(ctx, query, rangeArgs(server, channel, from, to)...)
	if err != nil {
		return fp, fmt.Errorf("postgres: range fingerprint: %w", unavailable(err))
	}
	defer rows.Close()
	var id []byte
	for rows.Next() {
		if err := rows.Scan(&id); err != nil {
			return fp, fmt.Errorf("postgres: range fingerprint: %w", err)
		}
		fp.Add(policy.ID(id))
	}
	return fp, rows.Err()
}

// ApplyTombstone deletes an envelope's ciphertext and keeps its tombstone.
func (s *Store) ApplyTombstone(ctx context.Context, target policy.ID, tombstone []byte) error {
	if len(tombstone) == 0 {
		return fmt.Errorf("postgres: tombstone: %w: empty tombstone", storage.ErrInvalid)
	}
	err := s.write(ctx, func(b *batch) error {
		var server, channel []byte
		var size int64
		var dead bool
		var gone bool // its ciphertext already deleted (taken down by the operator)
		err := b.tx.QueryRow(ctx, queryTombstoneTarget, target[:]).Scan(&server, &channel, &size, &dead, &gone)
		if isNoRows(err) {
			return fmt.Errorf("envelope %s: %w", target, storage.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if err := b.lockTenants(ctx, []policy.ID{policy.ID(server)}); err != nil {
			return err
		}
		ch, err := b.channel(ctx, policy.ID(server), policy.ID(channel))
		if err != nil {
			return err
		}
		// Re-read under the locks: a concurrent process may have applied it.
		if err := b.tx.QueryRow(ctx, queryTombstoneTarget, target[:]).Scan(&server, &channel, &size, &dead, &gone); err != nil || dead {
			return err
		}
		if gone { // its bytes were released then: keep the tombstone only
			_, err := b.exec(ctx, `UPDATE envelopes SET tombstone = $1 WHERE id = $2`, tombstone, target[:])
			return err
		}
		if err := b.charge(ctx, policy.ID(server), ledger.Delta{Bytes: -size, Envelopes: -1}); err != nil {
			return err
		}
		if _, err := b.exec(ctx, `UPDATE envelopes SET raw = NULL, tombstone = $1 WHERE id = $2`, tombstone, target[:]); err != nil {
			return err
		}
		ch.bytes -= size
		ch.dirty = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: tombstone: %w", err)
	}
	return nil
}

// sweepChunk bounds one DELETE of a sweep, so a large sweep does not hold
// huge row sets in one statement; sweepChunks bounds the DELETEs of one
// transaction, so that a large sweep neither holds the commit group long
// nor runs into the operation timeout: it continues in further ones.
var (
	sweepChunk  = 5000
	sweepChunks = 8
)

// Sweep deletes a channel's envelopes beyond its retention, in
// transactions of at most sweepChunks deletions. Deleted rows are
// reclaimed by (auto)vacuum; see docs/OPERATIONS.md.
func (s *Store) Sweep(ctx context.Context, server, channel policy.ID, r storage.Retention) (storage.Swept, error) {
	var total storage.Swept
	for {
		swept, more, err := s.sweepOnce(ctx, server, channel, r)
		total.Envelopes += swept.Envelopes
		total.Bytes += swept.Bytes
		if err != nil || !more {
			return total, err
		}
	}
}

// sweepOnce runs one transaction of a sweep; more reports that it stopped
// at sweepChunks deletions with rows perhaps left to delete.
func (s *Store) sweepOnce(ctx context.Context, server, channel policy.ID, r storage.Retention) (swept storage.Swept, more bool, err error) {
	err = s.write(ctx, func(b *batch) error {
		swept, more = storage.Swept{}, false
		chunks := 0
		if err := b.charge(ctx, server, ledger.Delta{}); err != nil { // hosted?
			return err
		}
		ch, err := b.channel(ctx, server, channel)
		if err != nil {
			return err
		}
		del := func(query string, args ...any) (int, error) {
			b.wrote = true
			if chunks++; chunks == sweepChunks {
				more = true
			}
			rows, err := b.tx.Query(ctx, query, args...)
			if err != nil {
				return 0, err
			}
			defer rows.Close()
			n := 0
			for rows.Next() {
				var size int64
				var dead bool
				if err := rows.Scan(&size, &dead); err != nil {
					return n, err
				}
				n++
				if !dead {
					swept.Envelopes++
					swept.Bytes += uint64(size)
				}
			}
			return n, rows.Err()
		}
		if r.OlderThan > 0 {
			for {
				n, err := del(queryAgeSweep, server[:], channel[:], r.OlderThan, sweepChunk)
				if err != nil {
					return err
				}
				if n < sweepChunk || more {
					break
				}
			}
		}
		if live := ch.bytes - int64(swept.Bytes); r.MaxBytes > 0 && live > int64(r.MaxBytes) && !more {
			// By the envelopes' own (time, ID) key, not by arrival: every hub
			// holding the same envelopes deletes the same ones.
			var cutTime int64
			var cutID []byte
			err := b.tx.QueryRow(ctx, `SELECT time, id FROM (
					SELECT time, id, SUM(size) OVER (ORDER BY time, id) AS running FROM envelopes
					WHERE server = $1 AND channel = $2 AND raw IS NOT NULL) AS w
				WHERE running >= $3 ORDER BY time, id LIMIT 1`, server[:], channel[:], live-int64(r.MaxBytes)).Scan(&cutTime, &cutID)
			if err != nil {
				return err
			}
			for {
				n, err := del(querySizeSweep, server[:], channel[:], cutTime, cutID, sweepChunk)
				if err != nil {
					return err
				}
				if n < sweepChunk || more {
					break
				}
			}
		}
		if swept.Envelopes == 0 {
			return nil
		}
		ch.bytes -= int64(swept.Bytes)
		ch.dirty = true
		return b.charge(ctx, server, ledger.Delta{Bytes: -int64(swept.Bytes), Envelopes: -int64(swept.Envelopes)})
	})
	if err != nil {
		return swept, false, fmt.Errorf("postgres: sweep: %w", err)
	}
	return swept, more, nil
}
