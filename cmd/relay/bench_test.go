package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"

	"github.com/guildhall/guildhall/p2p"
)

// BenchmarkReservations holds b.N circuit relay reservations at once on a
// relay process and reports its memory per reservation (RSS).
//
//	go test ./cmd/relay -run '^$' -bench Reservations -benchtime 300x
func BenchmarkReservations(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "relay")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	dir := b.TempDir()
	cfg := filepath.Join(dir, "relay.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`external_ip: 127.0.0.2
listen: {udp: 127.0.0.1:0}
metrics: {listen: 127.0.0.1:0}
auth: {secrets: [bench]}
p2p:
  enabled: true
  key_file: %s/node.key
  listen: [/ip4/127.0.0.1/tcp/0]
  force_public: true
  relay: {max_reservations: %d, max_reservations_per_ip: %d}
`, dir, b.N+10, b.N+10)), 0o600)
	cmd := exec.Command(bin, "-config", cfg)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Process.Kill()
	var addr string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if m := regexp.MustCompile(`^\s+(/ip4/\S+/p2p/\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			addr = m[1]
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	ai, err := peer.AddrInfoFromString(addr)
	if err != nil {
		b.Fatalf("relay address %q: %v", addr, err)
	}
	time.Sleep(500 * time.Millisecond)
	before := rssOf(cmd.Process.Pid)
	ctx := context.Background()
	var nodes []*p2p.Node
	defer func() {
		for _, n := range nodes {
			n.Close()
		}
	}()
	b.ResetTimer()
	for range b.N {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		n, err := p2p.New(ctx, p2p.Config{Key: k, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Memory: 16 << 20, FDs: 64, ConnLow: 4, ConnHigh: 8})
		if err != nil {
			b.Fatal(err)
		}
		nodes = append(nodes, n)
		if err := n.Host.Connect(ctx, *ai); err != nil {
			b.Fatalf("connection %d: %v", len(nodes), err)
		}
		if _, err := client.Reserve(ctx, n.Host, *ai); err != nil {
			b.Fatalf("reservation %d: %v", len(nodes), err)
		}
	}
	b.StopTimer()
	time.Sleep(time.Second)
	after := rssOf(cmd.Process.Pid)
	b.ReportMetric(float64(after-before)/float64(b.N)/1024, "KiB/reservation")
}

// cpuOf returns a process's user and system CPU time (clock ticks of 10 ms).
func cpuOf(pid int) time.Duration {
	s, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	f := strings.Fields(string(s[strings.LastIndexByte(string(s), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+k) * 10 * time.Millisecond
}

func rssOf(pid int) int64 {
	s, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, l := range strings.Split(string(s), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkUDPRelay measures the relay process in its default UDP
// configuration (one listening socket per core, at least 2) with
// cmd/turnload: 16 allocations each keeping 8 packets of 160 bytes in
// flight through an echo peer. Each iteration is a 3 s run; it reports
// round trips per second.
//
//	go test ./cmd/relay -run '^$' -bench UDPRelay -benchtime 3x
func BenchmarkUDPRelay(b *testing.B) {
	dir := b.TempDir()
	for _, p := range []string{".", "../turnload"} {
		if out, err := exec.Command("go", "build", "-o", dir, p).CombinedOutput(); err != nil {
			b.Fatalf("build %s: %v\n%s", p, err, out)
		}
	}
	cfg := filepath.Join(dir, "relay.yaml")
	os.WriteFile(cfg, []byte(`external_ip: 127.0.0.1
listen: {udp: 127.0.0.1:0, udp_sockets: 2}
relay: {bind: 127.0.0.1, port_min: 20000, port_max: 39999}
auth: {users: {bench: bench}}
limits: {allow: ["127.0.0.0/8"], user_quota: -1, total_quota: -1, bandwidth: -1, challenge_rate: 1000000, challenge_burst: 1000000}
metrics: {listen: 127.0.0.2:0}
p2p: {enabled: false}
`), 0o600)
	cmd := exec.Command(filepath.Join(dir, "relay"), "-config", cfg)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Process.Kill()
	var addr string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if m := regexp.MustCompile(`^udp\s+(\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			addr = m[1]
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	b.ResetTimer()
	var total, trips float64
	cpu0 := cpuOf(cmd.Process.Pid)
	for range b.N {
		res, err := exec.Command(filepath.Join(dir, "turnload"), "-server", addr, "-user", "bench", "-pass", "bench", "-allocs", "16",
			"-window", "8", "-size", "160", "-duration", "3s").CombinedOutput()
		m := regexp.MustCompile(`([0-9]+) round trips/s`).FindSubmatch(res)
		if err != nil || m == nil {
			b.Fatalf("turnload: %v\n%s\nrelay: %s", err, res, stderr.String())
		}
		rt, _ := strconv.ParseFloat(string(m[1]), 64)
		total += rt
		trips += rt * 3
	}
	b.ReportMetric(total/float64(b.N), "roundtrips/s")
	// The relay's CPU time per round trip depends less than throughput on
	// what else the machine runs.
	b.ReportMetric((cpuOf(cmd.Process.Pid)-cpu0).Seconds()*1e6/trips, "relay-CPU-µs/roundtrip")
}
