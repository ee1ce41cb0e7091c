package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/guildhall/guildhall/client/clienttest"
)

// lockedBuf is a process's output, written by its pipe and read by the
// test.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// buildGuild builds this command, to run it as its own process.
func buildGuild(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "guild")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building guild: %v\n%s", err, out)
	}
	return bin
}

func waitFor(t *testing.T, what string, b *lockedBuf, cond func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond(b.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: got %q", what, b.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A "guild tail" process follows its channel through a hub's crash and a
// graceful restart: it says when it is live and when it lost the
// connection, and prints every message posted exactly once, in order,
// those posted while it was away included.
func TestTailStaysUp(t *testing.T) {
	bin := buildGuild(t)
	hub := clienttest.StartHub(t, "sqlite")
	alice, bob := newUser(t), newUser(t)
	alice.run("identity", "create")
	bob.run("identity", "create")
	alice.run("server", "create", "club", "--hub", hub.URL)
	alice.run("channel", "create", "club", "general")
	var inv struct {
		Token string `json:"token"`
	}
	alice.json(&inv, "invite", "create", "club")
	bob.run("join", inv.Token)
	alice.run("send", "club", "general", "before")

	var stdout, stderr lockedBuf
	cmd := exec.Command(bin, "--home", bob.home, "--json", "tail", "club", "general")
	cmd.Env = os.Environ()
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill()

	lives := func(n int) func(string) bool {
		return func(s string) bool { return strings.Count(s, "live: following #general on "+hub.URL) >= n }
	}
	texts := regexp.MustCompile(`"text":\s*"([^"]*)"`)
	printed := func() []string {
		var out []string
		for _, m := range texts.FindAllStringSubmatch(stdout.String(), -1) {
			out = append(out, m[1])
		}
		return out
	}
	has := func(n int) func(string) bool { return func(string) bool { return len(printed()) >= n } }

	waitFor(t, "live", &stderr, lives(1))
	alice.run("send", "club", "general", "m1")
	alice.run("send", "club", "general", "m2")
	waitFor(t, "m1, m2", &stdout, has(2))

	// A crash: no going_away, the connection just ends.
	hub.Kill()
	waitFor(t, "connection lost", &stderr, func(s string) bool { return strings.Contains(s, "connection lost: ") })
	time.Sleep(2 * time.Second) // a few failed attempts: the waits grow
	hub.Start()
	alice.run("send", "club", "general", "m3") // likely before the tail is back: it catches up
	alice.run("send", "club", "general", "m4")
	waitFor(t, "live again", &stderr, lives(2))
	alice.run("send", "club", "general", "m5")
	waitFor(t, "m3..m5", &stdout, has(5))

	// A graceful stop: the hub cuts its subscribers with going_away.
	hub.Stop()
	hub.Start()
	waitFor(t, "live a third time", &stderr, lives(3))
	alice.run("send", "club", "general", "m6")
	waitFor(t, "m6", &stdout, has(6))

	time.Sleep(500 * time.Millisecond) // a duplicate would show by now
	if got, want := strings.Join(printed(), " "), "m1 m2 m3 m4 m5 m6"; got != want {
		t.Errorf("tail printed %q, want %q\nstderr:\n%s", got, want, stderr.String())
	}
	if !regexp.MustCompile(`connection lost: .+; retrying in \d+\.\ds`).MatchString(stderr.String()) {
		t.Errorf("stderr %q has no connection-lost line with its wait", stderr.String())
	}
	t.Logf("tail stderr:\n%s", stderr.String())
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("tail exited with %v after Ctrl-C\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tail did not stop on Ctrl-C")
	}
}
