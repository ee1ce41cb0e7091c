// Package p2p is the relay's libp2p node, which hubs reuse: a host with a
// persistent Ed25519 identity, TCP, QUIC, WebSocket and WebTransport
// listeners, circuit relay v2 with explicit resources and an ACL, AutoNAT
// v2 (the library's rate-limited server), identify and ping, a resource
// manager with explicit limits, a connection manager, and the Guildhall DHT
// (package discovery) in server mode.
//
// Peers that cannot reach each other directly connect through the relay;
// the relay moves their bytes and never interprets them.
package p2p

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	cmgr "github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/guildhall/guildhall/discovery"
)

// DefaultListen are the listeners of a node with none configured.
var DefaultListen = []string{
	"/ip4/0.0.0.0/tcp/4001",
	"/ip4/0.0.0.0/udp/4001/quic-v1",
	"/ip4/0.0.0.0/udp/4001/quic-v1/webtransport",
	"/ip4/0.0.0.0/tcp/4002/ws",
}

// Config configures a Node.
type Config struct {
	// Key is the node's identity (the same key signs its discovery record).
	Key ed25519.PrivateKey
	// Listen are multiaddrs to listen on (default DefaultListen); Announce,
	// if set, replaces the addresses the node tells others.
	Listen, Announce []string
	// Relay configures the circuit relay v2 service; nil: no relay service.
	Relay *RelayConfig
	// ForcePublic declares the node publicly reachable, so the relay
	// service runs at once instead of after AutoNAT has decided (the
	// library waits for AutoNAT before starting it otherwise).
	ForcePublic bool
	// Bootstrap peers for the DHT; with DHT false no DHT runs.
	Bootstrap []peer.AddrInfo
	DHT       bool
	// ConnLow and ConnHigh are the connection manager's watermarks
	// (defaults 256 and 1024); Memory bounds the resource manager (default
	// 512 MiB), FDs its file descriptors (default 4096).
	ConnLow, ConnHigh int
	Memory            int64
	FDs               int
	// Protocols raises the resource manager's limits for the streams of
	// some protocols (a hub's replication messages are up to 32 MiB, over
	// the library's 16 MiB per stream); zero fields keep the defaults.
	Protocols map[protocol.ID]ProtocolLimits
	// Gater filters connections (tests use it to forbid direct dials; a hub
	// uses one to refuse special-purpose addresses from untrusted data).
	Gater connmgr.ConnectionGater
	// Registerer receives libp2p's metrics; nil disables them.
	Registerer prometheus.Registerer
	// Logger; default discards.
	Logger *slog.Logger
}

// ProtocolLimits bound the resources of one protocol's streams. Memory is
// what all its streams together may reserve, PeerMemory one peer's, and
// StreamMemory one stream's (the stream limit is shared by every protocol,
// so the largest asked for applies to all; the other protocols' own limits
// still bound them). Streams and PeerStreams bound open inbound streams.
type ProtocolLimits struct {
	Memory, PeerMemory, StreamMemory int64
	Streams, PeerStreams             int
}

// RelayConfig bounds the circuit relay service. Zero fields take the
// library's defaults, which are also the floor: limits are always finite.
type RelayConfig struct {
	MaxReservations       int           // active reservations; default 128
	MaxCircuits           int           // open circuits per peer; default 16
	MaxReservationsPerIP  int           // default 8
	MaxReservationsPerASN int           // default 32
	ReservationTTL        time.Duration // default 1 h
	CircuitDuration       time.Duration // a circuit is reset after it; default 2 min
	CircuitData           int64         // bytes per direction before reset; default 128 KiB
	BufferSize            int           // default 2048
	// ACL: "all" (default), "allow-list" (Allow), or "members" (Member
	// decides, for example membership in a server the relay serves).
	ACL    string
	Allow  []peer.ID
	Member func(peer.ID) bool
}

// Resources returns the relay resources, defaults filled in.
func (c *RelayConfig) Resources() (relay.Resources, error) {
	r := relay.DefaultResources()
	setInt := func(dst *int, v int) error {
		if v < 0 {
			return errors.New("p2p: relay limits are positive")
		}
		if v > 0 {
			*dst = v
		}
		return nil
	}
	for _, f := range []struct {
		dst *int
		v   int
	}{{&r.MaxReservations, c.MaxReservations}, {&r.MaxCircuits, c.MaxCircuits}, {&r.MaxReservationsPerIP, c.MaxReservationsPerIP},
		{&r.MaxReservationsPerASN, c.MaxReservationsPerASN}, {&r.BufferSize, c.BufferSize}} {
		if err := setInt(f.dst, f.v); err != nil {
			return r, err
		}
	}
	if c.ReservationTTL < 0 || c.CircuitDuration < 0 || c.CircuitData < 0 {
		return r, errors.New("p2p: relay limits are positive")
	}
	if c.ReservationTTL > 0 {
		r.ReservationTTL = c.ReservationTTL
	}
	lim := *r.Limit
	if c.CircuitDuration > 0 {
		lim.Duration = c.CircuitDuration
	}
	if c.CircuitData > 0 {
		lim.Data = c.CircuitData
	}
	r.Limit = &lim
	return r, nil
}

// acl implements the relay's access control.
type acl struct {
	allow  map[peer.ID]bool // nil: everyone
	member func(peer.ID) bool
}

func (a *acl) ok(p peer.ID) bool {
	switch {
	case a.member != nil:
		return a.member(p)
	case a.allow != nil:
		return a.allow[p]
	}
	return true
}

func (a *acl) AllowReserve(p peer.ID, _ ma.Multiaddr) bool { return a.ok(p) }

// AllowConnect lets a peer that may use the relay reach one that reserved
// a slot (which passed AllowReserve).
func (a *acl) AllowConnect(src peer.ID, _ ma.Multiaddr, _ peer.ID) bool { return a.ok(src) }

// Node is a running libp2p node.
type Node struct {
	Host host.Host
	DHT  *dht.IpfsDHT // nil without Config.DHT
}

// New starts a node.
func New(ctx context.Context, cfg Config) (*Node, error) {
	if len(cfg.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("p2p: Key is required")
	}
	priv, err := crypto.UnmarshalEd25519PrivateKey(cfg.Key)
	if err != nil {
		return nil, err
	}
	if len(cfg.Listen) == 0 {
		cfg.Listen = DefaultListen
	}
	if cfg.ConnLow == 0 {
		cfg.ConnLow, cfg.ConnHigh = 256, 1024
	}
	if cfg.Memory == 0 {
		cfg.Memory = 512 << 20
	}
	if cfg.FDs == 0 {
		cfg.FDs = 4096
	}
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	concrete := limits.Scale(cfg.Memory, cfg.FDs)
	if cfg.Relay != nil {
		// Every reservation holds an inbound connection: the resource
		// manager must admit as many as the relay promises, and more.
		res, err := cfg.Relay.Resources()
		if err != nil {
			return nil, err
		}
		sys := concrete.ToPartialLimitConfig().System
		need := rcmgr.LimitVal(2*res.MaxReservations + 64)
		if sys.ConnsInbound < need {
			sys.ConnsInbound = need
		}
		if sys.Conns < need+64 {
			sys.Conns = need + 64
		}
		if sys.FD < need+128 {
			sys.FD = need + 128
		}
		concrete = rcmgr.PartialLimitConfig{System: sys}.Build(concrete)
	}
	if len(cfg.Protocols) > 0 {
		part := rcmgr.PartialLimitConfig{Protocol: map[protocol.ID]rcmgr.ResourceLimits{}, ProtocolPeer: map[protocol.ID]rcmgr.ResourceLimits{}}
		stream := concrete.ToPartialLimitConfig().Stream
		for id, l := range cfg.Protocols {
			if l.Memory < 0 || l.PeerMemory < 0 || l.StreamMemory < 0 || l.Streams < 0 || l.PeerStreams < 0 {
				return nil, fmt.Errorf("p2p: protocol %s: limits are positive", id)
			}
			part.Protocol[id] = rcmgr.ResourceLimits{Memory: rcmgr.LimitVal64(l.Memory), StreamsInbound: rcmgr.LimitVal(l.Streams)}
			part.ProtocolPeer[id] = rcmgr.ResourceLimits{Memory: rcmgr.LimitVal64(l.PeerMemory), StreamsInbound: rcmgr.LimitVal(l.PeerStreams)}
			if rcmgr.LimitVal64(l.StreamMemory) > stream.Memory {
				stream.Memory = rcmgr.LimitVal64(l.StreamMemory)
			}
		}
		part.Stream = stream
		concrete = part.Build(concrete)
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(concrete))
	if err != nil {
		return nil, err
	}
	cm, err := cmgr.NewConnManager(cfg.ConnLow, cfg.ConnHigh, cmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return nil, err
	}
	opts := []libp2p.Option{
		libp2p.Identity(priv),
		libp2p.ListenAddrStrings(cfg.Listen...),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.EnableAutoNATv2(),
		libp2p.Ping(true),
		libp2p.UserAgent("guildhall-relay"),
	}
	if cfg.Registerer != nil {
		opts = append(opts, libp2p.PrometheusRegisterer(cfg.Registerer))
	} else {
		opts = append(opts, libp2p.DisableMetrics())
	}
	if len(cfg.Announce) > 0 {
		var ann []ma.Multiaddr
		for _, a := range cfg.Announce {
			m, err := ma.NewMultiaddr(a)
			if err != nil {
				return nil, fmt.Errorf("p2p: announce %q: %w", a, err)
			}
			ann = append(ann, m)
		}
		opts = append(opts, libp2p.AddrsFactory(func([]ma.Multiaddr) []ma.Multiaddr { return ann }))
	}
	if cfg.Gater != nil {
		opts = append(opts, libp2p.ConnectionGater(cfg.Gater))
	}
	if cfg.ForcePublic {
		opts = append(opts, libp2p.ForceReachabilityPublic())
	}
	if cfg.Relay != nil {
		res, err := cfg.Relay.Resources()
		if err != nil {
			return nil, err
		}
		a := &acl{member: nil}
		switch cfg.Relay.ACL {
		case "", "all":
		case "allow-list":
			a.allow = map[peer.ID]bool{}
			for _, p := range cfg.Relay.Allow {
				a.allow[p] = true
			}
		case "members":
			if cfg.Relay.Member == nil {
				return nil, errors.New("p2p: the members ACL needs a Member function")
			}
			a.member = cfg.Relay.Member
		default:
			return nil, fmt.Errorf("p2p: relay ACL %q: want all, allow-list or members", cfg.Relay.ACL)
		}
		ropts := []relay.Option{relay.WithResources(res), relay.WithACL(a)}
		if cfg.Registerer != nil {
			ropts = append(ropts, relay.WithMetricsTracer(relay.NewMetricsTracer(relay.WithRegisterer(cfg.Registerer))))
		}
		opts = append(opts, libp2p.EnableRelayService(ropts...))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("p2p: %w", err)
	}
	n := &Node{Host: h}
	if cfg.DHT {
		if n.DHT, err = discovery.NewDHT(ctx, h, cfg.Bootstrap); err != nil {
			h.Close()
			return nil, err
		}
	}
	return n, nil
}

// AddrInfo returns how others reach the node.
func (n *Node) AddrInfo() peer.AddrInfo { return peer.AddrInfo{ID: n.Host.ID(), Addrs: n.Host.Addrs()} }

// Close stops the node.
func (n *Node) Close() error {
	var errs []error
	if n.DHT != nil {
		errs = append(errs, n.DHT.Close())
	}
	return errors.Join(append(errs, n.Host.Close())...)
}
