package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/fxamacker/cbor/v2"

	"github.com/guildhall/guildhall/wire"
)

// hist is a latency histogram with 100 µs buckets up to 10 s.
type hist struct{ b [100_001]atomic.Int64 }

func (h *hist) add(d time.Duration) {
	i := min(max(int(d/(100*time.Microsecond)), 0), len(h.b)-1)
	h.b[i].Add(1)
}

func (h *hist) quantile(q float64) time.Duration {
	var total int64
	for i := range h.b {
		total += h.b[i].Load()
	}
	if total == 0 {
		return 0
	}
	want := int64(q*float64(total) + 0.5)
	var seen int64
	for i := range h.b {
		if seen += h.b[i].Load(); seen >= want {
			return time.Duration(i+1) * 100 * time.Microsecond
		}
	}
	return 10 * time.Second
}

// sign makes n envelopes on every core.
func (l *loader) sign(n, size int) ([][]byte, error) {
	out := make([][]byte, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var mu sync.Mutex
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				raw, err := l.envelope(size)
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				out[i] = raw
			}
		}()
	}
	wg.Wait()
	return out, firstErr
}

// push posts envelopes over conns WebSockets, window frames of batch
// envelopes in flight on each, and returns how many got receipts.
func (l *loader) push(ctx context.Context, envs [][]byte, conns, batch, window int, lat *hist) (int64, error) {
	var next atomic.Int64
	var receipts atomic.Int64
	errc := make(chan error, conns)
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := l.dial(ctx, "")
			if err != nil {
				errc <- err
				return
			}
			defer c.CloseNow()
			slots := make(chan struct{}, window)
			var mu sync.Mutex
			sent := map[uint64]time.Time{}
			done := make(chan error, 1)
			var outstanding sync.WaitGroup
			go func() {
				for {
					frames, err := readFrames(ctx, c)
					if err != nil {
						done <- err
						return
					}
					for _, f := range frames {
						if f.Op == wire.OpErr {
							done <- fmt.Errorf("frame %d: %s: %s", f.ID, f.Error.Code, f.Error.Message)
							return
						}
						if f.Op != wire.OpAck {
							continue
						}
						for _, r := range f.Results {
							if r.Error != nil {
								done <- fmt.Errorf("envelope refused: %s: %s", r.Error.Code, r.Error.Message)
								return
							}
							receipts.Add(1)
						}
						mu.Lock()
						lat.add(time.Since(sent[f.ID]))
						delete(sent, f.ID)
						mu.Unlock()
						<-slots
						outstanding.Done()
					}
				}
			}()
			for id := uint64(1); ; id++ {
				start := next.Add(int64(batch)) - int64(batch)
				if start >= int64(len(envs)) {
					break
				}
				end := min(start+int64(batch), int64(len(envs)))
				select {
				case slots <- struct{}{}:
				case err := <-done:
					errc <- err
					return
				}
				mu.Lock()
				sent[id] = time.Now()
				mu.Unlock()
				outstanding.Add(1)
				if err := writeFrames(ctx, c, wire.Frame{Op: wire.OpPost, ID: id, Objects: envs[start:end]}); err != nil {
					errc <- err
					return
				}
			}
			outstanding.Wait()
		}()
	}
	wg.Wait()
	close(errc)
	return receipts.Load(), <-errc
}

func (l *loader) ingest(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("ingest", flag.ExitOnError)
	n := fl.Int("n", 200_000, "envelopes")
	size := fl.Int("size", 1024, "bytes per envelope")
	conns := fl.Int("conns", 4, "WebSockets")
	batch := fl.Int("batch", 64, "envelopes per post frame")
	window := fl.Int("window", 8, "post frames in flight per WebSocket")
	fl.Parse(args)
	if err := l.setup(ctx); err != nil {
		return err
	}
	envs, err := l.sign(*n, *size)
	if err != nil {
		return err
	}
	var lat hist
	start := time.Now()
	got, err := l.push(ctx, envs, *conns, *batch, *window, &lat)
	el := time.Since(start)
	if err != nil {
		return err
	}
	fmt.Printf("ingest: %d envelopes of %d bytes over %d WebSockets (batch %d, window %d): %.0f envelopes/s with durable receipts; frame ack p50 %v p99 %v\n",
		got, len(envs[0]), *conns, *batch, *window, float64(got)/el.Seconds(), lat.quantile(0.5), lat.quantile(0.99))
	if got != int64(*n) {
		return fmt.Errorf("%d receipts for %d envelopes", got, *n)
	}
	return nil
}

func (l *loader) sync(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("sync", flag.ExitOnError)
	n := fl.Int("n", 100_000, "envelopes to store, then catch up")
	size := fl.Int("size", 1024, "bytes per envelope")
	page := fl.Int("page", 10_000, "envelopes per read")
	runs := fl.Int("runs", 3, "catch-ups (the median is reported)")
	fl.Parse(args)
	if err := l.setup(ctx); err != nil {
		return err
	}
	envs, err := l.sign(*n, *size)
	if err != nil {
		return err
	}
	var lat hist
	if _, err := l.push(ctx, envs, 4, 64, 8, &lat); err != nil {
		return err
	}
	var times []time.Duration
	for range *runs {
		start := time.Now()
		var after uint64
		count := 0
		for {
			var p wire.Envelopes
			path := fmt.Sprintf("/v1/servers/%s/channels/%s/envelopes?after=%d&limit=%d", l.server, l.chann, after, *page)
			if err := l.call(ctx, "GET", path, l.token, nil, &p); err != nil {
				return err
			}
			count += len(p.Envelopes)
			after = p.Next
			if !p.More {
				break
			}
		}
		times = append(times, time.Since(start))
		if count != *n {
			return fmt.Errorf("caught up %d of %d envelopes", count, *n)
		}
	}
	slices.Sort(times)
	fmt.Printf("sync: caught up %d envelopes of %d bytes from cursor 0 in pages of %d: median %v (runs %v)\n", *n, len(envs[0]), *page, times[len(times)/2], times)
	return nil
}

func (l *loader) fanout(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("fanout", flag.ExitOnError)
	subs := fl.Int("subs", 10_000, "subscribers (one WebSocket each)")
	rate := fl.Int("rate", 100, "messages published per second")
	dur := fl.Duration("duration", 30*time.Second, "publishing time")
	size := fl.Int("size", 512, "bytes per envelope")
	fl.Parse(args)
	if err := l.setup(ctx); err != nil {
		return err
	}
	rss0 := l.rss()
	conns := make([]*websocket.Conn, *subs)
	var dialNext atomic.Int64
	var wg sync.WaitGroup
	var dialErr atomic.Value
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := dialNext.Add(1) - 1; i < int64(*subs); i = dialNext.Add(1) - 1 {
				c, err := l.dial(ctx, l.token)
				if err == nil {
					err = writeFrames(ctx, c, wire.Frame{Op: wire.OpSub, ID: 1, Topics: []wire.Topic{{Server: l.server, Channel: l.chann}}})
				}
				if err == nil {
					var fs []wire.Frame
					if fs, err = readFrames(ctx, c); err == nil && (len(fs) == 0 || fs[0].Op != wire.OpAck) {
						err = fmt.Errorf("subscribe answered %+v", fs)
					}
				}
				if err != nil {
					dialErr.Store(err)
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	if err, _ := dialErr.Load().(error); err != nil {
		return fmt.Errorf("subscribing: %w", err)
	}
	time.Sleep(2 * time.Second) // let the hub settle before reading its memory
	rss1 := l.rss()

	var lat hist
	var delivered, cut atomic.Int64
	received := make([]int64, *subs)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var readers sync.WaitGroup
	for i, c := range conns {
		readers.Add(1)
		go func() {
			defer readers.Done()
			var buf bytes.Buffer
			for {
				frames, err := readPushes(c, &buf)
				if err != nil {
					return
				}
				now := time.Now()
				for _, f := range frames {
					switch f.Op {
					case wire.OpMsg:
						// The ciphertext (the body's last field) ends before
						// the signature (2 bytes of header, 64 of signature);
						// its first 8 bytes are the time it was made.
						sent := int64(binary.BigEndian.Uint64(f.Raw[len(f.Raw)-66-ctLen(*size):]))
						lat.add(now.Sub(time.Unix(0, sent)))
						received[i]++
						delivered.Add(1)
					case wire.OpCut:
						cut.Add(1)
					}
				}
			}
		}()
	}
	pub, err := l.dial(ctx, "")
	if err != nil {
		return err
	}
	var stored atomic.Int64
	go func() { // count receipts: only stored envelopes are owed to subscribers
		for {
			frames, err := readFrames(rctx, pub)
			if err != nil {
				return
			}
			for _, f := range frames {
				for _, r := range f.Results {
					if r.Receipt != nil {
						stored.Add(1)
					}
				}
			}
		}
	}()
	tick := time.NewTicker(time.Second / time.Duration(*rate))
	deadline := time.Now().Add(*dur)
	published := 0
	for time.Now().Before(deadline) {
		<-tick.C
		raw, err := l.envelope(*size)
		if err != nil {
			return err
		}
		if err := writeFrames(ctx, pub, wire.Frame{Op: wire.OpPost, ID: uint64(published + 1), Objects: [][]byte{raw}}); err != nil {
			return err
		}
		published++
	}
	tick.Stop()
	time.Sleep(3 * time.Second)
	cancel()
	for _, c := range conns {
		c.CloseNow()
	}
	readers.Wait()
	lost := int64(0)
	for _, n := range received {
		lost += stored.Load() - n
	}
	fmt.Printf("fanout: %d subscribers, %d messages at %d/s (%d stored): %d deliveries (%.0f/s), lost %d, cut off %d; latency p50 %v p99 %v p99.9 %v\n",
		*subs, published, *rate, stored.Load(), delivered.Load(), float64(delivered.Load())/dur.Seconds(), lost, cut.Load(),
		lat.quantile(0.5), lat.quantile(0.99), lat.quantile(0.999))
	if l.pid != 0 {
		fmt.Printf("fanout: hub RSS %d MiB idle before, %d MiB with %d idle subscribers: %.1f KiB per subscriber\n",
			rss0>>20, rss1>>20, *subs, float64(rss1-rss0)/float64(*subs)/1024)
	}
	return nil
}

// push is the part of a frame a subscriber in this tool looks at.
type push struct {
	Op  string `cbor:"1,keyasint"`
	Seq uint64 `cbor:"8,keyasint"`
	Raw []byte `cbor:"9,keyasint"`
}

// readPushes decodes only what the fanout scenario needs into a reused
// buffer, without a per-read context (the socket is closed to stop it), so
// that the load generator spends its CPU on the load.
func readPushes(c *websocket.Conn, buf *bytes.Buffer) ([]push, error) {
	_, r, err := c.Reader(context.Background())
	if err != nil {
		return nil, err
	}
	buf.Reset()
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, err
	}
	var ps []push
	return ps, cbor.Unmarshal(buf.Bytes(), &ps)
}
