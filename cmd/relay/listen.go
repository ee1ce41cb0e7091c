package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/guildhall/guildhall/internal/daemon"
	"github.com/guildhall/guildhall/relay"
)

// listen opens the TURN listeners s names into rc, and returns them to be
// closed. It records the UDP address actually bound in s.Listen.UDP.
func listen(ctx context.Context, s *settings, rc *relay.Config, cert *daemon.Certificate) (closers []io.Closer, err error) {
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
		for range n { // one socket and one read loop per core, the kernel spreads clients (SO_REUSEPORT)
			pc, err := reusePort.ListenPacket(ctx, "udp", s.Listen.UDP)
			if err != nil {
				return closers, err
			}
			closers = append(closers, pc)
			rc.UDP = append(rc.UDP, pc)
			s.Listen.UDP = pc.LocalAddr().String() // further sockets share the port actually bound
		}
	}
	if s.Listen.TCP != "" {
		l, err := net.Listen("tcp", s.Listen.TCP)
		if err != nil {
			return closers, err
		}
		closers = append(closers, l)
		rc.TCP = append(rc.TCP, l)
	}
	if s.Listen.TLS != "" {
		l, err := net.Listen("tcp", s.Listen.TLS)
		if err != nil {
			return closers, err
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

// reusePort binds several sockets to one address.
var reusePort = net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) })
	return errors.Join(err, serr)
}}
