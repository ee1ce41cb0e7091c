package hub_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/guildhall/guildhall/fanout"
	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/hub/hubtest"
	"github.com/guildhall/guildhall/policy"
)

// Live delivery is in each channel's sequence order, every stored envelope
// exactly once, whatever order concurrent posters' group commits announce
// them in: 8 posters, a subscriber that keeps up receives 1, 2, ..., N.
// On both storage profiles.
func TestLiveDeliveryIsOrderedAndComplete(t *testing.T) {
	for _, profile := range []string{"sqlite", "postgres"} {
		t.Run(profile, func(t *testing.T) {
			broker := fanout.New(fanout.Config{QueueLen: 1 << 16})
			f := hubtest.New(t, profile, func(c *hub.Config) { c.Broker, c.PostRate = broker, -1 })
			f.Community()
			sub, err := broker.Subscribe(fanout.Topic{Server: f.Gen.ID, Channel: f.General})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			const posters, each = 8, 100
			var wg sync.WaitGroup
			for p := range posters {
				signer := f.Device([]string{"alice", "carol", "dave"}[p%3])
				wg.Go(func() {
					for i := range each {
						e, err := policy.NewEnvelope(signer, policy.EnvelopeBody{Server: f.Gen.ID, Channel: f.General, Epoch: 1,
							Time: f.Now().UnixMilli(), Ciphertext: fmt.Appendf(nil, "poster %d message %d", p, i)})
						if err != nil {
							t.Error(err)
							return
						}
						if r := f.Post(e.Raw); r[0].Err != nil {
							t.Error(r[0].Err)
							return
						}
					}
				})
			}
			wg.Wait()
			total := uint64(f.Stored(f.General))
			var got []uint64
			timeout := time.After(10 * time.Second)
			for uint64(len(got)) < total {
				select {
				case m := <-sub.C():
					got = append(got, m.Seq)
				case <-timeout:
					t.Fatalf("received %d of %d stored envelopes", len(got), total)
				}
			}
			select {
			case m := <-sub.C():
				t.Fatalf("an envelope delivered beyond the %d stored: seq %d", total, m.Seq)
			case <-time.After(100 * time.Millisecond):
			}
			first := got[0]
			for i, seq := range got {
				if seq != first+uint64(i) {
					t.Fatalf("delivery %d is seq %d, want %d (out of order or a gap): %v", i, seq, first+uint64(i), got[max(0, i-3):min(len(got), i+3)])
				}
			}
		})
	}
}
