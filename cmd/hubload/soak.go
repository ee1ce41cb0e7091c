package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/guildhall/guildhall/wire"
)

// soak holds many subscribers and a steady ingest on a hub for a while,
// sampling the hub's goroutines and memory (from its admin /metrics). The
// first sample is taken once the load has run for -warmup (queues, buffers
// and caches at their working size); the run fails unless the last sample,
// still under load, is within a margin of it: nothing grows with time under
// a bounded load, even one above what the hub can deliver.
func (l *loader) soak(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("soak", flag.ExitOnError)
	subs := fl.Int("subs", 10_000, "subscribers")
	rate := fl.Int("rate", 200, "envelopes posted per second")
	dur := fl.Duration("duration", 5*time.Minute, "how long, warm-up included")
	warmup := fl.Duration("warmup", 30*time.Second, "load before the first sample")
	admin := fl.String("admin", "http://127.0.0.1:7421", "the hub's admin URL (metrics)")
	fl.Parse(args)
	if err := l.setup(ctx); err != nil {
		return err
	}
	conns := make([]*websocket.Conn, 0, *subs)
	var closed atomic.Int64 // subscribers the hub disconnected (too slow)
	defer func() {
		for _, c := range conns {
			c.CloseNow()
		}
	}()
	for range *subs {
		c, err := l.dial(ctx, l.token)
		if err != nil {
			return err
		}
		if err := writeFrames(ctx, c, wire.Frame{Op: wire.OpSub, ID: 1, Topics: []wire.Topic{{Server: l.server, Channel: l.chann}}}); err != nil {
			return err
		}
		conns = append(conns, c)
		go func() { // read and discard, like a client that keeps up
			var buf bytes.Buffer
			for {
				if _, err := readPushes(c, &buf); err != nil {
					closed.Add(1)
					return
				}
			}
		}()
	}
	time.Sleep(5 * time.Second)
	if _, _, err := sample(*admin); err != nil {
		return err
	}
	pub, err := l.dial(ctx, "")
	if err != nil {
		return err
	}
	defer pub.CloseNow()
	go func() {
		for {
			if _, err := readFrames(context.Background(), pub); err != nil {
				return
			}
		}
	}()
	var samples []string
	var g0, g1 int
	var m0, m1, peak int64
	tick := time.NewTicker(time.Second / time.Duration(*rate))
	defer tick.Stop()
	every := time.NewTicker(15 * time.Second)
	defer every.Stop()
	first := time.After(*warmup)
	end := time.Now().Add(*dur)
	for id := uint64(1); time.Now().Before(end); id++ {
		select {
		case <-tick.C:
			raw, err := l.envelope(512)
			if err != nil {
				return err
			}
			if err := writeFrames(ctx, pub, wire.Frame{Op: wire.OpPost, ID: id, Objects: [][]byte{raw}}); err != nil {
				return err
			}
		case <-first:
			if g0, m0, err = sample(*admin); err != nil {
				return err
			}
			peak = m0
		case <-every.C:
			if g, m, err := sample(*admin); err == nil {
				samples = append(samples, fmt.Sprintf("%d goroutines, %d MiB", g, m>>20))
				peak = max(peak, m)
			}
		}
	}
	if m0 == 0 {
		return fmt.Errorf("the run (%v) ended before its warm-up (%v)", *dur, *warmup)
	}
	if g1, m1, err = sample(*admin); err != nil {
		return err
	}
	fmt.Printf("soak: %d subscribers, %d envelopes/s for %v: after warm-up %d goroutines, RSS %d MiB; at the end %d goroutines, RSS %d MiB (peak %d MiB); %d subscribers disconnected as too slow\n  samples: %s\n",
		*subs, *rate, *dur, g0, m0>>20, g1, m1>>20, peak>>20, closed.Load(), strings.Join(samples, "; "))
	if g1 > g0+g0/10+50 || m1 > m0+m0/4+(64<<20) {
		return fmt.Errorf("the hub grew under a bounded load: goroutines %d -> %d, RSS %d -> %d MiB", g0, g1, m0>>20, m1>>20)
	}
	return nil
}

// sample reads go_goroutines and process_resident_memory_bytes.
func sample(admin string) (goroutines int, rss int64, err error) {
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "go_goroutines":
			goroutines = int(v)
		case "process_resident_memory_bytes":
			rss = int64(v)
		}
	}
	return goroutines, rss, sc.Err()
}
