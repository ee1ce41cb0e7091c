package faults

import (
	"bufio"
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
)

// proxy is a TCP fault injector between the hub and a backend: it can add
// latency to every chunk and reset every connection.
type proxy struct {
	l       net.Listener
	target  string
	latency atomic.Int64 // ns added before forwarding each chunk
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

// A fault proxy between the hub and PostgreSQL adds latency, then resets
// every connection again and again: nothing acknowledged is lost, nothing
// deadlocks, and no goroutine is left behind.
func TestDatabaseFaults(t *testing.T) {
	ownEnv(t)
	u, err := url.Parse(os.Getenv("GUILDHALL_TEST_POSTGRES"))
	if err != nil {
		t.Fatal(err)
	}
	px := newProxy(t, u.Host)
	u.Host = px.l.Addr().String()
	t.Setenv("GUILDHALL_TEST_POSTGRES", u.String()) // the hub's database behind the proxy
	h := unlimitedHub(t, "postgres")
	p := newPoster(t, h)
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
	p.check(t, h)
	var now int
	for range 50 { // connections and timers wind down
		if now = goroutines(t, h.Admin); now <= baseline+10 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if now > baseline+10 {
		t.Fatalf("goroutines: %d before the load, %d after it settled", baseline, now)
	}
}
