package policy

import (
	"fmt"
	"slices"
	"testing"
)

// intakeWorld is a server with alice (creator), bob (member), mallory
// (banned) and a stranger, a replicated and a strict channel, and a hub
// granted the strict channel.
func intakeWorld(t *testing.T) (w *world, general, mods ID) {
	w = newWorld(t, "alice")
	general = w.channel("alice", "general", Replicated)
	mods = w.channel("alice", "mods", Strict)
	w.do("alice", &StorageGrant{Node: pub("hub"), Channels: []ID{mods}}, "")
	w.member("bob")
	w.member("mallory")
	w.do("alice", &Ban{Member: pub("mallory")}, "")
	return w, general, mods
}

func TestCheckServerEvents(t *testing.T) {
	w, _, _ := intakeWorld(t)
	other := newWorld(t, "zed")
	mine := w.sign(IdentitySigner(seedKey("bob")), nil, &ChannelCreate{Name: "x", Durability: Replicated})
	theirs := other.sign(IdentitySigner(seedKey("zed")), nil, &ChannelCreate{Name: "y", Durability: Replicated})
	for _, tc := range []struct {
		name   string
		server ID
		events []*Event
		want   Code
	}{
		{"own genesis", w.server(), []*Event{w.gen}, ""},
		{"own events", w.server(), []*Event{w.gen, mine}, ""},
		{"another server's genesis", w.server(), []*Event{other.gen}, CodeWrongServer},
		{"another server's event among ours", w.server(), []*Event{mine, theirs}, CodeWrongServer},
		{"our genesis under another ID", other.server(), []*Event{w.gen}, CodeWrongServer},
		{"nothing", w.server(), nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, CheckServerEvents(tc.server, tc.events), tc.want) })
	}
}

func TestCheckPublication(t *testing.T) {
	w, _, _ := intakeWorld(t)
	st := w.state()
	ev := func(who string, c Content) *Event { return w.sign(IdentitySigner(seedKey(who)), nil, c) }
	topic := func(n string) Content { return &ChannelCreate{Name: n, Durability: Replicated} }
	joinCarol := ev("carol", &Join{Invite: w.invite("alice", 1).Raw})
	joinMallory := ev("mallory", &Join{Invite: w.invite("alice", 1).Raw})
	selfJoin := ev("eve", &Join{Invite: w.invite("eve", 1000).Raw})
	other := newWorld(t, "zed")
	for _, tc := range []struct {
		name   string
		events []*Event
		want   Code
	}{
		{"a member acts", []*Event{ev("bob", topic("a"))}, ""},
		{"a genesis", []*Event{w.gen}, ""},
		{"a stranger's join alone", []*Event{joinCarol}, ""},
		{"a joiner acts in its own publication", []*Event{joinCarol, ev("carol", topic("b"))}, ""},
		{"a joiner's act without its join", []*Event{ev("carol", topic("c"))}, CodeNotMember},
		{"a banned member's join", []*Event{joinMallory}, CodeBanned},
		{"a banned member acts", []*Event{ev("mallory", topic("d"))}, CodeBanned},
		{"a banned member acts beside its own join", []*Event{joinMallory, ev("mallory", topic("e"))}, CodeBanned},
		{"a stranger's join on an invite it signed itself", []*Event{selfJoin}, CodeInvalidInvite},
		{"a stranger acts beside such a join", []*Event{selfJoin, ev("eve", topic("spam"))}, CodeInvalidInvite},
		{"a member's join again", []*Event{ev("bob", &Join{Invite: w.invite("alice", 1).Raw})}, CodeConflict},
		{"one stranger's act refuses the whole publication", []*Event{ev("bob", topic("f")), ev("dave", topic("g"))}, CodeNotMember},
		{"another server's event", []*Event{other.sign(IdentitySigner(seedKey("zed")), nil, topic("h"))}, CodeWrongServer},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, st.CheckPublication(tc.events), tc.want) })
	}
}

func TestOwnerActs(t *testing.T) {
	w, _, _ := intakeWorld(t)
	bobAct := w.sign(IdentitySigner(seedKey("bob")), nil, &ChannelCreate{Name: "x", Durability: Replicated})
	shared := newWorld(t, "carol", "bob") // carol signs a genesis naming bob among the creators
	for _, tc := range []struct {
		name   string
		owner  string
		events []*Event
		want   bool
	}{
		{"the owner creates the server", "alice", []*Event{w.gen}, true},
		{"the owner only listed as a co-creator by someone else", "bob", []*Event{shared.gen}, false},
		{"the owner authors an event", "bob", []*Event{bobAct}, true},
		{"someone else's genesis", "bob", []*Event{w.gen}, false},
		{"someone else's event", "carol", []*Event{w.gen, bobAct}, false},
		{"nothing", "alice", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := OwnerActs(pub(tc.owner), tc.events); got != tc.want {
				t.Fatalf("OwnerActs = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestReplicable(t *testing.T) {
	w, _, _ := intakeWorld(t)
	// A peer's copy of the log holds events this log lacks.
	peer, err := Resolve(w.gen, w.log.Events())
	if err != nil {
		t.Fatal(err)
	}
	known := w.log.Events()[1]
	sign := func(who string, c Content) *Event {
		w.now += 1000
		e, err := NewEvent(IdentitySigner(seedKey(who)), w.server(), peer.Heads(), w.now, c)
		if err != nil {
			t.Fatal(err)
		}
		if err := peer.Add(e); err != nil {
			t.Fatal(err)
		}
		return e
	}
	byMember := sign("bob", &ChannelCreate{Name: "bob's", Durability: Replicated})         // refused in its fold (no permission): history
	byBanned := sign("mallory", &ChannelCreate{Name: "mallory's", Durability: Replicated}) // by a member who was banned: history
	byStranger := sign("eve", &ChannelCreate{Name: "eve's", Durability: Replicated})       // never a member: refused
	strangerJoin := sign("eve", &Join{Invite: w.invite("eve", 1).Raw})                     // a join is kept, whatever its fold
	other := newWorld(t, "zed")

	got, err := w.log.Replicable([]*Event{known, byMember, byBanned, byStranger, strangerJoin})
	if err != nil {
		t.Fatal(err)
	}
	want := []*Event{byMember, byBanned, strangerJoin}
	if !slices.Equal(ids(got), ids(want)) {
		t.Fatalf("replicable = %v, want %v", ids(got), ids(want))
	}
	_, err = w.log.Replicable([]*Event{byMember, other.gen})
	wantCode(t, err, CodeWrongServer)
	if before := len(w.log.Events()); before != len(peer.Events())-4 {
		t.Fatalf("Replicable changed the log: %d events, peer %d", before, len(peer.Events()))
	}
}

func ids(es []*Event) []ID {
	out := make([]ID, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func TestEligibilityAndReplication(t *testing.T) {
	w, general, mods := intakeWorld(t)
	st := w.state()
	now := w.now
	bobHome := deviceOf(t, "bob", "bob-home")
	eveHome := deviceOf(t, "eve", "eve-home")
	for _, tc := range []struct {
		name    string
		node    PublicKey
		cert    *DeviceCert
		channel ID
		want    Code
	}{
		{"a granted hub, its strict channel", pub("hub"), nil, mods, ""},
		{"a granted hub, a channel it was not granted", pub("hub"), nil, general, CodeNotEligible},
		{"a granted hub, the state log", pub("hub"), nil, ID{}, ""},
		{"a member's home node, a replicated channel", bobHome.Cert.Device, bobHome.Cert, general, ""},
		{"a member's home node, the state log", bobHome.Cert.Device, bobHome.Cert, ID{}, ""},
		{"a stranger's home node, the state log", eveHome.Cert.Device, eveHome.Cert, ID{}, CodeNotEligible},
		{"a stranger's node, a channel", pub("carol"), nil, general, CodeNotEligible},
		{"a certificate for another device", pub("hub"), bobHome.Cert, general, CodeNotEligible},
		{"an unknown channel", pub("hub"), nil, Sum([]byte("nowhere")), CodeNotEligible},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, st.MayReplicate(tc.node, tc.cert, tc.channel, now), tc.want) })
	}
	if got := st.EligibleChannels(pub("hub"), nil, now); !slices.Equal(got, []ID{mods}) {
		t.Fatalf("hub eligible for %v, want only mods %v", got, mods)
	}
	if got := st.EligibleChannels(bobHome.Cert.Device, bobHome.Cert, now); !slices.Contains(got, general) {
		t.Fatalf("bob's home node eligible for %v, want general among them", got)
	}
}

func TestCheckIntake(t *testing.T) {
	w, general, mods := intakeWorld(t)
	phone := deviceOf(t, "bob", "bob-phone")
	inGeneral, inMods := w.envelope(phone, general), w.envelope(phone, mods)
	st, now := w.state(), w.now
	wantCode(t, st.CheckIntake(inMods, pub("hub"), nil, now), "")
	wantCode(t, st.CheckIntake(inGeneral, pub("hub"), nil, now), CodeNotEligible) // acceptable, but not this hub's to store
	wantCode(t, st.CheckIntake(inMods, pub("carol"), nil, now), CodeNotEligible)
	w.do("alice", &Ban{Member: pub("bob")}, "")
	wantCode(t, w.state().CheckIntake(inMods, pub("hub"), nil, now), CodeBanned) // the envelope's own check comes first
}

func TestMayReceiveKey(t *testing.T) {
	w, general, mods := intakeWorld(t)
	bob := deviceOf(t, "bob", "bob-phone")
	alice := deviceOf(t, "alice", "alice-phone")
	eve := deviceOf(t, "eve", "eve-phone")
	wantCode(t, w.state().MayReceiveKey(bob.Cert, mods, w.now), "")
	w.do("alice", &ChannelOverride{Channel: mods, Deny: PermRead}, "")
	now := w.now
	wantCode(t, w.state().MayReceiveKey(bob.Cert, general, now), "")
	wantCode(t, w.state().MayReceiveKey(alice.Cert, mods, now), "") // creators read everywhere
	wantCode(t, w.state().MayReceiveKey(bob.Cert, mods, now), CodeForbidden)
	wantCode(t, w.state().MayReceiveKey(eve.Cert, general, now), CodeForbidden)
	wantCode(t, w.state().MayReceiveKey(bob.Cert, Sum([]byte("nowhere")), now), CodeUnknownChannel)
	wantCode(t, w.state().MayReceiveKey(bob.Cert, general, bob.Cert.Expires+1), CodeCertExpired)
	w.doAs(deviceOf(t, "bob", "bob-laptop"), &DeviceRevoke{Revocation: NewDeviceRevocation(seedKey("bob"), bob.Cert.Device, w.now).Raw}, "")
	wantCode(t, w.state().MayReceiveKey(bob.Cert, general, now), CodeDeviceRevoked)
}

func TestMayHoldKey(t *testing.T) {
	w, general, _ := intakeWorld(t)
	bob := deviceOf(t, "bob", "bob-phone")
	w.do("alice", &ChannelOverride{Channel: general, Deny: PermRead}, "")
	st := w.state()
	wantCode(t, st.MayHoldKey(bob.Cert.Device, PublicKey{}, general), "") // identity unknown: only revocation counts
	wantCode(t, st.MayHoldKey(bob.Cert.Device, pub("bob"), general), CodeForbidden)
	wantCode(t, st.MayHoldKey(pub("alice-phone"), pub("alice"), general), "")
	wantCode(t, st.MayHoldKey(bob.Cert.Device, PublicKey{}, Sum([]byte("nowhere"))), CodeUnknownChannel)
	w.doAs(deviceOf(t, "bob", "bob-laptop"), &DeviceRevoke{Revocation: NewDeviceRevocation(seedKey("bob"), bob.Cert.Device, w.now).Raw}, "")
	wantCode(t, w.state().MayHoldKey(bob.Cert.Device, PublicKey{}, general), CodeDeviceRevoked)
}

func TestCheckLiveEvents(t *testing.T) {
	w, _, _ := intakeWorld(t)
	now := w.now + 1000
	at := func(time int64) *Event {
		e, err := NewEvent(IdentitySigner(seedKey("bob")), w.server(), w.log.Heads(), time, &ChannelCreate{Name: "x", Durability: Replicated})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	other := newWorld(t, "zed")
	for _, tc := range []struct {
		name   string
		events []*Event
		want   Code
	}{
		{"dated now", []*Event{at(now)}, ""},
		{"at the edge of the skew, ahead", []*Event{at(now + MaxClockSkew)}, ""},
		{"at the edge of the skew, behind", []*Event{at(now - MaxClockSkew)}, ""},
		{"a year ahead", []*Event{at(now + 365*msPerDay)}, CodeClock},
		{"just beyond the skew, ahead", []*Event{at(now + MaxClockSkew + 1)}, CodeClock},
		{"backdated beyond the skew", []*Event{at(now - MaxClockSkew - 1)}, CodeClock},
		{"one stale event refuses the batch", []*Event{at(now), at(now - 10*MaxClockSkew)}, CodeClock},
		{"another server's event, even if fresh", []*Event{other.gen}, CodeWrongServer},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, CheckLiveEvents(w.server(), tc.events, now), tc.want) })
	}
}

func TestParentsAt(t *testing.T) {
	w, _, _ := intakeWorld(t)
	if got, want := w.log.ParentsAt(w.now), w.log.Heads(); !slices.Equal(got, want) {
		t.Fatalf("no future events: parents %v, want the heads %v", got, want)
	}
	before := w.log.Heads()
	year := w.now + 365*msPerDay
	future, err := NewEvent(IdentitySigner(seedKey("bob")), w.server(), before, year, &ChannelCreate{Name: "later", Durability: Replicated})
	if err != nil {
		t.Fatal(err)
	}
	w.add(future) // as replicated history would bring it
	if heads := w.log.Heads(); !slices.Equal(heads, []ID{future.ID}) {
		t.Fatalf("heads %v, want the future event", heads)
	}
	now := w.now + 1000
	parents := w.log.ParentsAt(now)
	if !slices.Equal(parents, before) {
		t.Fatalf("parents %v, want the heads before the future event %v", parents, before)
	}
	// The creator's next event on those parents, dated now, takes effect.
	e, err := NewEvent(IdentitySigner(seedKey("alice")), w.server(), parents, now, &ChannelCreate{Name: "now", Durability: Replicated})
	if err != nil {
		t.Fatal(err)
	}
	w.add(e)
	w.expect(e, "")
	// Naming the future head instead, dated now, would be refused (clock).
	bad, err := NewEvent(IdentitySigner(seedKey("alice")), w.server(), []ID{future.ID}, now, &ChannelCreate{Name: "bad", Durability: Replicated})
	if err != nil {
		t.Fatal(err)
	}
	w.add(bad)
	w.expect(bad, CodeClock)
	// Once its time has come, nothing is left out: the parents are the heads.
	if got, heads := w.log.ParentsAt(year), w.log.Heads(); !slices.Equal(got, heads) {
		t.Fatalf("at the future event's time: parents %v, heads %v", got, heads)
	}
	if got := w.log.ParentsAt(now); slices.Contains(got, bad.ID) {
		t.Fatalf("parents at now %v name an event built on the future one", got)
	}
}

func TestMayReadLogWith(t *testing.T) {
	w, _, _ := intakeWorld(t)
	w.do("alice", &RoleDefine{Name: "noop", Rank: 1, Perms: PermRead}, "")
	byAlice, byBob, byMallory := w.invite("alice", 1), w.invite("bob", 1), w.invite("mallory", 1)
	w.do("alice", &RoleDefine{Name: "another", Rank: 2, Perms: PermRead}, "") // the clock moves: a distinct invite
	revoked := w.invite("alice", 1)
	w.do("alice", &InviteRevoke{Invite: revoked.ID}, "")
	other := newWorld(t, "zed")
	now := w.now
	for _, tc := range []struct {
		name string
		inv  *Invite
		at   int64
		want Code
	}{
		{"the creator's", byAlice, now, ""},
		{"a member's, who may not invite: members read and post only", byBob, now, CodeInvalidInvite},
		{"a banned member's", byMallory, now, CodeInvalidInvite},
		{"expired", byAlice, byAlice.Expires, CodeInviteExpired},
		{"revoked", revoked, now, CodeInviteRevoked},
		{"another server's", other.invite("zed", 1), now, CodeWrongServer},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, w.state().MayReadLogWith(tc.inv, tc.at), tc.want) })
	}
	// A used-up invite is no pass: newcomers read before they join.
	w.do("carol", &Join{Invite: byAlice.Raw}, "")
	wantCode(t, w.state().MayReadLogWith(byAlice, now), CodeInviteExhausted)
}

// However many concurrent heads a log has, an author names at most
// MaxParents of them, the event takes effect, and the log narrows.
func TestParentsAtBoundedWidth(t *testing.T) {
	w := newWorld(t, "alice")
	inv := w.invite("alice", 100)
	heads := w.log.Heads()
	for i := range 40 {
		w.add(w.sign(IdentitySigner(seedKey(fmt.Sprintf("newcomer %d", i))), heads, &Join{Invite: inv.Raw}))
	}
	if n := len(w.log.Heads()); n != 40 {
		t.Fatalf("%d heads, want 40", n)
	}
	for _, want := range []int{40 - MaxParents + 1, 40 - 2*MaxParents + 2, 1} {
		parents := w.log.ParentsAt(w.now + 1000)
		if len(parents) > MaxParents {
			t.Fatalf("%d parents named", len(parents))
		}
		e := w.sign(IdentitySigner(seedKey("alice")), parents, &ChannelCreate{Name: "c", Durability: Replicated})
		w.add(e)
		w.expect(e, "")
		if n := len(w.log.Heads()); n != want {
			t.Fatalf("after an event on %d parents: %d heads, want %d", len(parents), n, want)
		}
	}
}

// Of more than MaxParents heads an author names the one folded last even
// when it is the earliest by time, so that its event builds on recent
// history and hubs take it live (Log.CheckPublication, CodeStale).
func TestParentsAtNamesTheLastFoldedHead(t *testing.T) {
	w := newWorld(t, "alice")
	inv := w.invite("alice", 100)
	base := w.now
	heads := w.log.Heads()
	join := func(name string, at int64) *Event {
		e, err := NewEvent(IdentitySigner(seedKey(name)), w.server(), heads, at, &Join{Invite: inv.Raw})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	var joins []*Event
	for i := range MaxParents + 4 {
		joins = append(joins, join(fmt.Sprintf("newcomer %d", i), base+int64(10+i)*1000))
	}
	// Concurrent joins of equal rank fold in ID order: re-sign the earliest
	// (by time) until its ID is the largest, so that it is folded last.
	earliest := join("early 0", base+1000)
	for n := 1; slices.ContainsFunc(joins, func(e *Event) bool { return e.ID.Compare(earliest.ID) > 0 }); n++ {
		earliest = join(fmt.Sprintf("early %d", n), base+1000)
	}
	w.add(append(joins, earliest)...)
	if order := w.log.Order(); order[len(order)-1] != earliest.ID {
		t.Fatalf("the earliest join is not folded last")
	}
	parents := w.log.ParentsAt(base + 60_000)
	if len(parents) != MaxParents || !slices.Contains(parents, earliest.ID) {
		t.Fatalf("parents %v: want %d including the last folded head %s", parents, MaxParents, earliest.ID)
	}
}
