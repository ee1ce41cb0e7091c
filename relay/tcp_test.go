package relay

import (
	"io"
	"net"
	"testing"
	"time"
)

// tcpEchoPeer is a TCP peer on loopback that echoes what it reads.
func tcpEchoPeer(t *testing.T) *net.TCPAddr {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	return l.Addr().(*net.TCPAddr)
}

// within runs f and fails the test if it does not return within d.
func within(t *testing.T, d time.Duration, what string, f func() error) time.Duration {
	t.Helper()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(d):
		t.Fatalf("%s: not done within %v", what, d)
	}
	return time.Since(start)
}

// echoThrough opens an RFC 6062 connection to peer through a fresh TCP
// allocation and checks that bytes come back.
func echoThrough(t *testing.T, r *testRelay, peer *net.TCPAddr) error {
	alloc, err := turnClient(t, r, "alice", "wonderland", true).AllocateTCP()
	if err != nil {
		return err
	}
	defer alloc.Close()
	conn, err := alloc.Dial("tcp", peer.String())
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("ping")); err != nil {
		return err
	}
	buf := make([]byte, 4)
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.ReadFull(conn, buf); err != nil {
		return err
	}
	if string(buf) != "ping" {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// A second Connect to the same peer is refused with 446 and leaves the
// relay serving: another client still relays over TCP at once, and the
// relay still closes. (pion/turn v5.0.12 kept its allocation manager locked
// after the duplicate, freezing TCP and TLS service and Close.)
func TestDuplicateConnectKeepsServing(t *testing.T) {
	r := startRelay(t, nil)
	peer := tcpEchoPeer(t)
	alloc, err := turnClient(t, r, "alice", "wonderland", true).AllocateTCP()
	if err != nil {
		t.Fatal(err)
	}
	defer alloc.Close()
	if _, err := alloc.Connect(peer); err != nil {
		t.Fatalf("first connect: %v", err)
	}
	within(t, 5*time.Second, "duplicate connect", func() error {
		if _, err := alloc.Connect(peer); err == nil {
			t.Error("a duplicate connect succeeded")
		}
		return nil
	})
	took := within(t, 5*time.Second, "another client's TCP relaying", func() error { return echoThrough(t, r, peer) })
	t.Logf("another client relayed over TCP %v after the duplicate connect", took)
	within(t, 5*time.Second, "close", r.Close)
}
