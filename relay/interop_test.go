package relay

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/guildhall/guildhall/storage/storagetest"
)

// testRelay is a relay on loopback: UDP and TCP on one port, TLS on another.
// UDP has two sockets on the port (SO_REUSEPORT), as the binary opens one
// per core.
type testRelay struct {
	*Server
	port, tlsPort int
}

// reusePort binds several sockets to one address, as cmd/relay does.
var reusePort = net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) })
	return errors.Join(err, serr)
}}

func startRelay(t *testing.T, configure func(*Config)) *testRelay {
	t.Helper()
	var udp []net.PacketConn
	var tcp net.Listener
	for range 20 { // UDP and TCP on the same port number, as clients expect
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		udp = nil
		for range 2 {
			pc, err := reusePort.ListenPacket(context.Background(), "udp4", l.Addr().String())
			if err != nil {
				break
			}
			udp = append(udp, pc)
		}
		if len(udp) == 2 {
			tcp = l
			break
		}
		for _, pc := range udp {
			pc.Close()
		}
		l.Close()
	}
	if tcp == nil {
		t.Fatal("no port free for UDP and TCP")
	}
	tl, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Realm: "guildhall", Users: map[string]string{"alice": "wonderland", "mallory": "evil"}, Secrets: []string{"new-secret", "old-secret"},
		UDP: udp, TCP: []net.Listener{tcp}, TLS: []net.Listener{tls.NewListener(tl, selfSigned(t))},
		RelayIP: net.ParseIP("127.0.0.1"), RelayBind: "127.0.0.1", PortMin: 40000, PortMax: 49999,
		Limits: Limits{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}}
	if configure != nil {
		configure(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); tl.Close() })
	return &testRelay{Server: s, port: udp[0].LocalAddr().(*net.UDPAddr).Port, tlsPort: tl.Addr().(*net.TCPAddr).Port}
}

func selfSigned(t *testing.T) *tls.Config {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay.test"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// turnutils returns the directory of coturn's test tools.
func turnutils(t *testing.T) string {
	t.Helper()
	dir := storagetest.Require(t, "GUILDHALL_TEST_TURNUTILS")
	if _, err := os.Stat(filepath.Join(dir, "turnutils_uclient")); err != nil {
		t.Fatalf("GUILDHALL_TEST_TURNUTILS=%s has no turnutils_uclient: %v", dir, err)
	}
	return dir
}

// startPeer runs turnutils_peer, coturn's echo peer, on loopback.
func startPeer(t *testing.T) int {
	t.Helper()
	dir := turnutils(t)
	for range 20 {
		l, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.LocalAddr().(*net.UDPAddr).Port
		l.Close()
		cmd := exec.Command(filepath.Join(dir, "turnutils_peer"), "-L", "127.0.0.1", "-p", strconv.Itoa(port))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		if cmd.ProcessState == nil {
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			return port
		}
	}
	t.Fatal("turnutils_peer did not start")
	return 0
}

var lossRE = regexp.MustCompile(`Total lost packets (\d+) \(([\d.]+)%\)`)

// uclient runs turnutils_uclient and returns its output, failing unless it
// reports 0% loss.
func uclient(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(turnutils(t), "turnutils_uclient"), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("turnutils_uclient %v: %v\n%s", args, err, out.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("turnutils_uclient %v hung\n%s", args, out.String())
	}
	return out.String()
}

func wantNoLoss(t *testing.T, out string) {
	t.Helper()
	m := lossRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no loss figure in:\n%s", out)
	}
	if m[1] != "0" {
		t.Fatalf("lost %s packets (%s%%):\n%s", m[1], m[2], out)
	}
	if !regexp.MustCompile(`Total (transmit|send) .*?[1-9]`).MatchString(out) && !regexp.MustCompile(`tot_send_msgs=[1-9]`).MatchString(out) {
		t.Logf("uclient output:\n%s", out)
	}
}

// coturn's own client against the relay: UDP, REST credentials under both
// secrets, TCP, TLS, client to client; no loss in any.
func TestInteropUclient(t *testing.T) {
	r := startRelay(t, nil)
	peer := startPeer(t)
	common := []string{"-e", "127.0.0.1", "-r", fmt.Sprint(peer), "-n", "20", "-m", "4", "-l", "160", "-z", "5"}
	port := []string{"-p", fmt.Sprint(r.port)}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"udp long-term", append([]string{"-u", "alice", "-w", "wonderland"}, port...)},
		{"udp rest new secret", append([]string{"-u", "bob", "-W", "new-secret"}, port...)},
		{"udp rest old secret", append([]string{"-u", "bob", "-W", "old-secret"}, port...)},
		{"tcp", append([]string{"-t", "-u", "alice", "-w", "wonderland"}, port...)},
		{"tls", []string{"-S", "-t", "-u", "alice", "-w", "wonderland", "-p", fmt.Sprint(r.tlsPort)}},
		{"client to client", append([]string{"-y", "-u", "alice", "-w", "wonderland"}, port...)},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantNoLoss(t, uclient(t, append(append(c.args, common...), "127.0.0.1")...))
		})
	}
}

// Negative protocol tests and a DoS burst leave the relay serving a normal
// client at once.
func TestInteropHostileClients(t *testing.T) {
	r := startRelay(t, nil)
	peer := startPeer(t)
	args := func(user, pass string, extra ...string) []string {
		return append(append([]string{"-u", user, "-w", pass, "-e", "127.0.0.1", "-r", fmt.Sprint(peer), "-p", fmt.Sprint(r.port)}, extra...), "127.0.0.1")
	}
	// The hostile runs exhaust mallory's own quota; others are not affected.
	for _, mode := range [][]string{{"-R", "-n", "10"}, {"-O", "-m", "20", "-n", "5"}, {"-N", "-n", "10"}} {
		cmd := exec.Command(filepath.Join(turnutils(t), "turnutils_uclient"), args("mallory", "evil", mode...)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second): // hostile modes may not end by themselves
			cmd.Process.Kill()
			<-done
		}
	}
	wantNoLoss(t, uclient(t, args("alice", "wonderland", "-n", "40", "-m", "2", "-l", "160", "-z", "5")...))
}

// With the default configuration (no allow-list) a loopback peer is refused.
func TestInteropLoopbackPeerRefused(t *testing.T) {
	r := startRelay(t, func(c *Config) { c.Limits.Allow = nil })
	peer := startPeer(t)
	cmd := exec.Command(filepath.Join(turnutils(t), "turnutils_uclient"), "-u", "alice", "-w", "wonderland", "-e", "127.0.0.1", "-r", fmt.Sprint(peer),
		"-p", fmt.Sprint(r.port), "-n", "5", "127.0.0.1")
	out, _ := cmd.CombinedOutput()
	if m := lossRE.FindSubmatch(out); m != nil && string(m[1]) == "0" {
		t.Fatalf("packets reached a loopback peer:\n%s", out)
	}
	if got := testutilCount(r.metrics.deniedPeers); got == 0 {
		t.Fatalf("no denied peer counted; uclient said:\n%s", out)
	}
}

// RFC 6062: TCP relaying between two of coturn's clients through the relay.
func TestInteropTCPRelay(t *testing.T) {
	r := startRelay(t, nil)
	wantNoLoss(t, uclient(t, "-T", "-u", "alice", "-w", "wonderland", "-p", fmt.Sprint(r.port), "-n", "20", "-m", "2", "-l", "160", "-z", "5", "127.0.0.1"))
}

// While coturn's client floods the relay in DoS mode (-O: allocations
// opened and abandoned, until the user's quota answers 508) and with
// negative protocol tests (-R), relaunched as soon as they end, a normal
// client is served at its full rate: no loss, and its run takes no longer
// than three undisturbed ones plus a margin.
func TestInteropServesDuringAttack(t *testing.T) {
	r := startRelay(t, nil)
	peer := startPeer(t)
	args := func(user, pass string, extra ...string) []string {
		return append(append([]string{"-u", user, "-w", pass, "-e", "127.0.0.1", "-r", fmt.Sprint(peer), "-p", fmt.Sprint(r.port)}, extra...), "127.0.0.1")
	}
	normal := args("alice", "wonderland", "-n", "60", "-m", "2", "-l", "160", "-z", "5")
	start := time.Now()
	wantNoLoss(t, uclient(t, normal...))
	undisturbed := time.Since(start)

	ctx, cancel := context.WithCancel(context.Background())
	var runs, active atomic.Int64
	var wg sync.WaitGroup
	for _, mode := range [][]string{{"-O", "-m", "50", "-n", "1000"}, {"-R", "-n", "1000"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				active.Add(1)
				exec.CommandContext(ctx, filepath.Join(turnutils(t), "turnutils_uclient"), args("mallory", "evil", mode...)...).Run()
				active.Add(-1)
				runs.Add(1)
			}
		}()
	}
	defer func() { cancel(); wg.Wait() }()
	time.Sleep(300 * time.Millisecond) // the flood is on
	// Sample, every 10 ms while the normal client runs, whether an attack
	// process is running: the attack must overlap (nearly) all of it.
	var samples, attacking atomic.Int64
	sampling, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for tick := time.NewTicker(10 * time.Millisecond); sampling.Err() == nil; <-tick.C {
			samples.Add(1)
			if active.Load() > 0 {
				attacking.Add(1)
			}
		}
	}()
	before := runs.Load()
	start = time.Now()
	wantNoLoss(t, uclient(t, normal...))
	attacked := time.Since(start)
	stopSampling()
	<-sampled
	during := runs.Load() - before
	t.Logf("normal client: %v undisturbed, %v under attack (%d attack runs ended meanwhile; an attack ran in %d of %d samples)",
		undisturbed, attacked, during, attacking.Load(), samples.Load())
	if samples.Load() == 0 || attacking.Load()*10 < samples.Load()*9 {
		t.Fatalf("an attack ran in only %d of %d samples while the normal client ran: the attack did not overlap it", attacking.Load(), samples.Load())
	}
	// The margin allows for a loaded 2-core machine running the race
	// detector: the bound is about being served, not about speed.
	if attacked > 3*undisturbed+3*time.Second {
		t.Fatalf("under attack the normal client took %v, undisturbed %v", attacked, undisturbed)
	}
}
