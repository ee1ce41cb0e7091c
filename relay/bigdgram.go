package relay

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// pion/turn reads each relay socket into a 1,600-byte buffer, so a larger
// datagram from a peer would reach the client truncated. The relay socket
// therefore reads whole datagrams itself: what fits pion's buffer lands
// there, the rest in a pooled buffer held only during the system call.
// A datagram larger than pion's buffer is kept aside, and pion given a
// 16-byte token instead (a random per-process prefix and a sequence
// number, which no peer can forge); the listening socket, which pion then
// asks to send the ChannelData or Data indication carrying the token,
// puts the datagram in its place.
//
// The same holds the other way for clients on TCP and TLS: pion reads a
// stream's frames into a buffer of streamMTU bytes, so a ChannelData
// message or Send indication as large as that is handed to pion with the
// token in place of its data (shrinkBig), and the relay socket pion then
// asks to send the token sends the datagram. A token never leaves the
// process: one whose datagram is gone is dropped, not sent.

var (
	bigPrefix  [8]byte
	bigSeq     atomic.Uint64
	bigPending sync.Map // sequence number -> datagram; at most one per relay socket
	overflow   = sync.Pool{New: func() any { b := make([]byte, maxDatagram); return &b }}
)

const bigToken = 16

// stunMagicCookie is the fixed field of every STUN header (RFC 5389 §6).
const stunMagicCookie = 0x2112A442

// streamMTU is the buffer pion reads each client stream's frames into; it
// drops a frame that fills it.
const streamMTU = 1600

func init() {
	if _, err := rand.Read(bigPrefix[:]); err != nil {
		panic(err)
	}
}

// wholeReader reads a relay socket's datagrams whole (see above), for the
// one goroutine that reads the socket: its state is reused from read to
// read, so a read allocates no more than the runtime's own ReadFrom.
type wholeReader struct {
	rc  syscall.RawConn
	b   []byte  // the caller's buffer
	ov  *[]byte // the overflow buffer, from the pool while a read is under way
	n   int
	err error
	rsa unix.RawSockaddrAny
	iov [2]unix.Iovec
	msg unix.Msghdr
	fn  func(uintptr) bool // try, bound once

	// The kernel's drop count on the socket (SO_RXQ_OVFL), which comes
	// with a datagram only once there have been drops.
	oob     [4]uint64 // a control message buffer, aligned
	dropped uint32
	drops   prometheus.Counter
}

// newWholeReader reads the socket of rc whole and counts its receive
// drops in drops.
func newWholeReader(rc syscall.RawConn, drops prometheus.Counter) *wholeReader {
	w := &wholeReader{rc: rc, drops: drops}
	w.fn = w.try
	rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1) })
	return w
}

func (w *wholeReader) try(fd uintptr) bool {
	w.iov[0].Base, w.iov[1].Base = &w.b[0], &(*w.ov)[0]
	w.iov[0].SetLen(len(w.b))
	w.iov[1].SetLen(len(*w.ov))
	w.msg = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&w.rsa)), Namelen: uint32(unsafe.Sizeof(w.rsa)), Iov: &w.iov[0],
		Control: (*byte)(unsafe.Pointer(&w.oob[0]))}
	w.msg.SetIovlen(2)
	w.msg.SetControllen(int(unsafe.Sizeof(w.oob)))
	r, _, e := unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&w.msg)), unix.MSG_DONTWAIT)
	if e == unix.EAGAIN {
		return false
	}
	w.n, w.err = int(r), nil
	if e != 0 {
		w.err = e
	}
	return true
}

// read reads one datagram into b (at least 1 byte) and, when it is larger
// than b, returns it whole as big.
func (w *wholeReader) read(b []byte) (n int, from net.Addr, big []byte, err error) {
	w.b, w.ov = b, overflow.Get().(*[]byte)
	defer func() { overflow.Put(w.ov); w.b, w.ov = nil, nil }()
	if err := w.rc.Read(w.fn); err != nil {
		return 0, nil, nil, err
	}
	if w.err != nil {
		return 0, nil, nil, w.err
	}
	if w.msg.Controllen > 0 {
		oob := unsafe.Slice((*byte)(unsafe.Pointer(&w.oob[0])), min(int(w.msg.Controllen), int(unsafe.Sizeof(w.oob))))
		if total, ok := rxqOverflow(oob); ok && total != w.dropped {
			w.drops.Add(float64(total - w.dropped))
			w.dropped = total
		}
	}
	n = w.n
	if n > len(b) {
		big = make([]byte, n)
		copy(big, b)
		copy(big[len(b):], (*w.ov)[:n-len(b)])
		n = len(b)
	}
	switch w.rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&w.rsa))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		from = &net.UDPAddr{IP: net.IP(append(make([]byte, 0, 4), sa.Addr[:]...)), Port: int(p[0])<<8 | int(p[1])}
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&w.rsa))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		ua := &net.UDPAddr{IP: net.IP(append(make([]byte, 0, 16), sa.Addr[:]...)), Port: int(p[0])<<8 | int(p[1])}
		if sa.Scope_id != 0 {
			if ifc, err := net.InterfaceByIndex(int(sa.Scope_id)); err == nil {
				ua.Zone = ifc.Name
			}
		}
		from = ua
	default:
		return 0, nil, nil, errors.New("relay: datagram from an unknown address family")
	}
	return n, from, big, nil
}

// keepBig sets big aside, replacing the one slot held before (pion sent or
// dropped it: it handles one datagram of a socket or stream at a time),
// and writes its token to b.
func keepBig(slot *atomic.Uint64, b, big []byte) int {
	id := bigSeq.Add(1)
	bigPending.Store(id, big)
	if old := slot.Swap(id); old != 0 {
		bigPending.Delete(old)
	}
	copy(b, bigPrefix[:])
	binary.BigEndian.PutUint64(b[8:bigToken], id)
	return bigToken
}

// dropBig forgets the datagram slot holds, if any.
func dropBig(slot *atomic.Uint64) {
	if id := slot.Swap(0); id != 0 {
		bigPending.Delete(id)
	}
}

// shrinkBig returns frame, a ChannelData message or Send indication a
// client sent over a stream, as pion can read it: when it is streamMTU
// bytes or more, with its data set aside in slot and a token in its place
// (a Send indication loses its FINGERPRINT, which pion does not check).
// Any other frame is returned as it is.
func shrinkBig(slot *atomic.Uint64, frame []byte) []byte {
	if len(frame) < streamMTU {
		return frame
	}
	if frame[0]&0xc0 == 0x40 { // ChannelData
		l := int(binary.BigEndian.Uint16(frame[2:]))
		if 4+l > len(frame) || l <= bigToken {
			return frame
		}
		out := make([]byte, 4+bigToken)
		copy(out, frame[:2])
		binary.BigEndian.PutUint16(out[2:], bigToken)
		keepBig(slot, out[4:], append([]byte(nil), frame[4:4+l]...))
		return out
	}
	if frame[0] != 0x00 || frame[1] != 0x16 || binary.BigEndian.Uint32(frame[4:8]) != stunMagicCookie ||
		20+int(binary.BigEndian.Uint16(frame[2:4])) != len(frame) { // not a well-formed Send indication: pion refuses it as it is
		return frame
	}
	out := append(make([]byte, 0, 128), frame[:20]...)
	found := false
	for off := 20; off+4 <= len(frame); {
		typ, l := binary.BigEndian.Uint16(frame[off:]), int(binary.BigEndian.Uint16(frame[off+2:]))
		end := off + 4 + (l+3)&^3
		if end > len(frame) {
			return frame
		}
		switch {
		case typ == 0x0013 && !found && l > bigToken: // DATA
			found = true
			out = binary.BigEndian.AppendUint16(out, 0x0013)
			out = binary.BigEndian.AppendUint16(out, bigToken)
			token := make([]byte, bigToken)
			keepBig(slot, token, append([]byte(nil), frame[off+4:off+4+l]...))
			out = append(out, token...)
		case typ == 0x8028: // FINGERPRINT: no longer true
		default:
			out = append(out, frame[off:end]...)
		}
		off = end
	}
	if !found {
		return frame
	}
	binary.BigEndian.PutUint16(out[2:], uint16(len(out)-20))
	return out
}

// takeBig returns the datagram of a token.
func takeBig(token []byte) ([]byte, bool) {
	if len(token) != bigToken || [8]byte(token[:8]) != bigPrefix {
		return nil, false
	}
	v, ok := bigPending.LoadAndDelete(binary.BigEndian.Uint64(token[8:]))
	if !ok {
		return nil, true // a token, but its datagram is gone: never send the token itself
	}
	return v.([]byte), true
}

// expandBig returns the ChannelData message or Data indication b with the
// datagram its token stands for, or b itself when it carries no token; nil
// when it carries a token whose datagram is gone. ChannelData for a stream
// is padded to four bytes (RFC 5766 §11.5).
func expandBig(b []byte, stream bool) []byte {
	switch {
	case len(b) == 4+bigToken && b[0]&0xc0 == 0x40: // ChannelData
		if binary.BigEndian.Uint16(b[2:]) != bigToken {
			return b
		}
		data, ok := takeBig(b[4:])
		if !ok {
			return b
		}
		if data == nil {
			return nil
		}
		size := 4 + len(data)
		if stream {
			size = 4 + (len(data)+3)&^3
		}
		out := make([]byte, size)
		copy(out, b[:2])
		binary.BigEndian.PutUint16(out[2:], uint16(len(data)))
		copy(out[4:], data)
		return out
	case len(b) >= 20+4+bigToken && b[0] == 0x00 && b[1] == 0x17: // Data indication
		for off := 20; off+4 <= len(b); {
			typ, l := binary.BigEndian.Uint16(b[off:]), int(binary.BigEndian.Uint16(b[off+2:]))
			end := off + 4 + (l+3)&^3
			if end > len(b) {
				return b
			}
			if typ != 0x0013 { // DATA
				off = end
				continue
			}
			data, ok := takeBig(b[off+4 : off+4+l])
			if !ok {
				return b
			}
			if data == nil {
				return nil
			}
			out := make([]byte, 0, len(b)+len(data)+3)
			out = append(out, b[:off]...)
			out = binary.BigEndian.AppendUint16(out, 0x0013)
			out = binary.BigEndian.AppendUint16(out, uint16(len(data)))
			out = append(out, data...)
			out = append(out, make([]byte, (4-len(data)%4)%4)...)
			out = append(out, b[end:]...)
			binary.BigEndian.PutUint16(out[2:], uint16(len(out)-20))
			return out
		}
	}
	return b
}
