package sqlite

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
		return b.tx.QueryRowContext(ctx, `INSERT INTO reports (server, channel, envelope, author, reporter, reason, evidence, msg_key, at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`, r.Server[:], r.Channel[:], r.Envelope[:], r.Author[:], r.Reporter[:],
			r.Reason, r.Evidence, r.Key, r.At.UnixMilli()).Scan(&seq)
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: report: %w", err)
	}
	return uint64(seq), nil
}

// Reports returns abuse reports after a sequence number.
func (s *Store) Reports(ctx context.Context, server policy.ID, after uint64, limit int) ([]storage.Report, error) {
	if err := storage.CheckPage(limit); err != nil {
		return nil, fmt.Errorf("sqlite: reports: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT seq, server, channel, envelope, author, reporter, reason, evidence, msg_key, at FROM reports
		WHERE (? OR server = ?) AND seq > ? ORDER BY seq LIMIT ?`, server.IsZero(), server[:], int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: reports: %w", unavailable(err))
	}
	defer rows.Close()
	var out []storage.Report
	for rows.Next() {
		var r storage.Report
		var seq, at int64
		var srv, ch, env, author, reporter []byte
		if err := rows.Scan(&seq, &srv, &ch, &env, &author, &reporter, &r.Reason, &r.Evidence, &r.Key, &at); err != nil {
			return nil, fmt.Errorf("sqlite: reports: %w", err)
		}
		r.Seq, r.At = uint64(seq), time.UnixMilli(at).UTC()
		r.Server, r.Channel, r.Envelope = policy.ID(srv), policy.ID(ch), policy.ID(env)
		r.Author, r.Reporter = policy.PublicKey(author), policy.PublicKey(reporter)
		out = append(out, r)
	}
	return out, rows.Err()
}
