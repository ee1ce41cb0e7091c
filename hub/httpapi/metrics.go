package httpapi

import (
	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/wire"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the HTTP layer's collectors. They carry no per-server or
// per-identity labels: cardinality is bounded by the error codes and routes.
// The service's own (fanout, notifications, admissions, retention) are
// hub.Metrics; the binary registers both.
type Metrics struct {
	envelopes   *prometheus.CounterVec // by result: stored, or the error code
	events      *prometheus.CounterVec // publications by result: stored, or the error code
	requests    *prometheus.HistogramVec
	sockets     prometheus.Gauge
	cutoffs     prometheus.Counter
	revoked     prometheus.Counter     // subscriptions ended because the reader may no longer read
	rateLimited *prometheus.CounterVec // by scope: source, identity, sockets (MaxSockets), socket_source (SocketsPerSource)
}

func newMetrics() *Metrics {
	m := &Metrics{
		envelopes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: "envelopes_total",
			Help: "Envelopes posted, by result: stored, or the error code that refused them."}, []string{"result"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: "publications_total",
			Help: "State event publications (one request each), by result: stored, or the error code that refused the whole publication (not_member, banned, stale, clock, ...)."}, []string{"result"}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "guildhall", Subsystem: "hub", Name: "request_seconds",
			Help: "API request latency by route and status class.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9)}, []string{"route", "status"}),
		sockets: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "guildhall", Subsystem: "hub", Name: "websockets",
			Help: "Open WebSocket connections."}),
		cutoffs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: "fanout_cutoffs_total",
			Help: "Subscriptions cut off because their subscriber fell behind."}),
		revoked: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: "subscriptions_revoked_total",
			Help: "Subscriptions ended because their reader may no longer read the channel (ban, leave, role, override, revoked device)."}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: "rate_limited_total",
			Help: "Requests and envelopes refused by a rate limit, by scope."}, []string{"scope"}),
	}
	// Series that exist from the start, so rates and alerts see zero, not nothing.
	for _, r := range []string{"stored", "unavailable", "internal", "quota_exceeded", "rate_limited"} {
		m.envelopes.WithLabelValues(r)
	}
	for _, r := range []string{"stored", "not_member", "banned", "stale", "clock", "invalid_invite"} {
		m.events.WithLabelValues(r)
	}
	for _, scope := range []string{"source", "identity", "sockets", "socket_source"} {
		m.rateLimited.WithLabelValues(scope)
	}
	return m
}

func (m *Metrics) all() []prometheus.Collector {
	return []prometheus.Collector{m.envelopes, m.events, m.requests, m.sockets, m.cutoffs, m.revoked, m.rateLimited}
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

// countPosts counts the outcomes of posted envelopes; a refusal by the
// service's per-sender limit counts as rate limited by identity.
func (m *Metrics) countPosts(out []hub.Posted) {
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
