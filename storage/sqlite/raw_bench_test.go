package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"path/filepath"
	"testing"
)

// BenchmarkRawInsert is SQLite's own limit for the hub's writes: the same
// rows (1 KiB envelopes in 16 channels, sequences per channel) into a table
// defined and indexed as the hub's, inserted by one writer in transactions
// of 256 rows (WAL, synchronous=FULL: every commit durable), with none of
// the hub's checks.
//
//	go test ./storage/sqlite -run '^$' -bench RawInsert -benchtime 200000x
func BenchmarkRawInsert(b *testing.B) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(b.TempDir(), "raw.db")+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	for _, q := range []string{
		`CREATE TABLE raw_envelopes (id BLOB PRIMARY KEY, server BLOB NOT NULL, channel BLOB NOT NULL, seq INTEGER NOT NULL,
			time INTEGER NOT NULL, sender BLOB NOT NULL, stored_at INTEGER NOT NULL, size INTEGER NOT NULL, raw BLOB, tombstone BLOB)`,
		`CREATE UNIQUE INDEX raw_by_seq ON raw_envelopes (server, channel, seq)`,
		`CREATE INDEX raw_by_key ON raw_envelopes (server, channel, time, id)`,
	} {
		if _, err := db.Exec(q); err != nil {
			b.Fatal(err)
		}
	}
	var seqs [16]int64
	payload := make([]byte, 1024)
	rand.Read(payload)
	b.SetBytes(1024)
	b.ResetTimer()
	for start := 0; start < b.N; start += 256 {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		st, err := tx.Prepare("INSERT INTO raw_envelopes (id, server, channel, seq, time, sender, stored_at, size, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
		if err != nil {
			b.Fatal(err)
		}
		for i := start; i < min(start+256, b.N); i++ {
			id := make([]byte, 32)
			binary.BigEndian.PutUint64(id, uint64(i))
			rand.Read(id[8:])
			ch := i % 16
			seqs[ch]++
			if _, err := st.Exec(id, payload[:32], []byte{byte(ch)}, seqs[ch], i, payload[64:96], 0, len(payload), payload); err != nil {
				b.Fatal(err)
			}
		}
		st.Close()
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
