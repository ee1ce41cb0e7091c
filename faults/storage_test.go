package faults

import (
	"bytes"
	"maps"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guildhall/guildhall/client/hubapi"
	"github.com/guildhall/guildhall/policy"
)

// env is a PostgreSQL and a MinIO of this test's own (deploy/testenv.sh),
// so that stopping them disturbs no other test.
type env struct {
	t   *testing.T
	dir string
}

func ownEnv(t *testing.T) *env {
	t.Helper()
	// Starting the components is not what these tests check: on a busy
	// machine a port picked free can be taken before the server binds it,
	// so a failed start is tried again (twice) before the test fails.
	var out []byte
	for attempt := 1; ; attempt++ {
		var stderr strings.Builder
		cmd := exec.Command("../deploy/testenv.sh", "up")
		cmd.Stderr = &stderr
		var err error
		if out, err = cmd.Output(); err == nil {
			break
		}
		if attempt == 3 {
			t.Fatalf("testenv up: %v\n%s", err, stderr.String())
		}
		t.Logf("testenv up failed (attempt %d), trying again: %v\n%s", attempt, err, stderr.String())
	}
	e := &env{t: t}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok || !strings.HasPrefix(line, "export ") {
			continue
		}
		t.Setenv(k, v)
		if k == "GUILDHALL_TESTENV_DIR" {
			e.dir = v
		}
	}
	if e.dir == "" {
		t.Fatalf("testenv printed no directory:\n%s", out)
	}
	t.Cleanup(func() { exec.Command("../deploy/testenv.sh", "down", e.dir).Run() })
	return e
}

func (e *env) do(op string) {
	e.t.Helper()
	if out, err := exec.Command("../deploy/testenv.sh", op, e.dir).CombinedOutput(); err != nil {
		e.t.Fatalf("testenv %s: %v\n%s", op, err, out)
	}
}

// codes counts the answers a poster gets, by code.
type codes struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *codes) add(code string) { c.mu.Lock(); c.n[code]++; c.mu.Unlock() }
func (c *codes) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}
func (c *codes) get(code string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[code]
}

// Restart PostgreSQL under load: the hub answers "unavailable" meanwhile,
// recovers by itself, and loses nothing acknowledged.
func TestPostgresRestartUnderLoad(t *testing.T) {
	e := ownEnv(t)
	h := unlimitedHub(t, "postgres")
	p := newPoster(t, h)
	seen := &codes{n: map[string]int{}}
	p.observe = seen.add
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				p.post(10)
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	time.Sleep(time.Second)
	e.do("pg-stop")
	time.Sleep(2 * time.Second)
	during := seen.get("unavailable")
	e.do("pg-start")
	before := seen.get("ok")
	deadline := time.Now().Add(30 * time.Second)
	for seen.get("ok") < before+50 {
		if time.Now().After(deadline) {
			t.Fatal("the hub did not recover by itself after PostgreSQL came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if during == 0 {
		t.Fatalf("no post was answered 'unavailable' while PostgreSQL was down (answers: %v)", seen.snapshot())
	}
	answered(t, seen)
	p.check(t, h)
}

// Stop MinIO: blob operations fail clearly ("unavailable"), envelopes keep
// flowing, and blobs work again once it is back.
func TestBucketStopped(t *testing.T) {
	e := ownEnv(t)
	h := unlimitedHub(t, "postgres")
	p := newPoster(t, h)
	hub := hubapi.New(h.URL)
	token, err := hub.Login(ctx, p.dev)
	if err != nil {
		t.Fatal(err)
	}
	put := func(data []byte) error { return hub.PutBlob(ctx, token, p.server, policy.Sum(data), data) }
	if err := put([]byte("before")); err != nil {
		t.Fatal(err)
	}
	e.do("s3-stop")
	err = put([]byte("while the bucket is down"))
	var he *hubapi.Error
	if !asHubError(err, &he) || he.Code != "unavailable" || he.Status != http.StatusServiceUnavailable {
		t.Fatalf("a blob upload with the bucket down: %v", err)
	}
	n := len(p.receipts)
	for range 5 {
		p.post(10)
	}
	if len(p.receipts) != n+50 {
		t.Fatalf("envelopes stopped with the bucket: %d of 50 acknowledged", len(p.receipts)-n)
	}
	e.do("s3-start")
	if err := put(bytes.Repeat([]byte("after"), 10)); err != nil {
		t.Fatalf("after the bucket came back: %v", err)
	}
	p.check(t, h)
}

func asHubError(err error, he **hubapi.Error) bool {
	h, ok := err.(*hubapi.Error)
	if ok {
		*he = h
	}
	return ok
}
