package policy

import (
	"slices"
	"strings"
	"testing"
)

func TestCheckFresh(t *testing.T) {
	for _, tc := range []struct {
		at   int64
		want Code
	}{
		{t0, ""}, {t0 + MaxClockSkew, ""}, {t0 - MaxClockSkew, ""},
		{t0 + MaxClockSkew + 1, CodeClock}, {t0 - MaxClockSkew - 1, CodeClock},
	} {
		wantCode(t, CheckFresh(tc.at, t0), tc.want)
	}
}

func TestTombstoneRejections(t *testing.T) {
	w := newWorld(t, "alice")
	ch := w.channel("alice", "general", Replicated)
	w.member("dave")
	w.member("dan")
	phone := deviceOf(t, "dave", "dave-phone")
	env := w.envelope(phone, ch)
	other := newWorld(t, "zed")
	tomb := func(s Signer, server, channel, target ID) *Tombstone {
		ts, err := NewTombstone(s, TombstoneBody{Server: server, Channel: channel, Target: target, TargetTime: env.Time, Time: w.now})
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	dave := IdentitySigner(seedKey("dave"))
	wantCode(t, w.state().CheckTombstone(tomb(phone, w.server(), ch, env.ID), env), "")
	wantCode(t, w.state().CheckTombstone(tomb(dave, other.server(), ch, env.ID), env), CodeWrongServer)
	wantCode(t, w.state().CheckTombstone(tomb(dave, w.server(), ch, Sum([]byte("x"))), env), CodeMalformed)
	wantCode(t, w.state().CheckTombstone(tomb(dave, w.server(), Sum([]byte("c")), env.ID), env), CodeMalformed)
	wrongTime, err := NewTombstone(dave, TombstoneBody{Server: w.server(), Channel: ch, Target: env.ID, TargetTime: env.Time + 1, Time: w.now})
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, w.state().CheckTombstone(wrongTime, env), CodeMalformed)
	// Ahead of its envelope, a tombstone is judged on what can be known:
	// server, channel, a target time and its author's standing. dan may not
	// delete dave's envelope, which CheckTombstone says once it arrives.
	dan := IdentitySigner(seedKey("dan"))
	wantCode(t, w.state().CheckEarlyTombstone(tomb(dan, w.server(), ch, env.ID)), "")
	wantCode(t, w.state().CheckTombstone(tomb(dan, w.server(), ch, env.ID), env), CodeForbidden)
	wantCode(t, w.state().CheckEarlyTombstone(tomb(dave, other.server(), ch, env.ID)), CodeWrongServer)
	wantCode(t, w.state().CheckEarlyTombstone(tomb(dave, w.server(), Sum([]byte("c")), env.ID)), CodeUnknownChannel)
	noTime, err := NewTombstone(dave, TombstoneBody{Server: w.server(), Channel: ch, Target: env.ID, Time: w.now})
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, w.state().CheckEarlyTombstone(noTime), CodeMalformed)
	wantCode(t, w.state().CheckEarlyTombstone(tomb(IdentitySigner(seedKey("zed")), w.server(), ch, env.ID)), CodeNotMember)
	w.doAs(deviceOf(t, "dave", "dave-laptop"), &DeviceRevoke{Revocation: NewDeviceRevocation(seedKey("dave"), pub("dave-phone"), w.now).Raw}, "")
	wantCode(t, w.state().CheckTombstone(tomb(phone, w.server(), ch, env.ID), env), CodeDeviceRevoked)
	w.do("alice", &Ban{Member: pub("dave")}, "")
	wantCode(t, w.state().CheckTombstone(tomb(dave, w.server(), ch, env.ID), env), CodeBanned)
	wantCode(t, w.state().CheckEarlyTombstone(tomb(dave, w.server(), ch, env.ID)), CodeBanned)
}

func TestInviteStructure(t *testing.T) {
	w := newWorld(t, "alice")
	alice := IdentitySigner(seedKey("alice"))
	good := InviteBody{Server: w.server(), Issued: t0, Expires: t0 + 1, Uses: 1, Nonce: make([]byte, 16)}
	many := make([]ID, maxInviteRoles+1)
	for i := range many {
		many[i] = Sum([]byte{byte(i)})
	}
	slices.SortFunc(many, ID.Compare)
	for _, tc := range []struct {
		name string
		mod  func(b *InviteBody)
		want Code
	}{
		{"valid", func(*InviteBody) {}, ""},
		{"no uses", func(b *InviteBody) { b.Uses = 0 }, CodeInvalidInvite},
		{"too many uses", func(b *InviteBody) { b.Uses = MaxInviteUses + 1 }, CodeInvalidInvite},
		{"expires at issue", func(b *InviteBody) { b.Expires = b.Issued }, CodeInvalidInvite},
		{"short nonce", func(b *InviteBody) { b.Nonce = b.Nonce[:15] }, CodeInvalidInvite},
		{"too many roles", func(b *InviteBody) { b.Roles = many }, CodeTooLarge},
		{"roles unsorted", func(b *InviteBody) { b.Roles = []ID{many[1], many[0]} }, CodeNonCanonical},
		{"too many hubs", func(b *InviteBody) { b.Hubs = slices.Repeat([]string{"https://h"}, maxHints+1) }, CodeTooLarge},
		{"long relay", func(b *InviteBody) { b.Relays = []string{strings.Repeat("r", maxHintLen+1)} }, CodeTooLarge},
		{"empty hint", func(b *InviteBody) { b.Hubs = []string{""} }, CodeMalformed},
		{"long dht key", func(b *InviteBody) { b.DHTKeys = [][]byte{make([]byte, maxHintLen+1)} }, CodeTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := good
			tc.mod(&b)
			_, err := NewInvite(alice, b)
			wantCode(t, err, tc.want)
		})
	}
	t.Run("device-signed invite, device revoked before the join", func(t *testing.T) {
		laptop := deviceOf(t, "alice", "alice-laptop")
		inv, err := NewInvite(laptop, InviteBody{Server: w.server(), Issued: w.now, Expires: w.now + msPerDay, Uses: 1, Nonce: make([]byte, 16)})
		if err != nil || inv.Device() != pub("alice-laptop") {
			t.Fatalf("invite device: %v", err)
		}
		w.do("alice", &DeviceRevoke{Revocation: NewDeviceRevocation(seedKey("alice"), pub("alice-laptop"), w.now).Raw}, "")
		w.do("newcomer", &Join{Invite: inv.Raw}, CodeInvalidInvite)
	})
}

func TestGenesisAndPolicyStructure(t *testing.T) {
	alice := IdentitySigner(seedKey("alice"))
	keys := make([]PublicKey, MaxCreators+1)
	for i := range keys {
		keys[i] = pub(string(rune('a' + i)))
	}
	slices.SortFunc(keys, PublicKey.Compare)
	for _, tc := range []struct {
		name string
		g    Genesis
		want Code
	}{
		{"no creators", Genesis{Policy: ServerPolicy{Name: "x"}}, CodeMalformed},
		{"too many creators", Genesis{Creators: keys, Policy: ServerPolicy{Name: "x"}}, CodeMalformed},
		{"creators unsorted", Genesis{Creators: []PublicKey{keys[1], keys[0]}, Policy: ServerPolicy{Name: "x"}}, CodeNonCanonical},
		{"no name", Genesis{Creators: keys[:1]}, CodeMalformed},
		{"envelope limit above protocol", Genesis{Creators: keys[:1], Policy: ServerPolicy{Name: "x", MaxEnvelopeBytes: MaxEnvelopeSize + 1}}, CodeTooLarge},
		{"long nonce", Genesis{Creators: keys[:1], Policy: ServerPolicy{Name: "x"}, Nonce: make([]byte, 33)}, CodeTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewEvent(alice, ID{}, nil, t0, &tc.g)
			wantCode(t, err, tc.want)
		})
	}
}

func TestOuterFrame(t *testing.T) {
	w := newWorld(t, "alice")
	good := w.gen.Raw
	var s signed
	if err := decMode.Unmarshal(good, &s); err != nil {
		t.Fatal(err)
	}
	long := func(n int) []byte { return []byte{0x59, byte(n >> 8), byte(n)} } // 2-byte length form
	for _, tc := range []struct {
		name string
		b    []byte
		want Code
	}{
		{"array length in long form", append([]byte{0x98, 0x02}, good[1:]...), CodeNonCanonical},
		{"body length in a longer form than needed", slices.Concat([]byte{0x82}, []byte{0x5a, 0, 0, byte(len(s.Body) >> 8), byte(len(s.Body))}, s.Body, []byte{0x58, 0x40}, s.Sig), CodeNonCanonical},
		{"signature length in long form", slices.Concat([]byte{0x82}, long(len(s.Body)), s.Body, long(64), s.Sig), CodeNonCanonical},
		{"three elements", slices.Concat([]byte{0x83}, good[1:], []byte{0x40}), CodeMalformed},
		{"body is a text string", slices.Concat([]byte{0x82, 0x60}, []byte{0x58, 0x40}, s.Sig), CodeMalformed},
		{"indefinite body", slices.Concat([]byte{0x82, 0x5f}, good[1:]), CodeMalformed},
		{"truncated length", []byte{0x82, 0x59, 0x01}, CodeMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseEvent(tc.b)
			wantCode(t, err, tc.want)
		})
	}
}

func TestParseEventsInParallel(t *testing.T) {
	h := newHistory(t, 7, 300)
	raws := make([][]byte, len(h.events))
	for i, e := range h.events {
		raws[i] = e.Raw
	}
	got, err := NewVerifier(0).ParseEvents(raws)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range got {
		if e.ID != h.events[i].ID {
			t.Fatalf("event %d out of place", i)
		}
	}
	bad := slices.Clone(raws)
	bad[200] = slices.Clone(bad[200])
	bad[200][len(bad[200])-1] ^= 1
	_, err = NewVerifier(0).ParseEvents(bad)
	wantCode(t, err, CodeBadSignature)
	if !strings.Contains(err.Error(), "event 200") {
		t.Fatalf("error does not name the failing event: %v", err)
	}
}

func TestRecordTieBreaks(t *testing.T) {
	node := IdentitySigner(seedKey("relay1"))
	mk := func(seq uint64, issued int64, addr string) *Record {
		r, err := NewRecord(node, RecordBody{Seq: seq, Roles: []string{RoleRelay}, Addrs: []string{addr}, Issued: issued, Expires: issued + 1000})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	older, later := mk(1, t0, "/a"), mk(1, t0+1, "/a")
	if !later.Newer(older) || older.Newer(later) {
		t.Fatal("same seq: later issue must win")
	}
	a, b := mk(1, t0, "/a"), mk(1, t0, "/b")
	if a.Newer(b) == b.Newer(a) {
		t.Fatal("same seq and issue: exactly one must win, by ID")
	}
}

func TestAuthProof(t *testing.T) {
	laptop := deviceOf(t, "bob", "bob-laptop")
	a, err := NewAuth(laptop, AuthBody{Hub: pub("hub"), Challenge: []byte("c"), Time: t0})
	if err != nil {
		t.Fatal(err)
	}
	if a.Author != pub("bob") || a.Device() != pub("bob-laptop") {
		t.Fatalf("proof names %s on %s", a.Author, a.Device())
	}
	_, err = NewAuth(IdentitySigner(seedKey("bob")), AuthBody{Hub: pub("hub"), Challenge: []byte("c"), Time: t0})
	wantCode(t, err, CodeCertInvalid)
	for _, c := range [][]byte{nil, make([]byte, MaxChallengeSize+1)} {
		_, err = NewAuth(laptop, AuthBody{Hub: pub("hub"), Challenge: c, Time: t0})
		wantCode(t, err, CodeMalformed)
	}
	_, err = NewAuth(laptop, AuthBody{Hub: pub("hub"), Challenge: []byte("c"), Time: t0 + 2*365*msPerDay})
	wantCode(t, err, CodeCertExpired)
	forged := slices.Clone(a.Raw)
	forged[len(forged)-1] ^= 1
	_, err = ParseAuth(forged)
	wantCode(t, err, CodeBadSignature)
	// A proof is not an envelope: domains separate the kinds.
	_, err = ParseEnvelope(a.Raw)
	if err == nil {
		t.Fatal("an auth proof parsed as an envelope")
	}
}

func TestMayRead(t *testing.T) {
	w := newWorld(t, "alice")
	general := w.channel("alice", "general", Replicated)
	mods := w.channel("alice", "mods", Replicated)
	w.do("alice", &ChannelOverride{Channel: mods, Deny: PermRead}, "")
	w.member("bob")
	w.member("carol")
	w.member("dave")
	w.doAs(deviceOf(t, "dave", "dave-laptop"), &DeviceRevoke{Revocation: NewDeviceRevocation(seedKey("dave"), pub("dave-phone"), w.now).Raw}, "")
	w.do("alice", &Ban{Member: pub("carol")}, "")
	cases := []struct {
		name    string
		who     PublicKey
		device  PublicKey
		channel ID
		want    Code
	}{
		{"member reads a channel", pub("bob"), pub("bob-laptop"), general, ""},
		{"member reads the state log", pub("bob"), pub("bob-laptop"), ID{}, ""},
		{"creator reads a closed channel", pub("alice"), pub("alice"), mods, ""},
		{"member without read permission", pub("bob"), pub("bob-laptop"), mods, CodeForbidden},
		{"unknown channel", pub("bob"), pub("bob-laptop"), Sum([]byte("nope")), CodeUnknownChannel},
		{"anonymous", PublicKey{}, PublicKey{}, general, CodeForbidden},
		{"non-member", pub("zed"), pub("zed-phone"), general, CodeNotMember},
		{"banned", pub("carol"), pub("carol-phone"), general, CodeBanned},
		{"revoked device", pub("dave"), pub("dave-phone"), general, CodeDeviceRevoked},
		{"other device of the same member", pub("dave"), pub("dave-laptop"), general, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantCode(t, w.state().MayRead(c.who, c.device, c.channel), c.want) })
	}
	for _, c := range []struct {
		who, device PublicKey
		want        Code
	}{
		{pub("bob"), pub("bob-laptop"), ""},
		{PublicKey{}, PublicKey{}, CodeForbidden},
		{pub("zed"), pub("zed-phone"), CodeNotMember},
		{pub("carol"), pub("carol-phone"), CodeBanned},
		{pub("dave"), pub("dave-phone"), CodeDeviceRevoked},
	} {
		wantCode(t, w.state().MayUpload(c.who, c.device), c.want)
	}
	w.do("alice", &ServerPolicy{Name: "open book", Everyone: PermRead | PermPost, PublicHistory: true}, "")
	wantCode(t, w.state().MayRead(PublicKey{}, PublicKey{}, general), "")
	wantCode(t, w.state().MayUpload(PublicKey{}, PublicKey{}), CodeForbidden)
	w.do("alice", &ServerPolicy{Name: "read only", Everyone: PermRead}, "")
	wantCode(t, w.state().MayUpload(pub("bob"), pub("bob-laptop")), CodeForbidden)
	wantCode(t, w.state().MayRead(PublicKey{}, PublicKey{}, Sum([]byte("nope"))), CodeUnknownChannel)
}

func TestParsePermAndDurability(t *testing.T) {
	for p := Perm(0); p <= PermAll; p += 7 {
		got, err := ParsePerm(p.String())
		if err != nil || got != p {
			t.Fatalf("%v: %v %v", p, got, err)
		}
	}
	if p, err := ParsePerm("read, post"); err != nil || p != PermRead|PermPost {
		t.Fatalf("%v %v", p, err)
	}
	if p, _ := ParsePerm("all"); p != PermAll {
		t.Fatal("all")
	}
	if _, err := ParsePerm("read,fly"); CodeOf(err) != CodeMalformed {
		t.Fatalf("unknown permission: %v", err)
	}
	for d := Strict; d <= Guaranteed; d++ {
		if got, err := ParseDurability(d.String()); err != nil || got != d {
			t.Fatal(d)
		}
	}
	if _, err := ParseDurability("eventual"); err == nil {
		t.Fatal("unknown durability parsed")
	}
}

// MustPurge follows the state: a hub granted the server holds its
// replicated channels until one is made strict, holds a strict one it is
// granted by name, and a home node holds what its owner may read, even
// once its own certificate has lapsed.
func TestMustPurge(t *testing.T) {
	w := newWorld(t, "alice")
	general := w.channel("alice", "general", Replicated)
	secret := w.channel("alice", "secret", Strict)
	w.do("alice", &StorageGrant{Node: pub("hub")}, "")
	w.member("bob")
	home := deviceOf(t, "bob", "bob-home")
	stranger := deviceOf(t, "eve", "eve-home")
	for _, tc := range []struct {
		name    string
		node    PublicKey
		cert    *DeviceCert
		channel ID
		want    bool
	}{
		{"granted hub, replicated channel", pub("hub"), nil, general, false},
		{"granted hub, strict channel", pub("hub"), nil, secret, true},
		{"ungranted hub", pub("other"), nil, general, true},
		{"a member's home node, replicated channel", home.Cert.Device, home.Cert, general, false},
		{"a member's home node, strict channel it may read", home.Cert.Device, home.Cert, secret, false},
		{"a stranger's home node", stranger.Cert.Device, stranger.Cert, general, true},
		{"an unknown channel", pub("other"), nil, Sum([]byte("none")), false},
	} {
		if got := w.state().MustPurge(tc.node, tc.cert, tc.channel); got != tc.want {
			t.Errorf("%s: MustPurge %v, want %v", tc.name, got, tc.want)
		}
	}
	w.do("alice", &ChannelUpdate{Channel: general, Name: "general", Durability: Strict}, "")
	if !w.state().MustPurge(pub("hub"), nil, general) {
		t.Error("a granted hub keeps a channel made strict")
	}
	w.do("alice", &StorageGrant{Node: pub("hub"), Channels: []ID{general}}, "")
	if w.state().MustPurge(pub("hub"), nil, general) {
		t.Error("a hub granted the strict channel by name must purge it")
	}
}
