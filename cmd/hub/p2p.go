package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/guildhall/guildhall/discovery"
	"github.com/guildhall/guildhall/fanout/pgnotify"
	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/hub/replica"
	"github.com/guildhall/guildhall/p2p"
)

// startP2P starts the hub's libp2p node and replication with other hubs,
// and prints the node's addresses. stop ends both.
func startP2P(ctx context.Context, s settings, key ed25519.PrivateKey, svc *hub.Service, bus *pgnotify.Bus, reg prometheus.Registerer, log *slog.Logger, stdout io.Writer) (stop func(), err error) {
	listen := s.P2P.Listen
	if len(listen) == 0 {
		listen = []string{"/ip4/0.0.0.0/tcp/4101", "/ip4/0.0.0.0/udp/4101/quic-v1"}
	}
	cfg := p2p.Config{Key: key, Listen: listen, Announce: s.P2P.Announce, DHT: *s.P2P.DHT, Bootstrap: s.bootstrap, Protocols: replica.Limits(), Logger: log}
	if !s.P2P.DialPrivate {
		// Only the operator's peers and bootstrap nodes may be dialled at
		// special-purpose addresses; what the DHT, invites and peers say
		// of themselves may not aim the hub at its own network.
		trusted := map[peer.ID]bool{}
		for _, p := range append(s.peers, s.bootstrap...) {
			trusted[p.ID] = true
		}
		cfg.Gater = &discovery.DialFilter{Trusted: func(p peer.ID) bool { return trusted[p] }}
	}
	node, err := p2p.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	rep, err := replica.New(replica.Config{Service: svc, Host: node.Host, DHT: node.DHT, Peers: s.peers, Interval: s.P2P.Interval,
		DialPrivate: s.P2P.DialPrivate, Logger: log})
	if err != nil {
		node.Close()
		return nil, err
	}
	reg.MustRegister(rep.Metrics())
	if bus != nil {
		svc.SetNotifier(hub.MultiNotifier{bus, rep})
	} else {
		svc.SetNotifier(rep)
	}
	svc.SetBlobSource(rep)
	rctx, cancel := context.WithCancel(context.Background())
	go rep.Run(rctx)
	fmt.Fprintf(stdout, "p2p     %s\n", node.Host.ID())
	for _, a := range node.Host.Addrs() {
		fmt.Fprintf(stdout, "        %s/p2p/%s\n", a, node.Host.ID())
	}
	return func() { cancel(); node.Close() }, nil
}
