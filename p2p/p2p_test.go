package p2p

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	ma "github.com/multiformats/go-multiaddr"
)

func newKey() ed25519.PrivateKey {
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	return k
}

func startNode(t testing.TB, cfg Config) *Node {
	t.Helper()
	if cfg.Key == nil {
		cfg.Key = newKey()
	}
	if cfg.Listen == nil {
		cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	n, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// noDirect forbids direct connections to the listed peers: only relayed
// (p2p-circuit) addresses may be dialled, as between two peers behind NATs.
type noDirect struct{ peers map[peer.ID]bool }

func (g *noDirect) InterceptPeerDial(peer.ID) bool { return true }
func (g *noDirect) InterceptAddrDial(p peer.ID, a ma.Multiaddr) bool {
	if !g.peers[p] {
		return true
	}
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}
func (g *noDirect) InterceptAccept(network.ConnMultiaddrs) bool { return true }
func (g *noDirect) InterceptSecured(network.Direction, peer.ID, network.ConnMultiaddrs) bool {
	return true
}
func (g *noDirect) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

const echo = "/guildhall/test/echo/1"

// setup starts a relay and two peers, A and B, that may not dial each
// other; A reserves a slot on the relay and echoes what it receives.
func setup(t testing.TB, rc RelayConfig) (r, a, b *Node, circuit peer.AddrInfo) {
	t.Helper()
	r = startNode(t, Config{Relay: &rc, ForcePublic: true})
	ka, kb := newKey(), newKey()
	ida, _ := peerIDOf(ka)
	idb, _ := peerIDOf(kb)
	a = startNode(t, Config{Key: ka, Gater: &noDirect{peers: map[peer.ID]bool{idb: true}}})
	b = startNode(t, Config{Key: kb, Gater: &noDirect{peers: map[peer.ID]bool{ida: true}}})
	ctx := context.Background()
	if err := a.Host.Connect(ctx, r.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Reserve(ctx, a.Host, r.AddrInfo()); err != nil {
		t.Fatalf("reserve: %v", err)
	}
	a.Host.SetStreamHandler(echo, func(s network.Stream) {
		defer s.Close()
		io.Copy(s, s)
	})
	ca, err := ma.NewMultiaddr(r.Host.Addrs()[0].String() + "/p2p/" + r.Host.ID().String() + "/p2p-circuit")
	if err != nil {
		t.Fatal(err)
	}
	return r, a, b, peer.AddrInfo{ID: a.Host.ID(), Addrs: []ma.Multiaddr{ca}}
}

// Two peers that cannot dial each other exchange data through the relay.
func TestCircuit(t *testing.T) {
	_, a, b, circuit := setup(t, RelayConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The direct way is closed.
	if err := b.Host.Connect(ctx, peer.AddrInfo{ID: a.Host.ID(), Addrs: a.Host.Addrs()}); err == nil {
		t.Fatal("B dialled A directly: the test would prove nothing")
	}
	if err := b.Host.Connect(ctx, circuit); err != nil {
		t.Fatalf("connect through the relay: %v", err)
	}
	s, err := b.Host.NewStream(network.WithAllowLimitedConn(ctx, "test"), a.Host.ID(), echo)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("hello through the relay")
	s.Write(msg)
	s.CloseWrite()
	got, err := io.ReadAll(s)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo %q, %v", got, err)
	}
	for _, c := range b.Host.Network().ConnsToPeer(a.Host.ID()) {
		if _, err := c.RemoteMultiaddr().ValueForProtocol(ma.P_CIRCUIT); err != nil {
			t.Fatalf("a direct connection exists: %s", c.RemoteMultiaddr())
		}
	}
}

// An over-limit reservation is refused.
func TestReservationLimit(t *testing.T) {
	r, _, _, _ := setup(t, RelayConfig{MaxReservations: 1})
	c := startNode(t, Config{})
	ctx := context.Background()
	if err := c.Host.Connect(ctx, r.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Reserve(ctx, c.Host, r.AddrInfo()); err == nil {
		t.Fatal("a reservation over the limit of 1 was granted")
	}
}

// A circuit is cut at its data limit.
func TestCircuitDataLimit(t *testing.T) {
	const limit = 8 << 10
	_, a, b, circuit := setup(t, RelayConfig{CircuitData: limit})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Host.Connect(ctx, circuit); err != nil {
		t.Fatal(err)
	}
	s, err := b.Host.NewStream(network.WithAllowLimitedConn(ctx, "test"), a.Host.ID(), echo)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 1024)
		for range 256 { // 256 KiB, far over the limit
			if _, err := s.Write(buf); err != nil {
				return
			}
		}
		s.CloseWrite()
	}()
	got, _ := io.Copy(io.Discard, s)
	if got >= 256<<10 || got > 2*limit {
		t.Fatalf("%d bytes came back through a circuit limited to %d", got, limit)
	}
}

func TestACL(t *testing.T) {
	allowed := startNode(t, Config{})
	r := startNode(t, Config{Relay: &RelayConfig{ACL: "allow-list", Allow: []peer.ID{allowed.Host.ID()}}, ForcePublic: true})
	other := startNode(t, Config{})
	ctx := context.Background()
	for _, n := range []*Node{allowed, other} {
		if err := n.Host.Connect(ctx, r.AddrInfo()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.Reserve(ctx, allowed.Host, r.AddrInfo()); err != nil {
		t.Fatalf("allow-listed peer: %v", err)
	}
	if _, err := client.Reserve(ctx, other.Host, r.AddrInfo()); err == nil {
		t.Fatal("a peer off the allow-list reserved")
	}
	member := false
	m := startNode(t, Config{Relay: &RelayConfig{ACL: "members", Member: func(peer.ID) bool { return member }}, ForcePublic: true})
	if err := other.Host.Connect(ctx, m.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Reserve(ctx, other.Host, m.AddrInfo()); err == nil {
		t.Fatal("a non-member reserved")
	}
	member = true
	if _, err := client.Reserve(ctx, other.Host, m.AddrInfo()); err != nil {
		t.Fatalf("a member: %v", err)
	}
	if _, err := New(ctx, Config{Key: newKey(), Relay: &RelayConfig{ACL: "members"}}); err == nil {
		t.Fatal("a members ACL without a Member function")
	}
	if _, err := (&RelayConfig{CircuitData: -1}).Resources(); err == nil {
		t.Fatal("an unlimited circuit was configured")
	}
}

// Every transport listens: TCP, QUIC, WebTransport and WebSocket.
func TestTransports(t *testing.T) {
	n := startNode(t, Config{Listen: []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/udp/0/quic-v1/webtransport", "/ip4/127.0.0.1/tcp/0/ws"}})
	var got []string
	for _, a := range n.Host.Addrs() {
		got = append(got, a.String())
	}
	all := strings.Join(got, " ")
	for _, want := range []string{"/tcp/", "/quic-v1", "/webtransport", "/ws"} {
		if !strings.Contains(all, want) {
			t.Fatalf("no %s listener in %v", want, got)
		}
	}
	// And a peer reaches it over QUIC.
	c := startNode(t, Config{Listen: []string{"/ip4/127.0.0.1/udp/0/quic-v1"}})
	var quic []ma.Multiaddr
	for _, a := range n.Host.Addrs() {
		if strings.HasSuffix(a.String(), "/quic-v1") {
			quic = append(quic, a)
		}
	}
	if err := c.Host.Connect(context.Background(), peer.AddrInfo{ID: n.Host.ID(), Addrs: quic}); err != nil {
		t.Fatalf("QUIC: %v", err)
	}
}
