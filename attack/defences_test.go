package attack

import (
	"bytes"
	"testing"
	"time"

	"github.com/guildhall/guildhall/client/hubapi"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// The defences the attack review found holding, kept as regression tests
// against a real hub: each row is an attack and the code the hub must
// answer it with, with nothing stored.
func TestDefencesThatHeld(t *testing.T) {
	c := newCommunity(t)
	general, err := c.alice.CreateChannel(ctx, c.server, policy.ChannelCreate{Name: "general", Durability: policy.Replicated})
	if err != nil {
		t.Fatal(err)
	}
	mods, err := c.alice.CreateChannel(ctx, c.server, policy.ChannelCreate{Name: "mods", Durability: policy.Strict})
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.bob.Device()
	if err != nil {
		t.Fatal(err)
	}
	stranger := open(t, "stranger")
	sd, err := stranger.Device()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	envelope := func(s policy.Signer, channel policy.ID, size int, at int64) []byte {
		return c.envelope(t, s, channel, size, at)
	}
	good := envelope(d.Signer(), general, 16, now)
	forged := bytes.Clone(good)
	forged[len(forged)-1] ^= 1
	for _, tc := range []struct {
		name string
		raw  []byte
		want string
	}{
		{"a forged signature", forged, string(policy.CodeBadSignature)},
		{"a stranger's envelope", envelope(sd.Signer(), general, 16, now), string(policy.CodeNotMember)},
		{"an envelope over the size limit", append(bytes.Clone(good), make([]byte, policy.MaxEnvelopeSize)...), string(policy.CodeTooLarge)},
		{"an envelope dated an hour ahead", envelope(d.Signer(), general, 16, now+3_600_000), string(policy.CodeClock)},
		{"an envelope for a strict channel this hub was not granted", envelope(d.Signer(), mods, 16, now), string(policy.CodeNotEligible)},
		{"garbage", []byte{0x82, 0x01}, string(policy.CodeMalformed)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.api.Post(ctx, [][]byte{tc.raw})
			if hubapi.IsCode(err, tc.want) {
				return // refused as a whole request
			}
			if err != nil {
				t.Fatalf("%v, want %s", err, tc.want)
			}
			if len(res) != 1 || res[0].Receipt != nil || res[0].Error == nil || res[0].Error.Code != tc.want {
				t.Fatalf("results %+v, want %s", res, tc.want)
			}
		})
	}
	// The read rule: anonymous reads of a members-only server, and a
	// stranger's own session, see nothing.
	if _, err := c.api.Read(ctx, "", c.server, general, 0, 100); !hubapi.IsCode(err, wire.CodeUnauthenticated) {
		t.Fatalf("an anonymous read: %v", err)
	}
	token, err := c.api.Login(ctx, sd)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.api.Read(ctx, token, c.server, general, 0, 100); !hubapi.IsCode(err, string(policy.CodeNotMember)) {
		t.Fatalf("a stranger's read: %v", err)
	}
}

// Bans hold with no admin online: once alice bans bob and goes away, bob's
// posts and reads are refused.
func TestBansHoldWithNoAdminOnline(t *testing.T) {
	c := newCommunity(t)
	general, err := c.alice.CreateChannel(ctx, c.server, policy.ChannelCreate{Name: "general", Durability: policy.Replicated})
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.bob.Device()
	if err != nil {
		t.Fatal(err)
	}
	envelope := func(s policy.Signer, channel policy.ID, size int, at int64) []byte {
		return c.envelope(t, s, channel, size, at)
	}
	bob, err := c.bob.Me()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.alice.Ban(ctx, c.server, bob, "test"); err != nil {
		t.Fatal(err)
	}
	c.alice.Close()
	if res, err := c.api.Post(ctx, [][]byte{envelope(d.Signer(), general, 16, time.Now().UnixMilli())}); err != nil || res[0].Error == nil || res[0].Error.Code != string(policy.CodeBanned) {
		t.Fatalf("a banned member's post: %+v, %v", res, err)
	}
	btoken, err := c.api.Login(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.api.Read(ctx, btoken, c.server, general, 0, 100); !hubapi.IsCode(err, string(policy.CodeBanned)) {
		t.Fatalf("a banned member's read: %v", err)
	}
}

// envelope signs an envelope of the community's server.
func (c *community) envelope(t *testing.T, s policy.Signer, channel policy.ID, size int, at int64) []byte {
	t.Helper()
	e, err := policy.NewEnvelope(s, policy.EnvelopeBody{Server: c.server, Channel: channel, Epoch: 1, Time: at, Ciphertext: make([]byte, size)})
	if err != nil {
		t.Fatal(err)
	}
	return e.Raw
}
