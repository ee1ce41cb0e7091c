package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/guildhall/guildhall/internal/daemon"
	"github.com/guildhall/guildhall/relay"
)

// serve runs until SIGTERM, SIGINT or the end of ctx, then drains: no new
// allocations, and the existing ones get until drainTimeout (a second
// signal stops at once). SIGHUP calls reload, and a refused reload keeps
// the previous settings.
func serve(ctx context.Context, srv *relay.Server, log *slog.Logger, drainTimeout time.Duration, reload func() error) error {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, os.Interrupt)
	defer signal.Stop(sigs)
	for {
		var sig os.Signal
		select {
		case sig = <-sigs:
		case <-ctx.Done():
			sig = syscall.SIGTERM
		}
		if sig == syscall.SIGHUP {
			if err := reload(); err != nil {
				log.Error("reload refused; the previous settings stay", "err", err)
			} else {
				log.Info("reloaded credentials, limits and certificate")
			}
			continue
		}
		log.Info("draining: no new allocations", "allocations", srv.Allocations(), "deadline", drainTimeout)
		srv.Drain()
		deadline := time.Now().Add(drainTimeout)
		for srv.Allocations() > 0 && time.Now().Before(deadline) {
			select {
			case <-sigs: // a second signal: stop now
				deadline = time.Now()
			case <-time.After(200 * time.Millisecond):
			}
		}
		return nil
	}
}

// reload reads the configuration file again and applies what can change
// while running: credentials, limits and the TLS certificate. The external
// address given by flag stays when the file names none.
func reload(path string, getenv func(string) string, srv *relay.Server, cert *daemon.Certificate, cur *settings) error {
	next, err := load(path, getenv)
	if err != nil {
		return err
	}
	if next.ExternalIP == "" {
		next.ExternalIP = cur.ExternalIP
	}
	s, err := next.resolve()
	if err != nil {
		return err
	}
	if err := srv.Reload(s.users, s.secrets, s.limits); err != nil {
		return err
	}
	cur.TLS = s.TLS
	if cur.TLS.CertFile == "" {
		return nil
	}
	return cert.Load(cur.TLS.CertFile, cur.TLS.KeyFile)
}
