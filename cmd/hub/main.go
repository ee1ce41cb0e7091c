// Command hub runs a Guildhall hub: it stores the ciphertext and state logs
// of the servers it hosts, serves them to their members, fans new messages
// out to subscribers, and signs storage receipts.
//
// With no configuration it runs a home node: embedded storage in the user's
// data directory, listening on loopback. A config file (-config, see
// configs/hub.yaml) selects PostgreSQL and S3, listeners, TLS, limits and
// admission; GUILDHALL_HUB_* environment variables and flags override it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/guildhall/guildhall/hub/httpapi"
	"github.com/guildhall/guildhall/internal/daemon"
	"github.com/guildhall/guildhall/internal/nodekey"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage/profile"
)

// version is stamped at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "hub:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("hub", flag.ContinueOnError)
	fl.SetOutput(stderr)
	if len(args) > 0 && commands[args[0]] != nil { // "hub link-request -data-dir X": flags after the command
		args = append(slices.Clone(args[1:]), args[0])
	}
	cfg, err := configure(fl, args, getenv, stdout)
	if err != nil || cfg == nil { // an error, or -version or -healthcheck done
		return err
	}
	s, err := cfg.resolve(getenv)
	if err != nil {
		return err
	}
	switch {
	case fl.NArg() == 1 && commands[fl.Arg(0)] != nil:
		return commands[fl.Arg(0)](ctx, s, stdout)
	case fl.NArg() > 0:
		return fmt.Errorf("unknown command or argument %q (commands: %s; flags: hub -help)", strings.Join(fl.Args(), " "), commandNames())
	}
	return serve(ctx, s, daemon.NewLogger(stderr, s.log), stdout)
}

func serve(ctx context.Context, s settings, log *slog.Logger, stdout io.Writer) error {
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
	api := httpapi.New(svc, httpapi.Config{Version: version, Logger: log, MaxBody: s.Limits.MaxBody, MaxBatch: s.Limits.MaxBatch,
		MaxFrame: s.Limits.MaxFrame, MaxSockets: s.Limits.MaxSockets, SocketsPerSource: s.Limits.SocketsPerSource, Coalesce: s.Limits.Coalesce, SourceRate: s.Limits.SourceRate, SourceBurst: s.Limits.SourceBurst, TrustedProxies: s.proxies, BodyTimeout: s.Limits.BodyTimeout})
	reg.MustRegister(api.Metrics())
	public := &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	admin := &http.Server{Handler: httpapi.NewAdmin(svc, s.Admin.Token, reg), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	pl, al, scheme, refused, err := listen(s)
	if err != nil {
		return err
	}
	reg.MustRegister(refused)
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
	errc := make(chan error, 2)
	go func() { errc <- public.Serve(pl) }()
	go func() { errc <- admin.Serve(al) }()
	fmt.Fprintf(stdout, "hub %s\nnode    %s\napi     %s://%s\nadmin   http://%s (metrics at /metrics)\nstorage %s\nadmission %s\n",
		version, svc.NodeID(), scheme, pl.Addr(), al.Addr(), s.profileName, s.admission)

	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
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
