package relay

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	"github.com/pion/turn/v5"
)

func TestDeniedPeers(t *testing.T) {
	f := peerFilter{self: map[netip.Addr]bool{netip.MustParseAddr("198.51.99.7"): true}}
	for _, c := range []struct {
		addr string
		ok   bool
	}{
		{"0.0.0.0", false}, {"0.1.2.3", false}, {"127.0.0.1", false}, {"127.255.0.1", false},
		{"10.1.2.3", false}, {"172.16.0.1", false}, {"172.31.255.255", false}, {"192.168.1.1", false},
		{"100.64.0.1", false}, {"100.127.255.254", false}, {"169.254.169.254", false},
		{"224.0.0.1", false}, {"239.255.255.250", false}, {"255.255.255.255", false}, {"240.0.0.1", false},
		{"192.0.2.10", false}, {"198.51.100.1", false}, {"203.0.113.5", false}, {"198.18.0.1", false}, {"192.0.0.8", false},
		{"::", false}, {"::1", false}, {"::ffff:127.0.0.1", false}, {"::ffff:10.0.0.1", false}, {"::ffff:0.0.0.0", false},
		{"fe80::1", false}, {"fc00::1", false}, {"fd12:3456::1", false}, {"ff02::1", false}, {"2001:db8::1", false},
		{"64:ff9b::7f00:1", false}, {"2002:7f00:1::1", false}, {"2001::1", false}, {"100::1", false},
		{"198.51.99.7", false}, // the relay's own address
		{"8.8.8.8", true}, {"1.1.1.1", true}, {"100.128.0.1", true}, {"172.32.0.1", true}, {"::ffff:8.8.8.8", true},
		{"2606:4700:4700::1111", true}, {"2a00:1450:4001::1", true},
	} {
		if got := f.allowed(net.ParseIP(c.addr)); got != c.ok {
			t.Errorf("%s: allowed %v, want %v", c.addr, got, c.ok)
		}
	}
	f.allow = []netip.Prefix{netip.MustParsePrefix("10.8.0.0/16"), netip.MustParsePrefix("127.0.0.0/8")}
	if !f.allowed(net.ParseIP("10.8.3.4")) || !f.allowed(net.ParseIP("::ffff:127.0.0.1")) || f.allowed(net.ParseIP("10.9.0.1")) {
		t.Fatal("allow-list exceptions do not apply exactly")
	}
	if f.allowed(nil) {
		t.Fatal("a missing address is allowed")
	}
}

// turnClient is pion's TURN client over a UDP or TCP connection to r.
func turnClient(t *testing.T, r *testRelay, user, pass string, tcp bool) *turn.Client {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(r.port)
	var conn net.PacketConn
	if tcp {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn = turn.NewSTUNConn(c)
	} else {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn = c
	}
	c, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: addr, TURNServerAddr: addr, Conn: conn, Username: user, Password: pass, Realm: "guildhall", RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); conn.Close() })
	return c
}

// Denied peers are refused for UDP permissions, channel binds and TCP
// connects alike; an allowed one works.
func TestDeniedPeerEveryWay(t *testing.T) {
	r := startRelay(t, func(c *Config) { c.Limits.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")} })
	c := turnClient(t, r, "alice", "wonderland", false)
	relayConn, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relayConn.Close()
	denied := &net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: 9}
	if err := c.CreatePermission(denied); err == nil {
		t.Fatal("a permission to a loopback peer was granted")
	}
	for _, ip := range []string{"::ffff:127.0.0.1", "169.254.169.254", "10.0.0.1"} {
		if err := c.CreatePermission(&net.UDPAddr{IP: net.ParseIP(ip), Port: 9}); err == nil {
			t.Fatalf("a permission to %s was granted", ip)
		}
	}
	if err := c.CreatePermission(&net.UDPAddr{IP: net.ParseIP("127.0.0.2"), Port: 9}); err != nil {
		t.Fatalf("an allow-listed peer was refused: %v", err)
	}
	// A channel bind: pion binds a channel on the first WriteTo to a peer;
	// the bind fails and the data never leaves.
	before := testutilCount(r.metrics.deniedPeers)
	relayConn.WriteTo([]byte("x"), denied)
	time.Sleep(300 * time.Millisecond)
	if testutilCount(r.metrics.deniedPeers) <= before {
		t.Fatal("the write to a denied peer was not refused")
	}
	// TCP (RFC 6062) connect.
	tc := turnClient(t, r, "alice", "wonderland", true)
	alloc, err := tc.AllocateTCP()
	if err != nil {
		t.Fatal(err)
	}
	defer alloc.Close()
	if _, err := alloc.Connect(&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 9}); err == nil {
		t.Fatal("a TCP connect to a loopback peer was made")
	}
}

func TestQuotas(t *testing.T) {
	r := startRelay(t, func(c *Config) { c.Limits.UserQuota, c.Limits.TotalQuota = 2, 3 })
	alloc := func(user, pass string) error {
		c := turnClient(t, r, user, pass, false)
		_, err := c.Allocate()
		return err
	}
	for range 2 {
		if err := alloc("alice", "wonderland"); err != nil {
			t.Fatal(err)
		}
	}
	if err := alloc("alice", "wonderland"); err == nil {
		t.Fatal("a third allocation of one user")
	}
	user, pass := restCredential("new-secret", "bob", time.Hour)
	if err := alloc(user, pass); err != nil {
		t.Fatalf("another user within the total: %v", err)
	}
	user, pass = restCredential("new-secret", "carol", time.Hour)
	if err := alloc(user, pass); err == nil {
		t.Fatal("an allocation over the total quota")
	}
	if got := testutilCount(r.metrics.quotaRejections.WithLabelValues("user")) + testutilCount(r.metrics.quotaRejections.WithLabelValues("total")); got != 2 {
		t.Fatalf("%v quota rejections counted", got)
	}
}

// restCredential issues a credential as operators' tools do.
func restCredential(secret, user string, ttl time.Duration) (string, string) {
	name, pass, err := RESTCredential(secret, user, time.Now().Add(ttl))
	if err != nil {
		panic(err)
	}
	return name, pass
}

func TestCredentials(t *testing.T) {
	if _, err := New(Config{Realm: "r", UDP: []net.PacketConn{nil}, RelayIP: net.ParseIP("192.0.2.1")}); !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("a relay without credentials: %v", err)
	}
	r := startRelay(t, nil)
	try := func(user, pass string) error {
		_, err := turnClient(t, r, user, pass, false).Allocate()
		return err
	}
	if err := try("alice", "wrong"); err == nil {
		t.Fatal("a wrong password")
	}
	for _, secret := range []string{"new-secret", "old-secret"} {
		if err := try(restCredential(secret, "dave", time.Hour)); err != nil {
			t.Fatalf("REST credential under %s: %v", secret, err)
		}
	}
	if err := try(restCredential("other", "dave", time.Hour)); err == nil {
		t.Fatal("a REST credential under an unknown secret")
	}
	if err := try(restCredential("new-secret", "dave", -time.Minute)); err == nil {
		t.Fatal("an expired REST credential")
	}
	// Reload: the old secret retires, a user changes password.
	if err := r.Reload(map[string]string{"alice": "looking-glass"}, []string{"new-secret"}, Limits{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}); err != nil {
		t.Fatal(err)
	}
	if err := try(restCredential("old-secret", "dave", time.Hour)); err == nil {
		t.Fatal("a retired secret still works")
	}
	if err := try("alice", "wonderland"); err == nil {
		t.Fatal("an old password still works")
	}
	if err := try("alice", "looking-glass"); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(nil, nil, Limits{}); !errors.Is(err, ErrNoCredentials) {
		t.Fatal("a reload to no credentials was accepted")
	}
	if testutilCount(r.metrics.authFailures) == 0 {
		t.Fatal("no auth failure counted")
	}
}

func TestLifetimesAreCapped(t *testing.T) {
	for _, l := range []Limits{{AllocationLifetime: 2 * time.Hour}, {PermissionLifetime: 90 * time.Minute}, {ChannelLifetime: 24 * time.Hour}} {
		if err := l.defaults(); err == nil {
			t.Fatalf("%+v accepted", l)
		}
	}
}

// 401 answers to one source are rate-limited: a spoofed flood of
// unauthenticated requests cannot turn the relay into an amplifier.
func TestChallengesAreRateLimited(t *testing.T) {
	r := startRelay(t, func(c *Config) { c.Limits.ChallengeRate, c.Limits.ChallengeBurst = 5, 10 })
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	to := &net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: r.port}
	const sent = 200
	for range sent {
		m := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
			stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}}, stun.Fingerprint)
		conn.WriteTo(m.Raw, to)
	}
	var got atomic.Int32
	buf := make([]byte, 1500)
	for {
		conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			break
		}
		if isChallenge(buf[:n]) {
			got.Add(1)
		}
	}
	if n := got.Load(); n == 0 || n > 20 {
		t.Fatalf("%d challenges answered to %d requests from one source (burst 10, 5/s)", n, sent)
	}
	if testutilCount(r.metrics.challengesDropped) < sent-20 {
		t.Fatal("dropped challenges are not counted")
	}
}

// The bandwidth cap drops what exceeds it.
func TestBandwidthCap(t *testing.T) {
	r := startRelay(t, func(c *Config) { c.Limits.Bandwidth = 64 << 10 }) // burst: 64 KiB
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	c := turnClient(t, r, "alice", "wonderland", false)
	relayConn, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CreatePermission(peer.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 1000)
	for range 500 { // 500 KB at once: far over 64 KiB/s with a 64 KiB burst
		relayConn.WriteTo(payload, peer.LocalAddr())
	}
	received := 0
	buf := make([]byte, 2000)
	for {
		peer.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, _, err := peer.ReadFrom(buf); err != nil {
			break
		}
		received++
	}
	if received == 0 || received > 140 {
		t.Fatalf("the peer received %d of 500 datagrams through a 64 KiB/s cap", received)
	}
}

// Draining refuses new allocations and keeps the existing ones.
func TestDrain(t *testing.T) {
	r := startRelay(t, nil)
	c := turnClient(t, r, "alice", "wonderland", false)
	if _, err := c.Allocate(); err != nil {
		t.Fatal(err)
	}
	r.Drain()
	if _, err := turnClient(t, r, "alice", "wonderland", false).Allocate(); err == nil {
		t.Fatal("an allocation while draining")
	}
	if r.Allocations() != 1 {
		t.Fatalf("%d allocations live", r.Allocations())
	}
}
