package storagetest

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// CrashEnv is the environment variable that makes a test binary act as the
// writer child of RunCrash (see CrashChild).
const CrashEnv = "GUILDHALL_CRASH_CHILD"

// CrashChild is called from a backend's TestMain. When the process was
// started by RunCrash it opens the store with open, writes envelopes from
// several goroutines and prints "ack <id>" after each acknowledged write,
// until it is killed; it never returns. Otherwise it returns at once.
func CrashChild(open func(ctx context.Context) (storage.EnvelopeStore, error)) {
	if os.Getenv(CrashEnv) == "" {
		return
	}
	ctx := context.Background()
	st, err := open(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	server, channel := ServerID("crash"), ChannelID("crash")
	for w := range 16 {
		go func() {
			for i := 0; ; i++ {
				e := Envelope(server, channel, w<<32|i, 1024)
				if _, err := st.PutEnvelopes(ctx, []storage.Envelope{e}); err != nil {
					fmt.Fprintln(os.Stderr, "crash child:", err)
					os.Exit(3)
				}
				mu.Lock()
				os.Stdout.WriteString("ack " + hex.EncodeToString(e.ID[:]) + "\n")
				mu.Unlock()
			}
		}()
	}
	select {}
}

// RunCrash starts the test binary as a crash child (the server "crash" must
// already be a tenant of the store the child opens), kills it with SIGKILL
// after it acknowledged acks writes, then checks with reopen that every
// acknowledged envelope is stored.
func RunCrash(t *testing.T, acks int, env []string, reopen func(ctx context.Context) (storage.EnvelopeStore, func(), error)) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), CrashEnv+"=1"), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []policy.ID
	sc := bufio.NewScanner(out)
	deadline := time.Now().Add(2 * time.Minute)
	for len(acked) < acks && sc.Scan() && time.Now().Before(deadline) {
		line, ok := strings.CutPrefix(sc.Text(), "ack ")
		b, err := hex.DecodeString(line)
		if !ok || err != nil || len(b) != 32 {
			t.Fatalf("child wrote %q", sc.Text())
		}
		acked = append(acked, policy.ID(b))
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Acknowledgements the child printed before the kill also count.
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
			if b, err := hex.DecodeString(line); err == nil && len(b) == 32 {
				acked = append(acked, policy.ID(b))
			}
		}
	}
	_ = cmd.Wait()
	if len(acked) < acks {
		t.Fatalf("child acknowledged only %d writes before dying", len(acked))
	}
	st, closeStore, err := reopen(context.Background())
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer closeStore()
	for _, id := range acked {
		if _, err := st.GetEnvelope(context.Background(), id); err != nil {
			t.Fatalf("acknowledged envelope %s lost after SIGKILL: %v", id, err)
		}
	}
	t.Logf("%d acknowledged writes, all found after SIGKILL and reopen", len(acked))
}
