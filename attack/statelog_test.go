package attack

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/guildhall/guildhall/client"
	"github.com/guildhall/guildhall/client/clienttest"
	"github.com/guildhall/guildhall/client/hubapi"
	"github.com/guildhall/guildhall/policy"
)

var ctx = context.Background()

// community is a server on a real hub with a creator (alice) and a member
// (bob), run through the reference client.
type community struct {
	hub    *clienttest.Hub
	api    *hubapi.Client
	admin  *hubapi.Admin
	alice  *client.Client
	bob    *client.Client
	server policy.ID
}

func newCommunity(t *testing.T) *community {
	t.Helper()
	return communityOn(t, clienttest.StartHub(t, "sqlite"))
}

// communityOn makes the community on a hub the test started.
func communityOn(t *testing.T, h *clienttest.Hub) *community {
	t.Helper()
	c := &community{hub: h}
	c.api = hubapi.New(c.hub.URL)
	c.admin = hubapi.NewAdmin(c.hub.Admin, "")
	c.alice, c.bob = open(t, "alice"), open(t, "bob")
	var err error
	if c.server, err = c.alice.CreateServer(ctx, "target", []string{c.hub.URL}, client.ServerOptions{}); err != nil {
		t.Fatal(err)
	}
	inv, err := c.alice.Invite(ctx, c.server, 1, time.Hour, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.bob.Join(ctx, inv); err != nil {
		t.Fatal(err)
	}
	if _, err := c.alice.SyncState(ctx, c.server); err != nil {
		t.Fatal(err)
	}
	return c
}

func open(t *testing.T, name string) *client.Client {
	t.Helper()
	c, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.CreateIdentity(ctx, name); err != nil {
		t.Fatal(err)
	}
	return c
}

// stored returns the server's state events as the hub holds them, and the
// tenant's byte usage.
func (c *community) stored(t *testing.T) (events int, bytes uint64) {
	t.Helper()
	if _, err := c.alice.SyncState(ctx, c.server); err != nil {
		t.Fatal(err)
	}
	l, err := c.alice.Log(ctx, c.server)
	if err != nil {
		t.Fatal(err)
	}
	return l.Len(), c.tenant(t).Usage.Bytes
}

// stranger is an identity that signs with its identity key, so no device
// certificate bounds its dates.
type stranger struct{ s policy.Signer }

func newStranger() stranger {
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	return stranger{policy.IdentitySigner(k)}
}

func (x stranger) invite(t *testing.T, server policy.ID, at time.Time) *policy.Invite {
	t.Helper()
	nonce := make([]byte, 16)
	rand.Read(nonce)
	inv, err := policy.NewInvite(x.s, policy.InviteBody{Server: server, Issued: at.UnixMilli(), Expires: at.AddDate(1, 0, 0).UnixMilli(), Uses: 1000, Nonce: nonce})
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func (x stranger) event(t *testing.T, server policy.ID, parents []policy.ID, at time.Time, c policy.Content) *policy.Event {
	t.Helper()
	e, err := policy.NewEvent(x.s, server, parents, at.UnixMilli(), c)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Finding 1. Bound: a stranger's join on an invite it signed itself, dated
// 50 years ahead with the genesis as parent, is refused and stored nowhere;
// the admins' ban and channel creation afterwards take effect.
func TestStrangerCannotFreezeModeration(t *testing.T) {
	c := newCommunity(t)
	x := newStranger()
	before, _ := c.stored(t)
	for name, at := range map[string]time.Time{"50 years ahead": time.Now().AddDate(50, 0, 0), "now": time.Now()} {
		join := x.event(t, c.server, []policy.ID{c.server}, at, &policy.Join{Invite: x.invite(t, c.server, at).Raw})
		if _, err := c.api.PublishEvents(ctx, c.server, [][]byte{join.Raw}); err == nil {
			t.Fatalf("a stranger's self-invited join dated %s was taken", name)
		}
	}
	if after, _ := c.stored(t); after != before {
		t.Fatalf("the hub stored %d of the stranger's events", after-before)
	}
	bob, err := c.bob.Me()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.alice.Ban(ctx, c.server, bob, "test"); err != nil {
		t.Fatalf("the creator's ban after the attack: %v", err)
	}
	if _, err := c.alice.CreateChannel(ctx, c.server, policy.ChannelCreate{Name: "after", Durability: policy.Replicated}); err != nil {
		t.Fatalf("the creator's channel after the attack: %v", err)
	}
}

// Finding 2. Bound: 301 events by a stranger in one request behind a
// self-signed join, and 50 joins by a banned member, store nothing and
// charge the tenant nothing.
func TestStrangersAndBannedMembersCannotWriteTheLog(t *testing.T) {
	c := newCommunity(t)
	x := newStranger()
	now := time.Now()
	l, err := c.alice.Log(ctx, c.server)
	if err != nil {
		t.Fatal(err)
	}
	heads := l.Heads()
	batch := [][]byte{x.event(t, c.server, heads, now, &policy.Join{Invite: x.invite(t, c.server, now).Raw}).Raw}
	for i := range 300 {
		batch = append(batch, x.event(t, c.server, heads, now, &policy.ChannelCreate{Name: fmt.Sprintf("spam %d", i), Durability: policy.Replicated}).Raw)
	}
	beforeEvents, beforeBytes := c.stored(t)
	var he *hubapi.Error
	if _, err := c.api.PublishEvents(ctx, c.server, batch); !errors.As(err, &he) || he.Code != string(policy.CodeInvalidInvite) {
		t.Fatalf("301 events behind a self-signed join: %v, want invalid_invite", err)
	}
	bob, err := c.bob.Me()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.alice.Ban(ctx, c.server, bob, "spam"); err != nil {
		t.Fatal(err)
	}
	eventsAfterBan, bytesAfterBan := c.stored(t)
	d, err := c.bob.Device()
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for range 50 {
		inv, err := policy.NewInvite(d.Signer(), policy.InviteBody{Server: c.server, Issued: now.UnixMilli(), Expires: now.Add(time.Hour).UnixMilli(), Uses: 1, Nonce: randomNonce()})
		if err != nil {
			t.Fatal(err)
		}
		e, err := policy.NewEvent(d.Signer(), c.server, heads, time.Now().UnixMilli(), &policy.Join{Invite: inv.Raw})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.api.PublishEvents(ctx, c.server, [][]byte{e.Raw}); errors.As(err, &he) && he.Code == string(policy.CodeBanned) {
			refused++
		}
	}
	if refused != 50 {
		t.Fatalf("%d of a banned member's 50 joins refused as banned", refused)
	}
	afterEvents, afterBytes := c.stored(t)
	if afterEvents != eventsAfterBan || afterBytes != bytesAfterBan {
		t.Fatalf("the attacks stored %d events and %d bytes (before the ban: %d events, %d bytes)", afterEvents-eventsAfterBan, afterBytes-bytesAfterBan, beforeEvents, beforeBytes)
	}
}

func randomNonce() []byte {
	n := make([]byte, 16)
	rand.Read(n)
	return n
}
