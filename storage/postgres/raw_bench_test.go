package postgres

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
)

// BenchmarkRawCopy is the database's own limit for the hub's writes: the
// same rows (1 KiB envelopes in 16 channels, sequences per channel) into a
// table defined and indexed as the hub's envelopes table, written by 4
// connections with COPY in transactions of 256 rows, each committed durably
// (synchronous_commit=on), with none of the hub's checks (quota, existence,
// usage). The hub's ingest divided by this says how close it is to the
// database.
//
//	go test ./storage/postgres -run '^$' -bench RawCopy -benchtime 200000x
func BenchmarkRawCopy(b *testing.B) {
	s := openBench(b)
	ctx := context.Background()
	t := s.cfg.Schema + ".raw_envelopes"
	for _, q := range []string{
		`CREATE TABLE ` + t + ` (id bytea PRIMARY KEY, server bytea NOT NULL, channel bytea NOT NULL, seq bigint NOT NULL, time bigint NOT NULL,
			sender bytea NOT NULL, stored_at bigint NOT NULL, size integer NOT NULL, raw bytea, tombstone bytea)`,
		`ALTER TABLE ` + t + ` ALTER COLUMN raw SET STORAGE EXTERNAL`,
		`CREATE UNIQUE INDEX ON ` + t + ` (server, channel, seq)`,
		`CREATE INDEX ON ` + t + ` (server, channel, time, id)`,
	} {
		if _, err := s.pool.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	var seqs [16]atomic.Int64
	payload := make([]byte, 1024)
	rand.Read(payload)
	var next atomic.Int64
	b.SetBytes(1024)
	b.ResetTimer()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				start := next.Add(256) - 256
				if start >= int64(b.N) {
					return
				}
				n := min(256, int64(b.N)-start)
				rows := make([][]any, n)
				for i := range rows {
					id := make([]byte, 32)
					binary.BigEndian.PutUint64(id, uint64(start+int64(i)))
					rand.Read(id[8:])
					ch := (start + int64(i)) % 16
					rows[i] = []any{id, payload[:32], []byte{byte(ch)}, seqs[ch].Add(1), start + int64(i), payload[64:96], int64(0), int32(len(payload)), payload}
				}
				tx, err := s.pool.Begin(ctx)
				if err == nil {
					_, err = tx.CopyFrom(ctx, pgx.Identifier{s.cfg.Schema, "raw_envelopes"},
						[]string{"id", "server", "channel", "seq", "time", "sender", "stored_at", "size", "raw"}, pgx.CopyFromRows(rows))
				}
				if err == nil {
					err = tx.Commit(ctx)
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
