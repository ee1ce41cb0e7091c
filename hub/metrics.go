package hub

import (
	"github.com/guildhall/guildhall/wire"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the hub's collectors. They carry no per-server or
// per-identity labels: cardinality is bounded by the error codes and routes.
type Metrics struct {
	envelopes    *prometheus.CounterVec // by result: stored, duplicate, or error code
	delivered    prometheus.Counter
	notifyErrors prometheus.Counter
	admitted     prometheus.Counter
	requests     *prometheus.HistogramVec // by route and status class
	sockets      prometheus.Gauge
	cutoffs      prometheus.Counter
	rateLimited  *prometheus.CounterVec // by scope: source, identity
	swept        *prometheus.CounterVec // by unit: envelopes, bytes
}

func newMetrics() *Metrics {
	m := &Metrics{
		envelopes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: "envelopes_total",
			Help: "Envelopes posted, by result: stored, or the error code that refused them."}, []string{"result"}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: "fanout_deliveries_total",
			Help: "Envelopes queued to local subscribers."}),
		notifyErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: "notify_errors_total",
			Help: "Failures to notify other processes sharing the store."}),
		admitted: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: "servers_admitted_total",
			Help: "Servers that became tenants when their genesis arrived."}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "guildhall", Subsystem: "hub", Name: "request_seconds",
			Help: "API request latency by route and status class.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9)}, []string{"route", "status"}),
		sockets: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "guildhall", Subsystem: "hub", Name: "websockets",
			Help: "Open WebSocket connections."}),
		cutoffs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: "fanout_cutoffs_total",
			Help: "Subscriptions cut off because their subscriber fell behind."}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: "rate_limited_total",
			Help: "Requests and envelopes refused by a rate limit, by scope."}, []string{"scope"}),
		swept: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: "retention_swept_total",
			Help: "What retention sweeps deleted, by unit: envelopes, bytes (of ciphertext)."}, []string{"unit"}),
	}
	// Series that exist from the start, so rates and alerts see zero, not nothing.
	for _, r := range []string{"stored", "unavailable", "internal", "quota_exceeded", "rate_limited"} {
		m.envelopes.WithLabelValues(r)
	}
	m.rateLimited.WithLabelValues("source")
	m.rateLimited.WithLabelValues("identity")
	m.swept.WithLabelValues("envelopes")
	m.swept.WithLabelValues("bytes")
	return m
}

func (m *Metrics) all() []prometheus.Collector {
	return []prometheus.Collector{m.envelopes, m.delivered, m.notifyErrors, m.admitted, m.requests, m.sockets, m.cutoffs, m.rateLimited, m.swept}
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

func (m *Metrics) countPosts(out []Posted) {
	limited := 0
	defer func() {
		if limited > 0 {
			m.rateLimited.WithLabelValues("identity").Add(float64(limited))
		}
	}()
	for _, p := range out {
		if p.Err != nil {
			c := Code(p.Err)
			if c == wire.CodeRateLimited {
				limited++
			}
			m.envelopes.WithLabelValues(c).Inc()
		} else {
			m.envelopes.WithLabelValues("stored").Inc()
		}
	}
}
