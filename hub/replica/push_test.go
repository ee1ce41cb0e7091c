package replica

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// value reads a counter or gauge of a vector for one peer.
func value(t *testing.T, c prometheus.Collector, labels ...string) float64 {
	t.Helper()
	var m prometheus.Metric
	switch v := c.(type) {
	case *prometheus.CounterVec:
		m = v.WithLabelValues(labels...)
	case *prometheus.GaugeVec:
		m = v.WithLabelValues(labels...)
	}
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	if out.Counter != nil {
		return out.Counter.GetValue()
	}
	return out.Gauge.GetValue()
}

// What a hub takes from a peer's push is not pushed back to that peer: B
// pushes nothing to A of what A pushed.
func TestPushesDoNotEchoToTheirSource(t *testing.T) {
	a, b := newNode(t, "echo-a", nil), newNode(t, "echo-b", nil)
	link(a, b)
	com := newCommunity(t, a, b)
	want := com.postMany(a, "bob", 1000)
	com.waitAll(t, b, want, 30*time.Second, "the pushes from A")
	time.Sleep(500 * time.Millisecond) // anything B would echo is on its way by now
	aLabel, bLabel := a.p2p.Host.ID().String(), b.p2p.Host.ID().String()
	if pushed := value(t, a.rep.metrics.pushed, bLabel); pushed < float64(len(want)) {
		t.Fatalf("A counts %v envelopes pushed to B, want at least %d", pushed, len(want))
	}
	if echoed := value(t, b.rep.metrics.pushed, aLabel); echoed != 0 {
		t.Fatalf("B pushed %v of A's envelopes back to A", echoed)
	}
}

// A note that finds a peer's queue full, or a batch that fails after its
// retries, is counted, and its channel is reconciled with the peer soon,
// both ways: the peer gets everything without waiting for a round (these
// hubs have none: their interval is an hour).
func TestDroppedPushesAreRepairedSoon(t *testing.T) {
	a, b := newNode(t, "drop-a", nil), newNode(t, "drop-b", nil)
	a.rep.mu.Lock()
	a.rep.queueSize = 16
	a.rep.mu.Unlock()
	link(a, b)
	com := newCommunity(t, a, b)
	bLabel := b.p2p.Host.ID().String()
	a.gater.set(b.p2p.Host.ID(), true) // B unreachable from A for a while
	for _, c := range a.p2p.Host.Network().ConnsToPeer(b.p2p.Host.ID()) {
		c.Close()
	}
	want := com.postMany(a, "bob", 500)
	time.Sleep(2 * time.Second)
	if dropped := value(t, a.rep.metrics.dropped, bLabel); dropped == 0 {
		t.Fatal("500 notes into a queue of 16: none counted as dropped")
	}
	if got := len(com.ids(b)); got == len(want) {
		t.Fatal("B got everything while unreachable: the test proves nothing")
	}
	a.gater.set(b.p2p.Host.ID(), false)
	// Repairs back off from 0.5 s while B is unreachable (at most ~4 s
	// here); 20 s is generous on 2 shared cores, and far below a round.
	took := com.waitAll(t, b, want, 20*time.Second, "the dropped pushes, repaired")
	t.Logf("B held all %d envelopes %v after A could reach it again (dropped %v, failed batches %v, repairs %v)", len(want), took,
		value(t, a.rep.metrics.dropped, bLabel), value(t, a.rep.metrics.failed, bLabel), value(t, a.rep.metrics.repairs, bLabel))
}
