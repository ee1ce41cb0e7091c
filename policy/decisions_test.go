package policy

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"
)

// decisionVectors pin the storage-side decisions of PROTOCOL §5.6 (what a
// hub stores of a publication, of a peer's batch, what it sends a peer) on
// one resolved log, so that another implementation can check its rules
// without reading Go. Every case is judged against the log of Genesis plus
// Log, resolved.
type decisionVectors struct {
	Genesis string         `json:"genesis"` // hex
	Log     []string       `json:"log"`     // hex events, any order
	Now     int64          `json:"now"`     // Unix ms at which time-dependent rules are judged
	Cases   []decisionCase `json:"cases"`
}

type decisionCase struct {
	Name string `json:"name"`
	// Rule: "server_events" (the batch against Server), "live_events"
	// (Server, judged at Now), "publication",
	// "replicable", "replicate" (Node, Cert, Channel), "owner_acts" (Owner).
	Rule    string   `json:"rule"`
	Server  string   `json:"server,omitempty"`
	Events  []string `json:"events,omitempty"` // hex
	Node    string   `json:"node,omitempty"`   // text key
	Cert    string   `json:"cert,omitempty"`   // hex device certificate
	Channel string   `json:"channel,omitempty"`
	Owner   string   `json:"owner,omitempty"`
	Want    string   `json:"want"`           // the Code, "" when allowed; for owner_acts "true"/"false"
	Kept    []string `json:"kept,omitempty"` // replicable: the IDs kept, in batch order
}

func generateDecisions(t testing.TB) decisionVectors {
	w := newWorld(t, "alice")
	r := &recorder{world: w}
	general := r.do("alice", &ChannelCreate{Name: "general", Durability: Replicated}, "").ID
	mods := r.do("alice", &ChannelCreate{Name: "mods", Durability: Strict}, "").ID
	r.do("alice", &StorageGrant{Node: pub("hub"), Channels: []ID{mods}}, "")
	r.do("bob", &Join{Invite: w.invite("alice", 1).Raw}, "")
	carolsInvite := w.invite("alice", 1)
	r.do("carol", &Join{Invite: carolsInvite.Raw}, "")
	r.do("alice", &Ban{Member: pub("carol")}, "")
	for i := range MaxBehind + 4 { // a long tail of history (bob may not create channels: folded, rejected)
		r.do("bob", &ChannelCreate{Name: fmt.Sprintf("tail %d", i), Durability: Replicated}, CodeForbidden)
	}
	dv := decisionVectors{Genesis: hex.EncodeToString(w.gen.Raw), Now: w.now}
	for _, e := range r.events {
		dv.Log = append(dv.Log, hex.EncodeToString(e.Raw))
	}
	ev := func(who string, c Content) *Event { return w.sign(IdentitySigner(seedKey(who)), nil, c) }
	topic := func(n string) Content { return &ChannelCreate{Name: n, Durability: Replicated} }
	hexes := func(es ...*Event) []string {
		var out []string
		for _, e := range es {
			out = append(out, hex.EncodeToString(e.Raw))
		}
		return out
	}
	other := newWorld(t, "zed")
	add := func(c decisionCase) { dv.Cases = append(dv.Cases, c) }

	add(decisionCase{Name: "a batch of the server", Rule: "server_events", Server: w.server().String(), Events: hexes(w.gen, ev("bob", topic("a")))})
	add(decisionCase{Name: "another server's genesis", Rule: "server_events", Server: w.server().String(), Events: hexes(other.gen), Want: string(CodeWrongServer)})

	stale := func(who string, time int64) *Event {
		e, err := NewEvent(IdentitySigner(seedKey(who)), w.server(), w.log.Heads(), time, topic("stale"))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	add(decisionCase{Name: "a fresh live publication", Rule: "live_events", Server: w.server().String(), Events: hexes(stale("bob", dv.Now))})
	add(decisionCase{Name: "a live event a year ahead", Rule: "live_events", Server: w.server().String(), Events: hexes(stale("bob", dv.Now+365*msPerDay)), Want: string(CodeClock)})
	add(decisionCase{Name: "a live event backdated beyond the skew", Rule: "live_events", Server: w.server().String(), Events: hexes(stale("bob", dv.Now-MaxClockSkew-1)), Want: string(CodeClock)})

	joinDave := ev("dave", &Join{Invite: w.invite("alice", 1).Raw})
	add(decisionCase{Name: "a member's event", Rule: "publication", Events: hexes(ev("bob", topic("b")))})
	add(decisionCase{Name: "a stranger's join", Rule: "publication", Events: hexes(joinDave)})
	add(decisionCase{Name: "a joiner acts beside its join", Rule: "publication", Events: hexes(joinDave, ev("dave", topic("c")))})
	add(decisionCase{Name: "a new join through a used-up invite", Rule: "publication", Events: hexes(ev("erin", &Join{Invite: carolsInvite.Raw})), Want: string(CodeInviteExhausted)})
	add(decisionCase{Name: "the join that used it, published again", Rule: "publication", Events: hexes(r.events[4])})
	add(decisionCase{Name: "a stranger acts", Rule: "publication", Events: hexes(ev("dave", topic("d"))), Want: string(CodeNotMember)})
	add(decisionCase{Name: "a banned member acts", Rule: "publication", Events: hexes(ev("carol", topic("e"))), Want: string(CodeBanned)})
	add(decisionCase{Name: "one stranger's act refuses the publication", Rule: "publication", Events: hexes(ev("bob", topic("f")), ev("dave", topic("g"))), Want: string(CodeNotMember)})

	onlyGenesis := w.sign(IdentitySigner(seedKey("bob")), []ID{w.gen.ID}, topic("h"))
	add(decisionCase{Name: "a member's event naming only the genesis, far behind the heads", Rule: "publication", Events: hexes(onlyGenesis), Want: string(CodeStale)})
	add(decisionCase{Name: "an event naming the genesis and the last folded event", Rule: "publication",
		Events: hexes(w.sign(IdentitySigner(seedKey("bob")), []ID{w.gen.ID, r.events[len(r.events)-1].ID}, topic("i")))})
	add(decisionCase{Name: "an event naming a parent the hub does not hold (it waits)", Rule: "publication",
		Events: hexes(w.sign(IdentitySigner(seedKey("bob")), []ID{w.gen.ID, Sum([]byte("not held"))}, topic("j")))})
	add(decisionCase{Name: "an event building on a stale one of the same publication", Rule: "publication",
		Events: hexes(onlyGenesis, w.sign(IdentitySigner(seedKey("bob")), []ID{onlyGenesis.ID}, topic("k"))), Want: string(CodeStale)})
	onHeads := ev("bob", topic("l"))
	add(decisionCase{Name: "an event building on a recent one of the same publication", Rule: "publication",
		Events: hexes(w.sign(IdentitySigner(seedKey("bob")), []ID{onHeads.ID}, topic("m")), onHeads)})
	add(decisionCase{Name: "one stale event refuses the publication", Rule: "publication", Events: hexes(onHeads, onlyGenesis), Want: string(CodeStale)})

	known := r.events[0]
	byBob := ev("bob", topic("bob's"))                          // folded as rejected (no permission): history, kept
	byCarol := ev("carol", topic("carol's"))                    // a banned member's: history, kept
	byEve := ev("eve", topic("eve's"))                          // never a member: left out
	eveJoin := ev("eve", &Join{Invite: w.invite("eve", 1).Raw}) // a join, kept whatever its fold
	add(decisionCase{Name: "a peer's batch", Rule: "replicable", Events: hexes(known, byBob, byCarol, byEve, eveJoin),
		Kept: []string{byBob.ID.String(), byCarol.ID.String(), eveJoin.ID.String()}})
	add(decisionCase{Name: "a peer's batch with another server's event", Rule: "replicable", Events: hexes(byBob, other.gen), Want: string(CodeWrongServer)})

	home := deviceOf(t, "bob", "bob-home")
	stranger := deviceOf(t, "eve", "eve-home")
	add(decisionCase{Name: "a granted hub, its channel", Rule: "replicate", Node: pub("hub").String(), Channel: mods.String()})
	add(decisionCase{Name: "a granted hub, another channel", Rule: "replicate", Node: pub("hub").String(), Channel: general.String(), Want: string(CodeNotEligible)})
	add(decisionCase{Name: "a granted hub, the state log", Rule: "replicate", Node: pub("hub").String(), Channel: ID{}.String()})
	add(decisionCase{Name: "a member's home node, the state log", Rule: "replicate", Node: home.Cert.Device.String(), Cert: hex.EncodeToString(home.Cert.Raw), Channel: ID{}.String()})
	add(decisionCase{Name: "a stranger's home node, the state log", Rule: "replicate", Node: stranger.Cert.Device.String(), Cert: hex.EncodeToString(stranger.Cert.Raw), Channel: ID{}.String(), Want: string(CodeNotEligible)})

	add(decisionCase{Name: "the owner creates the server", Rule: "owner_acts", Owner: pub("alice").String(), Events: hexes(w.gen), Want: "true"})
	add(decisionCase{Name: "the owner authors an event", Rule: "owner_acts", Owner: pub("bob").String(), Events: hexes(byBob), Want: "true"})
	coCreated := newWorld(t, "carol", "dave") // carol signs a genesis listing dave among the creators
	add(decisionCase{Name: "the owner only listed as a co-creator by someone else", Rule: "owner_acts", Owner: pub("dave").String(), Events: hexes(coCreated.gen), Want: "false"})
	add(decisionCase{Name: "nothing of the owner's", Rule: "owner_acts", Owner: pub("dave").String(), Events: hexes(w.gen, byBob), Want: "false"})
	return dv
}

// judge evaluates one decision case against the resolved log.
func judge(t testing.TB, l *Log, now int64, c decisionCase) (want string, kept []string) {
	var events []*Event
	for _, h := range c.Events {
		e, err := ParseEvent(unhex(t, h))
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		events = append(events, e)
	}
	code := func(err error) string { return string(CodeOf(err)) }
	switch c.Rule {
	case "server_events":
		server, err := ParseID(c.Server)
		if err != nil {
			t.Fatal(err)
		}
		return code(CheckServerEvents(server, events)), nil
	case "live_events":
		server, err := ParseID(c.Server)
		if err != nil {
			t.Fatal(err)
		}
		return code(CheckLiveEvents(server, events, now)), nil
	case "publication":
		return code(l.CheckPublication(events)), nil
	case "replicable":
		got, err := l.Replicable(events)
		for _, e := range got {
			kept = append(kept, e.ID.String())
		}
		return code(err), kept
	case "replicate":
		node, err := ParsePublicKey(c.Node)
		if err != nil {
			t.Fatal(err)
		}
		channel, err := ParseID(c.Channel)
		if err != nil {
			t.Fatal(err)
		}
		var cert *DeviceCert
		if c.Cert != "" {
			if cert, err = ParseDeviceCert(unhex(t, c.Cert)); err != nil {
				t.Fatal(err)
			}
		}
		return code(l.State().MayReplicate(node, cert, channel, now)), nil
	case "owner_acts":
		owner, err := ParsePublicKey(c.Owner)
		if err != nil {
			t.Fatal(err)
		}
		if OwnerActs(owner, events) {
			return "true", nil
		}
		return "false", nil
	}
	t.Fatalf("%s: unknown rule %q", c.Name, c.Rule)
	return "", nil
}

func TestDecisionVectors(t *testing.T) {
	gen := generateDecisions(t)
	if *update {
		writeJSON(t, "decisions.json", gen)
	}
	var dv decisionVectors
	file := readJSON(t, "decisions.json", &dv)
	if want, _ := json.MarshalIndent(gen, "", "  "); !bytes.Equal(append(want, '\n'), file) {
		t.Errorf("decisions.json differs from what the implementation generates (a rule or an encoding changed?)")
	}
	genesis, err := ParseEvent(unhex(t, dv.Genesis))
	if err != nil {
		t.Fatal(err)
	}
	var events []*Event
	for _, h := range dv.Log {
		e, err := ParseEvent(unhex(t, h))
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, e)
	}
	l, err := Resolve(genesis, events)
	if err != nil {
		t.Fatal(err)
	}
	if len(dv.Cases) == 0 {
		t.Fatal("no decision cases")
	}
	for _, c := range dv.Cases {
		t.Run(c.Name, func(t *testing.T) {
			got, kept := judge(t, l, dv.Now, c)
			if got != c.Want {
				t.Fatalf("%s: got %q, want %q", c.Rule, got, c.Want)
			}
			if c.Rule == "replicable" && c.Want == "" && !equalStrings(kept, c.Kept) {
				t.Fatalf("kept %v, want %v", kept, c.Kept)
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
