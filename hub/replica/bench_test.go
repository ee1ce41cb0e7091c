package replica

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/guildhall/guildhall/fanout"
	"github.com/guildhall/guildhall/policy"
)

// BenchmarkReplicationLag posts 1,000 envelopes per second to hub A for 10 s
// (batches of 10 every 10 ms) and measures, for each, the time from A's
// receipt to its arrival at hub B's subscribers (push replication over
// libp2p on loopback, both hubs on embedded storage).
//
//	go test ./hub/replica -run '^$' -bench ReplicationLag -benchtime 1x
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
	const rate, seconds = 1000, 10
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
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		got := len(lags)
		mu.Unlock()
		if got >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(done)
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lags)
	if len(lags) < n {
		b.Fatalf("%d of %d envelopes reached B", len(lags), n)
	}
	b.ReportMetric(float64(lags[len(lags)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(n)/seconds, "envelopes/s")
}
