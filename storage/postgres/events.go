package postgres

import (
	"context"
	"fmt"

	"github.com/guildhall/guildhall/internal/ledger"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// AppendEvents stores new events of one server.
func (s *Store) AppendEvents(ctx context.Context, server policy.ID, events []storage.Event) (int, error) {
	ids := make([][]byte, 0, len(events))
	for _, e := range events {
		if len(e.Raw) == 0 || policy.Sum(e.Raw) != e.ID {
			return 0, fmt.Errorf("postgres: append events: %w: event %s does not hash to its id", storage.ErrInvalid, e.ID)
		}
		ids = append(ids, e.ID[:])
	}
	var added int
	err := s.write(ctx, func(b *batch) error {
		added = 0
		if err := b.lockTenants(ctx, []policy.ID{server}); err != nil { // serialises appends per server
			return err
		}
		stored := map[policy.ID]bool{}
		rows, err := b.tx.Query(ctx, `SELECT id FROM events WHERE id = ANY($1)`, ids)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id []byte
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			stored[policy.ID(id)] = true
		}
		rows.Close()
		var fresh []storage.Event
		var bytes int64
		for _, e := range events {
			if !stored[e.ID] {
				stored[e.ID] = true
				fresh = append(fresh, e)
				bytes += int64(len(e.Raw))
			}
		}
		if len(fresh) == 0 {
			return nil
		}
		if err := b.charge(ctx, server, ledger.Delta{Bytes: bytes}); err != nil {
			return err
		}
		var next int64
		if err := b.tx.QueryRow(ctx, `SELECT next_event_seq FROM tenants WHERE server = $1`, server[:]).Scan(&next); err != nil {
			return err
		}
		seqs, fids, raws := make([]int64, len(fresh)), make([][]byte, len(fresh)), make([][]byte, len(fresh))
		for i, e := range fresh {
			seqs[i], fids[i], raws[i] = next+int64(i), e.ID[:], e.Raw
		}
		if _, err := b.exec(ctx, `INSERT INTO events (server, seq, id, raw) SELECT $1, * FROM unnest($2::bigint[], $3::bytea[], $4::bytea[])`,
			server[:], seqs, fids, raws); err != nil {
			return err
		}
		added = len(fresh)
		_, err = b.exec(ctx, `UPDATE tenants SET next_event_seq = $1 WHERE server = $2`, next+int64(len(fresh)), server[:])
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: append events: %w", err)
	}
	return added, nil
}

// Events returns a server's events after a cursor.
func (s *Store) Events(ctx context.Context, server policy.ID, after uint64, limit int) ([]storage.Event, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := storage.CheckPage(limit); err != nil {
		return nil, fmt.Errorf("postgres: events: %w", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT seq, id, raw FROM events WHERE server = $1 AND seq > $2 ORDER BY seq LIMIT $3`, server[:], int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: events: %w", unavailable(err))
	}
	defer rows.Close()
	var out []storage.Event
	for rows.Next() {
		var e storage.Event
		var id []byte
		if err := rows.Scan(&e.Seq, &id, &e.Raw); err != nil {
			return nil, fmt.Errorf("postgres: events: %w", err)
		}
		e.ID = policy.ID(id)
		out = append(out, e)
	}
	return out, rows.Err()
}
