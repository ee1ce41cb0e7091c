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
	reasonNotOffered     = "not_offered"     // a server a peer offered whose log does not let both replicate it, or admission refused
	reasonAdoptLimit     = "adopt_limit"     // a server offered beyond maxAdopt in one sync
)

var reasons = []string{reasonPrivateAddress, reasonTableFull, reasonStranger, reasonStreams, reasonMemory, reasonNotGranted, reasonBlobBusy, reasonNotOffered, reasonAdoptLimit}

// Metrics are the replicator's collectors. The per-peer ones are labelled
// by peer ID; the peers are bounded (the configured ones and at most
// MaxDiscovered more), and a peer's series go when the peer is dropped.
type Metrics struct {
	refused *prometheus.CounterVec // by reason
	adopted prometheus.Counter
	pushed  *prometheus.CounterVec // by peer: envelopes and tombstones a peer took
	failed  *prometheus.CounterVec // by peer: batches given up after retries
	dropped *prometheus.CounterVec // by peer: notes its full queue dropped (its channels are then reconciled)
	queue   *prometheus.GaugeVec   // by peer: notes waiting to be pushed
	lag     *prometheus.GaugeVec   // by peer: seconds from storing to the peer's answer, of the last batch
	lags    prometheus.Histogram   // the same, every batch, all peers
	repairs *prometheus.CounterVec // by peer: channels reconciled after a drop or a failure
	bytes   *prometheus.CounterVec // by peer and direction (in, out): replication message bytes
}

func newMetrics() *Metrics {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: name, Help: help}, []string{"peer"})
	}
	m := &Metrics{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: "replica_refused_total",
			Help: "What replication refused, by reason: private_address, table_full, stranger, streams, memory, not_granted, blob_busy, not_offered, adopt_limit."}, []string{"reason"}),
		adopted: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: "replica_servers_adopted_total",
			Help: "Servers this hub did not host that it took from a peer's state log."}),
		pushed:  counter("replica_pushed_total", "Envelopes and tombstones pushed to a peer that it answered for."),
		failed:  counter("replica_push_failed_total", "Push batches to a peer given up after retries; their channels are reconciled."),
		dropped: counter("replica_push_dropped_total", "Notes not queued for a peer because its queue was full; their channels are reconciled."),
		repairs: counter("replica_repairs_total", "Channels reconciled with a peer after a drop or a failed push."),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: "replica_bytes_total",
			Help: "Replication message bytes exchanged with a peer, framing included, by direction: in, out."}, []string{"peer", "direction"}),
		queue: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "guildhall", Subsystem: "hub", Name: "replica_push_queue",
			Help: "Notes waiting to be pushed to a peer."}, []string{"peer"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "guildhall", Subsystem: "hub", Name: "replica_push_lag_seconds",
			Help: "Seconds from storing to a peer's answer, of the oldest note of the last batch pushed to it."}, []string{"peer"}),
		lags: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "guildhall", Subsystem: "hub", Name: "replica_push_lag_seconds_all",
			Help: "Seconds from storing to a peer's answer, of the oldest note of every batch pushed.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
	}
	// Series that exist from the start, so rates and alerts see zero, not nothing.
	for _, r := range reasons {
		m.refused.WithLabelValues(r)
	}
	return m
}

func (m *Metrics) refuse(reason string) { m.refused.WithLabelValues(reason).Inc() }

// forget removes a dropped peer's series.
func (m *Metrics) forget(p string) {
	for _, v := range []*prometheus.CounterVec{m.pushed, m.failed, m.dropped, m.repairs} {
		v.DeleteLabelValues(p)
	}
	m.queue.DeleteLabelValues(p)
	m.bytes.DeleteLabelValues(p, "in")
	m.bytes.DeleteLabelValues(p, "out")
	m.lag.DeleteLabelValues(p)
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.refused, m.adopted, m.pushed, m.failed, m.dropped, m.queue, m.lag, m.lags, m.repairs, m.bytes}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}
