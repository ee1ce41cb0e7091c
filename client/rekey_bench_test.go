package client

// Benchmarks of one channel re-key at 10,000 and 100,000 reader devices:
// sealing the epoch key to every device (sealBundles), storing the bundle
// envelopes on a real hub (embedded and PostgreSQL), and what a member
// downloads to obtain the new key. docs/BENCHMARKS.md records the figures.
//
// The 100,000-device cases run only with -rekey.large (they take minutes
// and gigabytes of key material); without -bench none of these run at all.

import (
	"context"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/guildhall/guildhall/client/clienttest"
	"github.com/guildhall/guildhall/policy"
)

var rekeyLarge = flag.Bool("rekey.large", false, "include the 100,000-device re-key benchmarks")

func rekeySizes() []int {
	if *rekeyLarge {
		return []int{10_000, 100_000}
	}
	return []int{10_000}
}

// benchDevices are reader devices with generated HPKE keys. They are made
// once per KEM for the largest size and shared by every benchmark.
var (
	benchDevMu sync.Mutex
	benchDevs  = map[uint16][]*policy.DeviceCert{}
)

func readerCerts(b *testing.B, kem uint16, n int) []*policy.DeviceCert {
	b.Helper()
	benchDevMu.Lock()
	defer benchDevMu.Unlock()
	have := benchDevs[kem]
	for len(have) < n {
		var priv hpke.PrivateKey
		var err error
		switch kem {
		case policy.KEMMLKEM768X25519:
			priv, err = hpke.MLKEM768X25519().GenerateKey()
		case policy.KEMX25519:
			priv, err = hpke.DHKEM(ecdh.X25519()).GenerateKey()
		}
		if err != nil {
			b.Fatal(err)
		}
		// sealBundles reads only Device, KEM and EncKey: the certificates
		// need no signature here.
		d := &policy.DeviceCert{}
		rand.Read(d.Device[:])
		d.KEM, d.EncKey = kem, priv.PublicKey().Bytes()
		have = append(have, d)
	}
	benchDevs[kem] = have
	return have[:n]
}

func payloadBytes(payloads [][]byte) int {
	n := 0
	for _, p := range payloads {
		n += len(p)
	}
	return n
}

// BenchmarkRekeySeal seals one epoch key to every reader device: the CPU
// part of a re-key (rekey calls sealBundles), hybrid and X25519 keys.
func BenchmarkRekeySeal(b *testing.B) {
	var server, channel policy.ID
	rand.Read(server[:])
	rand.Read(channel[:])
	for _, kem := range []struct {
		name string
		id   uint16
	}{{"hybrid", policy.KEMMLKEM768X25519}, {"x25519", policy.KEMX25519}} {
		for _, n := range rekeySizes() {
			b.Run(fmt.Sprintf("%s/devices=%d", kem.name, n), func(b *testing.B) {
				devices := readerCerts(b, kem.id, n)
				k := newEpochKey(2)
				var payloads [][]byte
				b.ResetTimer()
				for range b.N {
					var err error
					if payloads, err = sealBundles(k, server, channel, devices); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(len(payloads)), "bundles/op")
				b.ReportMetric(float64(payloadBytes(payloads)), "payload-bytes/op")
			})
		}
	}
}

// BenchmarkRekeyStore posts the bundles of one re-key at hybrid devices
// to a real hub as signed envelopes of the server's creator, then reads
// the epoch back by cursor and counts it, on embedded storage and on
// PostgreSQL + MinIO. Variants:
//
//	rekey      what rekey does after choosing the devices: seal and post (sealAndPost), batches posted as they are sealed
//	bundles    the bundles sealed first (outside the timer), then posted as rekey posts them (postBundles)
//	plain      reference: the same number of envelopes of the same sizes, as sealed messages (first byte 1)
//	presigned  the bundle envelopes signed before the clock starts, one per POST: the hub's side alone
//
// stored-s is the time until the hub has acknowledged (durably stored)
// every envelope; readback-s and download-bytes are what a member pays to
// sync the epoch's envelopes from the hub (the client syncs every bundle
// of a channel). The hub runs with its rate limits off (see benchHub).
func BenchmarkRekeyStore(b *testing.B) {
	for _, profile := range []string{"sqlite", "postgres"} {
		b.Run(profile, func(b *testing.B) {
			if profile == "postgres" && os.Getenv("GUILDHALL_TEST_POSTGRES") == "" {
				b.Skip("GUILDHALL_TEST_POSTGRES is not set: run deploy/testenv.sh up and export its variables")
			}
			for _, n := range rekeySizes() {
				for _, variant := range []string{"rekey", "bundles", "plain", "presigned"} {
					b.Run(fmt.Sprintf("devices=%d/%s", n, variant), func(b *testing.B) {
						benchStore(b, profile, n, variant)
					})
				}
			}
		})
	}
}

func benchStore(b *testing.B, profile string, n int, variant string) {
	ctx := context.Background()
	hubURL := benchHub(b, profile, false).URL
	c, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if _, err := c.CreateIdentity(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	server, err := c.CreateServer(ctx, "bench", []string{hubURL}, ServerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	channel, err := c.CreateChannel(ctx, server, policy.ChannelCreate{Name: "general", Durability: policy.Replicated})
	if err != nil {
		b.Fatal(err)
	}
	d, err := c.Device()
	if err != nil {
		b.Fatal(err)
	}
	h := c.hub(hubURL)
	token, err := h.Login(ctx, d)
	if err != nil {
		b.Fatal(err)
	}
	k := newEpochKey(2)
	certs := readerCerts(b, policy.KEMMLKEM768X25519, n)
	payloads, err := sealBundles(k, server, channel, certs)
	if err != nil {
		b.Fatal(err)
	}
	if variant == "plain" {
		for i, p := range payloads {
			q := make([]byte, len(p))
			rand.Read(q)
			q[0] = payloadMessage
			payloads[i] = q
		}
	}
	after := readChannel(b, c, hubURL, token, server, channel, 0, nil)
	var stored, readback time.Duration
	var envBytes int
	b.ResetTimer()
	for i := range b.N {
		var raws [][]byte
		if variant == "presigned" {
			b.StopTimer()
			raws = make([][]byte, len(payloads))
			for j, p := range payloads {
				env, err := policy.NewEnvelope(d.Signer(), policy.EnvelopeBody{Server: server, Channel: channel, Epoch: k.Epoch, Time: c.Now().UnixMilli(), Ciphertext: p})
				if err != nil {
					b.Fatal(err)
				}
				raws[j] = env.Raw
			}
			b.StartTimer()
		}
		start := time.Now()
		if variant == "rekey" { // what a re-key does after choosing the devices: sealed and posted as they are sealed
			if err := c.sealAndPost(ctx, server, channel, k, certs); err != nil {
				b.Fatal(err)
			}
		}
		if variant == "bundles" { // as a re-key posted them: sealed first, then batched, waiting out rate limits
			if err := c.postBundles(ctx, server, channel, k.Epoch, payloads); err != nil {
				b.Fatal(err)
			}
		}
		for j, p := range payloads {
			if variant == "bundles" || variant == "rekey" {
				break
			}
			if variant == "presigned" {
				res, err := h.Post(ctx, raws[j:j+1])
				if err == nil && (len(res) != 1 || res[0].Error != nil || res[0].Receipt == nil) {
					err = fmt.Errorf("not stored: %+v", res)
				}
				if err != nil {
					b.Fatal(err)
				}
				continue
			}
			if _, err := c.post(ctx, server, channel, k.Epoch, p); err != nil {
				b.Fatal(err)
			}
		}
		stored += time.Since(start)
		b.StopTimer()
		start = time.Now()
		count := 0
		envBytes = 0
		after = readChannel(b, c, hubURL, token, server, channel, after, func(raw []byte) {
			count++
			envBytes += len(raw)
		})
		readback += time.Since(start)
		if count != len(payloads) {
			b.Fatalf("iteration %d: the hub holds %d of the %d envelopes posted", i, count, len(payloads))
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(stored.Seconds()/float64(b.N), "stored-s")
	b.ReportMetric(readback.Seconds()/float64(b.N), "readback-s")
	b.ReportMetric(float64(len(payloads)), "envelopes/op")
	b.ReportMetric(float64(payloadBytes(payloads)), "payload-bytes/op")
	b.ReportMetric(float64(envBytes), "download-bytes/op")
	b.ReportMetric(float64(len(payloads))/(stored.Seconds()/float64(b.N)), "envelopes/s")
}

// readChannel reads a channel from a cursor to its end, pages of 1,000 as
// Sync reads them, and returns the new cursor.
func readChannel(b *testing.B, c *Client, hubURL, token string, server, channel policy.ID, after uint64, each func([]byte)) uint64 {
	b.Helper()
	h := c.hub(hubURL)
	for {
		page, err := h.Read(context.Background(), token, server, channel, after, 1000)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range page.Envelopes {
			if e.Raw != nil && each != nil {
				each(e.Raw)
			}
		}
		after = page.Next
		if !page.More {
			return after
		}
	}
}

// benchHub starts a hub process for a benchmark with the suite's storage
// configuration (clienttest), its per-sender and per-source rate limits off
// unless defaultLimits, as in deploy/bench-hub.sh: one identity posts
// everything from one address. By default a hub admits 50 envelopes per
// second per sender (burst 200), which alone bounds a re-key's posting.
func benchHub(b *testing.B, profile string, defaultLimits bool) *clienttest.Hub {
	b.Helper()
	h := clienttest.NewHub(b, profile)
	if !defaultLimits {
		h.Extra = "limits:\n  post_rate: -1\n  source_rate: -1\n  conns_per_source: -1\n  sockets_per_source: -1\n"
	}
	h.Start()
	return h
}

// BenchmarkRekeyDefaultLimits posts the bundles of one 100,000-device
// hybrid re-key as rekey does, to a hub with its default limits (50
// envelopes per second per sender, burst 200), and reports how many the
// hub stored before the first refusal: rekey gives up at that refusal.
// Only with -rekey.large.
func BenchmarkRekeyDefaultLimits(b *testing.B) {
	if !*rekeyLarge {
		b.Skip("only with -rekey.large")
	}
	ctx := context.Background()
	hubURL := benchHub(b, "sqlite", true).URL
	c, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if _, err := c.CreateIdentity(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	server, err := c.CreateServer(ctx, "bench", []string{hubURL}, ServerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	channel, err := c.CreateChannel(ctx, server, policy.ChannelCreate{Name: "general", Durability: policy.Replicated})
	if err != nil {
		b.Fatal(err)
	}
	k := newEpochKey(2)
	payloads, err := sealBundles(k, server, channel, readerCerts(b, policy.KEMMLKEM768X25519, 100_000))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	accepted := 0
	var refused error
	for _, p := range payloads {
		if _, err := c.post(ctx, server, channel, k.Epoch, p); err != nil {
			refused = err
			break
		}
		accepted++
	}
	b.StopTimer()
	if refused != nil {
		b.Logf("refused after %d of %d envelopes: %v", accepted, len(payloads), refused)
	}
	b.ReportMetric(float64(accepted), "accepted")
	b.ReportMetric(float64(len(payloads)), "envelopes/op")
}
