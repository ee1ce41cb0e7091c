package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer collects a process's log lines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startHubBinary builds cmd/hub and runs it with a config file, returning
// its API and admin addresses and its log.
func startHubBinary(t *testing.T, config string) (cmd *exec.Cmd, api, admin string, logs *lockedBuffer) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hub")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd = exec.Command(bin, "-config", config)
	logs = &lockedBuffer{}
	cmd.Stderr = logs
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if m := regexp.MustCompile(`^api\s+(\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			api = m[1]
		}
		if m := regexp.MustCompile(`^admin\s+(\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			admin = m[1]
			break
		}
	}
	if api == "" {
		t.Fatalf("the hub did not start: %s", logs)
	}
	go io.Copy(io.Discard, out)
	return cmd, api, admin, logs
}

// waitLog waits for a line of the hub's log to match.
func waitLog(t *testing.T, logs *lockedBuffer, re string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !regexp.MustCompile(re).MatchString(logs.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("the hub never logged %q; its log:\n%s", re, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SIGHUP (what systemctl reload sends) reloads the configuration: a new
// source rate and log level apply at once and the hub keeps serving; a
// setting that needs a restart is named at Warn; a broken file is refused
// with an Error and the running settings stay.
func TestSIGHUPReloads(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hub.yaml")
	base := fmt.Sprintf("data_dir: %s\nlisten: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\n", dir)
	write := func(s string) {
		if err := os.WriteFile(path, []byte(base+s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("log_level: warn\n")
	cmd, api, _, logs := startHubBinary(t, path)
	// requests sends n requests at once-ish and counts the 429s.
	limited := func(n int) (refused int) {
		for range n {
			resp, err := http.Get(api + "/v1/info")
			if err != nil {
				t.Fatalf("the hub stopped serving: %v\n%s", err, logs)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusTooManyRequests {
				refused++
			}
		}
		return refused
	}
	if r := limited(20); r != 0 {
		t.Fatalf("%d of 20 requests refused under the default rate", r)
	}

	write("log_level: info\nlimits:\n  source_rate: 0.01\n  source_burst: 5\n  max_body: 1000\n")
	cmd.Process.Signal(syscall.SIGHUP)
	// Logged at Info, so it appears only once the new level applies.
	waitLog(t, logs, `msg="reloaded the configuration".*changed=log_level,limits.source_rate,limits.source_burst`)
	waitLog(t, logs, `level=WARN msg="reload: this setting changed.*setting=limits.max_body`)
	if r := limited(20); r != 15 {
		t.Fatalf("after the reload to a burst of 5, %d of 20 requests were refused, want 15", r)
	}

	write("log_level: loud\nlimits:\n  source_rate: 1000\n")
	cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, logs, `level=ERROR msg="reload refused; the previous settings stay".*loud`)
	if r := limited(3); r != 3 {
		t.Fatalf("after a refused reload %d of 3 requests were refused: the reloaded limit did not stay", r)
	}
	if cmd.ProcessState != nil {
		t.Fatal("the hub exited")
	}
}
