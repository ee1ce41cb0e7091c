package postgres

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
	ids := make([][]byte, len(blobs))
	for i, id := range blobs {
		ids[i] = id[:]
	}
	err := s.write(ctx, func(b *batch) error {
		_, err := b.exec(ctx, `INSERT INTO envelope_blobs (server, blob, envelope) SELECT $1, unnest($2::bytea[]), $3 ON CONFLICT DO NOTHING`, server[:], ids, envelope[:])
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: envelope blobs: %w", err)
	}
	return nil
}

// DropEnvelopeBlobs forgets a deleted envelope's blobs and returns those no
// other envelope of the server names.
func (s *Store) DropEnvelopeBlobs(ctx context.Context, server, envelope policy.ID) ([]policy.ID, error) {
	return s.dropLinks(ctx, `WITH gone AS (DELETE FROM envelope_blobs WHERE server = $1 AND envelope = $2 RETURNING blob)
		SELECT DISTINCT g.blob FROM gone g WHERE NOT EXISTS (SELECT 1 FROM envelope_blobs e WHERE e.server = $1 AND e.blob = g.blob AND e.envelope <> $2)`,
		server[:], envelope[:])
}

// DropSweptBlobs forgets what envelopes no longer stored named and returns
// the blobs no envelope of the server names any more. (The statement sees
// the links as before its DELETE, hence the second NOT EXISTS.)
func (s *Store) DropSweptBlobs(ctx context.Context, server policy.ID) ([]policy.ID, error) {
	return s.dropLinks(ctx, `WITH gone AS (DELETE FROM envelope_blobs l WHERE l.server = $1
			AND NOT EXISTS (SELECT 1 FROM envelopes e WHERE e.id = l.envelope) RETURNING l.blob, l.envelope)
		SELECT DISTINCT g.blob FROM gone g WHERE NOT EXISTS (SELECT 1 FROM envelope_blobs e WHERE e.server = $1 AND e.blob = g.blob
			AND NOT EXISTS (SELECT 1 FROM gone g2 WHERE g2.envelope = e.envelope AND g2.blob = e.blob))`, server[:])
}

// dropLinks runs a statement that deletes envelope_blobs rows and returns
// the blobs left unnamed, in one write.
func (s *Store) dropLinks(ctx context.Context, query string, args ...any) ([]policy.ID, error) {
	var orphans []policy.ID
	err := s.write(ctx, func(b *batch) error {
		orphans = nil
		b.wrote = true
		rows, err := b.tx.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id []byte
			if err := rows.Scan(&id); err != nil {
				return err
			}
			orphans = append(orphans, policy.ID(id))
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: envelope blobs: %w", err)
	}
	return orphans, nil
}
