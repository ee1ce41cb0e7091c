package relay

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun/v3"
)

// listener wraps a TCP or TLS listener. Its own accept loop replaces
// pion's, which ends for good on the first error (EMFILE included): it
// backs off and retries as net/http does, caps the connections of one
// source, completes TLS handshakes within a deadline (pion only bounds
// the handshake of a bare *tls.Conn, which the wrapper hides), and closes
// streams that have not authenticated a request within the auth timeout.
// Requests on its streams are observed like UDP ones.
type listener struct {
	net.Listener
	s *Server

	init      sync.Once
	conns     chan net.Conn // accepted and ready streams, handed to pion
	done      chan struct{} // closed by Close
	closeOnce sync.Once
}

func (l *listener) start() {
	l.init.Do(func() {
		l.conns, l.done = make(chan net.Conn), make(chan struct{})
		go l.acceptLoop()
	})
}

// Accept returns the next stream that is ready for TURN.
func (l *listener) Accept() (net.Conn, error) {
	l.start()
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting; streams already handed out stay.
func (l *listener) Close() error {
	l.start()
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// Accept back-off after an error, as net/http's Server.Serve: 5 ms,
// doubling, at most a second.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

func (l *listener) acceptLoop() {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE, ENFILE, ECONNABORTED...: the listener is still good.
			l.s.metrics.acceptErrors.Inc()
			delay = min(max(2*delay, acceptBackoffMin), acceptBackoffMax)
			select {
			case <-time.After(delay):
			case <-l.done:
				return
			}
			continue
		}
		delay = 0
		lim := l.s.limits.Load()
		src := sourceOf(c.RemoteAddr())
		if !l.s.sources.acquire(src, lim.connsPerSource) {
			l.s.metrics.streamsRefused.Inc()
			c.Close()
			continue
		}
		sc := &streamConn{Conn: c, s: l.s, src: src}
		l.s.metrics.streamsOpen.Inc()
		l.s.streams.Store(c.RemoteAddr().String(), sc)
		sc.idle.Store(time.AfterFunc(lim.authTimeout, sc.closeIdle))
		go l.ready(sc, lim.handshakeTimeout)
	}
}

// ready completes a TLS handshake within its deadline, then hands the
// stream to pion.
func (l *listener) ready(sc *streamConn, timeout time.Duration) {
	if tc, ok := sc.Conn.(*tls.Conn); ok {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			sc.closeIdleFor("handshake")
			return
		}
	}
	sc.handshaken.Store(true)
	select {
	case l.conns <- sc:
	case <-l.done:
		sc.Close()
	}
}

// sourceOf is the key per-source caps count by: the address, or its /64
// for IPv6 (one host commonly holds a whole /64).
func sourceOf(a net.Addr) netip.Prefix {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Prefix{}
	}
	ip := ap.Addr().Unmap()
	if ip.Is4() {
		return netip.PrefixFrom(ip, 32)
	}
	p, _ := ip.Prefix(64)
	return p
}

// sourceCounts counts the open streams of each source.
type sourceCounts struct {
	mu sync.Mutex
	n  map[netip.Prefix]int // guarded by mu
}

func (c *sourceCounts) acquire(src netip.Prefix, limit int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[netip.Prefix]int{}
	}
	if limit > 0 && c.n[src] >= limit {
		return false
	}
	c.n[src]++
	return true
}

func (c *sourceCounts) release(src netip.Prefix) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[src]--; c.n[src] <= 0 {
		delete(c.n, src)
	}
}

// streamConn is one client stream (TCP or TLS). It frames the stream's
// STUN messages and ChannelData itself (STUN messages carry their length;
// ChannelData is padded to four bytes over TCP, RFC 5766 §11.5) and hands
// pion one frame per Read, so that each request can be inspected first
// (Server.inspect) and answered without pion where pion would answer
// wrongly. After a ConnectionBind the stream carries peer data and is
// passed through untouched.
type streamConn struct {
	net.Conn
	s          *Server
	src        netip.Prefix
	idle       atomic.Pointer[time.Timer] // closes the stream unless authed first
	authed     atomic.Bool                // a request on it passed authentication
	handshaken atomic.Bool                // its TLS handshake (if any) is done
	counted    atomic.Bool                // its idle close was counted
	raw        atomic.Bool                // after ConnectionBind the stream carries peer data, not STUN
	pending    atomic.Uint64              // the large datagram set aside for the relay socket (shrinkBig)
	closed     sync.Once

	mu  sync.Mutex // guards in and out; pion may read a bound data connection from two goroutines
	in  []byte     // bytes read and not yet framed; bounded by maxFrame plus one read
	out []byte     // the rest of the frame being handed to pion
}

const maxFrame = 65535 + 20

// markAuthed exempts the stream from the auth timeout: from now on its
// allocation's lifetime governs it.
func (c *streamConn) markAuthed() {
	if !c.authed.Swap(true) {
		c.stopIdle()
	}
}

func (c *streamConn) stopIdle() {
	if t := c.idle.Load(); t != nil {
		t.Stop()
	}
}

// closeIdle runs when the auth timeout fires: a stream still in its TLS
// handshake is counted as a handshake close, whichever timer fired first.
func (c *streamConn) closeIdle() {
	if c.authed.Load() {
		return
	}
	if c.handshaken.Load() {
		c.closeIdleFor("auth")
	} else {
		c.closeIdleFor("handshake")
	}
}

// closeIdleFor closes the stream and counts it once under reason.
func (c *streamConn) closeIdleFor(reason string) {
	if c.counted.CompareAndSwap(false, true) {
		c.s.metrics.streamsClosedIdle.WithLabelValues(reason).Inc()
	}
	c.Close()
}

func (c *streamConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	for {
		if len(c.out) > 0 {
			n := copy(b, c.out)
			c.out = c.out[n:]
			c.mu.Unlock()
			return n, nil
		}
		if c.raw.Load() {
			if len(c.in) > 0 {
				n := copy(b, c.in)
				c.in = c.in[n:]
				c.mu.Unlock()
				return n, nil
			}
			c.mu.Unlock()
			return c.Conn.Read(b)
		}
		if frame, ok := c.nextFrame(); ok {
			if reply := c.s.inspect(frame, c.RemoteAddr(), true); reply != nil {
				if _, err := c.Conn.Write(reply); err != nil {
					c.mu.Unlock()
					return 0, err
				}
				continue
			}
			c.out = shrinkBig(&c.pending, frame)
			continue
		}
		buf := make([]byte, 4096)
		n, err := c.Conn.Read(buf)
		c.in = append(c.in, buf[:n]...)
		if err != nil {
			if len(c.in) > 0 { // hand over what came before the error; the next Read reports it
				c.out, c.in = c.in, nil
				continue
			}
			c.mu.Unlock()
			return 0, err
		}
	}
}

// nextFrame takes one whole frame off c.in. A frame longer than any TURN
// frame means the stream is not TURN: it is passed through, and pion
// closes it. Guarded by mu.
func (c *streamConn) nextFrame() ([]byte, bool) {
	if len(c.in) < 4 {
		return nil, false
	}
	var size int
	if c.in[0]&0xc0 == 0 { // STUN
		size = 20 + int(binary.BigEndian.Uint16(c.in[2:4]))
	} else { // ChannelData
		size = (4 + int(binary.BigEndian.Uint16(c.in[2:4])) + 3) &^ 3
	}
	if size > maxFrame {
		size = len(c.in)
	}
	if len(c.in) < size {
		return nil, false
	}
	frame := c.in[:size:size]
	c.in = c.in[size:]
	if len(c.in) == 0 {
		c.in = nil
	}
	if frame[0]&0xc0 == 0 {
		c.s.refusals.read(c.RemoteAddr(), frame)
		if creds := c.s.creds.Load(); len(creds.secrets) > 1 {
			c.s.chooser.observe(creds, c.RemoteAddr().String(), frame)
		}
	}
	return frame, true
}

// Write completes ConnectionBind success responses: pion/turn sends them
// without MESSAGE-INTEGRITY, which RFC 8489 §9.2.4 requires in a response
// to an authenticated request and which RFC 6062 clients (coturn's among
// them) check. The key is the one the request was authenticated with.
// Other responses pass Server.rewriteResponse.
func (c *streamConn) Write(b []byte) (int, error) {
	if len(b) >= 20 && b[0]&0xc0 == 0 && binary.BigEndian.Uint16(b) == connectionBindSuccess {
		c.raw.Store(true)
		c.markAuthed()
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
	if c.raw.Load() {
		return c.Conn.Write(b)
	}
	n := len(b)
	if b = expandBig(b, true); b == nil {
		return n, nil
	}
	if r := c.s.rewriteResponse(b); r != nil {
		b = r
	}
	if _, err := c.Conn.Write(b); err != nil {
		return 0, err
	}
	return n, nil
}

// connectionBindSuccess is the message type of a ConnectionBind success
// response (method 0x00b, class success).
var connectionBindSuccess = stun.NewType(stun.MethodConnectionBind, stun.ClassSuccessResponse).Value()

// Close releases the stream's place in its source's count, once.
func (c *streamConn) Close() error {
	c.closed.Do(func() {
		c.stopIdle()
		c.s.streamKeys.Delete(c.RemoteAddr().String())
		c.s.refusals.forget(c.RemoteAddr())
		c.s.streams.CompareAndDelete(c.RemoteAddr().String(), c)
		c.s.sources.release(c.src)
		c.s.metrics.streamsOpen.Dec()
		dropBig(&c.pending)
	})
	return c.Conn.Close()
}
