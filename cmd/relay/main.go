// Command relay runs a Guildhall relay's TURN/STUN server: NAT traversal
// and packet relaying for clients, with no storage and no view of content.
//
//	relay -config /etc/guildhall/relay.yaml
//
// configs/relay.yaml documents every setting. SIGHUP reloads credentials,
// limits and the TLS certificate; SIGTERM drains (no new allocations, the
// existing ones continue until drain_timeout) and exits.
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"

	"github.com/guildhall/guildhall/discovery"
	"github.com/guildhall/guildhall/internal/healthcheck"
	"github.com/guildhall/guildhall/internal/nodekey"
	"github.com/guildhall/guildhall/p2p"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/relay"
)

var version = "dev"

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("relay", flag.ContinueOnError)
	fl.SetOutput(stderr)
	path := fl.String("config", os.Getenv("GUILDHALL_RELAY_CONFIG"), "configuration file (YAML; see configs/relay.yaml)")
	external := fl.String("external-ip", "", "the relay's public address (overrides external_ip)")
	showVersion := fl.Bool("version", false, "print the version and exit")
	probe := fl.String("healthcheck", "", "probe this URL (2xx: exit 0) and exit; the container HEALTHCHECK")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *probe != "" {
		return healthcheck.Probe(*probe)
	}
	if *showVersion {
		fmt.Fprintln(stdout, "relay", version)
		return nil
	}
	cfg, err := load(*path)
	if err != nil {
		return err
	}
	if *external != "" {
		cfg.ExternalIP = *external
	}
	if err := cfg.finish(); err != nil {
		return err
	}
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	users, _ := cfg.users()
	secrets, _ := cfg.secrets()
	limits, _ := cfg.limits()
	rc := relay.Config{Realm: cfg.Realm, Users: users, Secrets: secrets, RelayIP: net.ParseIP(cfg.ExternalIP), RelayBind: cfg.Relay.Bind,
		PortMin: cfg.Relay.PortMin, PortMax: cfg.Relay.PortMax, Limits: limits, Logger: log}
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	if cfg.Listen.UDP != "" {
		n := cfg.Listen.UDPSockets
		if n <= 0 {
			n = runtime.GOMAXPROCS(0)
		}
		// A plain bind first: it fails if any socket (another relay's
		// SO_REUSEPORT group included) holds the port, which would otherwise
		// silently share this relay's clients.
		probe, err := net.ListenPacket("udp", cfg.Listen.UDP)
		if err != nil {
			return fmt.Errorf("listen.udp %s: %w (is another relay running?)", cfg.Listen.UDP, err)
		}
		cfg.Listen.UDP = probe.LocalAddr().String()
		probe.Close()
		for range n { // one socket and one read loop per core, the kernel spreads clients (SO_REUSEPORT)
			pc, err := reusePort.ListenPacket(ctx, "udp", cfg.Listen.UDP)
			if err != nil {
				return err
			}
			closers = append(closers, pc)
			rc.UDP = append(rc.UDP, pc)
			cfg.Listen.UDP = pc.LocalAddr().String() // further sockets share the port actually bound
		}
	}
	if cfg.Listen.TCP != "" {
		l, err := net.Listen("tcp", cfg.Listen.TCP)
		if err != nil {
			return err
		}
		closers = append(closers, l)
		rc.TCP = append(rc.TCP, l)
	}
	var cert atomic.Pointer[tls.Certificate]
	loadCert := func() error {
		if cfg.TLS.CertFile == "" {
			return nil
		}
		c, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return err
		}
		cert.Store(&c)
		return nil
	}
	if err := loadCert(); err != nil {
		return err
	}
	if cfg.Listen.TLS != "" {
		l, err := net.Listen("tcp", cfg.Listen.TLS)
		if err != nil {
			return err
		}
		closers = append(closers, l)
		rc.TLS = append(rc.TLS, tls.NewListener(l, &tls.Config{MinVersion: tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert.Load(), nil }}))
	}
	srv, err := relay.New(rc)
	if err != nil {
		return err
	}
	defer srv.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(srv.Metrics(), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /debug/pprof/", pprof.Index) // the listener is never public (see finish)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	ml, err := net.Listen("tcp", cfg.Metrics.Listen)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ml)
	defer hs.Close()

	var node *p2p.Node
	if cfg.P2P.Enabled {
		key, created, err := nodekey.Load(cfg.P2P.KeyFile)
		if err != nil {
			return err
		}
		if created {
			log.Info("created a new node key", "file", cfg.P2P.KeyFile)
		}
		rcfg, _ := cfg.p2pRelay()
		boot, _ := cfg.bootstrap()
		node, err = p2p.New(ctx, p2p.Config{Key: key, Listen: cfg.P2P.Listen, Announce: cfg.P2P.Announce, Relay: rcfg,
			ForcePublic: cfg.P2P.ForcePublic, DHT: cfg.P2P.DHT, Bootstrap: boot, Registerer: reg, Logger: log})
		if err != nil {
			return err
		}
		defer node.Close()
		if node.DHT != nil {
			go announce(ctx, node, key, cfg, log)
		}
	}

	fmt.Fprintf(stdout, "relay %s\nrealm   %s\nudp     %s (%d sockets)\ntcp     %s\ntls     %s\nrelayed %s ports %d-%d\nmetrics http://%s/metrics\n",
		version, cfg.Realm, cfg.Listen.UDP, len(rc.UDP), addrOf(rc.TCP), addrOf(rc.TLS), cfg.ExternalIP, cfg.Relay.PortMin, cfg.Relay.PortMax, ml.Addr())
	if node != nil {
		fmt.Fprintf(stdout, "p2p     %s\n", node.Host.ID())
		for _, a := range node.Host.Addrs() {
			fmt.Fprintf(stdout, "        %s/p2p/%s\n", a, node.Host.ID())
		}
	}

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
			if err := reload(*path, srv, loadCert, &cfg); err != nil {
				log.Error("reload refused; the previous settings stay", "err", err)
			} else {
				log.Info("reloaded credentials, limits and certificate")
			}
			continue
		}
		log.Info("draining: no new allocations", "allocations", srv.Allocations(), "deadline", cfg.DrainTimeout)
		srv.Drain()
		deadline := time.Now().Add(cfg.DrainTimeout)
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

// announce publishes the relay's signed discovery record in the DHT, and
// again every hour (records live 24 hours at most).
func announce(ctx context.Context, node *p2p.Node, key ed25519.PrivateKey, cfg Config, log *slog.Logger) {
	for {
		now := time.Now()
		var addrs []string
		for _, a := range node.Host.Addrs() {
			if len(addrs) < 12 {
				addrs = append(addrs, a.String()+"/p2p/"+node.Host.ID().String())
			}
		}
		if cfg.Listen.UDP != "" {
			_, port, _ := net.SplitHostPort(cfg.Listen.UDP)
			addrs = append(addrs, "turn:"+net.JoinHostPort(cfg.ExternalIP, port)+"?transport=udp")
		}
		rec, err := policy.NewRecord(policy.IdentitySigner(key), policy.RecordBody{Seq: uint64(now.Unix()), Roles: []string{policy.RoleRelay},
			Addrs: addrs, Caps: []string{"turn", "circuit-relay-v2"}, Issued: now.UnixMilli(), Expires: now.Add(24 * time.Hour).UnixMilli()})
		if err == nil {
			pctx, cancel := context.WithTimeout(ctx, time.Minute)
			err = discovery.Publish(pctx, node.DHT, rec)
			cancel()
		}
		if err != nil {
			log.Warn("publishing the discovery record", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Hour):
		}
	}
}

func reload(path string, srv *relay.Server, loadCert func() error, cur *Config) error {
	next, err := load(path)
	if err != nil {
		return err
	}
	if next.ExternalIP == "" {
		next.ExternalIP = cur.ExternalIP
	}
	if err := next.finish(); err != nil {
		return err
	}
	users, _ := next.users()
	secrets, _ := next.secrets()
	limits, _ := next.limits()
	if err := srv.Reload(users, secrets, limits); err != nil {
		return err
	}
	cur.TLS = next.TLS
	return loadCert()
}

func addrOf(ls []net.Listener) string {
	if len(ls) == 0 {
		return "-"
	}
	return ls[0].Addr().String()
}

// reusePort binds several sockets to one address.
var reusePort = net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) })
	return errors.Join(err, serr)
}}
