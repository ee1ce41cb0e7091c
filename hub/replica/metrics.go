package replica

import "github.com/prometheus/client_golang/prometheus"

// Reasons a replicator refuses something, the label of its refusals.
const (
	reasonPrivateAddress = "private_address" // a special-purpose address from the DHT or a hint, not dialled
	reasonTableFull      = "table_full"      // a discovered peer, with MaxDiscovered known and none failing
	reasonStranger       = "stranger"        // a request of a peer that may replicate no server here
	reasonStreams        = "streams"         // an inbound stream beyond maxInboundPerPeer or maxInbound
	reasonMemory         = "memory"          // a message the resource manager had no memory for
	reasonNotGranted     = "not_granted"     // a server or channel offered or pushed by a peer not granted it
	reasonBlobBusy       = "blob_busy"       // a lazy blob fetch beyond maxBlobFetches
)

// Metrics are the replicator's collectors; no per-peer labels.
type Metrics struct {
	refused *prometheus.CounterVec // by reason
}

func newMetrics() *Metrics {
	m := &Metrics{refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: "replica_refused_total",
		Help: "What replication refused, by reason: private_address, table_full, stranger, streams, memory, not_granted, blob_busy."}, []string{"reason"})}
	// Series that exist from the start, so rates and alerts see zero, not nothing.
	for _, r := range []string{reasonPrivateAddress, reasonTableFull, reasonStranger, reasonStreams, reasonMemory, reasonNotGranted, reasonBlobBusy} {
		m.refused.WithLabelValues(r)
	}
	return m
}

func (m *Metrics) refuse(reason string) { m.refused.WithLabelValues(reason).Inc() }

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) { m.refused.Describe(ch) }

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) { m.refused.Collect(ch) }
