package client

// Benchmarks of key delivery at scale against a real hub process
// (cmd/hub), embedded storage or PostgreSQL + MinIO (deploy/testenv.sh):
//
//   - BenchmarkKeyFetchAfterRekey: a channel whose key is sealed to N
//     reader devices; after a re-key, M real members (their own clients,
//     stores and sessions) fetch their new key at once with the keys
//     endpoint, and then, as the reference, the same members read the
//     re-key's bundle envelopes the old way (full cursor read).
//   - BenchmarkNewReaderObtainsKey: a newcomer joins while a reader that
//     has sent in the epoch is online, syncing in a loop; the newcomer
//     holds the key once that reader's client has sealed it to it.
//
// docs/BENCHMARKS.md ("channel keys: a member obtaining a new key") has the
// commands and figures. Sizes come from the environment:
// GUILDHALL_KEYLOAD_PROFILES (sqlite,postgres), GUILDHALL_KEYLOAD_DEVICES
// (10000,100000), GUILDHALL_KEYLOAD_MEMBERS (1000),
// GUILDHALL_KEYLOAD_REF_MEMBERS (how many of the members read the old
// way, one value per device count, the last repeated; all by default),
// GUILDHALL_KEYLOAD_SYNC_INTERVAL (250ms), GUILDHALL_KEYLOAD_TRIALS (20)
// and GUILDHALL_KEYLOAD_CHANNEL_ONLY (1: the online reader's loop syncs
// the channel alone, not the state log).

import (
	"context"
	"crypto/ed25519"
	"crypto/hpke"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
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

// loadEnv reads an integer list (or one value) from the environment.
func loadEnvInts(name string, def []int) []int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

func loadEnvList(name string, def []string) []string {
	if v := os.Getenv(name); v != "" {
		return strings.Split(v, ",")
	}
	return def
}

// countingConn counts the bytes a member receives from the hub: HTTP
// headers and bodies, as on the wire (TLS aside).
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// meter gives a client its own connections to url, counted.
func meter(c *Client, url string) *atomic.Int64 {
	n := new(atomic.Int64)
	d := &net.Dialer{}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return countingConn{conn, n}, nil
		},
		MaxIdleConnsPerHost: 4,
	}
	h := hubapi.New(url)
	h.HTTP = &http.Client{Timeout: 5 * time.Minute, Transport: tr}
	c.mu.Lock()
	c.hubs[url] = h
	c.mu.Unlock()
	return n
}

func benchClient(b *testing.B, name string) *Client {
	b.Helper()
	c, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	if _, err := c.CreateIdentity(context.Background(), name); err != nil {
		b.Fatal(err)
	}
	return c
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s))*p+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// parallel runs f(i) for i in [0, n) on k goroutines; the first error wins.
func parallel(n, k int, f func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, k)
	for w := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || errs[w] != nil {
					return
				}
				errs[w] = f(i)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

type keyMember struct {
	c     *Client
	api   *hubapi.Client
	token string
	recv  *atomic.Int64
}

func BenchmarkKeyFetchAfterRekey(b *testing.B) {
	members := loadEnvInts("GUILDHALL_KEYLOAD_MEMBERS", []int{1000})[0]
	for _, profile := range loadEnvList("GUILDHALL_KEYLOAD_PROFILES", []string{"sqlite", "postgres"}) {
		b.Run(profile, func(b *testing.B) {
			// One hub and one set of members per profile: the joins are
			// the slow part of the setup.
			ctx := context.Background()
			h := benchHub(b, profile, false)
			alice := benchClient(b, "alice")
			server, err := alice.CreateServer(ctx, "load", []string{h.URL}, ServerOptions{})
			if err != nil {
				b.Fatal(err)
			}
			channel, err := alice.CreateChannel(ctx, server, policy.ChannelCreate{Name: "general", Durability: policy.Replicated})
			if err != nil {
				b.Fatal(err)
			}
			invite, err := alice.Invite(ctx, server, uint32(members), 24*time.Hour, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			mem := make([]*keyMember, members)
			var joined atomic.Int64
			if err := parallel(members, 4, func(i int) error {
				c := benchClient(b, fmt.Sprintf("m%d", i))
				if _, err := c.Join(ctx, invite); err != nil {
					return fmt.Errorf("member %d joining: %w", i, err)
				}
				mem[i] = &keyMember{c: c}
				if j := joined.Add(1); j%100 == 0 {
					fmt.Printf("%s: %d members joined (%v)\n", profile, j, time.Since(start).Round(time.Millisecond))
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			fmt.Printf("%s: %d members joined in %v\n", profile, members, time.Since(start).Round(time.Millisecond))
			// Their sessions and key cursors, as online clients have them.
			if err := parallel(members, 8, func(i int) error {
				m := mem[i]
				m.recv = meter(m.c, h.URL)
				m.api = m.c.hub(h.URL)
				d, err := m.c.Device()
				if err != nil {
					return err
				}
				if m.token, err = m.api.Login(ctx, d); err != nil {
					return err
				}
				return m.c.syncKeys(ctx, m.api, m.token, h.URL, server, channel)
			}); err != nil {
				b.Fatal(err)
			}
			aliceAPI := alice.hub(h.URL)
			aliceDev, err := alice.Device()
			if err != nil {
				b.Fatal(err)
			}
			aliceToken, err := aliceAPI.Login(ctx, aliceDev)
			if err != nil {
				b.Fatal(err)
			}
			real := make([]*policy.DeviceCert, members)
			for i, m := range mem {
				d, err := m.c.Device()
				if err != nil {
					b.Fatal(err)
				}
				real[i] = d.Cert
			}
			// The other devices: certificates of made-up devices sharing one
			// hybrid encryption key (sealing still encapsulates to each).
			priv, err := hpke.MLKEM768X25519().GenerateKey()
			if err != nil {
				b.Fatal(err)
			}
			encKey := priv.PublicKey().Bytes()
			refs := loadEnvInts("GUILDHALL_KEYLOAD_REF_MEMBERS", nil)
			for di, n := range loadEnvInts("GUILDHALL_KEYLOAD_DEVICES", []int{10000, 100000}) {
				if n < members {
					continue
				}
				fake := make([]*policy.DeviceCert, n-members)
				for i := range fake {
					_, sk, _ := ed25519.GenerateKey(nil)
					fake[i] = &policy.DeviceCert{DeviceCertBody: policy.DeviceCertBody{Device: policy.KeyOf(sk), KEM: policy.KEMMLKEM768X25519, EncKey: encKey}}
				}
				// The members' devices spread among the others.
				devices := append(slices.Clone(real), fake...)
				rand.Shuffle(len(devices), func(i, j int) { devices[i], devices[j] = devices[j], devices[i] })
				refMembers := members
				if len(refs) > 0 {
					refMembers = min(members, refs[min(di, len(refs)-1)])
				}
				b.Run(fmt.Sprintf("devices=%d/members=%d", n, members), func(b *testing.B) {
					benchRekeyFetch(b, h, alice, aliceAPI, aliceToken, server, channel, mem, devices, refMembers)
				})
			}
		})
	}
}

func benchRekeyFetch(b *testing.B, h *clienttest.Hub, alice *Client, aliceAPI *hubapi.Client, aliceToken string, server, channel policy.ID, mem []*keyMember, devices []*policy.DeviceCert, refMembers int) {
	ctx := context.Background()
	var lat, latFromPost []time.Duration
	var bytesKeys, bytesRef, refMax int64
	var cpuKeys, cpuRef, posting, refWall, keysWall time.Duration
	var bundleBytes, nPayloads, failed, refFailed int
	var lastErr error
	for range b.N {
		b.StopTimer()
		// Where the channel ends before the re-key: the old way reads on
		// from there.
		var before uint64
		for {
			page, err := aliceAPI.ReadOmittingBundles(ctx, aliceToken, server, channel, before, 1000)
			if err != nil {
				b.Fatal(err)
			}
			before = page.Next
			if !page.More {
				break
			}
		}
		last, err := alice.st.maxEpoch(ctx, server, channel)
		if err != nil {
			b.Fatal(err)
		}
		k := newEpochKey(last + 1)
		payloads, err := sealBundles(k, server, channel, devices)
		if err != nil {
			b.Fatal(err)
		}
		bundleBytes, nPayloads = 0, len(payloads)
		for _, p := range payloads {
			bundleBytes += len(p)
		}
		for _, m := range mem {
			m.recv.Store(0)
		}
		b.StartTimer()

		// The re-key: one member posts the bundles (sealed beforehand).
		t0 := time.Now()
		for _, p := range payloads {
			if _, err := alice.post(ctx, server, channel, k.Epoch, p); err != nil {
				b.Fatal(err)
			}
		}
		if err := alice.st.addKey(ctx, server, channel, k); err != nil {
			b.Fatal(err)
		}
		posted := time.Now()
		posting += posted.Sub(t0)

		// Every member fetches its new key at once.
		cpu0 := h.CPU()
		done := make([]time.Duration, len(mem))
		var wg sync.WaitGroup
		errs := make(chan error, len(mem))
		for i, m := range mem {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := m.c.syncKeys(ctx, m.api, m.token, h.URL, server, channel); err != nil {
					errs <- err
					return
				}
				keys, err := m.c.st.keys(ctx, server, channel)
				if err != nil || len(keys) == 0 || keys[0].ID != k.ID {
					errs <- fmt.Errorf("member %d does not hold the new key (%v)", i, err)
					return
				}
				done[i] = time.Since(posted)
			}()
		}
		wg.Wait()
		keysWall += time.Since(posted)
		cpuKeys += h.CPU() - cpu0
		close(errs)
		for err := range errs {
			failed++
			lastErr = err
		}
		for i, m := range mem {
			if done[i] == 0 {
				continue
			}
			lat = append(lat, done[i])
			latFromPost = append(latFromPost, done[i]+posted.Sub(t0))
			bytesKeys += m.recv.Swap(0)
		}

		// The reference, in the same run: the old way, every bundle
		// envelope of the re-key read by cursor.
		cpu0 = h.CPU()
		r0 := time.Now()
		var rwg sync.WaitGroup
		rerrs := make(chan error, refMembers)
		for _, m := range mem[:refMembers] {
			rwg.Add(1)
			go func() {
				defer rwg.Done()
				after := before
				for {
					page, err := m.api.Read(ctx, m.token, server, channel, after, 1000)
					if err != nil {
						rerrs <- err
						return
					}
					after = page.Next
					if !page.More {
						return
					}
				}
			}()
		}
		rwg.Wait()
		refWall += time.Since(r0)
		cpuRef += h.CPU() - cpu0
		close(rerrs)
		for err := range rerrs {
			refFailed++
			lastErr = err
		}
		for _, m := range mem[:refMembers] {
			n := m.recv.Swap(0)
			bytesRef += n
			refMax = max(refMax, n)
		}
	}
	b.StopTimer()
	per := float64(b.N * len(mem))
	b.ReportMetric(float64(bytesKeys)/per, "B/member")
	b.ReportMetric(ms(pct(lat, 0.5)), "p50-ms")
	b.ReportMetric(ms(pct(lat, 0.99)), "p99-ms")
	b.ReportMetric(ms(pct(latFromPost, 0.99)), "p99-from-post-start-ms")
	b.ReportMetric(ms(cpuKeys)/float64(b.N), "hub-cpu-ms")
	b.ReportMetric(float64(bytesRef)/float64(b.N*refMembers), "ref-B/member")
	b.ReportMetric(ms(refWall)/float64(b.N), "ref-wall-ms")
	b.ReportMetric(ms(cpuRef)/float64(b.N), "ref-hub-cpu-ms")
	if failed+refFailed > 0 {
		b.Logf("FAILED: %d key fetches and %d old-way reads (of %d and %d); the last error: %v", failed, refFailed, b.N*len(mem), b.N*refMembers, lastErr)
	}
	b.Logf("%d devices, %d bundle envelopes, %d bytes; posting them took %v per re-key", len(devices), nPayloads, bundleBytes, (posting / time.Duration(b.N)).Round(time.Millisecond))
	b.Logf("keys endpoint: %d members at once: %.0f B/member, latency after the post p50 %v p99 %v max %v (from the post's start p99 %v), all done in %v, hub CPU %v",
		len(mem), float64(bytesKeys)/per, pct(lat, 0.5).Round(time.Millisecond), pct(lat, 0.99).Round(time.Millisecond), pct(lat, 1).Round(time.Millisecond),
		pct(latFromPost, 0.99).Round(time.Millisecond), (keysWall / time.Duration(b.N)).Round(time.Millisecond), (cpuKeys / time.Duration(b.N)).Round(time.Millisecond))
	b.Logf("reference, full cursor read of the bundles: %d members at once: %.0f B/member (max %d), all done in %v, hub CPU %v",
		refMembers, float64(bytesRef)/float64(b.N*refMembers), refMax, (refWall / time.Duration(b.N)).Round(time.Millisecond), (cpuRef / time.Duration(b.N)).Round(time.Millisecond))
}

func BenchmarkNewReaderObtainsKey(b *testing.B) {
	interval := 250 * time.Millisecond
	if v := os.Getenv("GUILDHALL_KEYLOAD_SYNC_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		interval = d
	}
	trials := loadEnvInts("GUILDHALL_KEYLOAD_TRIALS", []int{20})[0]
	// GUILDHALL_KEYLOAD_CHANNEL_ONLY=1: the online reader syncs the channel
	// alone, not the state log, in its loop.
	channelOnly := os.Getenv("GUILDHALL_KEYLOAD_CHANNEL_ONLY") == "1"
	for _, profile := range loadEnvList("GUILDHALL_KEYLOAD_PROFILES", []string{"sqlite", "postgres"}) {
		b.Run(profile, func(b *testing.B) {
			ctx := context.Background()
			h := benchHub(b, profile, false)
			alice := benchClient(b, "alice")
			server, err := alice.CreateServer(ctx, "load", []string{h.URL}, ServerOptions{})
			if err != nil {
				b.Fatal(err)
			}
			channel, err := alice.CreateChannel(ctx, server, policy.ChannelCreate{Name: "general", Durability: policy.Replicated})
			if err != nil {
				b.Fatal(err)
			}
			invite, err := alice.Invite(ctx, server, uint32(1+trials*b.N), 24*time.Hour, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := alice.Send(ctx, server, channel, "hello"); err != nil {
				b.Fatal(err)
			}
			// bob, the online reader, has sent in the epoch: he holds its
			// key with its bundles checked.
			bob := benchClient(b, "bob")
			if _, err := bob.Join(ctx, invite); err != nil {
				b.Fatal(err)
			}
			if _, err := alice.SyncState(ctx, server); err != nil {
				b.Fatal(err)
			}
			if _, err := alice.Sync(ctx, server, channel, nil); err != nil {
				b.Fatal(err)
			}
			if _, err := bob.Sync(ctx, server, channel, nil); err != nil {
				b.Fatal(err)
			}
			if _, err := bob.Send(ctx, server, channel, "bob here"); err != nil {
				b.Fatal(err)
			}
			epoch, err := bob.st.maxEpoch(ctx, server, channel)
			if err != nil {
				b.Fatal(err)
			}
			// bob's client: the state log, then the channel (which seals
			// the current key to readers who lack it), every interval.
			loopCtx, stop := context.WithCancel(ctx)
			var loops, sealed atomic.Int64
			var loopErr atomic.Value
			loopDone := make(chan struct{})
			go func() {
				defer close(loopDone)
				for loopCtx.Err() == nil {
					if !channelOnly {
						if _, err := bob.SyncState(loopCtx, server); err != nil && loopCtx.Err() == nil {
							loopErr.Store(err)
						}
					}
					if _, err := bob.Sync(loopCtx, server, channel, nil); err != nil && loopCtx.Err() == nil {
						loopErr.Store(err)
					}
					loops.Add(1)
					select {
					case <-loopCtx.Done():
					case <-time.After(interval):
					}
				}
			}()
			defer func() { stop(); <-loopDone }()
			var lat []time.Duration
			for range b.N {
				for t := range trials {
					b.StopTimer()
					carol := benchClient(b, fmt.Sprintf("carol%d", t))
					b.StartTimer()
					t0 := time.Now()
					if _, err := carol.Join(ctx, invite); err != nil {
						b.Fatal(err)
					}
					for {
						if _, err := carol.Sync(ctx, server, channel, nil); err != nil {
							b.Fatal(err)
						}
						keys, err := carol.st.keys(ctx, server, channel)
						if err != nil {
							b.Fatal(err)
						}
						if len(keys) > 0 && keys[0].Epoch == epoch {
							break
						}
						if time.Since(t0) > time.Minute {
							b.Fatalf("trial %d: the newcomer has no key after a minute (online reader's last error: %v)", t, loopErr.Load())
						}
						time.Sleep(20 * time.Millisecond)
					}
					lat = append(lat, time.Since(t0))
					sealed.Add(1)
				}
			}
			b.StopTimer()
			if now, err := bob.st.maxEpoch(ctx, server, channel); err != nil || now != epoch {
				b.Fatalf("the epoch moved from %d to %d (%v): a newcomer was given a new epoch, not the current key", epoch, now, err)
			}
			b.ReportMetric(ms(pct(lat, 0.5)), "p50-ms")
			b.ReportMetric(ms(pct(lat, 0.99)), "p99-ms")
			b.ReportMetric(ms(pct(lat, 1)), "max-ms")
			b.Logf("%d newcomers, the online reader syncing every %v (%d syncs): join to key p50 %v p99 %v max %v",
				sealed.Load(), interval, loops.Load(), pct(lat, 0.5).Round(time.Millisecond), pct(lat, 0.99).Round(time.Millisecond), pct(lat, 1).Round(time.Millisecond))
		})
	}
}
