package relay

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// maxDatagram holds any UDP datagram (IPv4's 65,507-byte payload, IPv6's
// 65,527) whole.
const maxDatagram = 1 << 16

// fanIn presents the UDP sockets bound to one address (SO_REUSEPORT, one
// per core) as one net.PacketConn, so that pion/turn keeps one allocation
// state for all of them: the kernel spreads a client's flows over the
// sockets by 4-tuple, and an EVEN-PORT reservation made through one socket
// must be found by the request that arrives on another. Each socket keeps
// its own read loop (batched reads, and the unauthenticated answers of
// accept); datagrams meet in one queue that pion reads. Writes go out
// through any of the sockets: they share the local address.
type fanIn struct {
	socks  []net.PacketConn
	in     chan []datagram // a read's worth at a time: one hand-over per batch
	cur    []datagram      // the batch ReadFrom is handing out (pion reads from one goroutine)
	done   chan struct{}
	once   sync.Once
	accept func(b []byte, from net.Addr, sock net.PacketConn) bool // false: answered or dropped by the reader
	drops  prometheus.Counter                                      // the kernel's receive drops, from SO_RXQ_OVFL
}

type datagram struct {
	buf  []byte
	addr net.Addr
}

// smallBufs recycles the queue's buffers of ordinary datagrams; larger
// ones are allocated at their size.
var smallBufs = sync.Pool{New: func() any { b := make([]byte, 2048); return &b }}

func newFanIn(socks []net.PacketConn, batch int, accept func([]byte, net.Addr, net.PacketConn) bool, drops prometheus.Counter) *fanIn {
	f := &fanIn{socks: socks, in: make(chan []datagram, 16), done: make(chan struct{}), accept: accept, drops: drops}
	for _, s := range socks {
		if sc, ok := s.(syscall.Conn); ok { // count the kernel's drops: each datagram read after one carries the socket's total
			if rc, err := sc.SyscallConn(); err == nil {
				rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1) })
			}
		}
		go f.readLoop(s, batch)
	}
	return f
}

func (f *fanIn) readLoop(sock net.PacketConn, batch int) {
	u, ok := sock.(*net.UDPConn)
	if !ok || batch < 2 {
		buf := make([]byte, maxDatagram)
		for {
			n, addr, err := sock.ReadFrom(buf)
			if err != nil {
				return
			}
			if !f.send(f.keep(nil, buf[:n], addr, sock)) {
				return
			}
		}
	}
	pc := ipv4.NewPacketConn(u)
	msgs := make([]ipv4.Message, batch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, maxDatagram)}
		msgs[i].OOB = make([]byte, unix.CmsgSpace(4))
	}
	var dropped uint32 // the socket's drop count last seen
	for {
		for i := range msgs {
			msgs[i].OOB = msgs[i].OOB[:cap(msgs[i].OOB)]
		}
		n, err := pc.ReadBatch(msgs, 0)
		if err != nil {
			return
		}
		var out []datagram
		for _, m := range msgs[:n] {
			if m.NN > 0 {
				if total, ok := rxqOverflow(m.OOB[:m.NN]); ok && total != dropped {
					f.drops.Add(float64(total - dropped))
					dropped = total
				}
			}
			out = f.keep(out, m.Buffers[0][:m.N], m.Addr, sock)
		}
		if !f.send(out) {
			return
		}
	}
}

// keep appends a copy of a datagram to out unless accept answered it.
func (f *fanIn) keep(out []datagram, b []byte, addr net.Addr, sock net.PacketConn) []datagram {
	if f.accept != nil && !f.accept(b, addr, sock) {
		return out
	}
	var buf []byte
	if len(b) <= 2048 {
		buf = (*smallBufs.Get().(*[]byte))[:len(b)]
	} else {
		buf = make([]byte, len(b))
	}
	copy(buf, b)
	return append(out, datagram{buf: buf, addr: addr})
}

// send queues datagrams for pion; false once the fan-in is closed.
func (f *fanIn) send(ds []datagram) bool {
	if len(ds) == 0 {
		return true
	}
	select {
	case f.in <- ds:
		return true
	case <-f.done:
		return false
	}
}

func (f *fanIn) ReadFrom(p []byte) (int, net.Addr, error) {
	for len(f.cur) == 0 {
		select {
		case f.cur = <-f.in:
		case <-f.done:
			return 0, nil, net.ErrClosed
		}
	}
	d := f.cur[0]
	f.cur[0] = datagram{}
	f.cur = f.cur[1:]
	n := copy(p, d.buf)
	if cap(d.buf) == 2048 {
		b := d.buf[:2048]
		smallBufs.Put(&b)
	}
	return n, d.addr, nil
}

// WriteTo sends through the socket the kernel would pick for the peer's
// flow to come in on (by port), so that writes spread over the sockets.
func (f *fanIn) WriteTo(b []byte, addr net.Addr) (int, error) {
	s := f.socks[0]
	if ua, ok := addr.(*net.UDPAddr); ok && len(f.socks) > 1 {
		s = f.socks[ua.Port%len(f.socks)]
	}
	return s.WriteTo(b, addr)
}

func (f *fanIn) Close() error {
	var errs []error
	f.once.Do(func() {
		close(f.done)
		for _, s := range f.socks {
			errs = append(errs, s.Close())
		}
	})
	return errors.Join(errs...)
}

func (f *fanIn) LocalAddr() net.Addr { return f.socks[0].LocalAddr() }

var errNoDeadlines = errors.New("relay: the listening sockets take no deadlines")

func (f *fanIn) SetDeadline(time.Time) error      { return errNoDeadlines }
func (f *fanIn) SetReadDeadline(time.Time) error  { return errNoDeadlines }
func (f *fanIn) SetWriteDeadline(time.Time) error { return errNoDeadlines }

// rxqOverflow returns the drop count of a SO_RXQ_OVFL control message.
func rxqOverflow(oob []byte) (uint32, bool) {
	cms, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, cm := range cms {
		if cm.Header.Level == unix.SOL_SOCKET && cm.Header.Type == unix.SO_RXQ_OVFL && len(cm.Data) >= 4 {
			return binary.NativeEndian.Uint32(cm.Data), true
		}
	}
	return 0, false
}

// groupByAddress groups sockets by the local address they are bound to.
func groupByAddress(socks []net.PacketConn) [][]net.PacketConn {
	var order []string
	groups := map[string][]net.PacketConn{}
	for _, s := range socks {
		a := s.LocalAddr().String()
		if _, ok := groups[a]; !ok {
			order = append(order, a)
		}
		groups[a] = append(groups[a], s)
	}
	out := make([][]net.PacketConn, 0, len(order))
	for _, a := range order {
		out = append(out, groups[a])
	}
	return out
}
