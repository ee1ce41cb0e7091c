package client

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guildhall/guildhall/client/clienttest"
	"github.com/guildhall/guildhall/policy"
)

// Twenty newcomers join at once through the invites of four members who are
// not the creator (two of them offline by then): every one becomes a
// member, run after run, whatever their IDs sort as. A banned member's join
// through a fresh invite says "banned"; after an unban it succeeds.
func TestJoinsThroughMembersInvites(t *testing.T) {
	const runs = 3
	hub := startHub(t, "sqlite")
	for run := range runs {
		alice := newClient(t, "alice-phone")
		server := must[policy.ID](t)(alice.CreateServer(ctx, fmt.Sprintf("club %d", run), []string{hub.URL}, ServerOptions{}))
		inviter := must[*policy.Event](t)(alice.Publish(ctx, server, &policy.RoleDefine{Name: "inviter", Rank: 10, Perms: policy.PermRead | policy.PermPost | policy.PermInvite})).ID
		var invites []string
		for i := range 4 {
			m := newClient(t, fmt.Sprintf("member-%d", i))
			must[policy.ID](t)(m.Join(ctx, must[string](t)(alice.Invite(ctx, server, 1, time.Hour, []policy.ID{inviter}, nil))))
			invites = append(invites, must[string](t)(m.Invite(ctx, server, 5, time.Hour, nil, nil)))
			if i%2 == 0 {
				ok(t, m.Close()) // offline while the newcomers join
			}
		}
		newcomers := make([]*Client, 20)
		for i := range newcomers {
			newcomers[i] = newClient(t, fmt.Sprintf("newcomer-%d", i))
		}
		var wg sync.WaitGroup
		errs := make([]error, len(newcomers))
		for i, c := range newcomers {
			wg.Go(func() { _, errs[i] = c.Join(ctx, invites[i%4]) })
		}
		wg.Wait()
		must[int](t)(alice.SyncState(ctx, server))
		st := must[*policy.State](t)(alice.State(ctx, server))
		var missing []string
		for i, c := range newcomers {
			if me := must[policy.PublicKey](t)(c.Me()); errs[i] != nil || !st.IsMember(me) {
				missing = append(missing, fmt.Sprintf("newcomer-%d (%v)", i, errs[i]))
			}
		}
		if len(missing) > 0 {
			t.Fatalf("run %d: %d of 20 newcomers are not members: %v", run, len(missing), missing)
		}
		// After the burst (a log many heads wide) the creator can still act.
		wide := len(must[*policy.Log](t)(alice.Log(ctx, server)).Heads())
		ok(t, alice.Ban(ctx, server, must[policy.PublicKey](t)(newcomers[0].Me()), "test"))
		if st := must[*policy.State](t)(alice.State(ctx, server)); st.IsMember(must[policy.PublicKey](t)(newcomers[0].Me())) {
			t.Fatalf("run %d: the ban after %d heads did not take effect", run, wide)
		}
	}

	alice := newClient(t, "alice-phone")
	server := must[policy.ID](t)(alice.CreateServer(ctx, "bans", []string{hub.URL}, ServerOptions{}))
	bob := newClient(t, "bob-laptop")
	must[policy.ID](t)(bob.Join(ctx, must[string](t)(alice.Invite(ctx, server, 1, time.Hour, nil, nil))))
	must[int](t)(alice.SyncState(ctx, server)) // the ban follows bob's join, not concurrent with it
	ok(t, alice.Ban(ctx, server, must[policy.PublicKey](t)(bob.Me()), "spam"))
	if _, err := bob.Join(ctx, must[string](t)(alice.Invite(ctx, server, 1, time.Hour, nil, nil))); !errors.Is(err, policy.ErrBanned) {
		t.Fatalf("a banned member's join: %v, want banned", err)
	}
	must[*policy.Event](t)(alice.PublishChange(ctx, server, &policy.Unban{Member: must[policy.PublicKey](t)(bob.Me())}))
	must[policy.ID](t)(bob.Join(ctx, must[string](t)(alice.Invite(ctx, server, 1, time.Hour, nil, nil))))
	// A used-up invite says so.
	used := must[string](t)(alice.Invite(ctx, server, 1, time.Hour, nil, nil))
	must[policy.ID](t)(newClient(t, "carol").Join(ctx, used))
	if _, err := newClient(t, "dave").Join(ctx, used); !errors.Is(err, policy.ErrInviteExhausted) {
		t.Fatalf("a used-up invite: %v, want invite_exhausted", err)
	}
}

// Against a real hub process: a member's state event dated a month, or ten
// minutes, ahead is refused with "clock" and stored nowhere; the creator's
// next event succeeds. (Backdated events are refused the same way: see
// hub's TestLiveEventsMustBeFresh; a new device cannot sign one.)
func TestHubRefusesStateEventsOffItsClock(t *testing.T) {
	hub := startHub(t, "sqlite")
	alice, bob := newClient(t, "alice-phone"), newClient(t, "bob-laptop")
	server := must[policy.ID](t)(alice.CreateServer(ctx, "clocks", []string{hub.URL}, ServerOptions{}))
	must[policy.ID](t)(bob.Join(ctx, must[string](t)(alice.Invite(ctx, server, 1, time.Hour, nil, nil))))
	d := must[*Device](t)(bob.Device())
	l := must[*policy.Log](t)(bob.Log(ctx, server))
	before := l.Len()
	for name, at := range map[string]time.Time{"a month ahead": time.Now().AddDate(0, 1, 0), "ten minutes ahead": time.Now().Add(10 * time.Minute)} {
		e := must[*policy.Event](t)(policy.NewEvent(d.Signer(), server, l.Heads(), at.UnixMilli(), &policy.ChannelCreate{Name: "x", Durability: policy.Replicated}))
		if _, err := bob.hub(hub.URL).PublishEvents(ctx, server, [][]byte{e.Raw}); !IsCode(err, string(policy.CodeClock)) {
			t.Fatalf("%s: %v, want clock", name, err)
		}
	}
	must[int](t)(alice.SyncState(ctx, server))
	if n := must[*policy.Log](t)(alice.Log(ctx, server)).Len(); n != before {
		t.Fatalf("the hub stored a refused event: %d events, want %d", n, before)
	}
	must[policy.ID](t)(alice.CreateChannel(ctx, server, policy.ChannelCreate{Name: "general", Durability: policy.Replicated}))
}

// A hub behind an address its operator configured (public_url: a proxy, a
// NAT, a DNS name) is reached by invitees at that address: alice works
// against the hub's local address, and the invite she makes carries the
// public one, through which bob joins and reads.
func TestInvitesCarryTheHubsPublicURL(t *testing.T) {
	h := clienttest.NewHub(t, "sqlite")
	var target atomic.Pointer[string] // the hub's address, known once it started
	front := forwardTo(t, &target)
	public := "http://localhost:" + strconv.Itoa(front.Addr().(*net.TCPAddr).Port)
	h.Extra = "public_url: " + public + "/\n"
	h.Start()
	addr := strings.TrimPrefix(h.URL, "http://")
	target.Store(&addr)

	alice := newClient(t, "alice")
	server := must[policy.ID](t)(alice.CreateServer(ctx, "club", []string{h.URL}, ServerOptions{}))
	general := must[policy.ID](t)(alice.CreateChannel(ctx, server, policy.ChannelCreate{Name: "general", Durability: policy.Replicated}))
	token := must[string](t)(alice.Invite(ctx, server, 1, time.Hour, nil, nil))
	inv := must[*policy.Invite](t)(policy.DecodeInviteToken(token))
	if !slices.Equal(inv.Hubs, []string{public}) {
		t.Fatalf("the invite names hubs %q, want the public URL %q only", inv.Hubs, public)
	}
	bob := newClient(t, "bob")
	must[policy.ID](t)(bob.Join(ctx, token))
	must[*Sent](t)(alice.Send(ctx, server, general, "hello"))
	must[int](t)(bob.Sync(ctx, server, general, nil))
	if got := texts(t, bob, server, general); !slices.Equal(got, []string{"hello"}) {
		t.Fatalf("bob, through the public URL, reads %q", got)
	}
}

// forwardTo accepts TCP connections on a loopback port and forwards each
// to the address target holds then: a stand-in for a proxy or NAT.
func forwardTo(t *testing.T, target *atomic.Pointer[string]) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				addr := target.Load()
				if addr == nil {
					return
				}
				u, err := net.Dial("tcp4", *addr)
				if err != nil {
					return
				}
				defer u.Close()
				go io.Copy(u, c)
				io.Copy(c, u)
			}()
		}
	}()
	return l
}
