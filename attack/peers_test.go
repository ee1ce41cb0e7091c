package attack

import (
	"bufio"
	"crypto/ed25519"
	"encoding/binary"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/guildhall/guildhall/client"
	"github.com/guildhall/guildhall/client/clienttest"
	"github.com/guildhall/guildhall/hub/replica"
	"github.com/guildhall/guildhall/p2p"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// metric reads one sample of the hub's /metrics: the first line naming
// name (with its labels, if given in name) and its value.
func metric(t *testing.T, h *clienttest.Hub, name string) float64 {
	t.Helper()
	resp, err := http.Get(h.Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, name+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(l, name)), 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// peerHost is a libp2p node on loopback that knows the hub's address.
func peerHost(t *testing.T, h *clienttest.Hub, key ed25519.PrivateKey) (*p2p.Node, peer.ID) {
	t.Helper()
	n, err := p2p.New(ctx, p2p.Config{Key: key, Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ai, err := peer.AddrInfoFromString(h.P2P)
	if err != nil {
		t.Fatal(err)
	}
	n.Host.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
	return n, ai.ID
}

// floodHub opens streams announcing 32 MiB messages and sends them, while
// sampling the hub's resident memory; it returns the peak growth in bytes
// and how many streams got their whole message written.
func floodHub(t *testing.T, h *clienttest.Hub, n *p2p.Node, hub peer.ID, streams int) (grew float64, full int) {
	t.Helper()
	base := metric(t, h, "process_resident_memory_bytes")
	stop := make(chan struct{})
	peak := make(chan float64, 1)
	go func() {
		top := base
		for {
			top = max(top, metric(t, h, "process_resident_memory_bytes"))
			select {
			case <-stop:
				peak <- top
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range streams {
		wg.Go(func() {
			s, err := n.Host.NewStream(ctx, hub, replica.Protocol)
			if err != nil {
				return
			}
			defer s.Reset()
			s.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := s.Write(binary.AppendUvarint(nil, wire.MaxReplicaMessage)); err != nil {
				return
			}
			chunk := make([]byte, 1<<20)
			for sent := 0; sent < wire.MaxReplicaMessage; sent += len(chunk) {
				if _, err := s.Write(chunk); err != nil {
					return
				}
			}
			mu.Lock()
			full++
			mu.Unlock()
			s.CloseWrite()
			s.Read(make([]byte, 1))
		})
	}
	wg.Wait()
	close(stop)
	return <-peak - base, full
}

// Finding 6. Bound: an unauthenticated peer (one that may replicate no
// server the hub hosts) is refused at its first request once its length
// is read (over 64 KiB): 24 streams announcing and sending 32 MiB each
// cost the hub under 64 MiB of resident memory and under 2 CPU-seconds,
// and none is read in full; its push, however fresh, is refused. A granted
// peer's 24 such streams hold at most 8 streams and 66 MiB of reserved
// buffers (the resource manager refuses the rest): under 320 MiB resident.
func TestPeersCannotDrainAHub(t *testing.T) {
	h := clienttest.NewHub(t, "sqlite")
	h.Extra = "p2p:\n  enabled: true\n  listen: [/ip4/127.0.0.1/tcp/0]\n  interval: 1h\n"
	h.Start()
	if h.P2P == "" {
		t.Fatal("the hub reports no libp2p address")
	}
	c := &community{hub: h}
	c.alice, c.bob = open(t, "alice"), open(t, "bob")
	var err error
	if c.server, err = c.alice.CreateServer(ctx, "target", []string{h.URL}, client.ServerOptions{}); err != nil {
		t.Fatal(err)
	}
	general, err := c.alice.CreateChannel(ctx, c.server, policy.ChannelCreate{Name: "general", Durability: policy.Replicated})
	if err != nil {
		t.Fatal(err)
	}

	_, strangerKey, _ := ed25519.GenerateKey(nil)
	stranger, hub := peerHost(t, h, strangerKey)
	cpu := metric(t, h, "process_cpu_seconds_total")
	grew, full := floodHub(t, h, stranger, hub, 24)
	cpu = metric(t, h, "process_cpu_seconds_total") - cpu
	refused := metric(t, h, `guildhall_hub_replica_refused_total{reason="stranger"}`) + metric(t, h, `guildhall_hub_replica_refused_total{reason="streams"}`)
	t.Logf("a stranger's 24 × 32 MiB: %d sent in full, %v refused, resident +%.0f MiB, %.2f CPU-s", full, refused, grew/(1<<20), cpu)
	if full > 0 || refused < 24 || grew > 64<<20 || cpu > 2 {
		t.Fatalf("a stranger's flood: %d streams read in full, %v refused, resident +%.0f MiB, %.2f CPU-s", full, refused, grew/(1<<20), cpu)
	}
	// A member's fresh envelope, pushed by the stranger, is refused unread.
	d, err := c.alice.Device()
	if err != nil {
		t.Fatal(err)
	}
	s, err := stranger.Host.NewStream(ctx, hub, replica.Protocol)
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.WriteReplica(s, wire.ReplicaRequest{Op: wire.OpPush, Server: c.server, Objects: [][]byte{c.envelope(t, d.Signer(), general, 64, time.Now().UnixMilli())}}); err != nil {
		t.Fatal(err)
	}
	var res wire.ReplicaResponse
	if err := wire.ReadReplica(bufio.NewReader(s), &res); err != nil || res.Error != replica.ErrStranger.Error() {
		t.Fatalf("a stranger's push: %+v, %v", res, err)
	}
	s.Close()

	// A granted peer: a hub alice grants storage.
	_, grantedKey, _ := ed25519.GenerateKey(nil)
	if _, err := c.alice.Publish(ctx, c.server, &policy.StorageGrant{Node: policy.KeyOf(grantedKey)}); err != nil {
		t.Fatal(err)
	}
	granted, _ := peerHost(t, h, grantedKey)
	grew, full = floodHub(t, h, granted, hub, 24)
	mem, streams := metric(t, h, `guildhall_hub_replica_refused_total{reason="memory"}`), metric(t, h, `guildhall_hub_replica_refused_total{reason="streams"}`)
	t.Logf("a granted peer's 24 × 32 MiB: %d sent in full, refused %v (memory) %v (streams, both tests), resident +%.0f MiB", full, mem, streams, grew/(1<<20))
	if mem == 0 || grew > 320<<20 {
		t.Fatalf("a granted peer's flood: %v refused memory, resident +%.0f MiB", mem, grew/(1<<20))
	}
}
