package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/guildhall/guildhall/client/clienttest"
	"github.com/guildhall/guildhall/policy"
)

var ctx = context.Background()

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// texts returns the decrypted texts of a channel's history.
func texts(t *testing.T, c *Client, server, channel policy.ID) []string {
	t.Helper()
	var out []string
	for _, m := range must[[]Message](t)(c.History(ctx, server, channel, 0)) {
		if m.Err == nil && m.Body.Text != "" {
			out = append(out, m.Body.Text)
		}
	}
	return out
}

// Scenario 1: the admin creates a server, a channel and an invite, and goes
// offline; newcomers join with the invite and talk; the hub and the members
// verify everything without the admin, who reads it all on return.
func TestAdminsOffline(t *testing.T) {
	for _, p := range profiles {
		t.Run(p, func(t *testing.T) {
			hub := startHub(t, p)
			alice := newClient(t, "alice-phone")
			server := must[policy.ID](t)(alice.CreateServer(ctx, "book club", []string{hub.URL}, ServerOptions{}))
			general := must[policy.ID](t)(alice.CreateChannel(ctx, server, policy.ChannelCreate{Name: "general", Durability: policy.Replicated}))
			invite := must[string](t)(alice.Invite(ctx, server, 5, 24*time.Hour, nil, nil))
			ok(t, alice.Close()) // offline from here on

			bob, carol := newClient(t, "bob-laptop"), newClient(t, "carol-phone")
			must[policy.ID](t)(bob.Join(ctx, invite))
			must[policy.ID](t)(carol.Join(ctx, invite))
			hello := marker(t, "hello")
			sent := must[*Sent](t)(bob.Send(ctx, server, general, hello))
			if len(sent.Receipts) != 1 || sent.Receipts[0].Envelope != sent.ID {
				t.Fatalf("receipts %+v", sent.Receipts)
			}
			reply := marker(t, "reply")
			must[*Sent](t)(carol.Send(ctx, server, general, reply))
			must[int](t)(bob.Sync(ctx, server, general, nil))
			if got := texts(t, bob, server, general); !slices.Equal(got, []string{hello, reply}) {
				t.Fatalf("bob reads %q", got)
			}
			// Carol verified the state log herself: bob is a member through
			// alice's invite, with alice offline.
			st := must[*policy.State](t)(carol.State(ctx, server))
			if !st.IsMember(must[policy.PublicKey](t)(bob.Me())) || st.InviteUses(must[*policy.Invite](t)(policy.DecodeInviteToken(invite)).ID) != 2 {
				t.Fatal("carol's verified state does not show bob's join")
			}
			// Alice returns on the same store and reads everything.
			back, err := Open(alice.st.dir)
			ok(t, err)
			defer back.Close()
			must[int](t)(back.SyncState(ctx, server))
			must[int](t)(back.Sync(ctx, server, general, nil))
			if got := texts(t, back, server, general); !slices.Equal(got, []string{hello, reply}) {
				t.Fatalf("alice reads %q", got)
			}
			assertNoPlaintext(t, hub, []string{hello, reply})
		})
	}
}

// Scenario 2: a moderator bans a member; the hub refuses the banned
// member's posts; the channel is re-keyed; the banned member cannot decrypt
// what is posted after the ban with any key it holds, and still reads what
// it had.
func TestBanRekeys(t *testing.T) {
	for _, p := range profiles {
		t.Run(p, func(t *testing.T) {
			hub := startHub(t, p)
			alice := newClient(t, "alice")
			server := must[policy.ID](t)(alice.CreateServer(ctx, "club", []string{hub.URL}, ServerOptions{}))
			general := must[policy.ID](t)(alice.CreateChannel(ctx, server, policy.ChannelCreate{Name: "general", Durability: policy.Replicated}))
			mod := must[*policy.Event](t)(alice.Publish(ctx, server, &policy.RoleDefine{Name: "mod", Rank: 10, Perms: policy.PermRead | policy.PermPost | policy.PermBan}))
			carol, dave := newClient(t, "carol"), newClient(t, "dave")
			must[policy.ID](t)(carol.Join(ctx, must[string](t)(alice.Invite(ctx, server, 1, time.Hour, []policy.ID{mod.ID}, nil))))
			must[policy.ID](t)(dave.Join(ctx, must[string](t)(alice.Invite(ctx, server, 1, time.Hour, nil, nil))))

			before := marker(t, "before")
			must[*Sent](t)(alice.Send(ctx, server, general, before))
			must[int](t)(dave.Sync(ctx, server, general, nil))
			if got := texts(t, dave, server, general); !slices.Equal(got, []string{before}) {
				t.Fatalf("dave reads %q before the ban", got)
			}

			must[int](t)(carol.SyncState(ctx, server))
			ok(t, carol.Ban(ctx, server, must[policy.PublicKey](t)(dave.Me()), "spam"))

			after := marker(t, "after")
			sent := must[*Sent](t)(alice.Send(ctx, server, general, after))
			_, err := dave.Send(ctx, server, general, marker(t, "banned"))
			if !IsCode(err, string(policy.CodeBanned)) && policy.CodeOf(err) != policy.CodeBanned {
				t.Fatalf("the banned member's post: %v", err)
			}
			// Dave cannot decrypt the post-ban message with any key he holds.
			var raw []byte
			for _, m := range must[[]Message](t)(alice.History(ctx, server, general, 0)) {
				if m.ID == sent.ID {
					raw = m.Raw
				}
			}
			if _, err := dave.Decrypt(ctx, raw); !errors.Is(err, ErrNoKey) {
				t.Fatalf("dave decrypting the post-ban message: %v", err)
			}
			env := must[*policy.Envelope](t)(policy.ParseEnvelope(raw))
			keys := must[[]epochKey](t)(dave.st.keys(ctx, server, general))
			if len(keys) == 0 {
				t.Fatal("dave holds no keys at all: the test would prove nothing")
			}
			for _, k := range keys {
				k.Epoch = env.Epoch // try every key as if it were this epoch's
				copy(k.ID[:], env.Ciphertext[1:9])
				if _, err := openBody([]epochKey{k}, server, general, env.Epoch, env.Ciphertext); err == nil {
					t.Fatal("a key dave holds opens the post-ban message")
				}
			}
			// The hub refuses dave's reads; he still has what he had.
			if _, err := dave.Sync(ctx, server, general, nil); !IsCode(err, string(policy.CodeBanned)) {
				t.Fatalf("banned member reading: %v", err)
			}
			if got := texts(t, dave, server, general); !slices.Equal(got, []string{before}) {
				t.Fatalf("dave's history after the ban: %q", got)
			}
			// Carol, still a reader, reads both.
			must[int](t)(carol.Sync(ctx, server, general, nil))
			if got := texts(t, carol, server, general); !slices.Contains(got, after) {
				t.Fatalf("carol reads %q", got)
			}
			assertNoPlaintext(t, hub, []string{before, after})
		})
	}
}

// Scenario 3: a strict channel is refused by a hub not granted it, with a
// clear error, and stored after the grant.
func TestStrictChannelNeedsAGrant(t *testing.T) {
	for _, p := range profiles {
		t.Run(p, func(t *testing.T) {
			hub := startHub(t, p)
			alice := newClient(t, "alice")
			server := must[policy.ID](t)(alice.CreateServer(ctx, "club", []string{hub.URL}, ServerOptions{}))
			mods := must[policy.ID](t)(alice.CreateChannel(ctx, server, policy.ChannelCreate{Name: "mods", Durability: policy.Strict}))
			must[*policy.Event](t)(alice.PublishChange(ctx, server, &policy.ChannelOverride{Channel: mods, Deny: policy.PermRead | policy.PermPost}))
			secret := marker(t, "mods")
			_, err := alice.Send(ctx, server, mods, secret)
			if !errors.Is(err, ErrNotAccepted) || !IsCode(err, string(policy.CodeNotEligible)) {
				t.Fatalf("strict channel on an ungranted hub: %v", err)
			}
			// The hub neither stores nor serves a strict channel it was not granted.
			if got, err := alice.Sync(ctx, server, mods, nil); got != 0 || !IsCode(err, string(policy.CodeNotEligible)) {
				t.Fatalf("a sync of the strict channel from an ungranted hub: %d envelopes, %v (want not_eligible)", got, err)
			}
			ok(t, alice.GrantStorage(ctx, server, hub.URL, mods))
			sent := must[*Sent](t)(alice.Send(ctx, server, mods, secret))
			if len(sent.Receipts) != 1 {
				t.Fatalf("after the grant: %+v", sent)
			}
			assertNoPlaintext(t, hub, []string{secret})
		})
	}
}

// Scenario 4: in a guaranteed channel a message counts as sent only with a
// valid receipt from an eligible hub.
func TestGuaranteedChannelNeedsAReceipt(t *testing.T) {
	for _, p := range profiles {
		t.Run(p, func(t *testing.T) {
			hub := startHub(t, p)
			alice := newClient(t, "alice")
			server := must[policy.ID](t)(alice.CreateServer(ctx, "club", []string{hub.URL}, ServerOptions{}))
			news := must[policy.ID](t)(alice.CreateChannel(ctx, server, policy.ChannelCreate{Name: "news", Durability: policy.Guaranteed}))
			first := marker(t, "first")
			must[*Sent](t)(alice.Send(ctx, server, news, first)) // starts the epoch while the hub is up

			hub.Stop() // no hub answers
			if _, err := alice.Send(ctx, server, news, marker(t, "lost")); !errors.Is(err, ErrNotDurable) {
				t.Fatalf("with no hub: %v", err)
			}
			hub.Start()
			// A hub that answers but is no longer eligible is no better.
			node := must[policy.PublicKey](t)(alice.hub(hub.URL).Node(ctx))
			must[*policy.Event](t)(alice.Publish(ctx, server, &policy.StorageRevoke{Node: node}))
			if _, err := alice.Send(ctx, server, news, marker(t, "ineligible")); !errors.Is(err, ErrNotDurable) || !IsCode(err, string(policy.CodeNotEligible)) {
				t.Fatalf("with an ineligible hub: %v", err)
			}
			ok(t, alice.GrantStorage(ctx, server, hub.URL))
			second := marker(t, "second")
			sent := must[*Sent](t)(alice.Send(ctx, server, news, second))
			st := must[*policy.State](t)(alice.State(ctx, server))
			env := must[*policy.Envelope](t)(policy.ParseEnvelope(sentRaw(t, alice, server, news, sent.ID)))
			if len(sent.Receipts) != 1 || st.CheckReceipt(sent.Receipts[0], env, nil, time.Now().UnixMilli()) != nil || sent.Receipts[0].Hub != node {
				t.Fatalf("receipt %+v", sent.Receipts)
			}
			assertNoPlaintext(t, hub, []string{first, second})
		})
	}
}

func sentRaw(t *testing.T, c *Client, server, channel, id policy.ID) []byte {
	t.Helper()
	for _, m := range must[[]Message](t)(c.History(ctx, server, channel, 0)) {
		if m.ID == id {
			return m.Raw
		}
	}
	t.Fatalf("message %s not in history", id)
	return nil
}

// Scenario 5: a linked device posts; after its revocation its posts are
// refused and it receives no new epoch keys. Attachments travel encrypted.
func TestLinkedDeviceRevoked(t *testing.T) {
	for _, p := range profiles {
		t.Run(p, func(t *testing.T) {
			hub := startHub(t, p)
			phone := newClient(t, "alice-phone")
			server := must[policy.ID](t)(phone.CreateServer(ctx, "club", []string{hub.URL}, ServerOptions{}))
			general := must[policy.ID](t)(phone.CreateChannel(ctx, server, policy.ChannelCreate{Name: "general", Durability: policy.Replicated}))
			must[*Sent](t)(phone.Send(ctx, server, general, marker(t, "from-phone")))

			laptop := emptyClient(t)
			req := must[LinkRequest](t)(laptop.RequestLink(ctx, "alice-laptop"))
			req = must[LinkRequest](t)(policy.DecodeLinkRequest(req.Encode())) // as copied between machines
			cert := must[*policy.DeviceCert](t)(phone.LinkDevice(ctx, req))
			ok(t, laptop.InstallCert(ctx, must[*policy.DeviceCert](t)(policy.DecodeCertToken(policy.EncodeCertToken(cert)))))
			ok(t, laptop.AddHub(ctx, server, hub.URL))
			must[int](t)(laptop.SyncState(ctx, server))
			fileText := marker(t, "attachment")
			fromLaptop := marker(t, "from-laptop")
			sent := must[*Sent](t)(laptop.Send(ctx, server, general, fromLaptop, File{Name: "notes.txt", Data: []byte(fileText)}))
			if len(sent.Receipts) != 1 {
				t.Fatal("the linked device's post was not stored")
			}
			must[int](t)(phone.Sync(ctx, server, general, nil))
			if got := texts(t, phone, server, general); !slices.Contains(got, fromLaptop) {
				t.Fatalf("the phone reads %q", got)
			}
			for _, m := range must[[]Message](t)(phone.History(ctx, server, general, 0)) {
				if m.Body.Text == fromLaptop {
					data := must[[]byte](t)(phone.Download(ctx, server, m.Body.Files[0]))
					if !bytes.Equal(data, []byte(fileText)) {
						t.Fatal("the attachment does not round-trip")
					}
				}
			}

			laptopDevice := must[*Device](t)(laptop.Device()).Cert.Device
			ok(t, phone.RevokeDevice(ctx, server, laptopDevice))
			afterRevoke := marker(t, "after-revoke")
			must[*Sent](t)(phone.Send(ctx, server, general, afterRevoke))
			if _, err := laptop.Send(ctx, server, general, marker(t, "revoked")); !IsCode(err, string(policy.CodeDeviceRevoked)) && policy.CodeOf(err) != policy.CodeDeviceRevoked {
				t.Fatalf("the revoked device's post: %v", err)
			}
			if _, err := laptop.Sync(ctx, server, general, nil); !IsCode(err, string(policy.CodeDeviceRevoked)) {
				t.Fatalf("the revoked device reading: %v", err)
			}
			latest := must[uint64](t)(phone.st.maxEpoch(ctx, server, general))
			for _, k := range must[[]epochKey](t)(laptop.st.keys(ctx, server, general)) {
				if k.Epoch >= latest {
					t.Fatalf("the revoked device holds the key of epoch %d (latest %d)", k.Epoch, latest)
				}
			}
			if _, err := laptop.Decrypt(ctx, sentRaw(t, phone, server, general, must[*Sent](t)(phone.Send(ctx, server, general, marker(t, "x"))).ID)); !errors.Is(err, ErrNoKey) {
				t.Fatalf("the revoked device decrypting a new message: %v", err)
			}
			assertNoPlaintext(t, hub, []string{fromLaptop, fileText, afterRevoke})
		})
	}
}

// A member's home node keeps the community's history: it replicates from
// the community hub while its owner is away, and the owner reads from it
// first.
func TestHomeNodeKeepsHistory(t *testing.T) {
	community := clienttest.NewHub(t, "sqlite")
	community.Extra = "p2p:\n  enabled: true\n  listen: [/ip4/127.0.0.1/tcp/0]\n  interval: 1s\n"
	community.Start()
	if community.P2P == "" {
		t.Fatal("the community hub reports no libp2p address")
	}
	alice := newClient(t, "alice-desktop")
	home := clienttest.NewHub(t, "sqlite")
	req := must[LinkRequest](t)(policy.DecodeLinkRequest(home.LinkRequest()))
	cert := must[*policy.DeviceCert](t)(alice.LinkDevice(ctx, req))
	home.Admission = "home"
	home.Extra = "home:\n  owner_cert: " + policy.EncodeCertToken(cert) + "\np2p:\n  enabled: true\n  listen: [/ip4/127.0.0.1/tcp/0]\n  interval: 1s\n  peers: [" + community.P2P + "]\n"
	home.Start()

	server := must[policy.ID](t)(alice.CreateServer(ctx, "club", []string{community.URL, home.URL}, ServerOptions{}))
	general := must[policy.ID](t)(alice.CreateChannel(ctx, server, policy.ChannelCreate{Name: "general", Durability: policy.Replicated}))
	bob := newClient(t, "bob")
	must[policy.ID](t)(bob.Join(ctx, must[string](t)(alice.Invite(ctx, server, 1, time.Hour, nil, nil))))
	must[*Sent](t)(alice.Send(ctx, server, general, "before the trip"))

	home.Stop() // alice's desktop is off; bob keeps talking on the community hub
	var sent []string
	for i := range 5 {
		text := fmt.Sprint("while you were away ", i)
		sent = append(sent, text)
		must[*Sent](t)(bob.Send(ctx, server, general, text))
	}
	home.Start() // back: the home node catches up from the community hub
	ok(t, alice.PreferHub(ctx, server, home.URL))
	deadline := time.Now().Add(20 * time.Second)
	for {
		// Read from the home node alone.
		n, err := alice.hub(home.URL).Read(ctx, must[string](t)(alice.hub(home.URL).Login(ctx, must[*Device](t)(alice.Device()))), server, general, 0, 100)
		if err == nil && len(n.Envelopes) >= 7 { // key bundle(s) + 6 messages
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the home node holds %d envelopes (%v)", len(n.Envelopes), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	community.Stop() // and even with the community hub gone, alice reads all of it
	must[int](t)(alice.Sync(ctx, server, general, nil))
	got := texts(t, alice, server, general)
	for _, s := range sent {
		if !slices.Contains(got, s) {
			t.Fatalf("alice, reading from her home node, lacks %q (has %q)", s, got)
		}
	}
}

// A home node's receipts verify with its certificate: a member whose only
// hub is her home node sends to a strict channel, which no storage grant
// covers (the node may store it as her device), and gets its receipt.
func TestHomeNodeReceiptsVerify(t *testing.T) {
	alice := newClient(t, "alice-desktop")
	home := clienttest.NewHub(t, "sqlite")
	req := must[LinkRequest](t)(policy.DecodeLinkRequest(home.LinkRequest()))
	cert := must[*policy.DeviceCert](t)(alice.LinkDevice(ctx, req))
	home.Admission = "home"
	home.Extra = "home:\n  owner_cert: " + policy.EncodeCertToken(cert) + "\n"
	home.Start()
	server := must[policy.ID](t)(alice.CreateServer(ctx, "solo", []string{home.URL}, ServerOptions{}))
	vault := must[policy.ID](t)(alice.CreateChannel(ctx, server, policy.ChannelCreate{Name: "vault", Durability: policy.Strict}))
	sent, err := alice.Send(ctx, server, vault, "kept at home")
	if err != nil {
		t.Fatalf("a strict channel's send to a home node: %v", err)
	}
	if len(sent.Receipts) != 1 || sent.Receipts[0].Hub != cert.Device {
		t.Fatalf("receipts %+v, want one from the home node %s", sent.Receipts, cert.Device)
	}
}
