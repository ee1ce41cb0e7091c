package daemon

import (
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry returns a metrics registry holding the given collectors (the
// components' own) and the Go runtime and process collectors every binary
// exports.
func Registry(cs ...prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(cs...)
	return reg
}

// AdminMux returns the routes of an admin listener: GET /metrics (the
// gatherer's metrics, Prometheus text format), GET /healthz ("ok": the
// process runs and takes new work; 503 "draining" once draining reports
// true, so load balancers stop sending) and the CPU profile and index
// under GET /debug/pprof/. draining may be nil.
// Profiles reveal a lot about a process: serve the mux only on a listener
// that is never public (loopback or a private interface).
func AdminMux(g prometheus.Gatherer, draining func() bool) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if draining != nil && draining() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	return mux
}
