package attack

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/guildhall/guildhall/client/hubapi"
	"github.com/guildhall/guildhall/policy"
)

// Finding 3. Bound: on a server with a long state log, 50 events by a
// member that each name only the genesis (each would make the hub fold the
// whole log again while it holds the server) are refused stale and store
// nothing, and the 50 refusals take under 2 s in all; the reference
// client's own acts, which name the last folded head, are taken, even from
// a copy of the log that fell behind.
func TestOldHistoryCannotForceRefolds(t *testing.T) {
	const history = 1500 // beyond a checkpoint, within the per-source burst
	c := newCommunity(t)
	publish := c.grower(t)
	publish(0, history)
	before, _ := c.stored(t)
	bob, err := c.bob.Device()
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	var he *hubapi.Error
	for i := range 50 {
		e, err := policy.NewEvent(bob.Signer(), c.server, []policy.ID{c.server}, time.Now().UnixMilli(), &policy.ChannelCreate{Name: fmt.Sprintf("old %d", i), Durability: policy.Replicated})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.api.PublishEvents(ctx, c.server, [][]byte{e.Raw}); !errors.As(err, &he) || he.Code != string(policy.CodeStale) {
			t.Fatalf("an event naming only the genesis of a %d-event log: %v, want stale", before, err)
		}
	}
	took := time.Since(start)
	t.Logf("50 events on the genesis of a %d-event log refused in %v", before, took)
	if took > 2*time.Second {
		t.Errorf("50 refusals took %v, want under 2 s", took)
	}
	if after, _ := c.stored(t); after != before {
		t.Fatalf("the hub stored %d events naming only the genesis", after-before)
	}
	if n := metric(t, c.hub, `guildhall_hub_publications_total{result="stale"}`); n != 50 {
		t.Errorf("the hub counted %v stale publications, want 50", n)
	}
	// The creator's copy of the log is now MaxBehind+44 events behind the
	// hub's: her client's first try is refused stale, and it refreshes and
	// signs again.
	publish(history, history+policy.MaxBehind+44)
	if _, err := c.alice.CreateChannel(ctx, c.server, policy.ChannelCreate{Name: "after", Durability: policy.Replicated}); err != nil {
		t.Fatalf("the creator's act on a log that moved on: %v", err)
	}
}

// grower returns a function that grows the server's state log by the
// events from..to-1 of a long history: bob's channel creations, which he
// may not make (each folded, rejected), each on the heads, published in
// batches straight to the hub (no client's copy of the log sees them).
func (c *community) grower(t *testing.T) func(from, to int) {
	t.Helper()
	d, err := c.bob.Device()
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.bob.Log(ctx, c.server)
	if err != nil {
		t.Fatal(err)
	}
	var batch [][]byte
	return func(from, to int) {
		for i := from; i < to; i++ {
			e, err := policy.NewEvent(d.Signer(), c.server, l.ParentsAt(time.Now().UnixMilli()), time.Now().UnixMilli(), &policy.ChannelCreate{Name: fmt.Sprintf("history %d", i), Durability: policy.Replicated})
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Add(e); err != nil {
				t.Fatal(err)
			}
			if batch = append(batch, e.Raw); len(batch) == 500 || i == to-1 {
				if _, err := c.api.PublishEvents(ctx, c.server, batch); err != nil {
					t.Fatalf("publishing history: %v", err)
				}
				batch = nil
			}
		}
	}
}
