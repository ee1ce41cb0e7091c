package relay

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// Datagrams the kernel drops on a listening socket whose receive buffer is
// full are counted.
func TestReceiveDropsCounted(t *testing.T) {
	var sock net.PacketConn
	r := startRelay(t, func(c *Config) {
		// A socket with the smallest buffer, flooded before the relay reads
		// it. SO_RXQ_OVFL is on, as the relay sets it on every listening
		// socket, before the flood: the kernel records the count as it queues.
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		rc, _ := pc.(*net.UDPConn).SyscallConn()
		rc.Control(func(fd uintptr) {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 1)
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1)
		})
		flood, err := net.Dial("udp4", pc.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer flood.Close()
		for range 200 {
			flood.Write(make([]byte, 1000))
		}
		for _, u := range c.UDP {
			u.Close()
		}
		c.UDP = []net.PacketConn{pc}
		sock = pc
	})
	c, err := net.Dial("udp4", sock.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(3 * time.Second)
	for testutilCount(r.metrics.udpDrops) == 0 && time.Now().Before(deadline) {
		c.Write(make([]byte, 100)) // queued after the drops: it carries their count
		time.Sleep(20 * time.Millisecond)
	}
	if n := testutilCount(r.metrics.udpDrops); n == 0 {
		t.Fatal("no drops counted")
	} else {
		t.Logf("%v drops counted", n)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(r.Metrics())
	mfs, _ := reg.Gather()
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	if !strings.Contains(strings.Join(names, " "), "guildhall_relay_udp_receive_drops_total") {
		t.Fatalf("no drop metric among %v", names)
	}
}

// Datagrams the kernel drops on an allocation's relay socket, its buffer
// full, are counted as the relay reads the socket.
func TestRelayedDropsCounted(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	rc, _ := pc.(*net.UDPConn).SyscallConn()
	drops := prometheus.NewCounter(prometheus.CounterOpts{Name: "drops"})
	w := newWholeReader(rc, drops)
	rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 1) })
	peer, err := net.Dial("udp4", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	for range 200 {
		peer.Write(make([]byte, 1000))
	}
	b := make([]byte, 1600)
	pc.SetReadDeadline(time.Now().Add(2 * time.Second))
	for range 20 {
		if _, _, _, err := w.read(b); err != nil {
			t.Fatal(err)
		}
		if testutilCount(drops) > 0 {
			break
		}
		peer.Write(make([]byte, 100)) // queued after the drops: it carries their count
	}
	if n := testutilCount(drops); n == 0 {
		t.Fatal("no drops counted")
	} else {
		t.Logf("%v drops counted", n)
	}
}
