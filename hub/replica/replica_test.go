package replica

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/guildhall/guildhall/discovery"
	"github.com/guildhall/guildhall/fanout"
	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/p2p"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/reconcile"
	"github.com/guildhall/guildhall/storage"
	"github.com/guildhall/guildhall/storage/fs"
	"github.com/guildhall/guildhall/storage/sqlite"
	"github.com/guildhall/guildhall/wire"
)

var ctx = context.Background()

var debugCounts func()

func key(name string) ed25519.PrivateKey {
	s := sha256.Sum256([]byte("replica test " + name))
	return ed25519.NewKeyFromSeed(s[:])
}

func pub(name string) policy.PublicKey { return policy.KeyOf(key(name)) }

// node is one hub with its store, libp2p host and replicator; stop and
// start keep its store (a restart).
type node struct {
	t     testing.TB
	name  string
	dir   string
	cert  *policy.DeviceCert
	gater *deny
	// strict nodes dial no special-purpose address of a peer they were
	// not given (Config.DialPrivate false, and discovery.DialFilter as
	// cmd/hub installs it); the others may, all being on loopback.
	strict bool
	// run nodes replicate by themselves (Run, every second); the others
	// only push, and sync when a test says so.
	run    bool
	self   atomic.Pointer[Replicator]
	svc    *hub.Service
	store  *sqlite.Store
	p2p    *p2p.Node
	rep    *Replicator
	cancel context.CancelFunc
}

func newNode(t testing.TB, name string, cert *policy.DeviceCert) *node {
	n := &node{t: t, name: name, dir: t.TempDir(), cert: cert, gater: &deny{peers: map[peer.ID]bool{}}}
	n.start()
	t.Cleanup(n.stop)
	return n
}

// newStrictNode is a node with the defaults of a hub on the internet.
func newStrictNode(t testing.TB, name string) *node {
	n := &node{t: t, name: name, dir: t.TempDir(), gater: &deny{peers: map[peer.ID]bool{}}, strict: true}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *node) start() {
	n.t.Helper()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(n.dir, "hub.db")})
	if err != nil {
		n.t.Fatal(err)
	}
	blobs, err := fs.Open(fs.Config{Dir: filepath.Join(n.dir, "blobs")})
	if err != nil {
		n.t.Fatal(err)
	}
	svc, err := hub.New(hub.Config{NodeKey: key(n.name), NodeCert: n.cert, Store: st, Blobs: blobs, Admission: hub.Open, PostRate: -1, Broker: fanout.New(fanout.Config{})})
	if err != nil {
		n.t.Fatal(err)
	}
	var gater connmgr.ConnectionGater = n.gater
	if n.strict {
		gater = &discovery.DialFilter{Next: n.gater, Trusted: func(p peer.ID) bool { r := n.self.Load(); return r != nil && r.isConfigured(p) }}
	}
	pn, err := p2p.New(ctx, p2p.Config{Key: key(n.name), Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Gater: gater, Protocols: Limits()})
	if err != nil {
		n.t.Fatal(err)
	}
	interval := time.Hour
	if n.run {
		interval = time.Second
	}
	rep, err := New(Config{Service: svc, Host: pn.Host, Interval: interval, DialPrivate: !n.strict})
	if err != nil {
		n.t.Fatal(err)
	}
	svc.SetNotifier(rep)
	svc.SetBlobSource(rep)
	rctx, cancel := context.WithCancel(ctx)
	if n.run {
		go rep.Run(rctx)
	} else {
		go rep.pusher(rctx)
	}
	n.svc, n.store, n.p2p, n.rep, n.cancel = svc, st, pn, rep, cancel
	n.self.Store(rep)
}

func (n *node) stop() {
	if n.cancel == nil {
		return
	}
	n.cancel()
	n.p2p.Close()
	n.store.Close()
	n.cancel = nil
}

func (n *node) info() peer.AddrInfo { return n.p2p.AddrInfo() }

// link makes a and b peers of each other.
func link(a, b *node) {
	a.rep.AddPeer(b.info())
	b.rep.AddPeer(a.info())
}

// deny forbids connections to some peers (a partition); set peers before
// the hosts connect, or use set while they run.
type deny struct {
	mu    sync.Mutex
	peers map[peer.ID]bool
}

func (g *deny) set(p peer.ID, denied bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.peers[p] = denied
}

func (g *deny) denied(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.peers[p]
}

func (g *deny) InterceptPeerDial(p peer.ID) bool                 { return !g.denied(p) }
func (g *deny) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return !g.denied(p) }
func (g *deny) InterceptAccept(network.ConnMultiaddrs) bool      { return true }
func (g *deny) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return !g.denied(p)
}
func (g *deny) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

// community is a server with one replicated channel, alice as creator,
// bob and carol as members, and a storage grant for each hub.
type community struct {
	t       testing.TB
	now     int64
	gen     *policy.Event
	heads   []policy.ID
	general policy.ID
	events  [][]byte
}

func newCommunity(t testing.TB, hubs ...*node) *community {
	c := &community{t: t, now: time.Now().UnixMilli() - 60_000}
	c.gen = c.event("alice", &policy.Genesis{Creators: []policy.PublicKey{pub("alice")}, Policy: policy.ServerPolicy{Name: "club", Everyone: policy.PermRead | policy.PermPost}})
	ch := c.event("alice", &policy.ChannelCreate{Name: "general", Durability: policy.Replicated})
	c.general = ch.ID
	for _, h := range hubs {
		c.event("alice", &policy.StorageGrant{Node: h.svc.NodeID()})
	}
	for _, who := range []string{"bob", "carol"} {
		inv, err := policy.NewInvite(policy.IdentitySigner(key("alice")), policy.InviteBody{Server: c.gen.ID, Issued: c.now, Expires: c.now + 3_600_000, Uses: 1, Nonce: []byte(who + "-nonce-----------")[:16]})
		if err != nil {
			t.Fatal(err)
		}
		c.event(who, &policy.Join{Invite: inv.Raw})
	}
	for _, h := range hubs {
		c.publish(h)
	}
	return c
}

func (c *community) event(who string, content policy.Content) *policy.Event {
	c.t.Helper()
	var server policy.ID
	if c.gen != nil {
		server = c.gen.ID
	}
	c.now++
	e, err := policy.NewEvent(policy.IdentitySigner(key(who)), server, c.heads, c.now, content)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.gen == nil {
		c.gen = e
	}
	c.heads = []policy.ID{e.ID}
	c.events = append(c.events, e.Raw)
	return e
}

// publish gives a hub the whole state log, as the members' clients do.
func (c *community) publish(h *node) {
	c.t.Helper()
	if _, err := h.svc.PublishEvents(ctx, c.gen.ID, c.events); err != nil {
		c.t.Fatal(err)
	}
}

func (c *community) device(who string) policy.Signer {
	cert, err := policy.NewDeviceCert(key(who), policy.DeviceCertBody{Device: pub(who + "-phone"), KEM: policy.KEMX25519, EncKey: make([]byte, 32),
		Issued: c.now - 3_600_000, Expires: c.now + 86_400_000})
	if err != nil {
		c.t.Fatal(err)
	}
	return policy.DeviceSigner(key(who+"-phone"), cert)
}

// post posts one envelope by who to a hub.
func (c *community) post(h *node, who string, text string) policy.ID {
	c.t.Helper()
	e, err := policy.NewEnvelope(c.device(who), policy.EnvelopeBody{Server: c.gen.ID, Channel: c.general, Epoch: 1, Time: time.Now().UnixMilli(), Ciphertext: []byte(text)})
	if err != nil {
		c.t.Fatal(err)
	}
	res := h.svc.Post(ctx, [][]byte{e.Raw})
	if res[0].Err != nil {
		c.t.Fatalf("post to %s: %v", h.name, res[0].Err)
	}
	return e.ID
}

// set is a hub's channel as a reconciliation fingerprint of everything.
func (c *community) set(h *node) reconcile.Fingerprint {
	fp, err := h.svc.ChannelSet(c.gen.ID, c.general).Fingerprint(ctx, reconcile.Key{}, reconcile.Top)
	if err != nil {
		c.t.Fatal(err)
	}
	return fp
}

func (c *community) has(h *node, id policy.ID) bool {
	e, err := h.store.GetEnvelope(ctx, id)
	return err == nil && e.Server == c.gen.ID
}

// timeOf is the sender's time of an envelope h stores.
func (c *community) timeOf(h *node, id policy.ID) int64 {
	e, err := h.store.GetEnvelope(ctx, id)
	if err != nil {
		c.t.Fatal(err)
	}
	return e.Time
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			if debugCounts != nil {
				debugCounts()
			}
			t.Fatalf("not within 10 s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A, B, C where A and C are not connected: a post to A reaches C through
// B; with A stopped, everything can be read from B.
func TestChainThroughB(t *testing.T) {
	a, b, c := newNode(t, "hub-a", nil), newNode(t, "hub-b", nil), newNode(t, "hub-c", nil)
	a.gater.peers[c.p2p.Host.ID()] = true
	c.gater.peers[a.p2p.Host.ID()] = true
	link(a, b)
	link(b, c)
	com := newCommunity(t, a, b, c)
	id := com.post(a, "alice", "to A")
	eventually(t, "the post reaches C through B", func() bool { return com.has(c, id) })
	if com.has(c, id) && len(c.p2p.Host.Network().ConnsToPeer(a.p2p.Host.ID())) > 0 {
		t.Fatal("A and C are connected: the test proves nothing")
	}
	for i := range 20 {
		com.post(a, "bob", fmt.Sprint("more ", i))
	}
	debugCounts = func() { t.Logf("a %d b %d c %d", com.set(a).Count, com.set(b).Count, com.set(c).Count) }
	eventually(t, "B holds everything A took", func() bool { return com.set(b).Count == 21 })
	debugCounts = nil
	a.stop()
	if fb := com.set(b); fb.Count != 21 {
		t.Fatalf("B holds %d", fb.Count)
	}
}

// Both sides of a partition accept posts; after healing every hub holds
// the same set.
func TestPartitionAndHeal(t *testing.T) {
	x, y := newNode(t, "hub-x", nil), newNode(t, "hub-y", nil)
	com := newCommunity(t, x, y)
	for i := range 30 {
		com.post(x, "alice", fmt.Sprint("x", i))
		if i%2 == 0 {
			com.post(y, "bob", fmt.Sprint("y", i))
		}
	}
	if com.set(x) == com.set(y) {
		t.Fatal("the sides did not diverge")
	}
	link(x, y) // heal
	for _, pair := range [][2]*node{{x, y}, {y, x}} {
		if _, err := pair[0].rep.Sync(ctx, pair[1].info()); err != nil {
			t.Fatal(err)
		}
	}
	if fx, fy := com.set(x), com.set(y); fx != fy || fx.Count != 45 {
		t.Fatalf("after healing: %d and %d envelopes", fx.Count, fy.Count)
	}
}

// The white paper's three-person chat on home nodes: Alice and Bob talk
// while Carol is offline; Alice leaves; Bob keeps posting; Carol returns
// and gets everything from Bob's node; with every node stopped nothing is
// lost, and the chat resumes when any one returns.
func TestThreePersonChatOnHomeNodes(t *testing.T) {
	homeCert := func(owner, hubName string) *policy.DeviceCert {
		c, err := policy.NewDeviceCert(key(owner), policy.DeviceCertBody{Device: pub(hubName), KEM: policy.KEMX25519, EncKey: make([]byte, 32),
			Issued: time.Now().Add(-time.Hour).UnixMilli(), Expires: time.Now().Add(24 * time.Hour).UnixMilli(), Name: "home node"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	alice := newNode(t, "home-alice", homeCert("alice", "home-alice"))
	bob := newNode(t, "home-bob", homeCert("bob", "home-bob"))
	carol := newNode(t, "home-carol", homeCert("carol", "home-carol"))
	link(alice, bob)
	link(bob, carol)
	link(alice, carol)
	// No storage grants: home nodes are eligible through their owners.
	com := newCommunity(t)
	for _, h := range []*node{alice, bob, carol} {
		com.publish(h)
	}
	carol.stop()
	var sent []policy.ID
	for i := range 5 {
		sent = append(sent, com.post(alice, "alice", fmt.Sprint("hi bob ", i)))
		sent = append(sent, com.post(bob, "bob", fmt.Sprint("hi alice ", i)))
	}
	eventually(t, "Alice and Bob hold each other's messages", func() bool { return com.set(alice) == com.set(bob) && com.set(bob).Count == 10 })
	alice.stop()
	for i := range 5 {
		sent = append(sent, com.post(bob, "bob", fmt.Sprint("anyone? ", i)))
	}
	carol.start()
	link(bob, carol)
	if _, err := carol.rep.Sync(ctx, bob.info()); err != nil {
		t.Fatal(err)
	}
	for _, id := range sent {
		if !com.has(carol, id) {
			t.Fatalf("Carol lacks %s after syncing from Bob's node", id)
		}
	}
	// Every node stopped: nothing is lost.
	bob.stop()
	carol.stop()
	for _, h := range []*node{alice, bob, carol} {
		st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(h.dir, "hub.db")})
		if err != nil {
			t.Fatal(err)
		}
		envs, err := st.ReadChannel(ctx, com.gen.ID, com.general, 0, storage.MaxPage)
		st.Close()
		if err != nil {
			t.Fatal(err)
		}
		want := map[*node]int{alice: 10, bob: 15, carol: 15}[h]
		if len(envs) != want {
			t.Fatalf("%s holds %d envelopes after a stop, want %d", h.name, len(envs), want)
		}
	}
	// Any one returns and the chat resumes; the others catch up from it.
	alice.start()
	id := com.post(alice, "alice", "back")
	bob.start()
	link(alice, bob)
	if _, err := bob.rep.Sync(ctx, alice.info()); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.rep.Sync(ctx, bob.info()); err != nil {
		t.Fatal(err)
	}
	if !com.has(bob, id) || com.set(alice) != com.set(bob) || com.set(alice).Count != 16 {
		t.Fatalf("after resuming: alice %d, bob %d", com.set(alice).Count, com.set(bob).Count)
	}
}

// A strict channel is never offered to, nor accepted by, a hub that may
// not store it.
func TestStrictChannelStaysWithGrantedHubs(t *testing.T) {
	granted, other := newNode(t, "hub-granted", nil), newNode(t, "hub-other", nil)
	link(granted, other)
	com := newCommunity(t, granted, other)
	strict := com.event("alice", &policy.ChannelCreate{Name: "mods", Durability: policy.Strict})
	com.event("alice", &policy.StorageGrant{Node: granted.svc.NodeID(), Channels: []policy.ID{strict.ID}})
	com.publish(granted)
	com.publish(other)
	e, err := policy.NewEnvelope(com.device("alice"), policy.EnvelopeBody{Server: com.gen.ID, Channel: strict.ID, Epoch: 1, Time: time.Now().UnixMilli(), Ciphertext: []byte("secret")})
	if err != nil {
		t.Fatal(err)
	}
	if r := granted.svc.Post(ctx, [][]byte{e.Raw}); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	if _, err := other.rep.Sync(ctx, granted.info()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // any push would have landed
	if com.has(other, e.ID) {
		t.Fatal("a strict channel reached a hub not granted it")
	}
	// Offered anyway (a misbehaving peer), it is refused.
	if n, _ := other.svc.ReplicateEnvelopes(ctx, [][]byte{e.Raw}); n != 0 || com.has(other, e.ID) {
		t.Fatal("an ungranted hub accepted a strict channel")
	}
}

// Deletions follow envelopes to peer hubs, and blobs are fetched from a
// peer the first time they are read where they are missing.
func TestTombstonesAndBlobsTravel(t *testing.T) {
	a, b := newNode(t, "hub-ta", nil), newNode(t, "hub-tb", nil)
	link(a, b)
	com := newCommunity(t, a, b)
	id := com.post(a, "alice", "regrettable")
	eventually(t, "the envelope reaches B", func() bool { return com.has(b, id) })
	tomb, err := policy.NewTombstone(com.device("alice"), policy.TombstoneBody{Server: com.gen.ID, Channel: com.general, Target: id, TargetTime: com.timeOf(b, id), Time: time.Now().UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	if errs := a.svc.Tombstone(ctx, [][]byte{tomb.Raw}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	eventually(t, "the deletion reaches B", func() bool {
		e, err := b.store.GetEnvelope(ctx, id)
		return err == nil && e.Raw == nil && e.Tombstone != nil
	})

	data := []byte("an encrypted attachment")
	blob := policy.Sum(data)
	alice := hub.Caller{Identity: pub("alice")}
	if err := a.svc.PutBlob(ctx, alice, com.gen.ID, blob, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	rc, size, err := b.svc.GetBlob(ctx, alice, com.gen.ID, blob)
	if err != nil {
		t.Fatalf("B reading a blob only A holds: %v", err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if size != int64(len(data)) || !bytes.Equal(got, data) {
		t.Fatal("the blob fetched from A differs")
	}
	a.stop() // now B holds it itself
	if rc, _, err := b.svc.GetBlob(ctx, alice, com.gen.ID, blob); err != nil {
		t.Fatalf("after A stopped: %v", err)
	} else {
		rc.Close()
	}
}

// A hub finds another through the hub addresses of the invites members
// joined with.
func TestPeersFromInviteHints(t *testing.T) {
	a, b := newNode(t, "hub-ha", nil), newNode(t, "hub-hb", nil)
	com := newCommunity(t, a, b)
	hint := b.info().Addrs[0].String() + "/p2p/" + b.p2p.Host.ID().String()
	inv, err := policy.NewInvite(policy.IdentitySigner(key("alice")), policy.InviteBody{Server: com.gen.ID, Issued: com.now, Expires: com.now + 3_600_000, Uses: 1,
		Hubs: []string{"https://hub.example.org", hint}, Nonce: []byte("dave-nonce------")})
	if err != nil {
		t.Fatal(err)
	}
	com.event("dave", &policy.Join{Invite: inv.Raw})
	com.publish(a)
	if len(a.rep.known()) != 0 {
		t.Fatal("A already knows a peer")
	}
	a.rep.round(ctx)
	if len(a.rep.known()) != 1 || a.rep.known()[0].ID != b.p2p.Host.ID() {
		t.Fatalf("A's peers after a round: %v", a.rep.known())
	}
}

// A peer's message is decoded with the client API's limits: a request
// nested too deep gets no answer (the stream is reset) and the hub keeps
// serving; an answer nested too deep fails the call with wire.ErrMalformed.
func TestOverDeepPeerMessagesAreRefused(t *testing.T) {
	a, b := newNode(t, "hub-a", nil), newNode(t, "hub-b", nil)
	link(a, b)
	newCommunity(t, a, b)      // a peer of b, not a stranger
	deep := []byte{0xa1, 0x05} // {5: nine nested arrays}
	for range 9 {
		deep = append(deep, 0x81)
	}
	deep = append(binary.AppendUvarint(nil, uint64(len(deep)+1)), append(deep, 0x80)...)

	s, err := a.p2p.Host.NewStream(ctx, b.p2p.Host.ID(), Protocol)
	if err != nil {
		t.Fatal(err)
	}
	s.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := s.Write(deep); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Read(make([]byte, 1)); err == nil || n > 0 {
		t.Fatalf("an over-deep request was answered (%d bytes, %v)", n, err)
	}
	s.Close()
	if _, err := a.rep.call(ctx, b.p2p.Host.ID(), wire.ReplicaRequest{Op: wire.OpHello}); err != nil {
		t.Fatalf("b stopped serving after a malformed request: %v", err)
	}

	b.p2p.Host.SetStreamHandler(Protocol, func(s network.Stream) {
		defer s.Close()
		var req wire.ReplicaRequest
		wire.ReadReplica(bufio.NewReader(s), &req)
		s.Write(deep)
	})
	if _, err := a.rep.call(ctx, b.p2p.Host.ID(), wire.ReplicaRequest{Op: wire.OpHello}); !errors.Is(err, wire.ErrMalformed) {
		t.Fatalf("an over-deep answer: %v, want wire.ErrMalformed", err)
	}
}

// Peers learnt from the DHT or invite hints are bounded; configured and
// already known ones are not crowded out.
func TestDiscoveredPeersAreBounded(t *testing.T) {
	n := newNode(t, "hub-bounded", nil)
	for range 3 * MaxDiscovered {
		_, pub, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		n.rep.discovered(peer.AddrInfo{ID: id})
	}
	if got := len(n.rep.known()); got != MaxDiscovered+len(n.rep.cfg.Peers) {
		t.Fatalf("%d peers known after %d discovered, want %d", got, 3*MaxDiscovered, MaxDiscovered+len(n.rep.cfg.Peers))
	}
}

// A peer's request naming a set the hub does not define is refused with
// the reason, for reconcile ranges and fetches alike, and the hub keeps
// serving.
func TestUnknownSetsAreRefused(t *testing.T) {
	a, b := newNode(t, "hub-a", nil), newNode(t, "hub-b", nil)
	link(a, b)
	c := newCommunity(t, a, b)
	for _, req := range []wire.ReplicaRequest{
		{Op: wire.OpRanges, Server: c.gen.ID, Channel: c.general, Set: "bogus", Ranges: nil},
		{Op: wire.OpFetch, Server: c.gen.ID, Channel: c.general, Set: "bogus"},
	} {
		_, err := a.rep.call(ctx, b.p2p.Host.ID(), req)
		if err == nil || !strings.Contains(err.Error(), `unknown set "bogus"`) {
			t.Fatalf("op %v with set bogus: %v, want the unknown set named", req.Op, err)
		}
	}
	if _, err := a.rep.call(ctx, b.p2p.Host.ID(), wire.ReplicaRequest{Op: wire.OpHello}); err != nil {
		t.Fatalf("b stopped serving: %v", err)
	}
}
