package main

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// run measures the server with n allocations over network (udp or tcp),
// or, with hold, their memory in the server process pid.
func run(network, server, user, pass, realm string, n, window, size int, dur time.Duration, hold bool, pid int) error {
	peer, err := startEcho()
	if err != nil {
		return err
	}
	rss0 := rss(pid)
	allocs := make([]*allocation, n)
	errc := make(chan error, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, 64) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				a, err := allocate(network, server, user, pass, realm, peer, uint16(0x4000+i%0x3000))
				for try := 0; err != nil && try < 3; try++ { // a stale allocation on a reused port (437)
					a, err = allocate(network, server, user, pass, realm, peer, uint16(0x4000+i%0x3000))
				}
				if err != nil {
					errc <- fmt.Errorf("allocation %d: %w", i, err)
					return
				}
				allocs[i] = a
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	defer func() {
		var wg sync.WaitGroup
		for i := 0; i < len(allocs); i += 256 {
			wg.Add(1)
			go func(part []*allocation) {
				defer wg.Done()
				for _, a := range part {
					a.release()
				}
			}(allocs[i:min(i+256, len(allocs))])
		}
		wg.Wait()
	}()
	if hold {
		time.Sleep(2 * time.Second)
		rss1 := rss(pid)
		fmt.Printf("hold: %d allocations; server RSS %.1f MiB -> %.1f MiB: %.1f KiB per allocation\n",
			n, float64(rss0)/(1<<20), float64(rss1)/(1<<20), float64(rss1-rss0)/float64(n)/1024)
		return nil
	}
	var trips atomic.Int64
	var mu sync.Mutex
	var rtts []time.Duration
	stop := time.Now().Add(dur)
	var done sync.WaitGroup
	for _, a := range allocs {
		done.Add(1)
		go func() {
			defer done.Done()
			local := a.pump(window, size, stop, &trips)
			mu.Lock()
			rtts = append(rtts, local...)
			mu.Unlock()
		}()
	}
	done.Wait()
	slices.Sort(rtts)
	q := func(p float64) time.Duration {
		if len(rtts) == 0 {
			return 0
		}
		return rtts[min(len(rtts)-1, int(p*float64(len(rtts))))]
	}
	fmt.Printf("load: %d allocations x %d in flight, %d-byte packets, %v: %.0f round trips/s; rtt p50 %v p99 %v\n",
		n, window, size, dur, float64(trips.Load())/dur.Seconds(), q(0.5), q(0.99))
	return nil
}

// allocation is one client: a socket connected to the server, an
// allocation and a channel bound to the echo peer.
