package policy

import (
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// A member's invite admits newcomers whatever their IDs sort as, when the
// joins name the heads their authors saw; and no admitted member is evicted
// by a concurrent join on the same invite, in any delivery order.
func TestJoinsThroughAMembersInviteNeverEvict(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 7))
		w := newWorld(t, "alice")
		inviter := w.do("alice", &RoleDefine{Name: "inviter", Rank: 10, Perms: PermInvite | PermRead | PermPost}, "").ID
		for _, m := range []string{"m1", "m2", "m3", "m4"} {
			w.do(m, &Join{Invite: w.invite("alice", 1, inviter).Raw}, "")
		}
		var events []*Event
		for _, e := range w.log.Events() {
			if e.ID != w.gen.ID {
				events = append(events, e)
			}
		}
		// Each member invites newcomers; the newcomers of one invite join
		// concurrently (each saw the log before any of them joined), so a
		// three-use invite may admit more than three: the documented overshoot.
		admitted := map[PublicKey]bool{}
		var joins []*Event
		for i, m := range []string{"m1", "m2", "m3", "m4"} {
			inv := w.invite(m, 3)
			heads := w.log.Heads()
			for k := range 5 {
				n := string(rune('a'+i)) + string(rune('0'+k))
				e := w.sign(IdentitySigner(seedKey("newcomer "+n)), heads, &Join{Invite: inv.Raw})
				joins = append(joins, e)
				admitted[e.Author] = true
			}
		}
		events = append(events, joins...)
		var want map[PublicKey]bool
		for perm := range 4 {
			delivered := slices.Clone(events)
			r.Shuffle(len(delivered), func(i, j int) { delivered[i], delivered[j] = delivered[j], delivered[i] })
			cut := len(delivered)
			if perm > 0 {
				cut = len(delivered) - r.IntN(len(joins)) // a partial prefix first, the rest later
			}
			l, err := Resolve(w.gen, delivered[:cut])
			if err != nil {
				t.Fatal(err)
			}
			before := map[PublicKey]bool{}
			for k := range admitted {
				if l.State().IsMember(k) {
					before[k] = true
				}
			}
			if err := l.AddAll(delivered[cut:]); err != nil {
				t.Fatal(err)
			}
			got := map[PublicKey]bool{}
			for k := range admitted {
				if l.State().IsMember(k) {
					got[k] = true
				}
			}
			for k := range before {
				if !got[k] {
					t.Fatalf("seed %d: %s was admitted and then evicted by later deliveries", seed, k)
				}
			}
			if len(got) != len(admitted) {
				t.Fatalf("seed %d: %d of %d newcomers admitted", seed, len(got), len(admitted))
			}
			if want == nil {
				want = got
			} else if !maps.Equal(got, want) {
				t.Fatalf("seed %d: delivery order %d admitted a different set", seed, perm)
			}
		}
	}
}

// A join that has seen an invite's last use is refused; uses are counted
// along causal history.
func TestInviteUsesAlongCausalHistory(t *testing.T) {
	w := newWorld(t, "alice")
	inv := w.invite("alice", 2)
	heads := w.log.Heads()
	a := w.sign(IdentitySigner(seedKey("a")), heads, &Join{Invite: inv.Raw})
	b := w.sign(IdentitySigner(seedKey("b")), heads, &Join{Invite: inv.Raw})
	c := w.sign(IdentitySigner(seedKey("c")), heads, &Join{Invite: inv.Raw})
	w.add(a, b, c) // three concurrent joins on a two-use invite: none has seen another
	for _, e := range []*Event{a, b, c} {
		w.expect(e, "")
	}
	late := w.sign(IdentitySigner(seedKey("d")), []ID{a.ID, b.ID}, &Join{Invite: inv.Raw})
	w.add(late)
	w.expect(late, CodeInviteExhausted)
	one := w.sign(IdentitySigner(seedKey("e")), []ID{c.ID}, &Join{Invite: inv.Raw}) // has seen one use: one left
	w.add(one)
	w.expect(one, "")
}

// A join counts every applied join through its invite among its ancestors,
// even behind an event dated before the invite (rejected "clock").
func TestInviteUsesBehindABackdatedEvent(t *testing.T) {
	w := newWorld(t, "alice")
	inv := w.invite("alice", 1)
	j1 := w.sign(IdentitySigner(seedKey("a")), w.log.Heads(), &Join{Invite: inv.Raw})
	w.add(j1)
	w.expect(j1, "")
	x, err := NewEvent(IdentitySigner(seedKey("alice")), w.server(), []ID{j1.ID}, inv.Issued-1000, &ChannelCreate{Name: "x", Durability: Replicated})
	if err != nil {
		t.Fatal(err)
	}
	w.add(x)
	w.expect(x, CodeClock)
	j2 := w.sign(IdentitySigner(seedKey("b")), []ID{x.ID}, &Join{Invite: inv.Raw})
	w.add(j2)
	w.expect(j2, CodeInviteExhausted)
}
