package attack

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/guildhall/guildhall/client"
	"github.com/guildhall/guildhall/client/clienttest"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// A defence that held: quota races. Bound: 8 posters racing 320 envelopes
// at a tenant with room for 100 more get exactly 100 receipts, every other
// envelope is refused quota_exceeded, the usage never passes the quota, and
// the channel holds exactly the receipted envelopes. On both storage
// profiles.
func TestQuotaHoldsUnderRacingPosters(t *testing.T) {
	for _, profile := range []string{"sqlite", "postgres"} {
		t.Run(profile, func(t *testing.T) {
			c := communityOn(t, clienttest.StartHub(t, profile))
			general, err := c.alice.CreateChannel(ctx, c.server, policy.ChannelCreate{Name: "general", Durability: policy.Replicated})
			if err != nil {
				t.Fatal(err)
			}
			tenant := c.tenant(t)
			const room, posters, each = 100, 8, 40
			if _, err := c.admin.PutTenant(ctx, c.server, wire.Quota{Envelopes: tenant.Usage.Envelopes + room}); err != nil {
				t.Fatal(err)
			}
			var signers []policy.Signer
			for _, who := range c.members() {
				d, err := who.Device()
				if err != nil {
					t.Fatal(err)
				}
				signers = append(signers, d.Signer())
			}
			var mu sync.Mutex
			var receipted []policy.ID
			others := map[string]int{}
			var wg sync.WaitGroup
			for p := range posters {
				wg.Go(func() {
					for b := range each / 5 {
						var batch [][]byte
						for i := range 5 {
							e, err := policy.NewEnvelope(signers[p%len(signers)], policy.EnvelopeBody{Server: c.server, Channel: general, Epoch: 1,
								Time: time.Now().UnixMilli(), Ciphertext: fmt.Appendf(nil, "poster %d batch %d envelope %d", p, b, i)})
							if err != nil {
								t.Error(err)
								return
							}
							batch = append(batch, e.Raw)
						}
						res, err := c.api.Post(ctx, batch)
						mu.Lock()
						switch {
						case err != nil:
							others[err.Error()] += len(batch)
						default:
							for i, r := range res {
								switch {
								case r.Receipt != nil:
									receipted = append(receipted, policy.Sum(batch[i]))
								case r.Error != nil:
									others[r.Error.Code]++
								}
							}
						}
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if len(receipted) != room || others[wire.CodeQuotaExceeded] != posters*each-room || len(others) != 1 {
				t.Fatalf("%d receipts (want %d), refusals %v (want %d quota_exceeded)", len(receipted), room, others, posters*each-room)
			}
			after := c.tenant(t)
			if after.Usage.Envelopes > after.Quota.Envelopes {
				t.Fatalf("usage %d envelopes over the quota of %d", after.Usage.Envelopes, after.Quota.Envelopes)
			}
			bob, err := c.bob.Device()
			if err != nil {
				t.Fatal(err)
			}
			token, err := c.api.Login(ctx, bob)
			if err != nil {
				t.Fatal(err)
			}
			page, err := c.api.Read(ctx, token, c.server, general, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			var stored []policy.ID
			for _, e := range page.Envelopes {
				stored = append(stored, e.ID)
			}
			slices.SortFunc(stored, policy.ID.Compare)
			slices.SortFunc(receipted, policy.ID.Compare)
			if missing, extra := diff(receipted, stored), diff(stored, receipted); len(missing)+len(extra) > 0 {
				t.Fatalf("receipted but not stored: %v; stored without a receipt: %v", missing, extra)
			}
		})
	}
}

// A defence that held: the DAG's shape. Bound: a member who makes the log
// 300 heads wide (each event on the same parents) costs the log nothing
// lasting: every act after it names at most 16 parents and is taken, and
// 20 acts narrow the log back to one head. (Events with more than 16
// parents, or parents out of order, do not decode: policy's codec tests
// and fuzz targets pin that.)
func TestWideLogsStayWritable(t *testing.T) {
	c := newCommunity(t)
	d, err := c.bob.Device()
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.bob.Log(ctx, c.server)
	if err != nil {
		t.Fatal(err)
	}
	base := l.ParentsAt(time.Now().UnixMilli())
	var batch [][]byte
	for i := range 300 {
		e, err := policy.NewEvent(d.Signer(), c.server, base, time.Now().UnixMilli(), &policy.ChannelCreate{Name: fmt.Sprintf("wide %d", i), Durability: policy.Replicated})
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, e.Raw)
	}
	if _, err := c.api.PublishEvents(ctx, c.server, batch); err != nil {
		t.Fatal(err)
	}
	for i := range 25 {
		if _, err := c.alice.CreateChannel(ctx, c.server, policy.ChannelCreate{Name: fmt.Sprintf("narrow %d", i), Durability: policy.Replicated}); err != nil {
			t.Fatalf("act %d on a 300-head log: %v", i, err)
		}
		l, err := c.alice.Log(ctx, c.server)
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Heads()) == 1 {
			t.Logf("one head again after %d acts", i+1)
			return
		}
	}
	t.Fatal("25 acts did not narrow a 300-head log to one head")
}

// tenant returns the server's tenancy as the admin API reports it.
func (c *community) tenant(t *testing.T) wire.Tenant {
	t.Helper()
	ts, err := c.admin.Tenants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range ts.Tenants {
		if tn.Server == c.server {
			return tn
		}
	}
	t.Fatal("the server is not a tenant")
	return wire.Tenant{}
}

func (c *community) members() []*client.Client { return []*client.Client{c.alice, c.bob} }

// diff returns the IDs of sorted a that sorted b lacks.
func diff(a, b []policy.ID) []policy.ID {
	var out []policy.ID
	for _, id := range a {
		if _, found := slices.BinarySearchFunc(b, id, policy.ID.Compare); !found {
			out = append(out, id)
		}
	}
	return out
}
