package relay

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// coturn's client in each of its modes against the relay as the binary
// runs it (two UDP sockets on the port), every mode 8 times at once so a
// failure that hits one run in four shows: RTP/RTCP pairs (EVEN-PORT and
// RESERVATION-TOKEN, uclient's default), single allocations (-c), client
// to client (-y), TCP (-t), TLS (-S), TCP relaying (-T), REST credentials
// (-W), and 1,400- and 8,000-byte messages. No run may lose a packet.
func TestInteropUclientModes(t *testing.T) {
	r := startRelay(t, nil)
	peer := startPeer(t)
	dir := turnutils(t)
	udp := []string{"-p", fmt.Sprint(r.port), "-e", "127.0.0.1", "-r", fmt.Sprint(peer)}
	modes := []struct {
		name string
		args []string
	}{
		{"rtp-rtcp long-term", append([]string{"-w", "wonderland"}, udp...)},
		{"single -c", append([]string{"-c"}, udp...)},
		{"client to client -y", []string{"-y", "-p", fmt.Sprint(r.port)}},
		{"tcp -t", append([]string{"-t"}, udp...)},
		{"tls -S", []string{"-S", "-t", "-p", fmt.Sprint(r.tlsPort), "-e", "127.0.0.1", "-r", fmt.Sprint(peer)}},
		{"tcp relay -T", []string{"-T", "-p", fmt.Sprint(r.port)}},
		{"rest -W", udp},
		{"1400 bytes", append([]string{"-l", "1400"}, udp...)},
		{"8000 bytes", append([]string{"-l", "8000"}, udp...)},
		{"8000 bytes over tcp", append([]string{"-t", "-l", "8000"}, udp...)},
		{"8000 bytes over tls", []string{"-S", "-t", "-l", "8000", "-p", fmt.Sprint(r.tlsPort), "-e", "127.0.0.1", "-r", fmt.Sprint(peer)}},
	}
	const runs = 8
	sem := make(chan struct{}, 24)
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for i, m := range modes {
		for j := range runs {
			// REST users are distinct (quotas are per user); long-term
			// runs share alice, within her quota.
			args := append([]string{"-u", fmt.Sprintf("u%d-%d", i, j), "-W", "new-secret"}, m.args...)
			if m.name == "rtp-rtcp long-term" {
				args = append([]string{"-u", "alice"}, m.args...)
			}
			if !contains(args, "-l") {
				args = append(args, "-l", "160")
			}
			// Each run from its own loopback address: the TCP modes would
			// otherwise meet the per-source connection cap together.
			args = append(args, "-L", fmt.Sprintf("127.0.%d.%d", i+1, j+1), "-n", "10", "-m", "1", "-z", "5", "127.0.0.1")
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
				defer cancel()
				var out bytes.Buffer
				cmd := exec.CommandContext(ctx, filepath.Join(dir, "turnutils_uclient"), args...)
				cmd.Stdout, cmd.Stderr = &out, &out
				err := cmd.Run()
				lost := lossRE.FindStringSubmatch(out.String())
				if err != nil || lost == nil || lost[1] != "0" {
					mu.Lock()
					defer mu.Unlock()
					t.Errorf("%s, run %d (%v): %v\n%s", m.name, j, args, err, tail(out.String(), 1200))
				}
			}()
		}
	}
	wg.Wait()
	t.Logf("%d runs in %v", len(modes)*runs, time.Since(start))
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
