package relay

import (
	"errors"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/pion/turn/v5"
)

// An Allocate with EVEN-PORT reserves the next port for a second Allocate
// with the RESERVATION-TOKEN pion returns (RFC 8656 §7.2, RTP and RTCP);
// pion remembers the token for 30 seconds but does not hold the port, so
// any allocation made meanwhile could take it and the second Allocate
// would fail with 508. The relay holds the reserved port bound until it is
// redeemed or the reservation expires, and hands out an even port at
// random only when the port after it is free.

// errNoPortPair: no even port with a free port after it was found.
var errNoPortPair = errors.New("relay: no even relay port with a free next port")

// reservationHold is how long pion keeps a reservation token.
const reservationHold = 30 * time.Second

// portHolds are the reserved ports the relay holds bound, by port.
type portHolds struct {
	mu sync.Mutex
	m  map[int]*heldPort
}

type heldPort struct {
	pc    net.PacketConn
	timer *time.Timer
}

// hold keeps pc bound as the reservation of its port until taken or expired.
func (h *portHolds) hold(port int, pc net.PacketConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[int]*heldPort{}
	}
	hp := &heldPort{pc: pc}
	hp.timer = time.AfterFunc(reservationHold, func() {
		h.mu.Lock()
		if h.m[port] == hp {
			delete(h.m, port)
		}
		h.mu.Unlock()
		pc.Close()
	})
	h.m[port] = hp
}

// take returns the socket held for port, if any, and stops holding it.
func (h *portHolds) take(port int) net.PacketConn {
	h.mu.Lock()
	defer h.mu.Unlock()
	hp := h.m[port]
	if hp == nil || !hp.timer.Stop() {
		return nil
	}
	delete(h.m, port)
	return hp.pc
}

// closeAll releases every held port.
func (h *portHolds) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for port, hp := range h.m {
		if hp.timer.Stop() {
			hp.pc.Close()
		}
		delete(h.m, port)
	}
}

// udpSocket makes a relay socket: the reserved one for a requested odd
// port, the requested even port with the next one reserved, or a port at
// random, not even unless the next one is free.
func (g *relayGen) udpSocket(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	port := conf.RequestedPort
	if port%2 == 1 {
		if pc := g.s.holds.take(port); pc != nil {
			addr := *pc.LocalAddr().(*net.UDPAddr)
			addr.IP = g.inner.RelayAddress
			return pc, &addr, nil
		}
		return g.inner.AllocatePacketConn(conf)
	}
	if port != 0 {
		pc, addr, err := g.inner.AllocatePacketConn(conf)
		if err != nil {
			return nil, nil, err
		}
		next, err := g.bind(conf.Network, port+1)
		if err != nil {
			pc.Close()
			return nil, nil, err
		}
		g.s.holds.hold(port+1, next)
		return pc, addr, nil
	}
	var err error
	for range g.inner.MaxRetries {
		var pc net.PacketConn
		var addr net.Addr
		if pc, addr, err = g.inner.AllocatePacketConn(conf); err != nil {
			return nil, nil, err
		}
		p := addr.(*net.UDPAddr).Port
		if p%2 == 1 {
			return pc, addr, nil
		}
		if p+1 <= int(g.inner.MaxPort) {
			if next, err := g.bind(conf.Network, p+1); err == nil {
				next.Close()
				return pc, addr, nil
			}
		}
		pc.Close()
	}
	return nil, nil, errNoPortPair
}

func (g *relayGen) bind(network string, port int) (net.PacketConn, error) {
	return g.inner.Net.ListenPacket(network, net.JoinHostPort(g.inner.Address, strconv.Itoa(port)))
}
