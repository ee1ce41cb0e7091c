package client

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/guildhall/guildhall/client/clienttest"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// readable is what c can read of a channel after syncing it, and what it
// cannot, by text and by the error shown.
func readable(t *testing.T, c *Client, server, channel policy.ID) (read []string, closed int) {
	t.Helper()
	must[int](t)(c.SyncState(ctx, server))
	must[int](t)(c.Sync(ctx, server, channel, nil))
	for _, m := range must[[]Message](t)(c.History(ctx, server, channel, 0)) {
		if m.Err != nil {
			closed++
		} else if m.Body.Text != "" {
			read = append(read, m.Body.Text)
		}
	}
	return read, closed
}

// Whoever becomes a reader reads what is sent from then on, without
// posting: a newcomer by invite, a member given a role that may read a
// closed channel, and a member let in by an override. What was sent in
// earlier epochs stays closed to them. The sender is the only one who acts; the new
// readers only sync.
func TestNewReadersReadWhatIsSentAfter(t *testing.T) {
	h := clienttest.StartHub(t, "sqlite")
	alice := newClient(t, "alice")
	server := must[policy.ID](t)(alice.CreateServer(ctx, "club", []string{h.URL}, ServerOptions{}))
	lounge := must[policy.ID](t)(alice.CreateChannel(ctx, server, policy.ChannelCreate{Name: "lounge", Durability: policy.Replicated}))
	mods := must[policy.ID](t)(alice.CreateChannel(ctx, server, policy.ChannelCreate{Name: "mods", Durability: policy.Replicated}))
	must[*policy.Event](t)(alice.PublishChange(ctx, server, &policy.ChannelOverride{Channel: mods, Deny: policy.PermRead | policy.PermPost}))
	staff := must[*policy.Event](t)(alice.PublishChange(ctx, server, &policy.RoleDefine{Name: "staff", Rank: 10, Perms: policy.PermRead | policy.PermPost}))
	must[*policy.Event](t)(alice.PublishChange(ctx, server, &policy.ChannelOverride{Channel: mods, Role: staff.ID, Allow: policy.PermRead | policy.PermPost}))
	must[*Sent](t)(alice.Send(ctx, server, lounge, "before eve"))
	must[*Sent](t)(alice.Send(ctx, server, mods, "before bob"))
	// A new epoch: what was sent before it stays closed to later readers.
	// (Within an epoch, a new reader gets its key, and so reads the
	// epoch's earlier messages too: docs/CLIENT.md.)
	ok(t, alice.Rekey(ctx, server, lounge))
	ok(t, alice.Rekey(ctx, server, mods))

	join := func(name string) *Client {
		c := newClient(t, name)
		must[policy.ID](t)(c.Join(ctx, must[string](t)(alice.Invite(ctx, server, 1, time.Hour, nil, nil))))
		return c
	}
	eve, bob, carol := join("eve"), join("bob"), join("carol")
	bobID, _ := bob.Identity()
	carolID, _ := carol.Identity()

	// Eve joined: the next messages in #lounge are hers to read.
	must[*Sent](t)(alice.Send(ctx, server, lounge, "after eve 1"))
	must[*Sent](t)(alice.Send(ctx, server, lounge, "after eve 2"))
	if read, closed := readable(t, eve, server, lounge); !slices.Equal(read, []string{"after eve 1", "after eve 2"}) || closed != 1 {
		t.Fatalf("eve reads %q and cannot read %d; want the two sent after she joined, and the one before closed", read, closed)
	}
	// Bob is given the staff role, which may read #mods.
	must[*policy.Event](t)(alice.PublishChange(ctx, server, &policy.RoleGrant{Role: staff.ID, Member: bobID.Public()}))
	must[*Sent](t)(alice.Send(ctx, server, mods, "after bob"))
	if read, closed := readable(t, bob, server, mods); !slices.Equal(read, []string{"after bob"}) || closed != 1 {
		t.Fatalf("bob, given a role that reads #mods, reads %q", read)
	}
	// Carol is let in by an override for a role of hers that reads nothing else.
	helper := must[*policy.Event](t)(alice.PublishChange(ctx, server, &policy.RoleDefine{Name: "helper", Rank: 5}))
	must[*policy.Event](t)(alice.PublishChange(ctx, server, &policy.RoleGrant{Role: helper.ID, Member: carolID.Public()}))
	must[*Sent](t)(alice.Send(ctx, server, mods, "before carol's override"))
	must[*policy.Event](t)(alice.PublishChange(ctx, server, &policy.ChannelOverride{Channel: mods, Role: helper.ID, Allow: policy.PermRead}))
	must[*Sent](t)(alice.Send(ctx, server, mods, "after carol's override"))
	if read, closed := readable(t, carol, server, mods); !slices.Equal(read, []string{"after bob", "before carol's override", "after carol's override"}) || closed != 1 {
		t.Fatalf("carol, let in by an override, reads %q and cannot read %d; want the current epoch's three, the older one closed", read, closed)
	}
	// Nobody else but the sender posted: the keys came with Alice's sends.
	for _, c := range []*Client{eve, bob, carol} {
		id, _ := c.Identity()
		for _, ch := range []policy.ID{lounge, mods} {
			for _, m := range must[[]Message](t)(alice.History(ctx, server, ch, 0)) {
				if m.Sender == id.Public() {
					t.Fatalf("a new reader posted %s", fmt.Sprint(m.Body))
				}
			}
		}
	}
}

// A reader who has sent in the current epoch, and is online, seals its key
// to a newcomer when it syncs, with no message sent in between; the next
// sender, learning that from the bundle, seals nothing again.
func TestAnyReaderSealsToANewcomer(t *testing.T) {
	h, alice, bob, server, lounge := aliceAndBob(t, "lounge")
	must[*Sent](t)(alice.Send(ctx, server, lounge, "hello bob"))
	if read, _ := readable(t, bob, server, lounge); !slices.Equal(read, []string{"hello bob"}) {
		t.Fatalf("bob reads %q", read)
	}
	must[*Sent](t)(bob.Send(ctx, server, lounge, "hi alice")) // bob has sent in this epoch: he holds its bundles
	eve := newClient(t, "eve")
	must[policy.ID](t)(eve.Join(ctx, must[string](t)(alice.Invite(ctx, server, 1, time.Hour, nil, nil))))
	readable(t, bob, server, lounge) // bob's client is online: it syncs
	readable(t, eve, server, lounge)
	aliceKeys := must[[]epochKey](t)(alice.st.keys(ctx, server, lounge))
	eveKeys := must[[]epochKey](t)(eve.st.keys(ctx, server, lounge))
	if len(eveKeys) == 0 || eveKeys[0].ID != aliceKeys[0].ID {
		t.Fatalf("eve holds %d keys, not the current epoch's, after a reader synced", len(eveKeys))
	}
	must[*Sent](t)(alice.Send(ctx, server, lounge, "welcome eve"))
	if read, _ := readable(t, eve, server, lounge); !slices.Equal(read, []string{"hello bob", "hi alice", "welcome eve"}) {
		t.Fatalf("eve reads %q", read)
	}
	api := alice.hub(h.URL)
	token := must[string](t)(api.Login(ctx, must[*Device](t)(alice.Device())))
	bundles := map[string]int{}
	bobID, _ := bob.Identity()
	for _, e := range must[wire.Envelopes](t)(api.Read(ctx, token, server, lounge, 0, 100)).Envelopes {
		env := must[*policy.Envelope](t)(policy.ParseEnvelope(e.Raw))
		if env.Ciphertext[0] == payloadKeys {
			who := "alice"
			if env.Author == bobID.Public() {
				who = "bob"
			}
			bundles[who]++
		}
	}
	if bundles["alice"] != 1 || bundles["bob"] != 1 {
		t.Fatalf("key bundles posted: %v; want alice's for the epoch and bob's for eve, no more", bundles)
	}
}
