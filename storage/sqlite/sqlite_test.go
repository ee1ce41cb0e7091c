package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"

	"github.com/guildhall/guildhall/storage/storagetest"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{Path: filepath.Join(t.TempDir(), "hub.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storagetest.RunMeta(t, func(t *testing.T) storagetest.Meta { return openTest(t) })
}

// A write function that fails after writing aborts its whole batch: nothing
// of the batch is committed and every caller in it is told. One that fails
// before writing fails alone. Every write reported successful is stored.
func TestFailedWriteInGroupLeavesNothing(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	id := func(prefix string, i int) policy.ID { return storagetest.ServerID(fmt.Sprintf("%s-%d", prefix, i)) }
	boom := errors.New("boom")
	var wg sync.WaitGroup
	var mu sync.Mutex
	reported := map[policy.ID]bool{}
	for i := range 90 {
		wg.Go(func() {
			switch i % 3 {
			case 0: // fails after writing
				err := s.write(ctx, func(b *batch) error {
					if _, err := b.exec(ctx, `INSERT INTO tenants (server, created) VALUES (?, 1)`, func() []byte { x := id("bad", i); return x[:] }()); err != nil {
						return err
					}
					return boom
				})
				if !errors.Is(err, boom) {
					t.Errorf("failing write: %v", err)
				}
			case 1: // fails before writing
				if err := s.write(ctx, func(b *batch) error { return boom }); !errors.Is(err, boom) {
					t.Errorf("failing check: %v", err)
				}
			default:
				err := s.PutTenant(ctx, id("good", i), storage.Quota{})
				var aborted errAborted
				if err != nil && !errors.As(err, &aborted) {
					t.Errorf("good write failed for its own reason: %v", err)
				}
				mu.Lock()
				reported[id("good", i)] = err == nil
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	all, err := s.Tenants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[policy.ID]bool{}
	for _, tn := range all {
		stored[tn.Server] = true
		if ok, known := reported[tn.Server]; !known || !ok {
			t.Fatalf("tenant %s stored but its write was not acknowledged (or was a failing write)", tn.Server)
		}
	}
	for server, ok := range reported {
		if ok && !stored[server] {
			t.Fatalf("acknowledged tenant %s missing", server)
		}
	}
}

func openBench(b *testing.B) *Store {
	s, err := Open(context.Background(), Config{Path: filepath.Join(b.TempDir(), "bench.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkIngest64: durable 1 KiB envelopes from 64 concurrent writers.
func BenchmarkIngest64(b *testing.B) { storagetest.BenchIngest(b, openBench(b), 64) }

// BenchmarkReadChannel1000: 1,000 envelopes from a cursor.
func BenchmarkReadChannel1000(b *testing.B) { storagetest.BenchReadChannel(b, openBench(b)) }

// TestSweepShrinksTheFile: retention returns pages to the file system.
func TestSweepShrinksTheFile(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	server, channel := storagetest.ServerID("shrink"), storagetest.ChannelID("shrink")
	if err := s.PutTenant(ctx, server, storage.Quota{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2000; i += 100 {
		batch := make([]storage.Envelope, 100)
		for j := range batch {
			batch[j] = storagetest.Envelope(server, channel, i+j, 4000)
		}
		if _, err := s.PutEnvelopes(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	pages := func() (n int64) {
		if err := s.r.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := pages()
	if sw, err := s.Sweep(ctx, server, channel, storage.Retention{MaxBytes: 1}); err != nil || sw.Envelopes != 2000 {
		t.Fatalf("sweep = %+v, %v", sw, err)
	}
	if after := pages(); after > before/4 {
		t.Fatalf("database has %d pages after sweeping everything, %d before: space not returned", after, before)
	}
}
