package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/guildhall/guildhall/internal/daemon"
	"github.com/guildhall/guildhall/relay"
)

// listen opens the TURN listeners s names into rc, and returns them to be
// closed. It records the UDP address actually bound in s.Listen.UDP.
func listen(ctx context.Context, s *settings, rc *relay.Config, cert *daemon.Certificate, log *slog.Logger) (closers []io.Closer, err error) {
	defer func() {
		if err != nil {
			closeAll(closers)
		}
	}()
	if s.Listen.UDP != "" {
		n := s.Listen.UDPSockets
		if n <= 0 {
			n = runtime.GOMAXPROCS(0)
		}
		// A plain bind first: it fails if any socket (another relay's
		// SO_REUSEPORT group included) holds the port, which would otherwise
		// silently share this relay's clients.
		probe, err := net.ListenPacket("udp", s.Listen.UDP)
		if err != nil {
			return nil, fmt.Errorf("listen.udp %s: %w (is another relay running?)", s.Listen.UDP, err)
		}
		s.Listen.UDP = probe.LocalAddr().String()
		probe.Close()
		lc := udpListenConfig(s.Listen.UDPReadBuffer, s.Listen.UDPWriteBuffer)
		for i := range n { // one socket and one read loop per core, the kernel spreads clients (SO_REUSEPORT)
			pc, err := lc.ListenPacket(ctx, "udp", s.Listen.UDP)
			if err != nil {
				return closers, err
			}
			if i == 0 {
				r, w := socketBuffers(pc)
				log.Info("udp socket buffers", "read_requested", s.Listen.UDPReadBuffer, "read_obtained", r,
					"write_requested", s.Listen.UDPWriteBuffer, "write_obtained", w)
			}
			closers = append(closers, pc)
			rc.UDP = append(rc.UDP, pc)
			s.Listen.UDP = pc.LocalAddr().String() // further sockets share the port actually bound
		}
	}
	if s.Listen.TCP != "" {
		l, err := net.Listen("tcp", s.Listen.TCP)
		if err != nil {
			return closers, fmt.Errorf("listen.tcp: %w", err)
		}
		closers = append(closers, l)
		rc.TCP = append(rc.TCP, l)
	}
	if s.Listen.TLS != "" {
		l, err := net.Listen("tcp", s.Listen.TLS)
		if err != nil {
			return closers, fmt.Errorf("listen.tls: %w", err)
		}
		closers = append(closers, l)
		rc.TLS = append(rc.TLS, tls.NewListener(l, cert.TLSConfig()))
	}
	return closers, nil
}

func closeAll(cs []io.Closer) {
	for _, c := range cs {
		c.Close()
	}
}

func addrOf(ls []net.Listener) string {
	if len(ls) == 0 {
		return "-"
	}
	return ls[0].Addr().String()
}

// udpListenConfig binds several sockets to one address (SO_REUSEPORT),
// with the buffers asked for (-1: the kernel's), and has the kernel report
// its receive drops (SO_RXQ_OVFL, counted by the relay).
func udpListenConfig(read, write int) net.ListenConfig {
	return net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			if serr == nil {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1)
			}
			for _, b := range []struct{ size, force, plain int }{{read, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}, {write, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}} {
				if serr != nil || b.size <= 0 {
					continue
				}
				// Past net.core.[rw]mem_max only with CAP_NET_ADMIN; else capped there.
				if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, b.force, b.size) != nil {
					serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, b.plain, b.size)
				}
			}
		})
		return errors.Join(err, serr)
	}}
}

// socketBuffers returns the receive and send buffer sizes the kernel
// reports for a socket (Linux reports twice the size asked for: it counts
// its bookkeeping).
func socketBuffers(pc net.PacketConn) (read, write int) {
	sc, ok := pc.(syscall.Conn)
	if !ok {
		return 0, 0
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, 0
	}
	rc.Control(func(fd uintptr) {
		read, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		write, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
	})
	return read, write
}
