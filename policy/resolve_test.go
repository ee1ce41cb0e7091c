package policy

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// history generates a random, plausible state log: several identities act
// concurrently on random subsets of what came before, so the DAG has many
// forks, demotions race with the acts of the demoted, bans race with joins,
// and some events are unauthorised or out of time order.
type history struct {
	r        *rand.Rand
	gen      *Event
	events   []*Event
	roles    []ID
	channels []ID
	invites  []*Invite
	people   []string
}

func newHistory(tb testing.TB, seed uint64, n int) *history {
	tb.Helper()
	h := &history{r: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))}
	for i := range 8 {
		h.people = append(h.people, fmt.Sprintf("p%d", i))
	}
	creators := []PublicKey{pub("alice"), pub("bob")}
	slices.SortFunc(creators, PublicKey.Compare)
	g, err := NewEvent(IdentitySigner(seedKey("alice")), ID{}, nil, t0, &Genesis{Creators: creators, Policy: ServerPolicy{Name: "prop", Everyone: PermRead | PermPost}})
	if err != nil {
		tb.Fatal(err)
	}
	h.gen = g
	for len(h.events) < n {
		if e := h.next(tb); e != nil {
			h.events = append(h.events, e)
		}
	}
	return h
}

func (h *history) pick(xs []string) string { return xs[h.r.IntN(len(xs))] }

func (h *history) next(tb testing.TB) *Event {
	r := h.r
	all := append([]*Event{h.gen}, h.events...)
	// Parents: mostly recent events, sometimes old ones, 1..3 of them.
	var parents []ID
	maxT := int64(0)
	for range 1 + r.IntN(3) {
		var p *Event
		if r.IntN(4) > 0 {
			p = all[max(0, len(all)-1-r.IntN(4))]
		} else {
			p = all[r.IntN(len(all))]
		}
		parents = append(parents, p.ID)
		maxT = max(maxT, p.Time)
	}
	t := maxT + int64(r.IntN(3000))
	switch r.IntN(40) {
	case 0:
		t = maxT - 1 // out of time order: must be rejected identically everywhere
	case 1:
		t = maxT + 365*msPerDay // dated a year ahead, as replicated history may carry
	}
	author := "alice"
	switch r.IntN(10) {
	case 0, 1, 2:
	case 3:
		author = "bob"
	default:
		author = h.pick(h.people)
	}
	var c Content
	switch k := r.IntN(12); {
	case k == 0 || len(h.roles) == 0:
		c = &RoleDefine{Name: "r", Rank: uint32(1 + r.IntN(200)), Perms: Perm(r.Uint64()) & PermAll}
	case k <= 2:
		c = &RoleGrant{Role: h.roles[r.IntN(len(h.roles))], Member: pub(h.pick(h.people))}
	case k == 3:
		c = &RoleRevoke{Role: h.roles[r.IntN(len(h.roles))], Member: pub(h.pick(h.people))}
	case k == 4:
		c = &Ban{Member: pub(h.pick(h.people))}
	case k == 5:
		c = &Unban{Member: pub(h.pick(h.people))}
	case k <= 7:
		inviter := h.pick(append([]string{"alice", "bob"}, h.people...))
		var roles []ID
		if r.IntN(2) == 0 {
			roles = []ID{h.roles[r.IntN(len(h.roles))]}
		}
		nonce := make([]byte, 16)
		for i := range nonce {
			nonce[i] = byte(r.Uint32())
		}
		inv, err := NewInvite(IdentitySigner(seedKey(inviter)), InviteBody{Server: h.gen.ID, Issued: t - 500, Expires: t + int64(r.IntN(20000)), Uses: uint32(1 + r.IntN(3)), Roles: roles, Nonce: nonce})
		if err != nil {
			tb.Fatal(err)
		}
		if len(h.invites) > 0 && r.IntN(3) == 0 {
			inv = h.invites[r.IntN(len(h.invites))] // reuse: exhaust uses, race revocations
		}
		h.invites = append(h.invites, inv)
		c = &Join{Invite: inv.Raw}
	case k == 8:
		c = &Leave{}
	case k == 9 || len(h.channels) == 0:
		c = &ChannelCreate{Name: "c", Durability: Durability(1 + r.IntN(3))}
	case k == 10:
		c = &ChannelOverride{Channel: h.channels[r.IntN(len(h.channels))], Role: h.roles[r.IntN(len(h.roles))], Deny: PermRead}
	default:
		if len(h.invites) == 0 {
			return nil
		}
		c = &InviteRevoke{Invite: h.invites[r.IntN(len(h.invites))].ID}
	}
	e, err := NewEvent(IdentitySigner(seedKey(author)), h.gen.ID, parents, t, c)
	if err != nil {
		tb.Fatal(err)
	}
	switch c.(type) {
	case *RoleDefine:
		h.roles = append(h.roles, e.ID)
	case *ChannelCreate:
		h.channels = append(h.channels, e.ID)
	}
	return e
}

// fingerprint captures everything resolution decides.
func fingerprint(l *Log) string {
	s := fmt.Sprintf("state %s heads %v pending %v\n", l.State().Digest(), l.Heads(), l.Pending())
	for _, id := range l.Order() {
		_, reason := l.Outcome(id)
		s += fmt.Sprintf("%s %s\n", id, CodeOf(reason))
	}
	return s
}

// TestResolutionIsOrderIndependent: random DAGs, delivered whole in random
// permutations, one by one in random orders (exercising the incremental path
// and pending events), and as random partial prefixes later completed, always
// resolve to the same order, outcomes and state.
func TestResolutionIsOrderIndependent(t *testing.T) {
	histories, size := 60, 80
	if testing.Short() {
		histories = 10
	}
	applied, rejected := 0, 0
	for seed := range uint64(histories) {
		h := newHistory(t, seed, size)
		want, err := Resolve(h.gen, h.events)
		if err != nil {
			t.Fatal(err)
		}
		ref := fingerprint(want)
		for _, id := range want.Order() {
			if _, reason := want.Outcome(id); reason == nil {
				applied++
			} else {
				rejected++
			}
		}
		for trial := range 4 {
			perm := slices.Clone(h.events)
			h.r.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
			var l *Log
			switch trial {
			case 0: // all at once
				l, err = Resolve(h.gen, perm)
			case 1: // in generation order, one by one: the incremental path and
				// re-folds from frequent checkpoints
				l, err = NewLog(h.gen)
				l.every, l.keep = 3, 2
				for _, e := range h.events {
					err = l.Add(e)
				}
			default: // a random prefix one by one, check it is consistent, then the rest
				l, err = NewLog(h.gen)
				l.every, l.keep = 1+trial, trial
				cut := h.r.IntN(len(perm))
				for _, e := range perm[:cut] {
					err = l.Add(e)
				}
				part, _ := Resolve(h.gen, perm[:cut])
				if got, want := fingerprint(l), fingerprint(part); got != want {
					t.Fatalf("seed %d: prefix of %d added one by one differs from resolving it whole:\n%s\nvs\n%s", seed, cut, got, want)
				}
				err = l.AddAll(perm[cut:])
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fingerprint(l); got != ref {
				t.Fatalf("seed %d trial %d: resolution depends on delivery order:\n%s\nvs\n%s", seed, trial, got, ref)
			}
		}
	}
	// The generator must exercise both outcomes, or the property is vacuous.
	if applied < histories*10 || rejected < histories*10 {
		t.Fatalf("histories too tame: %d applied, %d rejected", applied, rejected)
	}
	t.Logf("%d events applied, %d rejected", applied, rejected)
}

func TestPendingUntilAncestorArrives(t *testing.T) {
	w := newWorld(t, "alice")
	a := w.sign(IdentitySigner(seedKey("alice")), nil, &ChannelCreate{Name: "a", Durability: Strict})
	b := w.sign(IdentitySigner(seedKey("alice")), []ID{a.ID}, &ChannelCreate{Name: "b", Durability: Strict})
	w.add(b)
	if folded, _ := w.log.Outcome(b.ID); folded || len(w.log.Pending()) != 1 {
		t.Fatalf("event with a missing parent was folded (pending %v)", w.log.Pending())
	}
	if len(w.state().Channels()) != 0 {
		t.Fatal("pending event changed the state")
	}
	w.add(a)
	w.expect(a, "")
	w.expect(b, "")
	if got := w.log.Heads(); !slices.Equal(got, []ID{b.ID}) {
		t.Fatalf("heads = %v", got)
	}
}

func TestLogRejectsForeignEvents(t *testing.T) {
	w, other := newWorld(t, "alice"), newWorld(t, "zed")
	wantCode(t, w.log.Add(other.gen), CodeWrongServer)
	e := other.sign(IdentitySigner(seedKey("zed")), nil, &Leave{})
	wantCode(t, w.log.Add(e), CodeWrongServer)
	if _, err := NewLog(e); CodeOf(err) != CodeMalformed {
		t.Fatalf("log from a non-genesis event: %v", err)
	}
	g, _ := NewEvent(IdentitySigner(seedKey("mallory")), ID{}, nil, t0, &Genesis{Creators: []PublicKey{pub("alice")}, Policy: ServerPolicy{Name: "x"}})
	if _, err := NewLog(g); CodeOf(err) != CodeForbidden {
		t.Fatalf("genesis by a non-creator: %v", err)
	}
}
