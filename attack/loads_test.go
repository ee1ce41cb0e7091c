package attack

import (
	"testing"
	"time"

	"github.com/guildhall/guildhall/client"
	"github.com/guildhall/guildhall/client/clienttest"
	"github.com/guildhall/guildhall/client/hubapi"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// Finding 9. Bound: anonymous requests that each force the hub to read a
// 3,000-event state log from its store (it keeps one log in memory, and
// the requests alternate between two servers) are refused unauthenticated
// and cost the hub under 80 ms of CPU each (reading back what it verified
// when it stored it, without verifying every signature again; each event
// carries its device's certificate, 1.4 KB with a post-quantum hybrid
// key); members are served after it.
func TestColdRequestsCannotForceCostlyLoads(t *testing.T) {
	const history, requests = 3000, 40
	h := clienttest.NewHub(t, "sqlite")
	h.Extra = "limits:\n  max_servers: 1\n  source_rate: 100000\n  source_burst: 100000\n"
	h.Start()
	c := communityOn(t, h)
	c.grower(t)(0, history)
	small, err := c.alice.CreateServer(ctx, "small", []string{h.URL}, client.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before := h.CPU()
	start := time.Now()
	for i := range requests {
		server := c.server
		if i%2 == 1 {
			server = small
		}
		if _, err := c.api.Events(ctx, "", server, 0); !hubapi.IsCode(err, wire.CodeUnauthenticated) {
			t.Fatalf("an anonymous read of a members-only state log: %v, want unauthenticated", err)
		}
	}
	cpu, took := h.CPU()-before, time.Since(start)
	t.Logf("%d anonymous requests, %d loads of a %d-event log: %v of hub CPU, %v", requests, requests/2, history, cpu, took)
	if per := cpu / (requests / 2); per > 80*time.Millisecond {
		t.Errorf("each forced load of a %d-event log cost the hub %v of CPU, want under 80 ms", history, per)
	}
	general, err := c.alice.CreateChannel(ctx, c.server, policy.ChannelCreate{Name: "general", Durability: policy.Replicated})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.bob.SyncState(ctx, c.server); err != nil {
		t.Fatal(err)
	}
	if _, err := c.bob.Send(ctx, c.server, general, "still served"); err != nil {
		t.Fatalf("a member's post after the attack: %v", err)
	}
}
