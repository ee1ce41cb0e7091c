package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/guildhall/guildhall/internal/ledger"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// PutTakedown records a takedown; an envelope's ciphertext goes with it.
func (s *Store) PutTakedown(ctx context.Context, t storage.Takedown) error {
	if len(t.Record) == 0 {
		return fmt.Errorf("sqlite: takedown: %w: no record", storage.ErrInvalid)
	}
	err := s.write(ctx, func(b *batch) error {
		if _, err := b.exec(ctx, `INSERT INTO takedowns (target, server, kind, record, at) VALUES (?, ?, ?, ?, ?)
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
		err := b.tx.QueryRowContext(ctx, `SELECT server, channel, size, raw IS NULL FROM envelopes WHERE id = ?`, t.Target[:]).
			Scan(&server, &channel, &size, &gone)
		if errors.Is(err, sql.ErrNoRows) || err == nil && gone {
			return nil // never stored here, or already deleted: the record keeps it out
		}
		if err != nil {
			return err
		}
		if policy.ID(server) != t.Server {
			return fmt.Errorf("%w: envelope %s is not of server %s", storage.ErrInvalid, t.Target, t.Server)
		}
		ch, err := b.channel(ctx, policy.ID(server), policy.ID(channel))
		if err != nil {
			return err
		}
		if err := b.charge(ctx, policy.ID(server), ledger.Delta{Bytes: -size, Envelopes: -1}); err != nil {
			return err
		}
		if _, err := b.exec(ctx, `UPDATE envelopes SET raw = NULL WHERE id = ?`, t.Target[:]); err != nil {
			return err
		}
		ch.bytes -= size
		ch.dirty = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: takedown: %w", err)
	}
	return nil
}

// DropTakedown removes a takedown record.
func (s *Store) DropTakedown(ctx context.Context, target policy.ID) error {
	err := s.write(ctx, func(b *batch) error {
		res, err := b.exec(ctx, `DELETE FROM takedowns WHERE target = ?`, target[:])
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("takedown of %s: %w", target, storage.ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: takedown: %w", err)
	}
	return nil
}

// TakenDown returns the takedowns among targets.
func (s *Store) TakenDown(ctx context.Context, targets []policy.ID) (map[policy.ID]storage.Takedown, error) {
	out := map[policy.ID]storage.Takedown{}
	for len(targets) > 0 {
		chunk := targets[:min(len(targets), 500)]
		targets = targets[len(chunk):]
		args := make([]any, len(chunk))
		for i, t := range chunk {
			args[i] = t[:]
		}
		rows, err := s.r.QueryContext(ctx, `SELECT target, server, kind, record, at FROM takedowns WHERE target IN (?`+strings.Repeat(", ?", len(chunk)-1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: takedowns: %w", unavailable(err))
		}
		tds, err := scanTakedowns(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: takedowns: %w", err)
		}
		for _, t := range tds {
			out[t.Target] = t
		}
	}
	return out, nil
}

// Takedowns lists a server's takedowns (all servers' for the zero ID).
func (s *Store) Takedowns(ctx context.Context, server policy.ID, limit int) ([]storage.Takedown, error) {
	if err := storage.CheckPage(limit); err != nil {
		return nil, fmt.Errorf("sqlite: takedowns: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT target, server, kind, record, at FROM takedowns WHERE ? OR server = ? ORDER BY at, target LIMIT ?`,
		server.IsZero(), server[:], limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: takedowns: %w", unavailable(err))
	}
	tds, err := scanTakedowns(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlite: takedowns: %w", err)
	}
	return tds, nil
}

func scanTakedowns(rows *sql.Rows) ([]storage.Takedown, error) {
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
		var server any
		if !e.Server.IsZero() {
			server = e.Server[:]
		}
		b.wrote = true
		return b.tx.QueryRowContext(ctx, `INSERT INTO audit_log (at, actor, source, action, server, target, result) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING seq`,
			e.At.UnixMilli(), e.Actor, e.Source, e.Action, server, e.Target, e.Result).Scan(&seq)
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: audit: %w", err)
	}
	return uint64(seq), nil
}

// Audit returns audit entries after a sequence number.
func (s *Store) Audit(ctx context.Context, after uint64, limit int) ([]storage.AuditEntry, error) {
	if err := storage.CheckPage(limit); err != nil {
		return nil, fmt.Errorf("sqlite: audit: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT seq, at, actor, source, action, server, target, result FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?`, int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: audit: %w", unavailable(err))
	}
	defer rows.Close()
	var out []storage.AuditEntry
	for rows.Next() {
		var e storage.AuditEntry
		var seq, at int64
		var server []byte
		if err := rows.Scan(&seq, &at, &e.Actor, &e.Source, &e.Action, &server, &e.Target, &e.Result); err != nil {
			return nil, fmt.Errorf("sqlite: audit: %w", err)
		}
		e.Seq, e.At = uint64(seq), time.UnixMilli(at).UTC()
		copy(e.Server[:], server)
		out = append(out, e)
	}
	return out, rows.Err()
}
