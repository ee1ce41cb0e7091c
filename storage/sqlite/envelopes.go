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

// statements prepared once on the writer connection for the write path.
// (modernc's driver still parses SQL per execution; preparing saves the
// database/sql round trips, and the batch keeps the statement count down.)
type statements struct {
	envelopeInsert              *sql.Stmt
	envelopeExisting            *sql.Stmt
	channelGet, channelPut      *sql.Stmt
	tenantUsage, tenantSetUsage *sql.Stmt
}

func (st *statements) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range []struct {
		dst  **sql.Stmt
		text string
	}{
		// An ID already stored inserts nothing and returns no row. OR IGNORE
		// (not ON CONFLICT (id)) so that no constraint resolves by ABORT: then
		// the statement cannot fail after writing and SQLite skips the
		// statement journal, which copied every touched page (a fifth of
		// ingest time). A sequence conflict, which the counter rules out,
		// would surface as an error: the ID lookup that follows finds nothing.
		{&st.envelopeInsert, `INSERT OR IGNORE INTO envelopes (id, server, channel, seq, time, sender, stored_at, size, raw)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`},
		{&st.envelopeExisting, `SELECT seq, stored_at, size = 0 FROM envelopes WHERE id = ?`},
		// The channel row holds the sequence counter. SQLite has one writer,
		// which holds the counter from its read to its commit: sequence N is
		// committed before N+1 is handed out.
		{&st.channelGet, `SELECT next_seq, bytes FROM channels WHERE server = ? AND channel = ?`},
		{&st.channelPut, `INSERT INTO channels (server, channel, next_seq, bytes) VALUES (?, ?, ?, ?)
			ON CONFLICT (server, channel) DO UPDATE SET next_seq = excluded.next_seq, bytes = excluded.bytes`},
		{&st.tenantUsage, `SELECT quota_bytes, quota_envelopes, quota_blobs, used_bytes, used_envelopes, used_blobs, suspended
			FROM tenants WHERE server = ?`},
		{&st.tenantSetUsage, `UPDATE tenants SET used_bytes = ?, used_envelopes = ?, used_blobs = ? WHERE server = ?`},
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
	err := s.write(ctx, func(b *batch) error {
		// Check: charge as if every distinct envelope were new; only if that
		// is over quota, look up which ones are stored already and charge those.
		first := make(map[policy.ID]int, len(envs)) // first index of each ID
		for i, e := range envs {
			if _, ok := first[e.ID]; !ok {
				first[e.ID] = i
			}
		}
		if err := chargeEnvelopes(ctx, b, envs, first, nil); err != nil {
			var qe *storage.QuotaError
			if !errors.As(err, &qe) {
				return err
			}
			b.usage.Discard()
			stored := map[policy.ID]bool{}
			existing := b.tx.StmtContext(ctx, s.stmts.envelopeExisting)
			for id := range first {
				var seq, at int64
				var early bool
				switch err := existing.QueryRowContext(ctx, id[:]).Scan(&seq, &at, &early); {
				case err == nil:
					stored[id] = true
				case !errors.Is(err, sql.ErrNoRows):
					return err
				}
			}
			if err := chargeEnvelopes(ctx, b, envs, first, stored); err != nil {
				return err
			}
		}
		// Write.
		now := s.now()
		for i, e := range envs {
			if j := first[e.ID]; j != i {
				out[i] = out[j]
				out[i].Duplicate = true
				continue
			}
			ch, err := b.channel(ctx, e.Server, e.Channel)
			if err != nil {
				return err
			}
			var seq int64
			err = b.queryRowStmt(ctx, s.stmts.envelopeInsert, e.ID[:], e.Server[:], e.Channel[:], ch.nextSeq, e.Time, e.Sender[:], now, len(e.Raw), e.Raw).Scan(&seq)
			if errors.Is(err, sql.ErrNoRows) { // already stored: refund the charge
				var at int64
				var early bool
				if err := b.tx.StmtContext(ctx, s.stmts.envelopeExisting).QueryRowContext(ctx, e.ID[:]).Scan(&seq, &at, &early); err != nil {
					return err
				}
				out[i] = storage.Stored{Seq: uint64(seq), StoredAt: at, Duplicate: true, Early: early}
				b.usage.Refund(e.Server, ledger.Delta{Bytes: int64(len(e.Raw)), Envelopes: 1})
				continue
			}
			if err != nil {
				return err
			}
			ch.nextSeq++
			ch.bytes += int64(len(e.Raw))
			ch.dirty = true
			out[i] = storage.Stored{Seq: uint64(seq), StoredAt: now}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: put envelopes: %w", err)
	}
	return out, nil
}

// chargeEnvelopes charges each server for the distinct envelopes of the
// batch that are not in stored.
func chargeEnvelopes(ctx context.Context, b *batch, envs []storage.Envelope, first map[policy.ID]int, stored map[policy.ID]bool) error {
	for _, c := range ledger.EnvelopeCharges(envs, func(i int) bool { return first[envs[i].ID] == i && !stored[envs[i].ID] }) {
		if err := b.charge(ctx, c.Server, c.Delta); err != nil {
			return err
		}
	}
	return nil
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
	if err := storage.CheckPage(limit); err != nil {
		return nil, fmt.Errorf("sqlite: read channel: %w", err)
	}
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
	return s.rangeKeys(ctx, server, channel, from, to, limit, "")
}

func (s *Store) rangeKeys(ctx context.Context, server, channel policy.ID, from, to storage.Key, limit int, and string) ([]storage.Key, error) {
	if err := storage.CheckPage(limit); err != nil {
		return nil, fmt.Errorf("sqlite: range keys: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT time, id FROM envelopes WHERE `+rangeWhere+and+` ORDER BY time, id LIMIT ?`,
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
	return s.rangeFingerprint(ctx, server, channel, from, to, "")
}

func (s *Store) rangeFingerprint(ctx context.Context, server, channel policy.ID, from, to storage.Key, and string) (storage.Fingerprint, error) {
	var fp storage.Fingerprint
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM envelopes WHERE `+rangeWhere+and, rangeArgs(server, channel, from, to)...)
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
	err := s.write(ctx, func(b *batch) error {
		var server, channel []byte
		var size int64
		var dead bool
		var gone bool // its ciphertext already deleted (taken down by the operator)
		err := b.tx.QueryRowContext(ctx, `SELECT server, channel, size, tombstone IS NOT NULL, raw IS NULL FROM envelopes WHERE id = ?`, target[:]).
			Scan(&server, &channel, &size, &dead, &gone)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("envelope %s: %w", target, storage.ErrNotFound)
		}
		if err != nil || dead {
			return err
		}
		if gone { // its bytes were released then: keep the tombstone only
			_, err := b.exec(ctx, `UPDATE envelopes SET tombstone = ? WHERE id = ?`, tombstone, target[:])
			return err
		}
		ch, err := b.channel(ctx, policy.ID(server), policy.ID(channel))
		if err != nil {
			return err
		}
		if err := b.charge(ctx, policy.ID(server), ledger.Delta{Bytes: -size, Envelopes: -1}); err != nil {
			return err
		}
		if _, err := b.exec(ctx, `UPDATE envelopes SET raw = NULL, tombstone = ? WHERE id = ?`, tombstone, target[:]); err != nil {
			return err
		}
		ch.bytes -= size
		ch.dirty = true
		return nil
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
	err := s.write(ctx, func(b *batch) error {
		swept = storage.Swept{}
		if err := b.charge(ctx, server, ledger.Delta{}); err != nil { // hosted?
			return err
		}
		ch, err := b.channel(ctx, server, channel)
		if err != nil {
			return err
		}
		del := func(query string, args ...any) error {
			rows, err := b.query(ctx, query, args...)
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
		if live := ch.bytes - int64(swept.Bytes); r.MaxBytes > 0 && live > int64(r.MaxBytes) {
			// The oldest envelopes by their own (time, ID) key, not by
			// arrival, whose sizes add up to at least the excess: every
			// hub holding the same envelopes deletes the same ones.
			var cutTime int64
			var cutID []byte
			err := b.tx.QueryRowContext(ctx, `SELECT time, id FROM (
					SELECT time, id, SUM(size) OVER (ORDER BY time, id) AS running FROM envelopes
					WHERE server = ? AND channel = ? AND raw IS NOT NULL)
				WHERE running >= ? ORDER BY time, id LIMIT 1`, server[:], channel[:], live-int64(r.MaxBytes)).Scan(&cutTime, &cutID)
			if err != nil {
				return err
			}
			if err := del(`DELETE FROM envelopes WHERE server = ? AND channel = ? AND (time, id) <= (?, ?) RETURNING size, tombstone IS NOT NULL`,
				server[:], channel[:], cutTime, cutID); err != nil {
				return err
			}
		}
		if swept.Envelopes == 0 {
			return nil
		}
		ch.bytes -= int64(swept.Bytes)
		ch.dirty = true
		if err := b.charge(ctx, server, ledger.Delta{Bytes: -int64(swept.Bytes), Envelopes: -int64(swept.Envelopes)}); err != nil {
			return err
		}
		// The pragma frees one page per step (one result row each): drain it.
		rows, err := b.query(ctx, `PRAGMA incremental_vacuum`)
		if err != nil {
			return err
		}
		for rows.Next() {
		}
		rows.Close()
		return rows.Err()
	})
	if err != nil {
		return swept, fmt.Errorf("sqlite: sweep: %w", err)
	}
	return swept, nil
}
