package relay

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the relay's collectors; none carries a user name.
type Metrics struct {
	active            prometheus.Gauge
	allocations       *prometheus.CounterVec // by client transport
	bytes, packets    *prometheus.CounterVec // by relay transport and direction
	authFailures      prometheus.Counter
	deniedPeers       prometheus.Counter
	quotaRejections   *prometheus.CounterVec // by reason: user, total, draining
	challengesDropped prometheus.Counter
	capDropped        prometheus.Counter
	authThrottled     prometheus.Counter     // requests refused: their source failed authentication too often
	familyRefused     prometheus.Counter     // Allocates for an address family not served (440)
	lifetimesAdjusted prometheus.Counter     // requested lifetimes raised to the default or lowered to the maximum
	streamsOpen       prometheus.Gauge       // TCP and TLS client streams open
	streamsRefused    prometheus.Counter     // streams closed at accept: their source was at its cap
	streamsClosedIdle *prometheus.CounterVec // by reason: handshake (TLS not done in time), auth (nothing authenticated in time)
	acceptErrors      prometheus.Counter     // TCP/TLS accept errors (EMFILE...), each followed by a back-off
	udpDrops          prometheus.Counter     // datagrams the kernel dropped on the listening sockets (SO_RXQ_OVFL)
	relayedDrops      prometheus.Counter     // datagrams the kernel dropped on allocations' relay sockets

	hot map[[2]string]counters // resolved bytes and packets children, read-only
}

func newMetrics() *Metrics {
	ns := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "guildhall", Subsystem: "relay", Name: name, Help: help}
	}
	m := &Metrics{
		active:      prometheus.NewGauge(prometheus.GaugeOpts(ns("allocations_active", "Live TURN allocations."))),
		allocations: prometheus.NewCounterVec(prometheus.CounterOpts(ns("allocations_total", "TURN allocations created, by client transport.")), []string{"transport"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts(ns("relayed_bytes_total", "Bytes relayed, by relay transport and direction.")),
			[]string{"transport", "direction"}),
		packets: prometheus.NewCounterVec(prometheus.CounterOpts(ns("relayed_packets_total", "Packets (TCP: reads and writes) relayed, by relay transport and direction.")),
			[]string{"transport", "direction"}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts(ns("auth_failures_total", "Requests whose credentials failed."))),
		deniedPeers:  prometheus.NewCounter(prometheus.CounterOpts(ns("denied_peers_total", "Permissions, channel binds and connects refused for their peer address."))),
		quotaRejections: prometheus.NewCounterVec(prometheus.CounterOpts(ns("quota_rejections_total", "Allocations refused, by reason: user, total, draining.")),
			[]string{"reason"}),
		challengesDropped: prometheus.NewCounter(prometheus.CounterOpts(ns("challenges_dropped_total", "401 answers not sent: over the per-source rate."))),
		capDropped:        prometheus.NewCounter(prometheus.CounterOpts(ns("bandwidth_dropped_total", "Datagrams dropped over an allocation's bandwidth cap."))),
		authThrottled:     prometheus.NewCounter(prometheus.CounterOpts(ns("auth_throttled_total", "Requests refused unchecked: their source failed authentication over the per-source rate."))),
		familyRefused:     prometheus.NewCounter(prometheus.CounterOpts(ns("family_refused_total", "Allocations refused 440: an address family the relay does not serve."))),
		lifetimesAdjusted: prometheus.NewCounter(prometheus.CounterOpts(ns("lifetimes_adjusted_total", "Requested lifetimes raised to the default or lowered to the maximum."))),
		streamsOpen:       prometheus.NewGauge(prometheus.GaugeOpts(ns("streams_open", "TCP and TLS client connections open."))),
		streamsRefused:    prometheus.NewCounter(prometheus.CounterOpts(ns("streams_refused_total", "TCP and TLS connections closed at accept: their source was at its connection cap."))),
		streamsClosedIdle: prometheus.NewCounterVec(prometheus.CounterOpts(ns("streams_closed_idle_total",
			"TCP and TLS connections closed unauthenticated, by reason: handshake (TLS not done in time), auth (no request authenticated in time).")), []string{"reason"}),
		acceptErrors: prometheus.NewCounter(prometheus.CounterOpts(ns("accept_errors_total", "TCP and TLS accept errors (descriptor exhaustion...), each followed by a back-off."))),
		udpDrops: prometheus.NewCounter(prometheus.CounterOpts(ns("udp_receive_drops_total",
			"Datagrams the kernel dropped on the UDP listening sockets, their receive buffer full (see listen.udp_read_buffer)."))),
		relayedDrops: prometheus.NewCounter(prometheus.CounterOpts(ns("relayed_receive_drops_total",
			"Datagrams from peers the kernel dropped on allocations' relay sockets, their receive buffer full."))),
		hot: map[[2]string]counters{},
	}
	for _, r := range []string{"user", "total", "draining"} {
		m.quotaRejections.WithLabelValues(r)
	}
	for _, r := range []string{"handshake", "auth"} {
		m.streamsClosedIdle.WithLabelValues(r)
	}
	for _, t := range []string{"udp", "tcp"} {
		m.allocations.WithLabelValues(t)
		for _, d := range []string{"to_peer", "to_client"} {
			m.hot[[2]string{t, d}] = counters{m.bytes.WithLabelValues(t, d), m.packets.WithLabelValues(t, d)}
		}
	}
	return m
}

// counters are the bytes and packets counters of one transport and
// direction, resolved once: they count every packet.
type counters [2]prometheus.Counter

func (c counters) add(n int) {
	c[0].Add(float64(n))
	c[1].Inc()
}

func (m *Metrics) counters(transport, direction string) counters {
	return m.hot[[2]string{transport, direction}]
}

func (m *Metrics) relayed(transport, direction string, n int) {
	m.counters(transport, direction).add(n)
}

func (m *Metrics) all() []prometheus.Collector {
	return []prometheus.Collector{m.active, m.allocations, m.bytes, m.packets, m.authFailures, m.deniedPeers, m.quotaRejections, m.challengesDropped, m.capDropped,
		m.authThrottled, m.familyRefused, m.lifetimesAdjusted, m.streamsOpen, m.streamsRefused, m.streamsClosedIdle, m.acceptErrors,
		m.udpDrops, m.relayedDrops}
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
