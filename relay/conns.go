package relay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun/v3"
	"github.com/pion/turn/v5"
)

// listenConn wraps a UDP listening socket: requests are observed as they
// are read (to pick the REST secret), and 401 challenges beyond the
// per-source rate are dropped instead of sent, so the relay is no
// reflection amplifier for spoofed sources.
type listenConn struct {
	net.PacketConn
	s *Server
}

func (c *listenConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(b)
	if err == nil && n >= 20 && b[0]&0xc0 == 0 { // a STUN message, not ChannelData
		if creds := c.s.creds.Load(); len(creds.secrets) > 1 {
			c.s.chooser.observe(creds, addr.String(), b[:n])
		}
	}
	return n, addr, err
}

func (c *listenConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if isChallenge(b) {
		if ap, err := netip.ParseAddrPort(addr.String()); err == nil && !c.s.challenges.Allow(ap.Addr().Unmap()) {
			c.s.metrics.challengesDropped.Inc()
			return len(b), nil
		}
	}
	return c.PacketConn.WriteTo(b, addr)
}

// isChallenge reports whether b is a STUN error response with code 401.
func isChallenge(b []byte) bool {
	if len(b) < 20 || !stun.IsMessage(b) {
		return false
	}
	if typ := binary.BigEndian.Uint16(b); typ&0x0110 != 0x0110 { // class bits: error response
		return false
	}
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	if m.Decode() != nil {
		return false
	}
	var code stun.ErrorCodeAttribute
	return code.GetFrom(m) == nil && code.Code == stun.CodeUnauthorized
}

// listener wraps a TCP or TLS listener so that requests on its streams are
// observed like UDP ones.
type listener struct {
	net.Listener
	s *Server
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &streamConn{Conn: c, s: l.s}, nil
}

// Write completes ConnectionBind success responses: pion/turn sends them
// without MESSAGE-INTEGRITY, which RFC 8489 §9.2.4 requires in a response
// to an authenticated request and which RFC 6062 clients (coturn's among
// them) check. The key is the one the request was authenticated with.
func (c *streamConn) Write(b []byte) (int, error) {
	if len(b) >= 20 && b[0]&0xc0 == 0 && binary.BigEndian.Uint16(b) == connectionBindSuccess {
		c.raw.Store(true)
		if key := c.s.streamKey(c.RemoteAddr().String()); key != nil {
			m := &stun.Message{Raw: append([]byte(nil), b...)}
			if m.Decode() == nil && !m.Contains(stun.AttrMessageIntegrity) {
				if key.AddTo(m) == nil && stun.Fingerprint.AddTo(m) == nil {
					if _, err := c.Conn.Write(m.Raw); err != nil {
						return 0, err
					}
					return len(b), nil
				}
			}
		}
	}
	return c.Conn.Write(b)
}

// connectionBindSuccess is the message type of a ConnectionBind success
// response (method 0x00b, class success).
var connectionBindSuccess = stun.NewType(stun.MethodConnectionBind, stun.ClassSuccessResponse).Value()

func (c *streamConn) Close() error {
	c.s.streamKeys.Delete(c.RemoteAddr().String())
	return c.Conn.Close()
}

// streamConn observes the STUN messages of a TCP stream as they pass,
// framing them itself: STUN messages carry their length, and ChannelData
// is padded to four bytes over TCP (RFC 5766 §11.5).
type streamConn struct {
	net.Conn
	s   *Server
	raw atomic.Bool // after ConnectionBind the stream carries peer data, not STUN

	mu  sync.Mutex // guards buf: pion may read a bound data connection from two goroutines
	buf []byte     // bytes of the current frame; bounded by the frame size
}

const maxFrame = 65535 + 20

func (c *streamConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.feed(b[:n])
	return n, err
}

func (c *streamConn) feed(p []byte) {
	if c.raw.Load() || len(p) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(c.buf, p...)
	for len(c.buf) >= 4 {
		var size int
		if c.buf[0]&0xc0 == 0 { // STUN
			size = 20 + int(binary.BigEndian.Uint16(c.buf[2:4]))
		} else { // ChannelData
			size = (4 + int(binary.BigEndian.Uint16(c.buf[2:4])) + 3) &^ 3
		}
		if size > maxFrame {
			c.buf = nil // not a TURN stream; pion will close it
			return
		}
		if len(c.buf) < size {
			return
		}
		if creds := c.s.creds.Load(); c.buf[0]&0xc0 == 0 && len(creds.secrets) > 1 {
			c.s.chooser.observe(creds, c.RemoteAddr().String(), c.buf[:size])
		}
		c.buf = c.buf[size:]
	}
	if len(c.buf) == 0 {
		c.buf = nil
	}
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
	inner turn.RelayAddressGenerator
	s     *Server
}

func (g *relayGen) Validate() error { return g.inner.Validate() }

func (g *relayGen) AllocatePacketConn(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	pc, addr, err := g.inner.AllocatePacketConn(conf)
	if err != nil {
		return nil, nil, err
	}
	return &relayConn{PacketConn: newBatchReader(pc, 4, 1600), s: g.s, up: g.s.newBucket(), down: g.s.newBucket(),
		toPeer: g.s.metrics.counters("udp", "to_peer"), toClient: g.s.metrics.counters("udp", "to_client")}, addr, nil
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
	s                *Server
	up, down         *bucket
	toPeer, toClient counters
}

func (c *relayConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.s.own.Load().holds(addr) {
		c.s.metrics.deniedPeers.Inc()
		return len(b), nil // dropped, as for a peer without permission
	}
	if !c.up.take(len(b)) {
		c.s.metrics.capDropped.Inc()
		return len(b), nil
	}
	c.toPeer.add(len(b))
	return c.PacketConn.WriteTo(b, addr)
}

func (c *relayConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil || c.down.take(n) {
			if err == nil {
				c.toClient.add(n)
			}
			return n, addr, err
		}
		c.s.metrics.capDropped.Inc()
	}
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
