package replica

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/guildhall/guildhall/fanout"
	"github.com/guildhall/guildhall/policy"
)

// BenchmarkReplicationLag posts 1,000 envelopes per second to hub A for 10 s
// (GUILDHALL_BENCH_SECONDS to change it; batches of 10 every 10 ms) and
// measures, for each, the time from A's receipt to its arrival at hub B's
// subscribers (push replication over libp2p on loopback, both hubs on
// embedded storage); then that B holds every envelope, and the replication
// bytes (every message both ways, framing included) against the
// envelopes' bytes.
//
//	GUILDHALL_BENCH_SECONDS=60 go test ./hub/replica -run '^$' -bench ReplicationLag -benchtime 1x -timeout 10m
func BenchmarkReplicationLag(b *testing.B) {
	a, bb := newNode(b, "lag-a", nil), newNode(b, "lag-b", nil)
	link(a, bb)
	com := newCommunity(b, a, bb)
	broker := bb.svc.Broker()
	sub, err := broker.Subscribe(fanout.Topic{Server: com.gen.ID, Channel: com.general})
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[policy.ID]time.Time{}
	var lags []time.Duration
	done := make(chan struct{})
	go func() {
		for m := range sub.C() {
			id := policy.Sum(m.Payload)
			mu.Lock()
			if at, ok := acked[id]; ok {
				lags = append(lags, time.Since(at))
			}
			mu.Unlock()
			select {
			case <-done:
				return
			default:
			}
		}
	}()
	dev := com.device("alice")
	const rate = 1000
	seconds := 10
	if v, err := strconv.Atoi(os.Getenv("GUILDHALL_BENCH_SECONDS")); err == nil && v > 0 {
		seconds = v
	}
	var envBytes int64
	var ids []policy.ID
	startIn, startOut := a.rep.bytesIn.Load(), a.rep.bytesOut.Load()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	b.ResetTimer()
	n := 0
	for range rate * seconds / 10 {
		<-tick.C
		var raws [][]byte
		for range 10 {
			e, err := policy.NewEnvelope(dev, policy.EnvelopeBody{Server: com.gen.ID, Channel: com.general, Epoch: 1, Time: time.Now().UnixMilli(), Ciphertext: []byte(fmt.Sprint("lag ", n))})
			if err != nil {
				b.Fatal(err)
			}
			n++
			raws = append(raws, e.Raw)
			envBytes += int64(len(e.Raw))
			ids = append(ids, e.ID)
		}
		res := a.svc.Post(ctx, raws)
		now := time.Now()
		mu.Lock()
		for i, r := range res {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
			acked[policy.Sum(raws[i])] = now
		}
		mu.Unlock()
	}
	deadline := time.Now().Add(20 * time.Second) // settling: B's store, not its subscribers, is the reference
	for len(com.missing(bb, ids)) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	close(done)
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lags)
	if len(lags) == 0 {
		b.Fatal("nothing reached B's subscribers")
	}
	b.ReportMetric(float64(n-len(lags)), "not-seen-by-subscriber")
	b.ReportMetric(float64(lags[len(lags)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(n)/float64(seconds), "envelopes/s")
	if miss := com.missing(bb, ids); len(miss) > 0 {
		b.Fatalf("after settling B lacks %d of %d envelopes, first %v", len(miss), n, miss[:min(5, len(miss))])
	}
	repBytes := a.rep.bytesIn.Load() - startIn + a.rep.bytesOut.Load() - startOut
	b.ReportMetric(float64(repBytes)/float64(envBytes), "bytes/envelope-bytes")
}
