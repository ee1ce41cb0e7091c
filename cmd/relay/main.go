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
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/guildhall/guildhall/discovery"
	"github.com/guildhall/guildhall/internal/daemon"
	"github.com/guildhall/guildhall/internal/nodekey"
	"github.com/guildhall/guildhall/p2p"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/relay"
)

var version = "dev"

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("relay", flag.ContinueOnError)
	fl.SetOutput(stderr)
	path := fl.String("config", getenv("GUILDHALL_RELAY_CONFIG"), "configuration file (YAML; see configs/relay.yaml)")
	external := fl.String("external-ip", "", "the relay's public address (overrides external_ip)")
	common := daemon.AddCommon(fl)
	if err := fl.Parse(args); err != nil {
		return err
	}
	if done, err := common.Handle("relay", version, stdout); done {
		return err
	}
	cfg, err := load(*path, getenv)
	if err != nil {
		return err
	}
	if *external != "" {
		cfg.ExternalIP = *external
	}
	s, err := cfg.resolve()
	if err = errors.Join(err, s.hostProblems()); err != nil {
		return err
	}
	log := daemon.NewLogger(stderr, s.log)

	var cert daemon.Certificate
	if s.TLS.CertFile != "" {
		if err := cert.Load(s.TLS.CertFile, s.TLS.KeyFile); err != nil {
			return fmt.Errorf("tls.cert_file, tls.key_file: %w", err)
		}
	}
	rc := relay.Config{Realm: s.Realm, Users: s.users, Secrets: s.secrets, RelayIP: net.ParseIP(s.ExternalIP), RelayBind: s.Relay.Bind,
		PortMin: s.Relay.PortMin, PortMax: s.Relay.PortMax, Limits: s.limits, Logger: log}
	closers, err := listen(ctx, &s, &rc, &cert, log)
	defer closeAll(closers)
	if err != nil {
		return err
	}
	srv, err := relay.New(rc)
	if err != nil {
		return err
	}
	defer srv.Close()

	reg := daemon.Registry(srv.Metrics())
	ml, err := net.Listen("tcp", s.Metrics.Listen)
	if err != nil {
		return fmt.Errorf("metrics.listen: %w", err)
	}
	// The metrics listener is never a peer, whatever limits.allow says.
	srv.Protect(ml.Addr())
	hs := &http.Server{Handler: daemon.AdminMux(reg, srv.Draining), ReadHeaderTimeout: 10 * time.Second} // the listener is never public (see resolve)
	go hs.Serve(ml)
	defer hs.Close()

	var node *p2p.Node
	if s.P2P.Enabled {
		key, created, err := nodekey.Load(s.P2P.KeyFile)
		if err != nil {
			return err
		}
		if created {
			log.Info("created a new node key", "file", s.P2P.KeyFile)
		}
		node, err = p2p.New(ctx, p2p.Config{Key: key, Listen: s.P2P.Listen, Announce: s.P2P.Announce, Relay: s.p2pRelay,
			ForcePublic: s.P2P.ForcePublic, DHT: s.P2P.DHT, Bootstrap: s.bootstrap, Registerer: reg, Logger: log})
		if err != nil {
			return err
		}
		defer node.Close()
		for _, a := range node.Host.Network().ListenAddresses() {
			if na, err := manet.ToNetAddr(a); err == nil {
				srv.Protect(na)
			}
		}
		if node.DHT != nil {
			var turn []string
			if _, port, err := net.SplitHostPort(s.Listen.UDP); err == nil { // the address bound, if any
				turn = append(turn, "turn:"+net.JoinHostPort(s.ExternalIP, port)+"?transport=udp")
			}
			a, err := discovery.NewAnnouncer(discovery.AnnouncerConfig{DHT: node.DHT, Host: node.Host, Key: key, Roles: []string{policy.RoleRelay},
				Caps: []string{"turn", "circuit-relay-v2"}, Extra: turn, Logger: log})
			if err != nil {
				return err
			}
			go a.Run(ctx)
		}
	}

	fmt.Fprintf(stdout, "relay %s\nrealm   %s\nudp     %s (%d sockets)\ntcp     %s\ntls     %s\nrelayed %s ports %d-%d\nmetrics http://%s/metrics\n",
		version, s.Realm, s.Listen.UDP, len(rc.UDP), addrOf(rc.TCP), addrOf(rc.TLS), s.ExternalIP, s.Relay.PortMin, s.Relay.PortMax, ml.Addr())
	if node != nil {
		fmt.Fprintf(stdout, "p2p     %s\n", node.Host.ID())
		for _, a := range node.Host.Addrs() {
			fmt.Fprintf(stdout, "        %s/p2p/%s\n", a, node.Host.ID())
		}
	}
	return serve(ctx, srv, log, s.DrainTimeout, func() error { return reload(*path, getenv, srv, &cert, &s) })
}
