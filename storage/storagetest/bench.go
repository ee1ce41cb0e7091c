package storagetest

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guildhall/guildhall/storage"
)

// BenchIngest measures durable ingest of 1 KiB envelopes by writers
// concurrent callers, each putting one envelope per call into one of 16
// channels, and reports acknowledged envelopes per second.
func BenchIngest(b *testing.B, m Meta, writers int) {
	ctx := context.Background()
	server := ServerID("bench-ingest")
	if err := m.PutTenant(ctx, server, storage.Quota{}); err != nil {
		b.Fatal(err)
	}
	envs := make([]storage.Envelope, b.N)
	for i := range envs {
		envs[i] = Envelope(server, ChannelID(string(rune('a'+i%16))), i, 1024)
	}
	var next atomic.Int64
	b.SetBytes(1024)
	b.ResetTimer()
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(envs) {
					return
				}
				if _, err := m.PutEnvelopes(ctx, envs[i:i+1]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "envelopes/s")
}

// BenchReadChannel measures reading 1,000 envelopes from a cursor in a
// channel of 100,000 1 KiB envelopes, and reports the median and p99.
func BenchReadChannel(b *testing.B, m Meta) {
	ctx := context.Background()
	server, channel := ServerID("bench-read"), ChannelID("bench-read")
	if err := m.PutTenant(ctx, server, storage.Quota{}); err != nil {
		b.Fatal(err)
	}
	const total = 100_000
	for i := 0; i < total; i += 1000 {
		batch := make([]storage.Envelope, 1000)
		for j := range batch {
			batch[j] = Envelope(server, channel, i+j, 1024)
		}
		if _, err := m.PutEnvelopes(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		after := uint64(i*7919) % (total - 1000)
		t0 := time.Now()
		envs, err := m.ReadChannel(ctx, server, channel, after, 1000)
		lat = append(lat, time.Since(t0))
		if err != nil || len(envs) != 1000 || envs[0].Seq != after+1 {
			b.Fatalf("read %d from %d: %v", len(envs), after, err)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
