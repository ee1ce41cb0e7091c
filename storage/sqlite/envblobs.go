package sqlite

import (
	"context"
	"fmt"

	"github.com/guildhall/guildhall/policy"
)

// AddEnvelopeBlobs records the blobs an envelope names.
func (s *Store) AddEnvelopeBlobs(ctx context.Context, server, envelope policy.ID, blobs []policy.ID) error {
	if len(blobs) == 0 {
		return nil
	}
	err := s.write(ctx, func(b *batch) error {
		for _, id := range blobs {
			if _, err := b.exec(ctx, `INSERT OR IGNORE INTO envelope_blobs (server, blob, envelope) VALUES (?, ?, ?)`, server[:], id[:], envelope[:]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: envelope blobs: %w", err)
	}
	return nil
}

// DropEnvelopeBlobs forgets a deleted envelope's blobs and returns those no
// other envelope of the server names.
func (s *Store) DropEnvelopeBlobs(ctx context.Context, server, envelope policy.ID) ([]policy.ID, error) {
	var orphans []policy.ID
	err := s.write(ctx, func(b *batch) (err error) {
		orphans, err = dropLinks(ctx, b, server, `DELETE FROM envelope_blobs WHERE server = ? AND envelope = ? RETURNING blob`, server[:], envelope[:])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: envelope blobs: %w", err)
	}
	return orphans, nil
}

// DropSweptBlobs forgets what envelopes no longer stored named and returns
// the blobs no envelope of the server names any more.
func (s *Store) DropSweptBlobs(ctx context.Context, server policy.ID) ([]policy.ID, error) {
	var orphans []policy.ID
	err := s.write(ctx, func(b *batch) (err error) {
		orphans, err = dropLinks(ctx, b, server, `DELETE FROM envelope_blobs WHERE server = ?
			AND NOT EXISTS (SELECT 1 FROM envelopes e WHERE e.id = envelope_blobs.envelope) RETURNING blob`, server[:])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: envelope blobs: %w", err)
	}
	return orphans, nil
}

// dropLinks runs a DELETE ... RETURNING blob of envelope_blobs and returns
// the blobs it unlinked that no envelope of the server names any more.
func dropLinks(ctx context.Context, b *batch, server policy.ID, query string, args ...any) ([]policy.ID, error) {
	rows, err := b.tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	named := map[policy.ID]bool{}
	for rows.Next() {
		var id []byte
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		named[policy.ID(id)] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	b.wrote = b.wrote || len(named) > 0
	var orphans []policy.ID
	for id := range named {
		var still bool
		if err := b.tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM envelope_blobs WHERE server = ? AND blob = ?)`, server[:], id[:]).Scan(&still); err != nil {
			return nil, err
		}
		if !still {
			orphans = append(orphans, id)
		}
	}
	return orphans, nil
}
