package daemon

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// One source holding its connections open cannot take more than its share;
// a closed connection gives its place back; exempt sources are not capped.
func TestSourceLimit(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := prometheus.NewCounter(prometheus.CounterOpts{Name: "refused"})
	l := SourceLimit{PerSource: 3, Refused: refused}.Listener(raw)
	defer l.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	var clients, servers []net.Conn
	for range 5 {
		clients = append(clients, dial())
	}
	for range 3 {
		select {
		case c := <-accepted:
			servers = append(servers, c)
		case <-time.After(5 * time.Second):
			t.Fatal("the first three connections were not accepted")
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(refused) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := testutil.ToFloat64(refused); n != 2 {
		t.Fatalf("%v connections refused, want 2", n)
	}
	select {
	case <-accepted:
		t.Fatal("a fourth connection of one source was accepted")
	default:
	}
	servers[0].Close() // a place comes free
	clients = append(clients, dial())
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("a connection after one closed was not accepted")
	}
	for _, c := range append(clients, servers...) {
		c.Close()
	}

	exempt := SourceLimit{PerSource: 1, Exempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	if l := exempt.Listener(raw); l == raw {
		t.Fatal("a capped listener was not wrapped")
	}
	if l := (SourceLimit{}).Listener(raw); l != raw {
		t.Fatal("no cap must leave the listener as it is")
	}
	if got, _ := sourceOf(&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:3:4:5:6"), Port: 1}); got.String() != "2001:db8:1:2::" {
		t.Fatalf("IPv6 source %v, want its /64", got)
	}
}
