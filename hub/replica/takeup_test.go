package replica

import (
	"fmt"
	"math"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/reconcile"
	"github.com/libp2p/go-libp2p/core/peer"
)

// newRunNode is a node that replicates by itself, every second.
func newRunNode(t testing.TB, name string) *node {
	n := &node{t: t, name: name, dir: t.TempDir(), gater: &deny{peers: map[peer.ID]bool{}}, run: true}
	n.start()
	t.Cleanup(n.stop)
	return n
}

// postMany posts n envelopes by who to a hub, in batches, and returns their IDs.
func (c *community) postMany(h *node, who string, n int) []policy.ID {
	c.t.Helper()
	var ids []policy.ID
	for len(ids) < n {
		var raws [][]byte
		for range min(500, n-len(ids)) {
			e, err := policy.NewEnvelope(c.device(who), policy.EnvelopeBody{Server: c.gen.ID, Channel: c.general, Epoch: 1, Time: time.Now().UnixMilli(),
				Ciphertext: []byte(fmt.Sprintf("%s %d %d", who, len(ids)+len(raws), time.Now().UnixNano()))})
			if err != nil {
				c.t.Fatal(err)
			}
			raws = append(raws, e.Raw)
		}
		for i, res := range h.svc.Post(ctx, raws) {
			if res.Err != nil {
				c.t.Fatalf("post %d to %s: %v", len(ids)+i, h.name, res.Err)
			}
			ids = append(ids, res.Receipt.Envelope)
		}
	}
	return ids
}

// ids is the set of envelope IDs a hub holds of the channel (the first
// page of keys, as the store bounds it).
func (c *community) ids(h *node) map[policy.ID]bool {
	c.t.Helper()
	keys, err := h.svc.ChannelSet(c.gen.ID, c.general).Keys(ctx, reconcile.Key{}, reconcile.Top, math.MaxInt32)
	if err != nil {
		return nil // not hosted (yet)
	}
	out := make(map[policy.ID]bool, len(keys))
	for _, k := range keys {
		out[k.ID] = true
	}
	return out
}

// missing lists the IDs of want that h lacks.
func (c *community) missing(h *node, want []policy.ID) []policy.ID {
	var out []policy.ID
	for _, id := range want {
		if !c.has(h, id) {
			out = append(out, id)
		}
	}
	return out
}

// waitAll waits until h holds every envelope of want, within limit, and
// says how long it took; a failure names the envelopes missing.
func (c *community) waitAll(t *testing.T, h *node, want []policy.ID, limit time.Duration, what string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		miss := c.missing(h, want)
		if len(miss) == 0 {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s: after %v %s lacks %d of %d envelopes, first %v", what, limit, h.name, len(miss), len(want), miss[:min(5, len(miss))])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A hub granted storage after the server has history learns of the server
// from its peer's hello, takes the state log from it (judged against the
// log itself) and then the history: all of it, within a bound. Nobody
// publishes anything to the new hub.
func TestLateGrantedHubTakesUpHistory(t *testing.T) {
	a := newNode(t, "hub-a", nil)
	com := newCommunity(t, a)
	want := com.postMany(a, "bob", 2000)
	c := newRunNode(t, "hub-c")
	c.rep.AddPeer(a.info()) // the operator of C names A as a peer
	if has, _ := c.svc.HasLog(ctx, com.gen.ID); has {
		t.Fatal("C hosts the server before any grant: the test proves nothing")
	}
	time.Sleep(1500 * time.Millisecond) // C asks A before the grant, and is refused as a stranger
	if got := len(com.ids(c)); got != 0 {
		t.Fatalf("C took %d envelopes before it was granted the server", got)
	}
	com.event("alice", &policy.StorageGrant{Node: c.svc.NodeID()})
	com.publish(a) // the grant reaches A alone
	// 2 cores shared with other test runs: a generous bound (it takes ~1-3 s alone).
	took := com.waitAll(t, c, want, 60*time.Second, "the hub granted storage late")
	t.Logf("C served all %d envelopes %v after the grant", len(want), took)
}

// A hub whose data directory is lost, its node key kept, rejoins the
// servers it is granted by itself: its peer offers them, and it takes the
// state log and the history again.
func TestWipedHubRejoinsFromItsPeer(t *testing.T) {
	a := newNode(t, "hub-a", nil)
	b := newRunNode(t, "hub-b")
	b.rep.AddPeer(a.info())
	com := newCommunity(t, a, b)
	want := com.postMany(a, "bob", 300)
	com.waitAll(t, b, want, 60*time.Second, "before the wipe")
	b.stop()
	if err := os.RemoveAll(b.dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(b.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	b.start()
	b.rep.AddPeer(a.info()) // its configuration, kept with the key
	if has, _ := b.svc.HasLog(ctx, com.gen.ID); has {
		t.Fatal("the wiped hub still hosts the server: the test proves nothing")
	}
	took := com.waitAll(t, b, want, 60*time.Second, "the wiped hub")
	t.Logf("the wiped hub held all %d envelopes again %v after restarting", len(want), took)
	evA, _ := a.svc.EventIDs(ctx, com.gen.ID)
	evB, _ := b.svc.EventIDs(ctx, com.gen.ID)
	slices.SortFunc(evA, policy.ID.Compare)
	slices.SortFunc(evB, policy.ID.Compare)
	if !slices.Equal(evA, evB) {
		t.Fatalf("the wiped hub's state log has %d events, its peer's %d", len(evB), len(evA))
	}
}

// A member's copy of a state log older than the clock skew is taken by a
// hub new to the server, as history (the client's grant flow publishes the
// log with the grant, to every hub of the server); the hub then fetches
// the history from its peer. A hub that hosts the server still refuses
// stale events as a live publication.
func TestMembersCopyOfAnOldLogAdmitsTheServer(t *testing.T) {
	a := newNode(t, "hub-a", nil)
	com := &community{t: t, now: time.Now().Add(-2 * time.Hour).UnixMilli()}
	com.gen = com.event("alice", &policy.Genesis{Creators: []policy.PublicKey{pub("alice")}, Policy: policy.ServerPolicy{Name: "old club", Everyone: policy.PermRead | policy.PermPost}})
	com.general = com.event("alice", &policy.ChannelCreate{Name: "general", Durability: policy.Replicated}).ID
	com.event("alice", &policy.StorageGrant{Node: a.svc.NodeID()})
	inv, err := policy.NewInvite(policy.IdentitySigner(key("alice")), policy.InviteBody{Server: com.gen.ID, Issued: com.now, Expires: com.now + 3_600_000, Uses: 1, Nonce: []byte("bob-nonce-------")})
	if err != nil {
		t.Fatal(err)
	}
	com.event("bob", &policy.Join{Invite: inv.Raw})
	com.publish(a)
	want := com.postMany(a, "bob", 200)

	c := newRunNode(t, "hub-c")
	c.rep.AddPeer(a.info())
	a.rep.AddPeer(c.info())
	if _, err := a.svc.PublishEvents(ctx, com.gen.ID, com.events); policy.CodeOf(err) != policy.CodeClock {
		t.Fatalf("a hub hosting the server took its stale events as a live publication: %v", err)
	}
	com.now = time.Now().UnixMilli() // the grant is made now, on the old log
	grant := com.event("alice", &policy.StorageGrant{Node: c.svc.NodeID()})
	if _, err := a.svc.PublishEvents(ctx, com.gen.ID, [][]byte{grant.Raw}); err != nil {
		t.Fatal(err)
	}
	com.publish(c) // the whole log with the grant, genesis first
	if has, _ := c.svc.HasLog(ctx, com.gen.ID); !has {
		t.Fatal("the member's copy of the log did not admit the server")
	}
	com.waitAll(t, c, want, 60*time.Second, "the hub given the log by a member")
}
