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
	err := s.write(ctx, func(b *batch) error {
		orphans = nil
		rows, err := b.tx.QueryContext(ctx, `DELETE FROM envelope_blobs WHERE server = ? AND envelope = ? RETURNING blob`, server[:], envelope[:])
		if err != nil {
			return err
		}
		var named []policy.ID
		for rows.Next() {
			var id []byte
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			named = append(named, policy.ID(id))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		b.wrote = b.wrote || len(named) > 0
		for _, id := range named {
			var still bool
			if err := b.tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM envelope_blobs WHERE server = ? AND blob = ?)`, server[:], id[:]).Scan(&still); err != nil {
				return err
			}
			if !still {
				orphans = append(orphans, id)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: envelope blobs: %w", err)
	}
	return orphans, nil
}
