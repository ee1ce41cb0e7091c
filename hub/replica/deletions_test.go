package replica

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/reconcile"
)

// tombstone signs who's deletion of an envelope h holds (or of target at
// targetTime, when h does not hold it).
func (c *community) tombstone(who string, target policy.ID, targetTime int64) []byte {
	c.t.Helper()
	t, err := policy.NewTombstone(c.device(who), policy.TombstoneBody{Server: c.gen.ID, Channel: c.general, Target: target, TargetTime: targetTime, Time: time.Now().UnixMilli()})
	if err != nil {
		c.t.Fatal(err)
	}
	return t.Raw
}

func (c *community) signed(who, text string) *policy.Envelope {
	c.t.Helper()
	e, err := policy.NewEnvelope(c.device(who), policy.EnvelopeBody{Server: c.gen.ID, Channel: c.general, Epoch: 1, Time: time.Now().UnixMilli(), Ciphertext: []byte(text)})
	if err != nil {
		c.t.Fatal(err)
	}
	return e
}

// rows is what a hub holds of the channel: every ID, and whether its
// ciphertext is gone.
func (c *community) rows(h *node) map[policy.ID]bool {
	c.t.Helper()
	keys, err := h.svc.ChannelSet(c.gen.ID, c.general).Keys(ctx, reconcile.Key{}, reconcile.Top, 10_000)
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[policy.ID]bool{}
	for _, k := range keys {
		e, err := h.store.GetEnvelope(ctx, k.ID)
		if err != nil {
			c.t.Fatal(err)
		}
		out[k.ID] = e.Raw == nil
	}
	return out
}

// diff says how two hubs' rows differ, envelope by envelope.
func diff(a, b map[policy.ID]bool, an, bn string) []string {
	var out []string
	for _, id := range slices.SortedFunc(maps.Keys(a), policy.ID.Compare) {
		switch deleted, ok := b[id]; {
		case !ok:
			out = append(out, fmt.Sprintf("%s lacks %s (deleted at %s: %v)", bn, id, an, a[id]))
		case deleted != a[id]:
			out = append(out, fmt.Sprintf("%s: deleted at %s %v, at %s %v", id, an, a[id], bn, deleted))
		}
	}
	for id := range b {
		if _, ok := a[id]; !ok {
			out = append(out, fmt.Sprintf("%s lacks %s (deleted at %s: %v)", an, id, bn, b[id]))
		}
	}
	return out
}

// Three hubs in a chain, the middle one down while both ends take posts
// and deletions: after it returns, two reconciliation rounds leave the
// same envelopes and the same deletions on all three, deleted ciphertext
// nowhere, and a deletion its author had no right to (kept early on a hub
// that lacked the envelope) undone by the envelope's arrival.
func TestDeletionsConvergeAfterPartition(t *testing.T) {
	a, b, c := newNode(t, "hub-da", nil), newNode(t, "hub-db", nil), newNode(t, "hub-dc", nil)
	a.gater.peers[c.p2p.Host.ID()] = true
	c.gater.peers[a.p2p.Host.ID()] = true
	com := newCommunity(t, a, b, c)
	for _, pair := range [][2]*node{{a, b}, {c, b}} {
		pair[0].rep.AddPeer(pair[1].info())
	}
	var before []*policy.Envelope
	for i := range 6 {
		e := com.signed([]string{"alice", "bob"}[i%2], fmt.Sprint("before ", i))
		before = append(before, e)
		for _, h := range []*node{a, b, c} {
			if res := h.svc.Post(ctx, [][]byte{e.Raw}); res[0].Err != nil {
				t.Fatal(res[0].Err)
			}
		}
	}

	b.stop() // the partition
	mustTomb := func(h *node, raw []byte) {
		t.Helper()
		if errs := h.svc.Tombstone(ctx, [][]byte{raw}); errs[0] != nil {
			t.Fatalf("tombstone at %s: %v", h.name, errs[0])
		}
	}
	mustTomb(a, com.tombstone("alice", before[0].ID, before[0].Time)) // moderator deletes on one side
	mustTomb(c, com.tombstone("bob", before[1].ID, before[1].Time))   // the sender deletes on the other
	onA := com.signed("alice", "posted and deleted on A")
	a.svc.Post(ctx, [][]byte{onA.Raw})
	mustTomb(a, com.tombstone("alice", onA.ID, onA.Time))
	onC := com.signed("bob", "posted and deleted on C")
	c.svc.Post(ctx, [][]byte{onC.Raw})
	mustTomb(c, com.tombstone("bob", onC.ID, onC.Time))
	bobs := com.signed("bob", "bob's, posted on A only")
	a.svc.Post(ctx, [][]byte{bobs.Raw})
	// carol may not delete bob's envelope; C, which lacks it, keeps her
	// tombstone early, and must give it up when the envelope arrives.
	mustTomb(c, com.tombstone("carol", bobs.ID, bobs.Time))
	com.post(a, "alice", "live on A")
	com.post(c, "bob", "live on C")

	b.start() // heals
	a.rep.AddPeer(b.info())
	c.rep.AddPeer(b.info())
	b.rep.AddPeer(a.info())
	b.rep.AddPeer(c.info())
	for round := range 2 {
		for _, pair := range [][2]*node{{b, a}, {b, c}, {a, b}, {c, b}} {
			if _, err := pair[0].rep.Sync(ctx, pair[1].info()); err != nil {
				t.Fatalf("round %d: %s syncing with %s: %v", round+1, pair[0].name, pair[1].name, err)
			}
		}
	}
	ra, rb, rc := com.rows(a), com.rows(b), com.rows(c)
	if d := append(diff(ra, rb, "A", "B"), diff(rb, rc, "B", "C")...); len(d) > 0 {
		t.Fatalf("after two rounds the hubs differ:\n%v", d)
	}
	want := map[policy.ID]bool{before[0].ID: true, before[1].ID: true, onA.ID: true, onC.ID: true, bobs.ID: false}
	for id, deleted := range want {
		if got, ok := rb[id]; !ok || got != deleted {
			t.Errorf("envelope %s: held %v, deleted %v; want deleted %v", id, ok, got, deleted)
		}
	}
	if len(ra) != 6+2+1+2 {
		t.Errorf("%d rows, want 11", len(ra))
	}
	for _, h := range []*node{a, b, c} {
		fp, err := h.svc.TombstoneSet(com.gen.ID, com.general).Fingerprint(ctx, reconcile.Key{}, reconcile.Top)
		if err != nil || fp.Count != 4 {
			t.Errorf("%s holds %d deletions (%v), want 4", h.name, fp.Count, err)
		}
	}
	if got := gathered(t, c.svc.Metrics(), "guildhall_hub_early_tombstones_total", "refused"); got != 1 {
		t.Errorf("C counted %v refused early tombstones, want 1", got)
	}
}

// gathered reads one series of a collector's counter by its one label value.
func gathered(t *testing.T, c prometheus.Collector, name, label string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no series %s{%s}", name, label)
	return 0
}
