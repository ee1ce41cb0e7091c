package discovery_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/guildhall/guildhall/discovery"
	"github.com/guildhall/guildhall/p2p"
	"github.com/guildhall/guildhall/policy"
)

type node struct {
	*p2p.Node
	key ed25519.PrivateKey
}

func newNode(t testing.TB, bootstrap ...peer.AddrInfo) node {
	t.Helper()
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	n, err := p2p.New(context.Background(), p2p.Config{Key: k, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, DHT: true, Bootstrap: bootstrap})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return node{Node: n, key: k}
}

// network starts a bootstrap node and n others that know only it.
func network(t testing.TB, n int) (boot node, nodes []node) {
	t.Helper()
	boot = newNode(t)
	for range n {
		nodes = append(nodes, newNode(t, boot.AddrInfo()))
	}
	for _, x := range nodes { // let routing tables fill from the bootstrap node
		x.DHT.RefreshRoutingTable()
	}
	time.Sleep(200 * time.Millisecond)
	return boot, nodes
}

func record(t testing.TB, key ed25519.PrivateKey, seq uint64, issued time.Time, ttl time.Duration) *policy.Record {
	t.Helper()
	r, err := policy.NewRecord(policy.IdentitySigner(key), policy.RecordBody{Seq: seq, Roles: []string{policy.RoleRelay}, Addrs: []string{"/ip4/192.0.2.1/tcp/4001"},
		Issued: issued.UnixMilli(), Expires: issued.Add(ttl).UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPublishAndResolve(t *testing.T) {
	_, nodes := network(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pub := nodes[0]
	rec := record(t, pub.key, 1, time.Now(), time.Hour)
	if err := discovery.Publish(ctx, pub.DHT, rec); err != nil {
		t.Fatal(err)
	}
	got, err := discovery.Resolve(ctx, nodes[3].DHT, rec.Node)
	if err != nil || got.ID != rec.ID {
		t.Fatalf("resolve: %v", err)
	}
	// A newer record replaces it everywhere.
	newer := record(t, pub.key, 2, time.Now(), time.Hour)
	if err := discovery.Publish(ctx, pub.DHT, newer); err != nil {
		t.Fatal(err)
	}
	if got, err := discovery.Resolve(ctx, nodes[2].DHT, rec.Node); err != nil || got.Seq != 2 {
		t.Fatalf("after an update: %v %v", got, err)
	}
}

func TestValidatorRefuses(t *testing.T) {
	_, k1, _ := ed25519.GenerateKey(rand.Reader)
	_, k2, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Now()
	v := discovery.Validator{Now: func() time.Time { return now }}
	good := record(t, k1, 1, now, time.Hour)
	key1, _ := discovery.RecordKey(good.Node)
	if err := v.Validate(key1, good.Raw); err != nil {
		t.Fatal(err)
	}
	other := record(t, k2, 1, now, time.Hour)
	if err := v.Validate(key1, other.Raw); !errors.Is(err, discovery.ErrKeyMismatch) {
		t.Fatalf("another node's record under this key: %v", err)
	}
	forged := append([]byte(nil), good.Raw...)
	forged[len(forged)-1] ^= 1
	if err := v.Validate(key1, forged); policy.CodeOf(err) != policy.CodeBadSignature {
		t.Fatalf("forged: %v", err)
	}
	expired := record(t, k1, 3, now.Add(-2*time.Hour), time.Hour)
	if err := v.Validate(key1, expired.Raw); policy.CodeOf(err) != policy.CodeExpired {
		t.Fatalf("expired: %v", err)
	}
	big, err := policy.NewRecord(policy.IdentitySigner(k1), policy.RecordBody{Seq: 4, Roles: []string{policy.RoleHub},
		Addrs: []string{strings.Repeat("a", 300)}, Issued: now.UnixMilli(), Expires: now.Add(time.Hour).UnixMilli()})
	if err == nil {
		if err := v.Validate(key1, big.Raw); err == nil {
			t.Fatal("an oversized entry validated")
		}
	}
	if err := v.Validate("/other/x", good.Raw); !errors.Is(err, discovery.ErrBadKey) {
		t.Fatalf("wrong namespace: %v", err)
	}
	newer := record(t, k1, 2, now, time.Hour)
	if i, err := v.Select(key1, [][]byte{good.Raw, forged, newer.Raw, expired.Raw}); err != nil || i != 2 {
		t.Fatalf("select %d %v", i, err)
	}
	if _, err := v.Select(key1, [][]byte{forged, expired.Raw}); err == nil {
		t.Fatal("selected among invalid records")
	}
	// The DHT itself refuses a forged record.
	_, nodes := network(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := nodes[0].DHT.PutValue(ctx, key1, forged); err == nil {
		t.Fatal("the DHT stored a forged record")
	}
}

// A hub's announcement of a server is found by a client that knows only a
// bootstrap address (as an invite's hints give it).
func TestHubAnnouncementFoundFromBootstrap(t *testing.T) {
	boot, nodes := network(t, 3)
	hub := nodes[0]
	server := policy.Sum([]byte("a server"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := discovery.Announce(ctx, hub.DHT, discovery.ServerCID(server)); err != nil {
		t.Fatal(err)
	}
	client := newNode(t, boot.AddrInfo())
	found, err := discovery.Find(ctx, client.DHT, discovery.ServerCID(server), 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range found {
		if p.ID == hub.Host.ID() {
			if len(p.Addrs) == 0 {
				t.Fatal("the hub was found without addresses")
			}
			return
		}
	}
	t.Fatalf("found %v, not the hub %s", found, hub.Host.ID())
}

func TestKeys(t *testing.T) {
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	pk := policy.KeyOf(k)
	id, err := discovery.PeerID(pk)
	if err != nil {
		t.Fatal(err)
	}
	back, err := discovery.NodeKey(id)
	if err != nil || back != pk {
		t.Fatal("peer ID and node key do not round-trip")
	}
	if discovery.ServerCID(policy.Sum([]byte("x"))) == discovery.ChatCID(policy.Sum([]byte("x"))) {
		t.Fatal("server and chat keys collide")
	}
}
