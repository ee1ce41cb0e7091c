package relay

import (
	"net"
	"net/http"
	"testing"
	"time"
)

// IPv6 forms that carry or reach special-purpose addresses are denied,
// whatever the relay binds.
func TestDeniedPeersIPv6Forms(t *testing.T) {
	f := peerFilter{}
	for _, c := range []struct {
		addr, why string
	}{
		{"::7f00:1", "IPv4-compatible loopback"},
		{"::a9fe:a9fe", "IPv4-compatible cloud metadata"},
		{"::a00:1", "IPv4-compatible private"},
		{"::808:808", "IPv4-compatible: deprecated, never a public peer"},
		{"::ffff:0:7f00:1", "IPv4-translated loopback"},
		{"fec0::1", "site-local"},
		{"feff:ffff::1", "site-local, top of the range"},
	} {
		if f.allowed(net.ParseIP(c.addr)) {
			t.Errorf("%s (%s) is allowed", c.addr, c.why)
		}
	}
	for _, ok := range []string{"2606:4700:4700::1111", "::ffff:8.8.8.8", "8.8.8.8"} {
		if !f.allowed(net.ParseIP(ok)) {
			t.Errorf("%s is denied", ok)
		}
	}
}

// The relay's own listeners are never peers, even with an allow list that
// covers their address: not the metrics endpoint (TCP connect), not the
// TURN ports, not a protected UDP socket (datagrams through an allocation).
func TestOwnListenersAreNeverPeers(t *testing.T) {
	r := startRelay(t, nil) // allow: 127.0.0.0/8
	ml, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ml.Close()
	go http.Serve(ml, http.NotFoundHandler())
	own, err := net.ListenPacket("udp4", "127.0.0.1:0") // stands for a libp2p QUIC socket
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	r.Protect(ml.Addr(), own.LocalAddr())

	alloc, err := turnClient(t, r, "alice", "wonderland", true).AllocateTCP()
	if err != nil {
		t.Fatal(err)
	}
	defer alloc.Close()
	for _, a := range []*net.TCPAddr{ml.Addr().(*net.TCPAddr), {IP: net.ParseIP("127.0.0.1"), Port: r.port}, {IP: net.ParseIP("127.0.0.1"), Port: r.tlsPort}} {
		if _, err := alloc.Connect(a); err == nil {
			t.Errorf("a TCP connect to the relay's own listener %s was made", a)
		}
	}
	if err := echoThrough(t, r, tcpEchoPeer(t)); err != nil {
		t.Fatalf("an ordinary loopback peer (allowed) was refused: %v", err)
	}

	c := turnClient(t, r, "alice", "wonderland", false)
	pc, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	other, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	before := testutilCount(r.metrics.deniedPeers)
	for range 5 {
		pc.WriteTo([]byte("to-own"), own.LocalAddr())
		pc.WriteTo([]byte("to-other"), other.LocalAddr())
	}
	buf := make([]byte, 64)
	other.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, _, err := other.ReadFrom(buf); err != nil {
		t.Fatalf("an ordinary UDP peer got nothing: %v", err)
	}
	own.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, _, err := own.ReadFrom(buf); err == nil {
		t.Fatalf("the relay's own UDP socket received %q through an allocation", buf[:n])
	}
	if testutilCount(r.metrics.deniedPeers) < before+5 {
		t.Fatal("the datagrams to an own listener are not counted as denied")
	}
}

// With an external address that is not local (a VM behind 1:1 NAT), TCP
// connects are dialled from the bound address and work.
func TestConnectWithNonLocalExternalIP(t *testing.T) {
	for _, bind := range []string{"127.0.0.1", "0.0.0.0"} {
		t.Run(bind, func(t *testing.T) {
			r := startRelay(t, func(c *Config) { c.RelayIP, c.RelayBind = net.ParseIP("203.0.113.7"), bind })
			alloc, err := turnClient(t, r, "alice", "wonderland", true).AllocateTCP()
			if err != nil {
				t.Fatal(err)
			}
			defer alloc.Close()
			if got := alloc.Addr().(*net.TCPAddr).IP.String(); got != "203.0.113.7" {
				t.Fatalf("relayed address %s, want the advertised one", got)
			}
			if err := echoThrough(t, r, tcpEchoPeer(t)); err != nil {
				t.Fatalf("relaying over TCP: %v", err)
			}
		})
	}
}
