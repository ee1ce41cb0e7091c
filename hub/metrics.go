package hub

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the service's collectors. They carry no per-server or
// per-identity labels. What the HTTP layer counts (requests, sockets,
// posts by result) is its own: see package hub/httpapi.
type Metrics struct {
	delivered    prometheus.Counter
	notifyErrors prometheus.Counter
	admitted     prometheus.Counter
	replays      prometheus.Counter
	swept        *prometheus.CounterVec // by unit: envelopes, bytes
	loads        prometheus.Counter
	loadedEvents prometheus.Counter
	loadWaits    prometheus.Counter
	sequenced    *prometheus.CounterVec // by result: duplicate, gap, filled
	// by result: kept (ahead of its envelope), upheld (authorised once the
	// envelope came), refused (not authorised: the envelope was stored)
	earlyTombstones *prometheus.CounterVec
	keyBundles      *prometheus.CounterVec // by result: indexed, unparsed
	takedowns       *prometheus.CounterVec // by kind: envelope, blob, server
	reports         *prometheus.CounterVec // by result: filed, refused
}

func newMetrics() *Metrics {
	m := &Metrics{
		delivered: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: "fanout_deliveries_total",
			Help: "Envelopes queued to local subscribers."}),
		notifyErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: "notify_errors_total",
			Help: "Failures to notify other processes sharing the store."}),
		admitted: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: "servers_admitted_total",
			Help: "Servers that became tenants when their genesis arrived."}),
		replays: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: "auth_refused_challenges_total",
			Help: "Auth proofs refused because their challenge was already answered (a replay) or too many were outstanding."}),
		swept: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: "retention_swept_total",
			Help: "What retention sweeps deleted, by unit: envelopes, bytes (of ciphertext)."}, []string{"unit"}),
		loads: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: "state_loads_total",
			Help: "State logs read from the store into memory (the first request for a server, or after eviction)."}),
		loadedEvents: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: "state_load_events_total",
			Help: "State events read from the store by those loads."}),
		loadWaits: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: "state_load_waits_total",
			Help: "Loads that waited because one per core was already running."}),
		sequenced: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: "fanout_sequenced_total",
			Help: "Live delivery kept in sequence order, by result: duplicate (an announcement already delivered, dropped), gap (one that came ahead of others), filled (envelopes read from the store to fill such gaps)."}, []string{"result"}),
		keyBundles: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: "key_bundles_total",
			Help: "Key-bundle envelopes stored, by result: indexed (each device is served its own entry), unparsed (header not readable: served by cursor only)."}, []string{"result"}),
		takedowns: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: "takedowns_total",
			Help: "Content removed by the hub's operator, by kind: envelope, blob, server (blocked)."}, []string{"kind"}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: "abuse_reports_total",
			Help: "Members' abuse reports, by result: filed, refused (the evidence did not open the message)."}, []string{"result"}),
		earlyTombstones: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: "early_tombstones_total",
			Help: "Tombstones that arrived before their envelope, by result: kept (in the envelope's place), upheld (authorised for the envelope when it came), refused (not authorised: the envelope was stored instead)."}, []string{"result"}),
	}
	// Series that exist from the start, so rates and alerts see zero, not nothing.
	m.swept.WithLabelValues("envelopes")
	m.swept.WithLabelValues("bytes")
	for _, r := range []string{"duplicate", "gap", "filled"} {
		m.sequenced.WithLabelValues(r)
	}
	for _, r := range []string{"kept", "upheld", "refused"} {
		m.earlyTombstones.WithLabelValues(r)
	}
	for _, r := range []string{"indexed", "unparsed"} {
		m.keyBundles.WithLabelValues(r)
	}
	for _, r := range []string{"filed", "refused"} {
		m.reports.WithLabelValues(r)
	}
	for _, k := range []string{"envelope", "blob", "server"} {
		m.takedowns.WithLabelValues(k)
	}
	return m
}

func (m *Metrics) all() []prometheus.Collector {
	return []prometheus.Collector{m.delivered, m.notifyErrors, m.admitted, m.replays, m.swept, m.loads, m.loadedEvents, m.loadWaits, m.sequenced, m.earlyTombstones, m.keyBundles, m.takedowns, m.reports}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.all() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.all() {
		c.Collect(ch)
	}
}
