package relay

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// childEnv makes the test binary run a relay under a low descriptor limit
// instead of the tests (TestMain).
const childEnv = "GUILDHALL_RELAY_FDLIMIT_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runLimitedRelay())
	}
	os.Exit(m.Run())
}

// runLimitedRelay lowers RLIMIT_NOFILE to 100, serves UDP+TCP on one port
// and TLS on another, prints "ports UDP/TCP TLS", and on stdin's end prints
// its counters and exits.
func runLimitedRelay() int {
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	lim.Cur = 100
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Println("setrlimit:", err)
		return 1
	}
	var udp net.PacketConn
	var tcp net.Listener
	for range 20 {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return 1
		}
		if l, err := net.Listen("tcp4", pc.LocalAddr().String()); err == nil {
			udp, tcp = pc, l
			break
		}
		pc.Close()
	}
	tl, err := net.Listen("tcp4", "127.0.0.1:0")
	if udp == nil || err != nil {
		return 1
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	s, err := New(Config{Realm: "guildhall", Users: map[string]string{"alice": "wonderland"},
		UDP: []net.PacketConn{udp}, TCP: []net.Listener{tcp},
		TLS:     []net.Listener{tls.NewListener(tl, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})},
		RelayIP: net.ParseIP("127.0.0.1"), RelayBind: "127.0.0.1", PortMin: 40000, PortMax: 49999,
		Limits: Limits{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, HandshakeTimeout: time.Second, AuthTimeout: 2 * time.Second}})
	if err != nil {
		fmt.Println("relay:", err)
		return 1
	}
	fmt.Printf("ports %d %d\n", udp.LocalAddr().(*net.UDPAddr).Port, tl.Addr().(*net.TCPAddr).Port)
	io.Copy(io.Discard, os.Stdin)
	m := s.metrics
	fmt.Printf("counters accept_errors=%v closed_handshake=%v closed_auth=%v\n", testutilCount(m.acceptErrors),
		testutilCount(m.streamsClosedIdle.WithLabelValues("handshake")), testutilCount(m.streamsClosedIdle.WithLabelValues("auth")))
	s.Close()
	return 0
}

// A flood of idle and half-open TCP and TLS streams (300, from 10 sources,
// none over the per-source cap) against a relay limited to 100
// descriptors: accept fails with EMFILE while the flood holds them, the
// listener survives, and once the timeouts have closed the flood a normal
// client is served over TCP and UDP within a stated bound.
func TestAcceptSurvivesDescriptorExhaustion(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() }()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		t.Fatal("the relay child printed nothing")
	}
	var port, tlsPort int
	if _, err := fmt.Sscanf(lines.Text(), "ports %d %d", &port, &tlsPort); err != nil {
		t.Fatalf("relay child: %q", lines.Text())
	}
	r := &testRelay{port: port, tlsPort: tlsPort}
	tcpAddr, tlsAddr := "127.0.0.1:"+strconv.Itoa(port), "127.0.0.1:"+strconv.Itoa(tlsPort)

	start := time.Now()
	var flood []net.Conn
	kinds := []struct{ addr, kind string }{{tcpAddr, "idle"}, {tcpAddr, "partial-stun"}, {tlsAddr, "idle"}, {tlsAddr, "partial-tls"}, {tcpAddr, "unauthenticated"}}
	for i := range 300 {
		k := kinds[i%len(kinds)]
		if c := floodConn(t, "127.0.0."+strconv.Itoa(10+i%10), k.addr, k.kind); c != nil {
			flood = append(flood, c)
		}
	}
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	t.Logf("%d flood streams open after %v", len(flood), time.Since(start).Round(time.Millisecond))

	// The normal client retries with fresh connections until served.
	const bound = 20 * time.Second
	served := func(network string) time.Duration {
		for time.Since(start) < bound {
			c := dialRaw(t, r, network, "127.0.0.1", "alice", "wonderland")
			if code, _ := c.request(stun.MethodAllocate, transport(17)); code == 0 {
				return time.Since(start)
			}
			c.conn.Close()
		}
		t.Fatalf("a normal %s client was not served within %v of the flood", network, bound)
		return 0
	}
	tcpAt := served("tcp")
	udpAt := served("udp")
	closed := 0
	for _, c := range flood {
		if _, ok := closedWithin(c, 10*time.Millisecond); ok {
			closed++
		}
	}
	stdin.Close()
	lines.Scan()
	t.Logf("normal client served over TCP %v and UDP %v after the flood began; %d of %d flood streams closed by then; child: %s",
		tcpAt.Round(time.Millisecond), udpAt.Round(time.Millisecond), closed, len(flood), lines.Text())
	if !strings.Contains(lines.Text(), "accept_errors=") || strings.Contains(lines.Text(), "accept_errors=0 ") {
		t.Fatalf("the flood did not exhaust the relay's descriptors: %s", lines.Text())
	}
}
