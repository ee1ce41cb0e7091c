package discovery_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/guildhall/guildhall/discovery"
	"github.com/guildhall/guildhall/policy"
)

// BenchmarkResolve20 resolves node records in a 20-node DHT on loopback:
// every node publishes its record; each iteration resolves a random other
// node's record from a random node (no local cache: records live on the
// nodes closest to their key).
func BenchmarkResolve20(b *testing.B) {
	boot, nodes := network(b, 19)
	nodes = append(nodes, boot)
	ctx := context.Background()
	keys := make([]policy.PublicKey, len(nodes))
	for i, n := range nodes {
		rec := record(b, n.key, 1, time.Now(), time.Hour)
		if err := discovery.Publish(ctx, n.DHT, rec); err != nil {
			b.Fatal(err)
		}
		keys[i] = rec.Node
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		from, target := nodes[i%len(nodes)], keys[(i*7+3)%len(keys)]
		start := time.Now()
		if _, err := discovery.Resolve(ctx, from.DHT, target); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
