package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/guildhall/guildhall/internal/ledger"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

const queryTakedownTarget = `SELECT server, channel, size, raw IS NULL FROM envelopes WHERE id = $1`

// PutTakedown records a takedown; an envelope's ciphertext goes with it.
func (s *Store) PutTakedown(ctx context.Context, t storage.Takedown) error {
	if len(t.Record) == 0 {
		return fmt.Errorf("postgres: takedown: %w: no record", storage.ErrInvalid)
	}
	err := s.write(ctx, func(b *batch) error {
		if _, err := b.exec(ctx, `INSERT INTO takedowns (target, server, kind, record, at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (target) DO UPDATE SET record = excluded.record, at = excluded.at`,
			t.Target[:], t.Server[:], t.Kind, t.Record, t.At.UnixMilli()); err != nil {
			return err
		}
		if t.Kind != policy.TakedownEnvelope {
			return nil
		}
		var server, channel []byte
		var size int64
		var gone bool
		err := b.tx.QueryRow(ctx, queryTakedownTarget, t.Target[:]).Scan(&server, &channel, &size, &gone)
		if isNoRows(err) || err == nil && gone {
			return nil // never stored here, or already deleted: the record keeps it out
		}
		if err != nil {
			return err
		}
		if policy.ID(server) != t.Server {
			return fmt.Errorf("%w: envelope %s is not of server %s", storage.ErrInvalid, t.Target, t.Server)
		}
		if err := b.lockTenants(ctx, []policy.ID{policy.ID(server)}); err != nil {
			return err
		}
		ch, err := b.channel(ctx, policy.ID(server), policy.ID(channel))
		if err != nil {
			return err
		}
		// Re-read under the locks: a concurrent process may have deleted it.
		if err := b.tx.QueryRow(ctx, queryTakedownTarget, t.Target[:]).Scan(&server, &channel, &size, &gone); err != nil || gone {
			return err
		}
		if err := b.charge(ctx, policy.ID(server), ledger.Delta{Bytes: -size, Envelopes: -1}); err != nil {
			return err
		}
		if _, err := b.exec(ctx, `UPDATE envelopes SET raw = NULL WHERE id = $1`, t.Target[:]); err != nil {
			return err
		}
		ch.bytes -= size
		ch.dirty = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: takedown: %w", err)
	}
	return nil
}

// DropTakedown removes a takedown record.
func (s *Store) DropTakedown(ctx context.Context, target policy.ID) error {
	err := s.write(ctx, func(b *batch) error {
		n, err := b.exec(ctx, `DELETE FROM takedowns WHERE target = $1`, target[:])
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("takedown of %s: %w", target, storage.ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: takedown: %w", err)
	}
	return nil
}

// TakenDown returns the takedowns among targets.
func (s *Store) TakenDown(ctx context.Context, targets []policy.ID) (map[policy.ID]storage.Takedown, error) {
	out := map[policy.ID]storage.Takedown{}
	if len(targets) == 0 {
		return out, nil
	}
	ids := make([][]byte, len(targets))
	for i, t := range targets {
		ids[i] = t[:]
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT target, server, kind, record, at FROM takedowns WHERE target = ANY($1::bytea[])`, ids)
	if err != nil {
		return nil, fmt.Errorf("postgres: takedowns: %w", unavailable(err))
	}
	tds, err := scanTakedowns(rows)
	if err != nil {
		return nil, fmt.Errorf("postgres: takedowns: %w", unavailable(err))
	}
	for _, t := range tds {
		out[t.Target] = t
	}
	return out, nil
}

// Takedowns lists a server's takedowns (all servers' for the zero ID).
func (s *Store) Takedowns(ctx context.Context, server policy.ID, limit int) ([]storage.Takedown, error) {
	if err := storage.CheckPage(limit); err != nil {
		return nil, fmt.Errorf("postgres: takedowns: %w", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT target, server, kind, record, at FROM takedowns WHERE $1 OR server = $2 ORDER BY at, target LIMIT $3`,
		server.IsZero(), server[:], limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: takedowns: %w", unavailable(err))
	}
	tds, err := scanTakedowns(rows)
	if err != nil {
		return nil, fmt.Errorf("postgres: takedowns: %w", unavailable(err))
	}
	return tds, nil
}

func scanTakedowns(rows pgx.Rows) ([]storage.Takedown, error) {
	defer rows.Close()
	var out []storage.Takedown
	for rows.Next() {
		var t storage.Takedown
		var target, server []byte
		var at int64
		if err := rows.Scan(&target, &server, &t.Kind, &t.Record, &at); err != nil {
			return nil, err
		}
		t.Target, t.Server, t.At = policy.ID(target), policy.ID(server), time.UnixMilli(at).UTC()
		out = append(out, t)
	}
	return out, rows.Err()
}

// AppendAudit adds an entry to the audit log.
func (s *Store) AppendAudit(ctx context.Context, e storage.AuditEntry) (uint64, error) {
	var seq int64
	err := s.write(ctx, func(b *batch) error {
		var server []byte
		if !e.Server.IsZero() {
			server = e.Server[:]
		}
		b.wrote = true
		return b.tx.QueryRow(ctx, `INSERT INTO audit_log (at, actor, source, action, server, target, result) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq`,
			e.At.UnixMilli(), e.Actor, e.Source, e.Action, server, e.Target, e.Result).Scan(&seq)
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: audit: %w", err)
	}
	return uint64(seq), nil
}

// Audit returns audit entries after a sequence number.
func (s *Store) Audit(ctx context.Context, after uint64, limit int) ([]storage.AuditEntry, error) {
	if err := storage.CheckPage(limit); err != nil {
		return nil, fmt.Errorf("postgres: audit: %w", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT seq, at, actor, source, action, server, target, result FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2`, int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: audit: %w", unavailable(err))
	}
	defer rows.Close()
	var out []storage.AuditEntry
	for rows.Next() {
		var e storage.AuditEntry
		var seq, at int64
		var server []byte
		if err := rows.Scan(&seq, &at, &e.Actor, &e.Source, &e.Action, &server, &e.Target, &e.Result); err != nil {
			return nil, fmt.Errorf("postgres: audit: %w", unavailable(err))
		}
		e.Seq, e.At = uint64(seq), time.UnixMilli(at).UTC()
		copy(e.Server[:], server)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: audit: %w", unavailable(err))
	}
	return out, nil
}
