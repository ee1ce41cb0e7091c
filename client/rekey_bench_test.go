package client

// Benchmarks of one channel re-key at 10,000 and 100,000 reader devices:
// sealing the epoch key to every device (sealBundles), storing the bundle
// envelopes on a real hub (embedded and PostgreSQL), and what a member
// downloads to obtain the new key. docs/BENCHMARKS.md records the figures.
//
// The 100,000-device cases run only with -rekey.large (they take minutes
// and gigabytes of key material); without -bench none of these run at all.

import (
	"bufio"
	"context"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

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
//	bundles    what rekey does: c.post per bundle (sign, check, post, verify the receipt, record locally)
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
				for _, variant := range []string{"bundles", "plain", "presigned"} {
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
	hubURL := benchHub(b, profile, false)
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
	payloads, err := sealBundles(k, server, channel, readerCerts(b, policy.KEMMLKEM768X25519, n))
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
		if variant == "bundles" { // as a re-key posts them: batched, waiting out rate limits
			if err := c.postBundles(ctx, server, channel, k.Epoch, payloads); err != nil {
				b.Fatal(err)
			}
		}
		for j, p := range payloads {
			if variant == "bundles" {
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

var (
	benchHubOnce sync.Once
	benchHubBin  string
	benchHubErr  error
)

// benchHub starts a cmd/hub process for a benchmark (clienttest.StartHub
// takes a *testing.T) with the same storage configuration, its per-sender
// and per-source rate limits off as in deploy/bench-hub.sh: one identity
// posts everything from one address. By default a hub admits 50 envelopes
// per second per sender (burst 200), which alone bounds a re-key's posting.
func benchHub(b *testing.B, profile string, defaultLimits bool) string {
	b.Helper()
	benchHubOnce.Do(func() {
		dir, err := os.MkdirTemp("", "guildhall-bench-hub")
		if err != nil {
			benchHubErr = err
			return
		}
		benchHubBin = filepath.Join(dir, "hub")
		out, err := exec.Command("go", "build", "-o", benchHubBin, "../cmd/hub").CombinedOutput()
		if err != nil {
			benchHubErr = fmt.Errorf("building the hub: %v\n%s", err, out)
		}
	})
	if benchHubErr != nil {
		b.Fatal(benchHubErr)
	}
	dir := b.TempDir()
	cfg := fmt.Sprintf("data_dir: %s\nlisten: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\nadmission:\n  mode: open\n", dir)
	if !defaultLimits {
		cfg += "limits:\n  post_rate: -1\n  source_rate: -1\n  conns_per_source: -1\n  sockets_per_source: -1\n"
	}
	if profile == "postgres" {
		base := os.Getenv("GUILDHALL_TEST_POSTGRES")
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			b.Fatal(err)
		}
		name := fmt.Sprintf("bench_%x", mrand.Uint64())
		_, err = conn.Exec(ctx, "CREATE DATABASE "+name)
		conn.Close(ctx)
		if err != nil {
			b.Fatal(err)
		}
		u, err := url.Parse(base)
		if err != nil {
			b.Fatal(err)
		}
		u.Path = "/" + name
		s3, err := url.Parse(os.Getenv("GUILDHALL_TEST_S3"))
		if err != nil {
			b.Fatal(err)
		}
		cfg += fmt.Sprintf("storage:\n  postgres_url: %q\n  s3:\n    endpoint: %s\n    bucket: %s\n    access_key: %s\n    secret_key: %s\n    secure: false\n    create_bucket: true\n",
			u.String(), s3.Host, strings.ReplaceAll(name, "_", "-"), os.Getenv("GUILDHALL_TEST_S3_ACCESS_KEY"), os.Getenv("GUILDHALL_TEST_S3_SECRET_KEY"))
	}
	config := filepath.Join(dir, "hub.yaml")
	if err := os.WriteFile(config, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(benchHubBin, "-config", config)
	logf, err := os.Create(filepath.Join(dir, "hub.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	sc := bufio.NewScanner(out)
	api, admin := regexp.MustCompile(`^api\s+(\S+)`), regexp.MustCompile(`^admin\s+(\S+)`)
	deadline := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	var hubURL string
	started := false
	for sc.Scan() {
		if m := api.FindStringSubmatch(sc.Text()); m != nil {
			hubURL = m[1]
		}
		if admin.MatchString(sc.Text()) {
			started = true
			break
		}
	}
	if !started || hubURL == "" {
		log, _ := os.ReadFile(logf.Name())
		b.Fatalf("the hub did not start:\n%s", log)
	}
	go func() {
		for sc.Scan() {
		}
	}()
	return hubURL
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
	hubURL := benchHub(b, "sqlite", true)
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
