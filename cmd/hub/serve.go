package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/guildhall/guildhall/hub/httpapi"
	"github.com/guildhall/guildhall/internal/daemon"
	"github.com/guildhall/guildhall/internal/nodekey"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage/profile"
)

// serve runs the hub until ctx ends (SIGTERM, SIGINT), then drains. SIGHUP
// reloads the configuration (reload.go); a refused reload keeps the
// running settings.
func serve(ctx context.Context, s settings, reread func() (settings, error), stderr, stdout io.Writer) error {
	// SIGHUP (systemctl reload) reloads; caught from the start, so that one
	// sent while the hub starts does not kill it.
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	defer signal.Stop(hups)
	level := new(slog.LevelVar)
	level.Set(s.log.Level)
	s.log.Var = level
	log := daemon.NewLogger(stderr, s.log)
	key, created, err := nodekey.Load(s.NodeKeyFile)
	if err != nil {
		return err
	}
	if created {
		log.Info("created a new node key", "file", s.NodeKeyFile)
	}
	if s.ownerCert != nil && s.ownerCert.Device != policy.KeyOf(key) {
		return fmt.Errorf("home.owner_cert certifies %s, not this hub's node key %s (make it with: hub link-request)", s.ownerCert.Device, policy.KeyOf(key))
	}
	s.stores.Logger = log
	stores, err := profile.Open(ctx, s.stores)
	if err != nil {
		return err
	}
	defer func() { // after everything that writes: closing commits what is pending
		if err := stores.Close(); err != nil {
			log.Error("closing the stores", "err", err)
		}
	}()

	svc, bus, closeService, err := newService(ctx, s, key, stores, log)
	if err != nil {
		return err
	}
	defer closeService()
	reg := daemon.Registry(svc.Metrics())
	if s.P2P.Enabled {
		stop, err := startP2P(ctx, s, key, svc, bus, reg, log, stdout)
		if err != nil {
			return err
		}
		defer stop()
	}
	api := httpapi.New(svc, httpapi.Config{Version: version, PublicURL: s.PublicURL, Logger: log, MaxBody: s.Limits.MaxBody, MaxBatch: s.Limits.MaxBatch,
		MaxFrame: s.Limits.MaxFrame, MaxSockets: s.Limits.MaxSockets, SocketsPerSource: s.Limits.SocketsPerSource, Coalesce: s.Limits.Coalesce, SourceRate: s.Limits.SourceRate, SourceBurst: s.Limits.SourceBurst, TrustedProxies: s.proxies, BodyTimeout: s.Limits.BodyTimeout,
		TURN: s.turn})
	reg.MustRegister(api.Metrics())
	public := &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	admin := &http.Server{Handler: httpapi.NewAdmin(svc, s.Admin.Token, reg), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	ls, err := listen(s)
	if err != nil {
		return err
	}
	reg.MustRegister(ls.refused)
	pl, al := ls.public, ls.admin
	// Retention: swept periodically until shutdown, and stopped before the
	// stores close (defers run in reverse).
	sweepCtx, stopSweeps := context.WithCancel(ctx)
	swept := make(chan error, 1)
	go func() { swept <- svc.RunRetention(sweepCtx, s.Storage.SweepInterval) }()
	defer func() {
		stopSweeps()
		if err := <-swept; err != nil {
			log.Error("retention stopped", "err", err)
		}
	}()
	// The usage ledger: sampled until shutdown; stopped (writing the egress
	// counted since the last sample) after the HTTP servers, before the stores.
	ledgerCtx, stopLedger := context.WithCancel(context.WithoutCancel(ctx))
	sampled := make(chan error, 1)
	go func() { sampled <- svc.RunLedger(ledgerCtx, s.Billing.SampleInterval) }()
	defer func() {
		stopLedger()
		if err := <-sampled; err != nil {
			log.Error("usage ledger stopped", "err", err)
		}
	}()
	errc := make(chan error, 2)
	go func() { errc <- public.Serve(pl) }()
	go func() { errc <- admin.Serve(al) }()
	fmt.Fprintf(stdout, "hub %s\nnode    %s\napi     %s://%s\nadmin   http://%s (metrics at /metrics)\nstorage %s\nadmission %s\n",
		version, svc.NodeID(), ls.scheme, pl.Addr(), al.Addr(), s.profileName, s.admission)

	running := &live{cur: s, reread: reread, level: level, svc: svc, api: api, conns: ls.conns, cert: ls.cert, log: log}
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case err := <-errc:
			return err
		case <-hups:
			running.reload()
		}
	}
	// Graceful: stop accepting, end WebSockets with resume cursors once
	// their posts in flight are answered, finish HTTP requests, then close
	// the stores (which commit what is pending).
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	public.SetKeepAlivesEnabled(false)
	wsErr := api.Shutdown(sctx)
	if err := errors.Join(wsErr, public.Shutdown(sctx), admin.Shutdown(sctx)); err != nil {
		log.Warn("shutdown was not clean", "err", err)
	}
	return nil
}
