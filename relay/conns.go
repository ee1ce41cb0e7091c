package relay

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/turn/v5"
)

// listenConn is the UDP listening sockets of one address, as pion reads
// them: requests are observed as they are read (to pick the REST secret),
// and 401 challenges beyond the per-source rate are dropped instead of
// sent, so the relay is no reflection amplifier for spoofed sources.
type listenConn struct {
	net.PacketConn
	s *Server
}

func (s *Server) newListenConn(socks []net.PacketConn) *listenConn {
	return &listenConn{PacketConn: newFanIn(socks, 16, s.acceptDatagram, s.metrics.udpDrops), s: s}
}

// ReadFrom observes requests in pion's read loop, right before pion
// authenticates them, so that the secret chosen is this request's and a
// refusal is answered 401 (refusals).
func (c *listenConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(b)
	if err == nil && n >= 20 && b[0]&0xc0 == 0 {
		c.s.refusals.read(addr, b[:n])
		if creds := c.s.creds.Load(); len(creds.secrets) > 1 {
			c.s.chooser.observe(creds, addr.String(), b[:n])
		}
	}
	return n, addr, err
}

// acceptDatagram runs in each socket's read loop: false when the datagram
// was answered there (or dropped) instead of passed on to pion.
func (s *Server) acceptDatagram(b []byte, addr net.Addr, sock net.PacketConn) bool {
	if len(b) < 20 || b[0]&0xc0 != 0 { // not a STUN message (ChannelData)
		return true
	}
	reply := s.inspect(b, addr, false)
	if reply == nil {
		return true
	}
	// Answered here: as unauthenticated answers, within the per-source rate.
	if ap, err := netip.ParseAddrPort(addr.String()); err == nil && s.challenges.Allow(ap.Addr().Unmap()) {
		sock.WriteTo(reply, addr)
	} else {
		s.metrics.challengesDropped.Inc()
	}
	return false
}

func (c *listenConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	n := len(b)
	if b = expandBig(b, false); b == nil {
		return n, nil
	}
	if r := c.s.rewriteResponse(b); r != nil {
		b = r
	}
	if isChallenge(b) {
		if ap, err := netip.ParseAddrPort(addr.String()); err == nil && !c.s.challenges.Allow(ap.Addr().Unmap()) {
			c.s.metrics.challengesDropped.Inc()
			return n, nil
		}
	}
	if _, err := c.PacketConn.WriteTo(b, addr); err != nil {
		return 0, err
	}
	return n, nil
}

// ErrOwnListener refuses a peer address that is one of the relay's own
// listeners.
var ErrOwnListener = errors.New("relay: the peer is one of the relay's own listeners")

// initOwn records the TURN listeners as the relay's own, and where relay
// sockets are bound.
func (s *Server) initOwn() {
	var extra []netip.Addr
	if a, ok := netip.AddrFromSlice(s.cfg.RelayIP); ok {
		extra = append(extra, a)
	}
	var addrs []net.Addr
	for _, pc := range s.cfg.UDP {
		addrs = append(addrs, pc.LocalAddr())
	}
	for _, l := range append(append([]net.Listener{}, s.cfg.TCP...), s.cfg.TLS...) {
		addrs = append(addrs, l.Addr())
	}
	s.own.Store(newOwnListeners(extra...).with(addrs...))
	if ip := net.ParseIP(s.cfg.RelayBind); ip != nil {
		s.bindIP = ip
	}
}

// relayGen makes the relay sockets of allocations, within the configured
// port range, wrapped to count and cap what they carry.
type relayGen struct {
	inner *turn.RelayAddressGeneratorPortRange
	s     *Server
}

func (g *relayGen) Validate() error { return g.inner.Validate() }

func (g *relayGen) AllocatePacketConn(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	pc, addr, err := g.udpSocket(conf)
	if err != nil {
		return nil, nil, err
	}
	c := &relayConn{PacketConn: pc, s: g.s, up: g.s.newBucket(), down: g.s.newBucket(),
		toPeer: g.s.metrics.counters("udp", "to_peer"), toClient: g.s.metrics.counters("udp", "to_client")}
	if sc, ok := pc.(syscall.Conn); ok {
		rc, err := sc.SyscallConn()
		if err != nil {
			pc.Close()
			return nil, nil, err
		}
		c.whole = newWholeReader(rc, g.s.metrics.relayedDrops)
	}
	return c, addr, nil
}

func (g *relayGen) AllocateListener(conf turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	l, addr, err := g.inner.AllocateListener(conf)
	if err != nil {
		return nil, nil, err
	}
	return &relayListener{Listener: l, s: g.s}, addr, nil
}

// AllocateConn dials a peer for an RFC 6062 Connect. pion asks for the
// allocation's relayed address as the local one, which is the advertised
// address (external_ip): behind a 1:1 NAT it is not local and every dial
// would fail with 447. The dial is made from the bound address with the
// allocation's port instead.
func (g *relayGen) AllocateConn(conf turn.AllocateConnConfig) (net.Conn, error) {
	if g.s.own.Load().holds(conf.RemoteAddr) {
		g.s.metrics.deniedPeers.Inc()
		return nil, fmt.Errorf("%w: %s", ErrOwnListener, conf.RemoteAddr)
	}
	if la, ok := conf.LocalAddr.(*net.TCPAddr); ok && g.s.bindIP != nil {
		conf.LocalAddr = &net.TCPAddr{IP: g.s.bindIP, Port: la.Port}
	}
	c, err := g.inner.AllocateConn(conf)
	if err != nil {
		return nil, err
	}
	return &relayStream{Conn: c, s: g.s, up: g.s.newBucket(), down: g.s.newBucket()}, nil
}

// relayConn is a UDP allocation's relay socket: WriteTo carries client
// data to peers, ReadFrom peer data to the client. Over the bandwidth cap,
// datagrams are dropped, as a congested path would.
type relayConn struct {
	net.PacketConn
	whole            *wholeReader  // reads datagrams whole
	pending          atomic.Uint64 // the datagram set aside for the listening socket, if any
	s                *Server
	up, down         *bucket
	toPeer, toClient counters
}

// WriteTo sends b to a peer, or the datagram b is the token of (see
// shrinkBig); it reports len(b) written, as pion checks.
func (c *relayConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	n := len(b)
	if data, token := takeBig(b); token {
		if data == nil {
			return n, nil
		}
		b = data
	}
	if c.s.own.Load().holds(addr) {
		c.s.metrics.deniedPeers.Inc()
		return n, nil // dropped, as for a peer without permission
	}
	if !c.up.take(len(b)) {
		c.s.metrics.capDropped.Inc()
		return n, nil
	}
	c.toPeer.add(len(b))
	if _, err := c.PacketConn.WriteTo(b, addr); err != nil {
		return 0, err
	}
	return n, nil
}

// ReadFrom is called by pion's one read loop of the allocation.
func (c *relayConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		var n int
		var addr net.Addr
		var big []byte
		var err error
		if c.whole != nil && len(b) >= bigToken {
			n, addr, big, err = c.whole.read(b)
		} else {
			n, addr, err = c.PacketConn.ReadFrom(b)
		}
		if err != nil {
			return n, addr, err
		}
		size := n
		if big != nil {
			size = len(big)
		}
		if !c.down.take(size) {
			c.s.metrics.capDropped.Inc()
			continue
		}
		c.toClient.add(size)
		if big != nil {
			n = keepBig(&c.pending, b, big)
		}
		return n, addr, nil
	}
}

func (c *relayConn) Close() error {
	dropBig(&c.pending)
	return c.PacketConn.Close()
}

type relayListener struct {
	net.Listener
	s *Server
}

func (l *relayListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &relayStream{Conn: c, s: l.s, up: l.s.newBucket(), down: l.s.newBucket()}, nil
}

// relayStream is a TCP allocation's peer connection. Over the cap it waits
// (TCP's own backpressure) instead of dropping.
type relayStream struct {
	net.Conn
	s        *Server
	up, down *bucket
}

func (c *relayStream) Write(b []byte) (int, error) {
	c.up.wait(len(b))
	c.s.metrics.relayed("tcp", "to_peer", len(b))
	return c.Conn.Write(b)
}

func (c *relayStream) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.down.wait(n)
		c.s.metrics.relayed("tcp", "to_client", n)
	}
	return n, err
}

// bucket is a byte-rate token bucket; a nil bucket is unlimited.
type bucket struct {
	mu     sync.Mutex
	rate   float64 // bytes per second
	burst  float64
	tokens float64
	last   time.Time
}

func (s *Server) newBucket() *bucket {
	rate := s.limits.Load().bandwidth
	if rate <= 0 {
		return nil
	}
	burst := max(float64(rate)/4, 64<<10) // a quarter second, at least 64 KiB
	return &bucket{rate: float64(rate), burst: burst, tokens: burst, last: time.Now()}
}

func (b *bucket) refill(now time.Time) {
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
}

func (b *bucket) take(n int) bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(time.Now())
	if b.tokens < float64(n) {
		return false
	}
	b.tokens -= float64(n)
	return true
}

func (b *bucket) wait(n int) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.refill(time.Now())
	b.tokens -= float64(n)
	debt := -b.tokens
	b.mu.Unlock()
	if debt > 0 {
		time.Sleep(time.Duration(debt / b.rate * float64(time.Second)))
	}
}
