package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/guildhall/guildhall/internal/ledger"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// AppendEvents stores new events of one server.
func (s *Store) AppendEvents(ctx context.Context, server policy.ID, events []storage.Event) (int, error) {
	for _, e := range events {
		if len(e.Raw) == 0 || policy.Sum(e.Raw) != e.ID {
			return 0, fmt.Errorf("sqlite: append events: %w: event %s does not hash to its id", storage.ErrInvalid, e.ID)
		}
	}
	var added int
	err := s.write(ctx, func(b *batch) error {
		tx := b.tx
		added = 0
		seen := make(map[policy.ID]bool, len(events))
		var fresh []storage.Event
		var bytes int64
		for _, e := range events {
			if seen[e.ID] {
				continue
			}
			seen[e.ID] = true
			var one int
			switch err := tx.QueryRowContext(ctx, `SELECT 1 FROM events WHERE id = ?`, e.ID[:]).Scan(&one); err {
			case sql.ErrNoRows:
				fresh = append(fresh, e)
				bytes += int64(len(e.Raw))
			case nil:
			default:
				return err
			}
		}
		if len(fresh) == 0 {
			return nil
		}
		if err := b.charge(ctx, server, ledger.Delta{Bytes: bytes}); err != nil {
			return err
		}
		var next int64
		if err := tx.QueryRowContext(ctx, `SELECT next_event_seq FROM tenants WHERE server = ?`, server[:]).Scan(&next); err != nil {
			return err
		}
		for _, e := range fresh {
			if _, err := b.exec(ctx, `INSERT INTO events (server, seq, id, raw) VALUES (?, ?, ?, ?)`, server[:], next, e.ID[:], e.Raw); err != nil {
				return err
			}
			next++
		}
		added = len(fresh)
		_, err := b.exec(ctx, `UPDATE tenants SET next_event_seq = ? WHERE server = ?`, next, server[:])
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: append events: %w", err)
	}
	return added, nil
}

// Events returns a server's events after a cursor.
func (s *Store) Events(ctx context.Context, server policy.ID, after uint64, limit int) ([]storage.Event, error) {
	if err := storage.CheckPage(limit); err != nil {
		return nil, fmt.Errorf("sqlite: events: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT seq, id, raw FROM events WHERE server = ? AND seq > ? ORDER BY seq LIMIT ?`, server[:], int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: events: %w", err)
	}
	defer rows.Close()
	var out []storage.Event
	for rows.Next() {
		var e storage.Event
		var id []byte
		if err := rows.Scan(&e.Seq, &id, &e.Raw); err != nil {
			return nil, fmt.Errorf("sqlite: events: %w", err)
		}
		copy(e.ID[:], id)
		out = append(out, e)
	}
	return out, rows.Err()
}
