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
	"crypto/ecdh"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/guildhall/guildhall/fanout"
	"github.com/guildhall/guildhall/fanout/pgnotify"
	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/hub/httpapi"
	"github.com/guildhall/guildhall/hub/replica"
	"github.com/guildhall/guildhall/internal/healthcheck"
	"github.com/guildhall/guildhall/internal/nodekey"
	"github.com/guildhall/guildhall/p2p"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
	"github.com/guildhall/guildhall/storage/fs"
	"github.com/guildhall/guildhall/storage/postgres"
	"github.com/guildhall/guildhall/storage/s3"
	"github.com/guildhall/guildhall/storage/sqlite"
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
	configPath := fl.String("config", getenv("GUILDHALL_HUB_CONFIG"), "configuration file (YAML; see configs/hub.yaml)")
	dataDir := fl.String("data-dir", "", "data directory (embedded storage and node key)")
	listen := fl.String("listen", "", "API listen address (default 127.0.0.1:7420)")
	adminListen := fl.String("admin-listen", "", "admin and metrics listen address (default 127.0.0.1:7421)")
	pgURL := fl.String("postgres", "", "PostgreSQL URL (default: embedded SQLite)")
	admission := fl.String("admission", "", "open, allow-list or provisioned")
	logLevel := fl.String("log-level", "", "debug, info, warn or error")
	showVersion := fl.Bool("version", false, "print the version and exit")
	probe := fl.String("healthcheck", "", "probe this URL (2xx: exit 0) and exit; the container HEALTHCHECK")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *probe != "" {
		return healthcheck.Probe(*probe)
	}
	if *showVersion {
		fmt.Fprintln(stdout, "hub", version)
		return nil
	}
	if fl.Arg(0) == "link-request" {
		return linkRequest(getenv, *configPath, *dataDir, stdout)
	}
	cfg, err := load(*configPath)
	if err != nil {
		return err
	}
	if err := cfg.applyEnv(getenv); err != nil {
		return err
	}
	for _, f := range []struct {
		flag *string
		dst  *string
	}{{dataDir, &cfg.DataDir}, {listen, &cfg.Listen}, {adminListen, &cfg.Admin.Listen}, {pgURL, &cfg.Storage.PostgresURL},
		{admission, &cfg.Admission.Mode}, {logLevel, &cfg.LogLevel}} {
		if *f.flag != "" {
			*f.dst = *f.flag
		}
	}
	if err := cfg.finish(); err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	return serve(ctx, cfg, log, stdout)
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// stores opens the metadata and blob stores the config names.
func stores(ctx context.Context, cfg Config, log *slog.Logger) (hub.Store, storage.BlobStore, func(), error) {
	if cfg.Storage.PostgresURL == "" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, nil, nil, err
		}
		meta, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(cfg.DataDir, "hub.db"), Logger: log})
		if err != nil {
			return nil, nil, nil, err
		}
		blobs, err := fs.Open(fs.Config{Dir: filepath.Join(cfg.DataDir, "blobs")})
		if err != nil {
			meta.Close()
			return nil, nil, nil, err
		}
		return meta, blobs, func() { meta.Close() }, nil
	}
	meta, err := postgres.Open(ctx, postgres.Config{URL: cfg.Storage.PostgresURL, Timeout: cfg.Storage.Timeout, Logger: log})
	if err != nil {
		return nil, nil, nil, err
	}
	var blobs storage.BlobStore
	if s := cfg.Storage.S3; s.Endpoint != "" {
		b, err := s3.Open(ctx, s3.Config{Endpoint: s.Endpoint, Secure: s.Secure, AccessKey: s.AccessKey, SecretKey: s.SecretKey,
			Region: s.Region, Bucket: s.Bucket, CreateBucket: s.CreateBucket, Timeout: cfg.Storage.Timeout})
		if err != nil {
			meta.Close()
			return nil, nil, nil, err
		}
		blobs = b
	} else {
		b, err := fs.Open(fs.Config{Dir: filepath.Join(cfg.DataDir, "blobs")})
		if err != nil {
			meta.Close()
			return nil, nil, nil, err
		}
		blobs = b
	}
	return meta, blobs, func() { meta.Close() }, nil
}

func serve(ctx context.Context, cfg Config, log *slog.Logger, stdout io.Writer) error {
	key, created, err := nodekey.Load(cfg.NodeKeyFile)
	if err != nil {
		return err
	}
	if created {
		log.Info("created a new node key", "file", cfg.NodeKeyFile)
	}
	meta, blobs, closeStores, err := stores(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeStores()

	broker := fanout.New(fanout.Config{QueueLen: cfg.Limits.QueueLen})
	hcfg := hub.Config{NodeKey: key, Store: meta, Blobs: blobs, Broker: broker, Logger: log,
		DefaultQuota: storage.Quota(cfg.Admission.DefaultQuota), MaxBlob: cfg.Limits.MaxBlob, MaxServers: cfg.Limits.MaxServers,
		PostRate: cfg.Limits.PostRate, PostBurst: cfg.Limits.PostBurst}
	switch cfg.Admission.Mode {
	case "open":
		hcfg.Admission = hub.Open
	case "allow-list":
		hcfg.Admission = hub.AllowList
	case "home":
		hcfg.Admission = hub.Home
	default:
		hcfg.Admission = hub.Provisioned
	}
	if cfg.Home.OwnerCert != "" {
		c, _ := policy.DecodeCertToken(cfg.Home.OwnerCert) // checked by finish
		if c.Device != policy.KeyOf(key) {
			return fmt.Errorf("home.owner_cert certifies %s, not this hub's node key %s (make it with: hub link-request)", c.Device, policy.KeyOf(key))
		}
		hcfg.NodeCert = c
	}
	for _, s := range cfg.Admission.Allow {
		id, _ := policy.ParseID(s) // checked by finish
		hcfg.Allowed = append(hcfg.Allowed, id)
	}
	var bus *pgnotify.Bus
	if cfg.Storage.PostgresURL != "" { // replicas sharing the database hear each other
		if bus, err = pgnotify.New(ctx, pgnotify.Config{URL: cfg.Storage.PostgresURL, Logger: log}); err != nil {
			return err
		}
		defer bus.Close()
		hcfg.Notifier = bus
	}
	svc, err := hub.New(hcfg)
	if err != nil {
		return err
	}
	if bus != nil {
		lctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if err := bus.Listen(lctx, svc); err != nil {
			return err
		}
	}

	var rep *replica.Replicator
	if cfg.P2P.Enabled {
		boot, _ := addrInfos(cfg.P2P.Bootstrap)
		peers, _ := addrInfos(cfg.P2P.Peers)
		listen := cfg.P2P.Listen
		if len(listen) == 0 {
			listen = []string{"/ip4/0.0.0.0/tcp/4101", "/ip4/0.0.0.0/udp/4101/quic-v1"}
		}
		node, err := p2p.New(ctx, p2p.Config{Key: key, Listen: listen, Announce: cfg.P2P.Announce, DHT: cfg.P2P.DHT, Bootstrap: boot, Logger: log})
		if err != nil {
			return err
		}
		defer node.Close()
		if rep, err = replica.New(replica.Config{Service: svc, Host: node.Host, DHT: node.DHT, Peers: peers, Interval: cfg.P2P.Interval, Logger: log}); err != nil {
			return err
		}
		if bus != nil {
			svc.SetNotifier(hub.MultiNotifier{bus, rep})
		} else {
			svc.SetNotifier(rep)
		}
		svc.SetBlobSource(rep)
		rctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go rep.Run(rctx)
		fmt.Fprintf(stdout, "p2p     %s\n", node.Host.ID())
		for _, a := range node.Host.Addrs() {
			fmt.Fprintf(stdout, "        %s/p2p/%s\n", a, node.Host.ID())
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(svc.Metrics(), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	api := httpapi.New(svc, httpapi.Config{Version: version, Logger: log, MaxBody: cfg.Limits.MaxBody, MaxBatch: cfg.Limits.MaxBatch,
		MaxFrame: cfg.Limits.MaxFrame, MaxSockets: cfg.Limits.MaxSockets, Coalesce: cfg.Limits.Coalesce, SourceRate: cfg.Limits.SourceRate, SourceBurst: cfg.Limits.SourceBurst})
	reg.MustRegister(api.Metrics())

	public := &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	admin := &http.Server{Handler: httpapi.NewAdmin(svc, cfg.Admin.Token, reg), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	pl, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	al, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		pl.Close()
		return err
	}
	scheme := "http"
	if cfg.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			pl.Close()
			al.Close()
			return err
		}
		pl = tls.NewListener(pl, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	// Retention: swept periodically until shutdown, and stopped before the
	// stores close (defers run in reverse).
	sweepCtx, stopSweeps := context.WithCancel(ctx)
	swept := make(chan struct{})
	defer func() { stopSweeps(); <-swept }()
	go func() {
		defer close(swept)
		t := time.NewTicker(cfg.Storage.SweepInterval)
		defer t.Stop()
		for {
			select {
			case <-sweepCtx.Done():
				return
			case <-t.C:
			}
			sw, err := svc.Sweep(sweepCtx)
			if err != nil && sweepCtx.Err() == nil {
				log.Warn("retention sweep", "err", err)
			}
			if sw.Envelopes > 0 {
				log.Info("retention sweep", "envelopes", sw.Envelopes, "bytes", sw.Bytes)
			}
		}
	}()
	errc := make(chan error, 2)
	go func() { errc <- public.Serve(pl) }()
	go func() { errc <- admin.Serve(al) }()
	profile := "embedded storage in " + cfg.DataDir
	if cfg.Storage.PostgresURL != "" {
		profile = "PostgreSQL"
	}
	fmt.Fprintf(stdout, "hub %s\nnode    %s\napi     %s://%s\nadmin   http://%s (metrics at /metrics)\nstorage %s\nadmission %s\n",
		version, svc.NodeID(), scheme, pl.Addr(), al.Addr(), profile, cfg.Admission.Mode)

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
	err = errors.Join(wsErr, public.Shutdown(sctx), admin.Shutdown(sctx))
	if err != nil {
		log.Warn("shutdown was not clean", "err", err)
	}
	return nil
}

// linkRequest prints the request a member approves ("guild device approve")
// to make this hub their home node: the node key as a device, with an
// encryption key derived from it (a hub never decrypts; the certificate
// format needs one).
func linkRequest(getenv func(string) string, configPath, dataDir string, stdout io.Writer) error {
	cfg, err := load(configPath)
	if err != nil {
		return err
	}
	if err := cfg.applyEnv(getenv); err != nil {
		return err
	}
	if dataDir != "" {
		cfg.DataDir = dataDir
	}
	if err := cfg.finish(); err != nil {
		return err
	}
	key, _, err := nodekey.Load(cfg.NodeKeyFile)
	if err != nil {
		return err
	}
	seed := sha256.Sum256(append([]byte("guildhall/v1/hub-enc-key"), key.Seed()...))
	enc, err := ecdh.X25519().NewPrivateKey(seed[:])
	if err != nil {
		return err
	}
	req := policy.LinkRequest{Device: policy.KeyOf(key), EncKey: enc.PublicKey().Bytes(), Name: "home node"}
	fmt.Fprintf(stdout, "%s\n\napprove it with: guild device approve TOKEN\nthen set home.owner_cert to the certificate it prints\n", req.Encode())
	return nil
}
