package faults

import (
	"bufio"
	"bytes"
	"context"
	crand "crypto/rand"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guildhall/guildhall/client/clienttest"
	"github.com/guildhall/guildhall/client/hubapi"
	"github.com/guildhall/guildhall/policy"
)

// proxy is a TCP fault injector between the hub and a backend: it can add
// latency to every chunk, reset every connection, and stall (hold every
// byte, in both directions, while the connections stay open: a black hole).
type proxy struct {
	l       net.Listener
	target  string
	latency atomic.Int64 // ns added before forwarding each chunk
	stalled atomic.Bool
	mu      sync.Mutex
	conns   map[net.Conn]bool
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { l.Close(); p.reset() })
	go p.accept()
	return p
}

func (p *proxy) accept() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[b] = true, true
		p.mu.Unlock()
		go p.pipe(c, b)
		go p.pipe(b, c)
	}
}

func (p *proxy) pipe(from, to net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		if n > 0 {
			if d := p.latency.Load(); d > 0 {
				time.Sleep(time.Duration(d))
			}
			for p.stalled.Load() {
				time.Sleep(10 * time.Millisecond)
			}
			if _, werr := to.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	from.Close()
	to.Close()
}

// reset cuts every connection at once (RST).
func (p *proxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
	}
	clear(p.conns)
}

// goroutines reads the hub's goroutine count from its metrics.
func goroutines(t *testing.T, admin string) int {
	t.Helper()
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "go_goroutines" {
			n, _ := strconv.ParseFloat(f[1], 64)
			return int(n)
		}
	}
	t.Fatal("no go_goroutines in the hub's metrics")
	return 0
}

// storageTimeout is the hub's storage.timeout in these tests: a stall
// lasts longer than it.
const storageTimeout = 2 * time.Second

// settled waits for the hub's goroutines to come back to baseline (plus a
// margin for timers and pooled connections winding down).
func settled(t *testing.T, admin string, baseline int) {
	t.Helper()
	var now int
	for range 50 {
		if now = goroutines(t, admin); now <= baseline+10 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("goroutines: %d before the faults, %d after they settled", baseline, now)
}

// stallPhase stalls the proxy while work runs and requires that work is
// answered "unavailable" while the stall lasts: a request waits out the
// storage timeout (the bucket client tries twice), so the first such
// answer is due a few timeouts in; a hub that holds requests never gives
// one. The stall then lasts one timeout more.
func stallPhase(t *testing.T, px *proxy, seen *codes) {
	t.Helper()
	unavailable := seen.get("unavailable")
	px.stalled.Store(true)
	defer px.stalled.Store(false)
	deadline := time.Now().Add(8 * storageTimeout)
	for seen.get("unavailable") == unavailable {
		if time.Now().After(deadline) {
			t.Fatalf("nothing was answered 'unavailable' in %v of stalled backend (answers: %v)", 8*storageTimeout, seen.snapshot())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(storageTimeout)
}

// answered requires that every request got a typed answer from the hub,
// whatever the backend did: none was left for the client to give up on
// ("transport"), and none failed as "internal" (a backend fault is
// "unavailable", which a client retries).
func answered(t *testing.T, seen *codes) {
	t.Helper()
	t.Logf("answers: %v", seen.snapshot())
	if n := seen.get("transport"); n > 0 {
		t.Fatalf("%d requests went unanswered until the client gave up: the hub held them", n)
	}
	if n := seen.get("internal"); n > 0 {
		t.Fatalf("%d requests failed as 'internal' where the backend was at fault", n)
	}
}

// hubBehindProxy starts a hub on its own PostgreSQL and MinIO, with
// storage.timeout at storageTimeout, and the backend whose URL the
// environment variable holds reached through a fault proxy.
func hubBehindProxy(t *testing.T, backend string) (*clienttest.Hub, *proxy) {
	t.Helper()
	ownEnv(t)
	t.Setenv("GUILDHALL_HUB_STORAGE_TIMEOUT", storageTimeout.String())
	u, err := url.Parse(os.Getenv(backend))
	if err != nil {
		t.Fatal(err)
	}
	px := newProxy(t, u.Host)
	u.Host = px.l.Addr().String()
	t.Setenv(backend, u.String())
	return unlimitedHub(t, "postgres"), px
}

// A fault proxy between the hub and PostgreSQL adds latency, resets every
// connection again and again, then stalls for longer than the hub's
// storage timeout: posts meanwhile are answered "unavailable", nothing
// acknowledged is lost, nothing deadlocks, and no goroutine is left behind.
func TestDatabaseFaults(t *testing.T) {
	h, px := hubBehindProxy(t, "GUILDHALL_TEST_POSTGRES")
	p := newPoster(t, h)
	seen := &codes{n: map[string]int{}}
	p.observe = seen.add
	p.timeout = 5 * storageTimeout // a read and a commit may each wait out the timeout
	time.Sleep(500 * time.Millisecond)
	baseline := goroutines(t, h.Admin)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var rounds atomic.Int64
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
				rounds.Add(1)
			}
		}()
	}
	px.latency.Store(int64(20 * time.Millisecond))
	time.Sleep(2 * time.Second)
	px.latency.Store(0)
	for range 6 {
		time.Sleep(300 * time.Millisecond)
		px.reset()
	}
	time.Sleep(time.Second)
	stallPhase(t, px, seen)
	time.Sleep(2 * time.Second)
	before := rounds.Load()
	time.Sleep(time.Second)
	if rounds.Load() == before {
		t.Fatal("posts stopped completing after the faults: a deadlock")
	}
	close(stop)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("posters did not finish: a request hangs")
	}
	answered(t, seen)
	p.check(t, h)
	settled(t, h.Admin, baseline)
}

// A fault proxy between the hub and MinIO adds latency, resets every
// connection, then stalls for longer than the hub's storage timeout: every
// blob upload the hub acknowledged reads back whole, uploads during the
// stall fail "unavailable" instead of hanging, envelopes keep flowing
// throughout, uploads work again afterwards, and no goroutine is left
// behind.
func TestBucketFaults(t *testing.T) {
	h, px := hubBehindProxy(t, "GUILDHALL_TEST_S3")
	p := newPoster(t, h)
	hub := hubapi.New(h.URL)
	token, err := hub.Login(ctx, p.dev)
	if err != nil {
		t.Fatal(err)
	}
	seen := &codes{n: map[string]int{}}
	var mu sync.Mutex
	acked := map[policy.ID][]byte{}
	put := func() {
		data := make([]byte, 32<<10+mrand.IntN(96<<10))
		crand.Read(data)
		id := policy.Sum(data)
		cctx, cancel := context.WithTimeout(ctx, 5*storageTimeout)
		defer cancel()
		var he *hubapi.Error
		switch err := hub.PutBlob(cctx, token, p.server, id, data); {
		case err == nil:
			mu.Lock()
			acked[id] = data
			mu.Unlock()
			seen.add("ok")
		case asHubError(err, &he):
			seen.add(he.Code)
		default:
			seen.add("transport")
		}
	}
	put()
	time.Sleep(500 * time.Millisecond)
	baseline := goroutines(t, h.Admin)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var posted atomic.Int64
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if i == 0 { // envelopes do not depend on the bucket
					n := p.acked()
					p.post(10)
					posted.Add(int64(p.acked() - n))
					time.Sleep(20 * time.Millisecond)
				} else {
					put()
				}
			}
		}()
	}
	px.latency.Store(int64(20 * time.Millisecond))
	time.Sleep(2 * time.Second)
	px.latency.Store(0)
	for range 6 {
		time.Sleep(300 * time.Millisecond)
		px.reset()
	}
	time.Sleep(time.Second)
	envBefore := posted.Load()
	stallPhase(t, px, seen)
	if posted.Load() == envBefore {
		t.Fatal("no envelope was acknowledged while the bucket stalled")
	}
	ok := seen.get("ok")
	deadline := time.Now().Add(30 * time.Second)
	for seen.get("ok") < ok+5 {
		if time.Now().After(deadline) {
			t.Fatalf("blob uploads did not recover after the stall (answers: %v)", seen.snapshot())
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	answered(t, seen)
	mu.Lock()
	defer mu.Unlock()
	for id, data := range acked {
		got, err := hub.GetBlob(ctx, token, p.server, id)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("acknowledged blob %s does not read back: %v", id, err)
		}
	}
	t.Logf("%d acknowledged blobs all read back", len(acked))
	p.check(t, h)
	settled(t, h.Admin, baseline)
}
