package storagetest

import (
	"bufio"
	"bytes"
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

// Writer performs the n-th acknowledged write of a crash child and returns
// the ID under which it can be found afterwards.
type Writer func(ctx context.Context, n int) (policy.ID, error)

// Lookup reports whether an acknowledged write is stored (nil) after reopening.
type Lookup func(ctx context.Context, id policy.ID) error

// EnvelopeWriter writes 1 KiB envelopes of the tenant "crash" to st.
func EnvelopeWriter(st storage.EnvelopeStore) Writer {
	server, channel := ServerID("crash"), ChannelID("crash")
	return func(ctx context.Context, n int) (policy.ID, error) {
		e := Envelope(server, channel, n, 1024)
		_, err := st.PutEnvelopes(ctx, []storage.Envelope{e})
		return e.ID, err
	}
}

// EnvelopeLookup finds envelopes in st.
func EnvelopeLookup(st storage.EnvelopeStore) Lookup {
	return func(ctx context.Context, id policy.ID) error { _, err := st.GetEnvelope(ctx, id); return err }
}

// BlobWriter writes 64 KiB blobs to st.
func BlobWriter(st storage.BlobStore) Writer {
	return func(ctx context.Context, n int) (policy.ID, error) {
		data := Envelope(ServerID("crash"), ChannelID("blobs"), n, 64<<10).Raw
		id := policy.Sum(data)
		return id, st.PutBlob(ctx, id, bytes.NewReader(data), int64(len(data)))
	}
}

// BlobLookup finds blobs in st, checking their size.
func BlobLookup(st storage.BlobStore) Lookup {
	return func(ctx context.Context, id policy.ID) error {
		n, err := st.StatBlob(ctx, id)
		if err == nil && n != 64<<10 {
			return fmt.Errorf("blob %s has %d bytes, want %d", id, n, 64<<10)
		}
		return err
	}
}

// CrashChild is called from a backend's TestMain. When the process was
// started by RunCrash it opens the store with open, writes from 16
// goroutines and prints "ack <id>" after each acknowledged write, until it is
// killed; it never returns. Otherwise it returns at once.
func CrashChild(open func(ctx context.Context) (Writer, error)) {
	if os.Getenv(CrashEnv) == "" {
		return
	}
	ctx := context.Background()
	write, err := open(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	for w := range 16 {
		go func() {
			for i := 0; ; i++ {
				id, err := write(ctx, w<<32|i)
				if err != nil {
					fmt.Fprintln(os.Stderr, "crash child:", err)
					os.Exit(3)
				}
				mu.Lock()
				os.Stdout.WriteString("ack " + hex.EncodeToString(id[:]) + "\n")
				mu.Unlock()
			}
		}()
	}
	select {}
}

// RunCrash starts the test binary as a crash child, kills it with SIGKILL
// after it acknowledged acks writes, then checks with reopen that every
// acknowledged write is stored.
func RunCrash(t *testing.T, acks int, env []string, reopen func(ctx context.Context) (Lookup, func(), error)) {
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
	lookup, closeStore, err := reopen(context.Background())
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer closeStore()
	for _, id := range acked {
		if err := lookup(context.Background(), id); err != nil {
			t.Fatalf("acknowledged write %s lost after SIGKILL: %v", id, err)
		}
	}
	t.Logf("%d acknowledged writes, all found after SIGKILL and reopen", len(acked))
}
