package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
	"github.com/guildhall/guildhall/storage/storagetest"
)

// openTest opens a store in a fresh schema of the test database.
func openTest(t testing.TB) *Store {
	t.Helper()
	url := storagetest.Require(t, "GUILDHALL_TEST_POSTGRES")
	s, err := Open(context.Background(), Config{URL: url, Schema: fmt.Sprintf("t_%x", rand.Uint64())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.pool.Exec(context.Background(), "DROP SCHEMA "+s.cfg.Schema+" CASCADE")
		s.Close()
	})
	return s
}

func TestConformance(t *testing.T) {
	storagetest.RunMeta(t, func(t *testing.T) storagetest.Meta { return openTest(t) })
}

// With tiny sweep chunks, every sweep of the conformance suite spans
// several transactions; the results and the usage must be the same.
func TestConformanceSweepsInManyTransactions(t *testing.T) {
	defer func(c, n int) { sweepChunk, sweepChunks = c, n }(sweepChunk, sweepChunks)
	sweepChunk, sweepChunks = 1, 2
	storagetest.RunMeta(t, func(t *testing.T) storagetest.Meta { return openTest(t) })
}

// TestSequencesAcrossProcesses: two stores on one schema (separate pools and
// group committers, as two hub processes) write one channel concurrently
// while a reader follows it; sequences stay dense and never appear out of order.
func TestSequencesAcrossProcesses(t *testing.T) {
	a := openTest(t)
	b, err := Open(context.Background(), Config{URL: a.cfg.URL, Schema: a.cfg.Schema})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	server, channel := storagetest.ServerID("multi"), storagetest.ChannelID("multi")
	if err := a.PutTenant(ctx, server, storage.Quota{}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	readErr := make(chan error, 1)
	go func() { readErr <- storagetest.Follow(b, server, channel, stop) }()
	var wg sync.WaitGroup
	for w := range 40 {
		st := a
		if w%2 == 1 {
			st = b
		}
		wg.Go(func() {
			for i := range 25 {
				if _, err := st.PutEnvelopes(ctx, []storage.Envelope{storagetest.Envelope(server, channel, w*100+i, 300)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	if err := <-readErr; err != nil {
		t.Fatal(err)
	}
	all, err := a.ReadChannel(ctx, server, channel, 0, 10_000)
	if err != nil || len(all) != 1000 || all[999].Seq != 1000 {
		t.Fatalf("%d envelopes, last seq %d, %v; want 1000 dense", len(all), all[len(all)-1].Seq, err)
	}
}

// TestQueriesUseIndexes runs EXPLAIN on every query of the read and sweep
// paths against a table large enough for the planner to care, and fails on
// a sequential scan of the envelope table.
func TestQueriesUseIndexes(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	var servers [][]byte
	for i := range 20 {
		server := storagetest.ServerID(fmt.Sprintf("explain-%d", i))
		servers = append(servers, server[:])
		if err := s.PutTenant(ctx, server, storage.Quota{}); err != nil {
			t.Fatal(err)
		}
	}
	// 20,000 envelopes over 20 servers and 10 channels each, inserted
	// directly, then ANALYZE so the planner sees the real distribution.
	if _, err := s.pool.Exec(ctx, `INSERT INTO envelopes (id, server, channel, seq, time, sender, stored_at, size, raw)
		SELECT sha256(int8send(g)), (SELECT s FROM unnest($1::bytea[]) WITH ORDINALITY AS u(s, n) WHERE n = 1 + g % 20),
			sha256(int8send(g % 200)), g, 1767225600000 + g, '\x00', 0, 100, '\x00'
		FROM generate_series(1, 20000) AS g`, servers); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `ANALYZE envelopes`); err != nil {
		t.Fatal(err)
	}
	id := policy.Sum([]byte("x"))
	srv, ch := policy.ID(servers[3]), policy.Sum([]byte("c"))
	max := policy.ID{}
	for i := range max {
		max[i] = 0xff
	}
	for name, q := range map[string]struct {
		sql  string
		args []any
	}{
		"read channel":      {queryReadChannel, []any{srv[:], ch[:], int64(10), 1000}},
		"get envelope":      {queryGetEnvelope, []any{id[:]}},
		"range keys":        {queryRangeKeys, append(rangeArgs(srv, ch, storage.Key{}, storage.Key{Time: 1 << 62, ID: max}), 100)},
		"range fingerprint": {queryRangeIDs, rangeArgs(srv, ch, storage.Key{Time: 5}, storage.Key{Time: 1 << 62, ID: max})},
		"age sweep":         {queryAgeSweep, []any{srv[:], ch[:], int64(1767225600100), sweepChunk}},
		"size sweep":        {querySizeSweep, []any{srv[:], ch[:], int64(100), id[:], sweepChunk}},
		"tombstone target":  {queryTombstoneTarget, []any{id[:]}},
		"existence":         {`SELECT id, seq, stored_at FROM envelopes WHERE id = ANY($1)`, []any{[][]byte{id[:]}}},
	} {
		t.Run(name, func(t *testing.T) {
			tx, err := s.pool.Begin(ctx) // EXPLAIN ANALYZE would run the deletes: plain EXPLAIN, rolled back anyway
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			rows, err := tx.Query(ctx, "EXPLAIN "+q.sql, q.args...)
			if err != nil {
				t.Fatal(err)
			}
			var plan []string
			for rows.Next() {
				var line string
				if err := rows.Scan(&line); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, line)
			}
			joined := strings.Join(plan, "\n")
			if strings.Contains(joined, "Seq Scan on envelopes") {
				t.Fatalf("sequential scan of envelopes:\n%s", joined)
			}
			if !strings.Contains(joined, "Index") {
				t.Fatalf("no index in the plan:\n%s", joined)
			}
		})
	}
}

func TestMain(m *testing.M) {
	storagetest.CrashChild(func(ctx context.Context) (storagetest.Writer, error) {
		s, err := Open(ctx, Config{URL: os.Getenv("GUILDHALL_TEST_POSTGRES"), Schema: os.Getenv(crashSchema)})
		if err != nil {
			return nil, err
		}
		return storagetest.EnvelopeWriter(s), nil
	})
	os.Exit(m.Run())
}

const crashSchema = "GUILDHALL_CRASH_PG_SCHEMA"

// TestCrashSafety kills a writing hub process with SIGKILL and finds every
// write it acknowledged.
func TestCrashSafety(t *testing.T) {
	s := openTest(t)
	if err := s.PutTenant(context.Background(), storagetest.ServerID("crash"), storage.Quota{}); err != nil {
		t.Fatal(err)
	}
	storagetest.RunCrash(t, 3000, []string{crashSchema + "=" + s.cfg.Schema}, func(ctx context.Context) (storagetest.Lookup, func(), error) {
		r, err := Open(ctx, Config{URL: s.cfg.URL, Schema: s.cfg.Schema})
		if err != nil {
			return nil, nil, err
		}
		return storagetest.EnvelopeLookup(r), func() { r.Close() }, nil
	})
}

func openBench(b *testing.B) *Store { return openTest(b) }

// BenchmarkIngest64: durable 1 KiB envelopes from 64 concurrent writers.
func BenchmarkIngest64(b *testing.B) { storagetest.BenchIngest(b, openBench(b), 64) }

// BenchmarkReadChannel1000: 1,000 envelopes from a cursor.
func BenchmarkReadChannel1000(b *testing.B) { storagetest.BenchReadChannel(b, openBench(b)) }

// TestSweptSpaceIsReused: rows deleted by retention are reclaimed by vacuum
// and reused, so the table does not grow when as much is written again.
func TestSweptSpaceIsReused(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	server, channel := storagetest.ServerID("reuse"), storagetest.ChannelID("reuse")
	if err := s.PutTenant(ctx, server, storage.Quota{}); err != nil {
		t.Fatal(err)
	}
	fill := func(from int) {
		for i := from; i < from+3000; i += 500 {
			batch := make([]storage.Envelope, 500)
			for j := range batch {
				batch[j] = storagetest.Envelope(server, channel, i+j, 1500)
			}
			if _, err := s.PutEnvelopes(ctx, batch); err != nil {
				t.Fatal(err)
			}
		}
	}
	size := func() (n int64) {
		if err := s.pool.QueryRow(ctx, `SELECT pg_total_relation_size('envelopes')`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	fill(0)
	first := size()
	if sw, err := s.Sweep(ctx, server, channel, storage.Retention{MaxBytes: 1}); err != nil || sw.Envelopes != 3000 {
		t.Fatalf("sweep = %+v, %v", sw, err)
	}
	if _, err := s.pool.Exec(ctx, `VACUUM envelopes`); err != nil { // what autovacuum does on its own schedule
		t.Fatal(err)
	}
	fill(10_000)
	if second := size(); second > first*13/10 {
		t.Fatalf("table grew from %d to %d bytes writing the same volume again: swept space not reused", first, second)
	}
}

// A database that accepts the connection and never answers fails Open as
// unavailable after the configured timeout instead of holding it.
func TestStalledDatabaseTimesOut(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	held := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held <- c
		}
	}()
	defer func() {
		for len(held) > 0 {
			(<-held).Close()
		}
	}()
	start := time.Now()
	_, err = Open(context.Background(), Config{URL: "postgres://hub@" + l.Addr().String() + "/hub?sslmode=disable", Timeout: 300 * time.Millisecond})
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("a stalled database: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("a stalled database held Open for %v", d)
	}
}
