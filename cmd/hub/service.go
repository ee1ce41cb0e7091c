package main

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"log/slog"
	"net"

	"github.com/guildhall/guildhall/fanout"
	"github.com/guildhall/guildhall/fanout/pgnotify"
	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/internal/daemon"
	"github.com/guildhall/guildhall/storage"
	"github.com/guildhall/guildhall/storage/profile"
	"github.com/prometheus/client_golang/prometheus"
)

// newService builds the hub service on its stores. On PostgreSQL it also
// joins the notification bus the replicas sharing the database hear each
// other on (returned, nil otherwise). closeService stops the bus.
func newService(ctx context.Context, s settings, key ed25519.PrivateKey, stores *profile.Stores, log *slog.Logger) (
	svc *hub.Service, bus *pgnotify.Bus, closeService func(), err error) {
	hcfg := hub.Config{NodeKey: key, NodeCert: s.ownerCert, Store: stores.Meta, Blobs: stores.Blobs, Logger: log,
		Broker: fanout.New(fanout.Config{QueueLen: s.Limits.QueueLen}), Admission: s.admission, Allowed: s.allowed, AllowedCreators: s.creators,
		DefaultQuota: storage.Quota(s.Admission.DefaultQuota), MaxBlob: s.Limits.MaxBlob, MaxServers: s.Limits.MaxServers,
		PostRate: s.Limits.PostRate, PostBurst: s.Limits.PostBurst}
	closeService = func() {}
	if !s.stores.Embedded() {
		if bus, err = pgnotify.New(ctx, pgnotify.Config{URL: s.Storage.PostgresURL, Logger: log}); err != nil {
			return nil, nil, nil, err
		}
		hcfg.Notifier = bus
	}
	if svc, err = hub.New(hcfg); err != nil {
		if bus != nil {
			bus.Close()
		}
		return nil, nil, nil, err
	}
	if bus != nil {
		lctx, cancel := context.WithCancel(context.Background())
		closeService = func() { cancel(); bus.Close() }
		if err := bus.Listen(lctx, svc); err != nil {
			closeService()
			return nil, nil, nil, err
		}
	}
	return svc, bus, closeService, nil
}

// listeners are what listen opened: the public listener (under its
// per-source cap, and TLS when configured) and the admin one.
type listeners struct {
	public, admin net.Listener
	scheme        string
	refused       prometheus.Counter      // connections over the per-source cap, for registration
	conns         *daemon.LimitedListener // the per-source cap, changed on reload
	cert          *daemon.Certificate     // nil without TLS; reloaded on reload
}

// listen opens the public and admin listeners; the public one caps the
// connections each source holds (limits.conns_per_source) and speaks TLS
// when a certificate is configured.
func listen(s settings) (ls listeners, err error) {
	ls.refused = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "guildhall", Subsystem: "hub", Name: "connections_refused_total",
		Help: "Connections closed on accept because their source held limits.conns_per_source already."})
	raw, err := net.Listen("tcp", s.Listen)
	if err != nil {
		return ls, err
	}
	ls.conns = daemon.SourceLimit{PerSource: s.Limits.ConnsPerSource, Exempt: s.proxies, Refused: ls.refused}.Limited(raw)
	ls.public, ls.scheme = ls.conns, "http"
	if ls.admin, err = net.Listen("tcp", s.Admin.Listen); err != nil {
		raw.Close()
		return ls, err
	}
	if s.TLS.CertFile == "" {
		return ls, nil
	}
	ls.cert = new(daemon.Certificate)
	if err := ls.cert.Load(s.TLS.CertFile, s.TLS.KeyFile); err != nil {
		raw.Close()
		ls.admin.Close()
		return ls, err
	}
	ls.public, ls.scheme = tls.NewListener(ls.conns, ls.cert.TLSConfig()), "https"
	return ls, nil
}
