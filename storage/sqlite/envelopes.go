package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// statements prepared once on the writer connection for the ingest path.
type statements struct {
	envelopeExists *sql.Stmt
	channelSeq     *sql.Stmt
	envelopeInsert *sql.Stmt
	tenantUsage    *sql.Stmt
	tenantCharge   *sql.Stmt
}

func (st *statements) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range []struct {
		dst  **sql.Stmt
		text string
	}{
		{&st.envelopeExists, `SELECT seq, stored_at FROM envelopes WHERE id = ?`},
		// The channel row is the sequence counter: one writer at a time holds it,
		// so sequence N is committed before N+1 is handed out.
		{&st.channelSeq, `INSERT INTO channels (server, channel, next_seq, bytes) VALUES (?, ?, 2, ?)
			ON CONFLICT (server, channel) DO UPDATE SET next_seq = next_seq + 1, bytes = bytes + excluded.bytes
			RETURNING next_seq - 1`},
		{&st.envelopeInsert, `INSERT INTO envelopes (id, server, channel, seq, time, sender, stored_at, size, raw)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&st.tenantUsage, `SELECT quota_bytes, quota_envelopes, quota_blobs, used_bytes, used_envelopes, used_blobs, suspended
			FROM tenants WHERE server = ?`},
		{&st.tenantCharge, `UPDATE tenants SET used_bytes = used_bytes + ?, used_envelopes = used_envelopes + ?,
			used_blobs = used_blobs + ? WHERE server = ?`},
	} {
		stmt, err := db.PrepareContext(ctx, p.text)
		if err != nil {
			return fmt.Errorf("sqlite: prepare: %w", err)
		}
		*p.dst = stmt
	}
	return nil
}

// PutEnvelopes stores a batch atomically.
func (s *Store) PutEnvelopes(ctx context.Context, envs []storage.Envelope) ([]storage.Stored, error) {
	for _, e := range envs {
		if len(e.Raw) == 0 || policy.Sum(e.Raw) != e.ID {
			return nil, fmt.Errorf("sqlite: put envelopes: %w: envelope %s does not hash to its id", storage.ErrInvalid, e.ID)
		}
	}
	out := make([]storage.Stored, len(envs))
	err := s.write(ctx, func(tx *sql.Tx) error {
		exists := tx.StmtContext(ctx, s.stmts.envelopeExists)
		first := make(map[policy.ID]int, len(envs)) // first index of each ID in the batch
		charges := map[policy.ID]*delta{}
		var fresh []int
		for i, e := range envs {
			if j, ok := first[e.ID]; ok {
				out[i] = storage.Stored{Duplicate: true, Seq: uint64(j)} // resolved below
				continue
			}
			first[e.ID] = i
			var seq, at int64
			switch err := exists.QueryRowContext(ctx, e.ID[:]).Scan(&seq, &at); err {
			case nil:
				out[i] = storage.Stored{Seq: uint64(seq), StoredAt: at, Duplicate: true}
				continue
			case sql.ErrNoRows:
			default:
				return err
			}
			fresh = append(fresh, i)
			d := charges[e.Server]
			if d == nil {
				d = &delta{}
				charges[e.Server] = d
			}
			d.bytes += int64(len(e.Raw))
			d.envelopes++
		}
		for _, server := range slices.SortedFunc(maps.Keys(charges), policy.ID.Compare) {
			if err := s.charge(ctx, tx, server, *charges[server]); err != nil {
				return err
			}
		}
		now := s.now()
		seqStmt, insert := tx.StmtContext(ctx, s.stmts.channelSeq), tx.StmtContext(ctx, s.stmts.envelopeInsert)
		for _, i := range fresh {
			e := envs[i]
			var seq int64
			if err := seqStmt.QueryRowContext(ctx, e.Server[:], e.Channel[:], len(e.Raw)).Scan(&seq); err != nil {
				return err
			}
			if _, err := insert.ExecContext(ctx, e.ID[:], e.Server[:], e.Channel[:], seq, e.Time, e.Sender[:], now, len(e.Raw), e.Raw); err != nil {
				return err
			}
			out[i] = storage.Stored{Seq: uint64(seq), StoredAt: now}
		}
		for i, e := range envs { // repeats within the batch get the first copy's result
			if j := first[e.ID]; j != i {
				out[i] = out[j]
				out[i].Duplicate = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: put envelopes: %w", err)
	}
	return out, nil
}

const envelopeCols = `id, server, channel, seq, time, sender, stored_at, size, raw, tombstone`

func scanEnvelope(row interface{ Scan(...any) error }) (storage.Envelope, error) {
	var e storage.Envelope
	var id, server, channel, sender []byte
	if err := row.Scan(&id, &server, &channel, &e.Seq, &e.Time, &sender, &e.StoredAt, &e.Size, &e.Raw, &e.Tombstone); err != nil {
		return e, err
	}
	copy(e.ID[:], id)
	copy(e.Server[:], server)
	copy(e.Channel[:], channel)
	copy(e.Sender[:], sender)
	return e, nil
}

// ReadChannel returns a channel's envelopes after a sequence number.
func (s *Store) ReadChannel(ctx context.Context, server, channel policy.ID, after uint64, limit int) ([]storage.Envelope, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+envelopeCols+` FROM envelopes
		WHERE server = ? AND channel = ? AND seq > ? ORDER BY seq LIMIT ?`, server[:], channel[:], int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read channel: %w", err)
	}
	defer rows.Close()
	out := make([]storage.Envelope, 0, min(limit, 1024))
	for rows.Next() {
		e, err := scanEnvelope(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: read channel: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// GetEnvelope returns one envelope by ID.
func (s *Store) GetEnvelope(ctx context.Context, id policy.ID) (storage.Envelope, error) {
	e, err := scanEnvelope(s.r.QueryRowContext(ctx, `SELECT `+envelopeCols+` FROM envelopes WHERE id = ?`, id[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("sqlite: envelope %s: %w", id, storage.ErrNotFound)
	}
	return e, err
}

const rangeWhere = `server = ? AND channel = ? AND (time, id) >= (?, ?) AND (time, id) < (?, ?)`

func rangeArgs(server, channel policy.ID, from, to storage.Key) []any {
	return []any{server[:], channel[:], from.Time, from.ID[:], to.Time, to.ID[:]}
}

// RangeKeys returns the keys of a channel's envelopes in [from, to).
func (s *Store) RangeKeys(ctx context.Context, server, channel policy.ID, from, to storage.Key, limit int) ([]storage.Key, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT time, id FROM envelopes WHERE `+rangeWhere+` ORDER BY time, id LIMIT ?`,
		append(rangeArgs(server, channel, from, to), limit)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: range keys: %w", err)
	}
	defer rows.Close()
	var out []storage.Key
	for rows.Next() {
		var k storage.Key
		var id []byte
		if err := rows.Scan(&k.Time, &id); err != nil {
			return nil, fmt.Errorf("sqlite: range keys: %w", err)
		}
		copy(k.ID[:], id)
		out = append(out, k)
	}
	return out, rows.Err()
}

// RangeFingerprint returns the fingerprint of a channel's envelopes in [from, to).
func (s *Store) RangeFingerprint(ctx context.Context, server, channel policy.ID, from, to storage.Key) (storage.Fingerprint, error) {
	var fp storage.Fingerprint
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM envelopes WHERE `+rangeWhere, rangeArgs(server, channel, from, to)...)
	if err != nil {
		return fp, fmt.Errorf("sqlite: range fingerprint: %w", err)
	}
	defer rows.Close()
	var id []byte
	for rows.Next() {
		if err := rows.Scan(&id); err != nil {
			return fp, fmt.Errorf("sqlite: range fingerprint: %w", err)
		}
		fp.Add(policy.ID(id))
	}
	return fp, rows.Err()
}

// ApplyTombstone deletes an envelope's ciphertext and keeps its tombstone.
func (s *Store) ApplyTombstone(ctx context.Context, target policy.ID, tombstone []byte) error {
	if len(tombstone) == 0 {
		return fmt.Errorf("sqlite: tombstone: %w: empty tombstone", storage.ErrInvalid)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		var server, channel []byte
		var size int64
		var dead bool
		err := tx.QueryRowContext(ctx, `SELECT server, channel, size, tombstone IS NOT NULL FROM envelopes WHERE id = ?`, target[:]).
			Scan(&server, &channel, &size, &dead)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("envelope %s: %w", target, storage.ErrNotFound)
		}
		if err != nil || dead {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE envelopes SET raw = NULL, tombstone = ? WHERE id = ?`, tombstone, target[:]); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE channels SET bytes = bytes - ? WHERE server = ? AND channel = ?`, size, server, channel); err != nil {
			return err
		}
		return s.charge(ctx, tx, policy.ID(server), delta{bytes: -size, envelopes: -1})
	})
	if err != nil {
		return fmt.Errorf("sqlite: tombstone: %w", err)
	}
	return nil
}

// Sweep deletes a channel's envelopes beyond its retention, then returns the
// freed pages to the file system.
func (s *Store) Sweep(ctx context.Context, server, channel policy.ID, r storage.Retention) (storage.Swept, error) {
	var swept storage.Swept
	err := s.write(ctx, func(tx *sql.Tx) error {
		swept = storage.Swept{}
		del := func(query string, args ...any) error {
			rows, err := tx.QueryContext(ctx, query, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var size int64
				var dead bool
				if err := rows.Scan(&size, &dead); err != nil {
					return err
				}
				if !dead {
					swept.Envelopes++
					swept.Bytes += uint64(size)
				}
			}
			return rows.Err()
		}
		if r.OlderThan > 0 {
			if err := del(`DELETE FROM envelopes WHERE server = ? AND channel = ? AND time < ? RETURNING size, tombstone IS NOT NULL`,
				server[:], channel[:], r.OlderThan); err != nil {
				return err
			}
		}
		if r.MaxBytes > 0 {
			var live int64
			err := tx.QueryRowContext(ctx, `SELECT bytes FROM channels WHERE server = ? AND channel = ?`, server[:], channel[:]).Scan(&live)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			live -= int64(swept.Bytes)
			if excess := live - int64(r.MaxBytes); excess > 0 {
				// The oldest envelopes whose sizes add up to at least the excess.
				var cutoff int64
				err := tx.QueryRowContext(ctx, `SELECT seq FROM (
						SELECT seq, SUM(size) OVER (ORDER BY seq) AS running FROM envelopes
						WHERE server = ? AND channel = ? AND raw IS NOT NULL)
					WHERE running >= ? ORDER BY seq LIMIT 1`, server[:], channel[:], excess).Scan(&cutoff)
				if err != nil {
					return err
				}
				if err := del(`DELETE FROM envelopes WHERE server = ? AND channel = ? AND seq <= ? RETURNING size, tombstone IS NOT NULL`,
					server[:], channel[:], cutoff); err != nil {
					return err
				}
			}
		}
		if swept.Envelopes == 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE channels SET bytes = bytes - ? WHERE server = ? AND channel = ?`, int64(swept.Bytes), server[:], channel[:]); err != nil {
			return err
		}
		if err := s.charge(ctx, tx, server, delta{bytes: -int64(swept.Bytes), envelopes: -int64(swept.Envelopes)}); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `PRAGMA incremental_vacuum`)
		return err
	})
	if err != nil {
		return swept, fmt.Errorf("sqlite: sweep: %w", err)
	}
	return swept, nil
}
