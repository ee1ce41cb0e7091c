package relay

import (
	"crypto/tls"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// floodConn opens one hostile stream of a kind from local to addr:
// idle (nothing sent), partial (the start of a STUN header or of a TLS
// record, never finished), or unauthenticated (a request without
// credentials, answered 401, then nothing).
func floodConn(t testing.TB, local, addr, kind string) net.Conn {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp4", addr)
	if err != nil {
		return nil
	}
	switch kind {
	case "partial-stun":
		c.Write([]byte{0x00, 0x03, 0x00, 0x08, 0x21, 0x12})
	case "partial-tls":
		c.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00}) // a record header announcing a ClientHello that never comes
	case "unauthenticated":
		c.Write(stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest), transport(17), stun.Fingerprint).Raw)
	}
	return c
}

// closedWithin reports how long the relay took to close c (read EOF or
// reset), or false if it did not within d.
func closedWithin(c net.Conn, d time.Duration) (time.Duration, bool) {
	start := time.Now()
	c.SetReadDeadline(start.Add(d))
	buf := make([]byte, 512)
	for {
		if _, err := c.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return time.Since(start), false
			}
			return time.Since(start), true
		}
	}
}

// Streams that do not finish a TLS handshake in time, or do not
// authenticate a request in time, are closed; an authenticated one stays.
func TestUnauthenticatedStreamsAreClosed(t *testing.T) {
	r := startRelay(t, func(c *Config) { c.Limits.HandshakeTimeout, c.Limits.AuthTimeout = 500*time.Millisecond, time.Second })
	tcp, tlsAddr := "127.0.0.1:"+strconv.Itoa(r.port), "127.0.0.1:"+strconv.Itoa(r.tlsPort)
	client := turnClient(t, r, "alice", "wonderland", true)
	if _, err := client.Allocate(); err != nil {
		t.Fatal(err)
	}
	handshaken, err := tls.Dial("tcp4", tlsAddr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer handshaken.Close()
	for _, c := range []struct {
		name, addr, kind string
		bound            time.Duration
	}{
		{"tcp idle", tcp, "idle", time.Second},
		{"tcp partial request", tcp, "partial-stun", time.Second},
		{"tcp unauthenticated request", tcp, "unauthenticated", time.Second},
		{"tls idle", tlsAddr, "idle", 500 * time.Millisecond},
		{"tls partial handshake", tlsAddr, "partial-tls", 500 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn := floodConn(t, "127.0.0.1", c.addr, c.kind)
			if conn == nil {
				t.Fatal("no connection")
			}
			defer conn.Close()
			took, ok := closedWithin(conn, c.bound+time.Second)
			if !ok {
				t.Fatalf("still open after %v (timeout %v)", took, c.bound)
			}
			t.Logf("closed after %v (timeout %v)", took.Round(time.Millisecond), c.bound)
		})
	}
	if took, ok := closedWithin(handshaken, 2*time.Second); !ok {
		t.Fatalf("a TLS stream that never authenticated is open after %v", took)
	}
	if err := client.CreatePermission(&net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: 9}); err != nil {
		t.Fatalf("the authenticated stream was closed: %v", err)
	}
	// The client sees the close as soon as the relay closes the socket; the
	// relay counts it when the handshake call returns, a moment later.
	var hs, auth float64
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		hs, auth = testutilCount(r.metrics.streamsClosedIdle.WithLabelValues("handshake")), testutilCount(r.metrics.streamsClosedIdle.WithLabelValues("auth"))
		if hs == 2 && auth == 4 || time.Now().After(deadline) {
			break
		}
	}
	if hs != 2 || auth != 4 {
		t.Fatalf("closed: %v in the handshake (want 2), %v unauthenticated (want 4)", hs, auth)
	}
}

// One source holds at most ConnsPerSource streams; others are served, and
// a closed stream frees its place.
func TestStreamsPerSourceAreCapped(t *testing.T) {
	r := startRelay(t, func(c *Config) { c.Limits.ConnsPerSource = 4 })
	addr := "127.0.0.1:" + strconv.Itoa(r.port)
	var held []net.Conn
	for range 4 {
		held = append(held, floodConn(t, "127.0.0.5", addr, "idle"))
	}
	time.Sleep(100 * time.Millisecond)
	over := floodConn(t, "127.0.0.5", addr, "idle")
	if took, ok := closedWithin(over, time.Second); !ok {
		t.Fatalf("a fifth stream of one source is open after %v", took)
	}
	if code, _ := dialRaw(t, r, "tcp", "127.0.0.6", "alice", "wonderland").request(stun.MethodAllocate, transport(17)); code != 0 {
		t.Fatalf("another source was refused: %d", code)
	}
	held[0].Close()
	time.Sleep(100 * time.Millisecond)
	if code, _ := dialRaw(t, r, "tcp", "127.0.0.5", "alice", "wonderland").request(stun.MethodAllocate, transport(17)); code != 0 {
		t.Fatalf("the capped source was refused after closing a stream: %d", code)
	}
	for _, c := range held {
		c.Close()
	}
	if got := testutilCount(r.metrics.streamsRefused); got != 1 {
		t.Fatalf("%v refusals counted, want 1", got)
	}
}
