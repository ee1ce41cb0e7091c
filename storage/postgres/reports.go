package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// PutReport keeps an abuse report.
func (s *Store) PutReport(ctx context.Context, r storage.Report) (uint64, error) {
	var seq int64
	err := s.write(ctx, func(b *batch) error {
		b.wrote = true
		return b.tx.QueryRow(ctx, `INSERT INTO reports (server, channel, envelope, author, reporter, reason, evidence, msg_key, at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING seq`, r.Server[:], r.Channel[:], r.Envelope[:], r.Author[:], r.Reporter[:],
			r.Reason, r.Evidence, r.Key, r.At.UnixMilli()).Scan(&seq)
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: report: %w", err)
	}
	return uint64(seq), nil
}

// Reports returns abuse reports after a sequence number.
func (s *Store) Reports(ctx context.Context, server policy.ID, after uint64, limit int) ([]storage.Report, error) {
	if err := storage.CheckPage(limit); err != nil {
		return nil, fmt.Errorf("postgres: reports: %w", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT seq, server, channel, envelope, author, reporter, reason, evidence, msg_key, at FROM reports
		WHERE ($1 OR server = $2) AND seq > $3 ORDER BY seq LIMIT $4`, server.IsZero(), server[:], int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: reports: %w", unavailable(err))
	}
	defer rows.Close()
	var out []storage.Report
	for rows.Next() {
		var r storage.Report
		var seq, at int64
		var srv, ch, env, author, reporter []byte
		if err := rows.Scan(&seq, &srv, &ch, &env, &author, &reporter, &r.Reason, &r.Evidence, &r.Key, &at); err != nil {
			return nil, fmt.Errorf("postgres: reports: %w", unavailable(err))
		}
		r.Seq, r.At = uint64(seq), time.UnixMilli(at).UTC()
		r.Server, r.Channel, r.Envelope = policy.ID(srv), policy.ID(ch), policy.ID(env)
		r.Author, r.Reporter = policy.PublicKey(author), policy.PublicKey(reporter)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: reports: %w", unavailable(err))
	}
	return out, nil
}
