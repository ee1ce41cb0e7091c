package policy

import (
	"slices"
	"testing"
)

const modPerms = PermRead | PermPost | PermInvite | PermModerate | PermBan

// TestAuthorization walks every authorisation rule: each case builds a
// server, performs one act and checks that it is applied or rejected with
// the expected code.
func TestAuthorization(t *testing.T) {
	type setup struct {
		w                  *world
		admin, mod, member ID // roles
		general, secret    ID // channels
	}
	// base: alice creates; bob is admin (rank 100), carol and cat are mods
	// (rank 50), dave and dan are plain members; erin is an outsider.
	base := func(t *testing.T) *setup {
		w := newWorld(t, "alice")
		s := &setup{w: w}
		s.admin = w.role("alice", "admin", 100, PermAll)
		s.mod = w.role("alice", "mod", 50, modPerms)
		s.member = w.role("alice", "member", 10, PermRead|PermPost)
		s.general = w.channel("alice", "general", Replicated)
		s.secret = w.channel("alice", "secret", Strict)
		w.member("bob", s.admin)
		w.member("carol", s.mod)
		w.member("cat", s.mod)
		w.member("dave", s.member)
		w.member("dan")
		return s
	}
	cases := []struct {
		name string
		who  string
		act  func(s *setup) Content
		want Code
	}{
		{"creator defines role", "alice", func(s *setup) Content { return &RoleDefine{Name: "x", Rank: MaxRoleRank, Perms: PermAll} }, ""},
		{"admin defines lower role", "bob", func(s *setup) Content { return &RoleDefine{Name: "x", Rank: 99, Perms: PermBan} }, ""},
		{"admin defines role at own rank", "bob", func(s *setup) Content { return &RoleDefine{Name: "x", Rank: 100, Perms: PermRead} }, CodeRank},
		{"mod lacks manage_roles", "carol", func(s *setup) Content { return &RoleDefine{Name: "x", Rank: 1, Perms: PermRead} }, CodeForbidden},
		{"cannot give a permission one lacks", "carol", func(s *setup) Content {
			return &ChannelOverride{Channel: s.general, Role: s.member, Allow: PermManageServer}
		}, CodeForbidden},
		{"admin updates mod role", "bob", func(s *setup) Content { return &RoleUpdate{Role: s.mod, Name: "mod", Rank: 60, Perms: modPerms} }, ""},
		{"admin cannot raise role to own rank", "bob", func(s *setup) Content { return &RoleUpdate{Role: s.mod, Name: "mod", Rank: 100, Perms: modPerms} }, CodeRank},
		{"admin cannot edit own role", "bob", func(s *setup) Content { return &RoleUpdate{Role: s.admin, Name: "a", Rank: 10, Perms: PermAll} }, CodeRank},
		{"unknown role", "bob", func(s *setup) Content { return &RoleDelete{Role: Sum([]byte("nope"))} }, CodeUnknownRole},
		{"admin grants mod to member", "bob", func(s *setup) Content { return &RoleGrant{Role: s.mod, Member: pub("dave")} }, ""},
		{"grant twice conflicts", "bob", func(s *setup) Content { return &RoleGrant{Role: s.mod, Member: pub("carol")} }, CodeConflict},
		{"grant to non-member", "bob", func(s *setup) Content { return &RoleGrant{Role: s.mod, Member: pub("erin")} }, CodeNotMember},
		{"mod cannot revoke peer's role", "carol", func(s *setup) Content { return &RoleRevoke{Role: s.mod, Member: pub("cat")} }, CodeForbidden},
		{"admin revokes mod role", "bob", func(s *setup) Content { return &RoleRevoke{Role: s.mod, Member: pub("cat")} }, ""},
		{"mod bans member", "carol", func(s *setup) Content { return &Ban{Member: pub("dave"), Reason: "spam"} }, ""},
		{"mod bans outsider pre-emptively", "carol", func(s *setup) Content { return &Ban{Member: pub("erin")} }, ""},
		{"equal rank cannot ban", "carol", func(s *setup) Content { return &Ban{Member: pub("cat")} }, CodeRank},
		{"lower rank cannot ban higher", "carol", func(s *setup) Content { return &Ban{Member: pub("bob")} }, CodeRank},
		{"creator outranks every role", "alice", func(s *setup) Content { return &Ban{Member: pub("bob")} }, ""},
		{"creator cannot be banned", "bob", func(s *setup) Content { return &Ban{Member: pub("alice")} }, CodeRank},
		{"member without ban", "dave", func(s *setup) Content { return &Ban{Member: pub("dan")} }, CodeForbidden},
		{"outsider acts", "erin", func(s *setup) Content { return &ChannelCreate{Name: "x", Durability: Strict} }, CodeNotMember},
		{"unban of not banned", "carol", func(s *setup) Content { return &Unban{Member: pub("dave")} }, CodeConflict},
		{"member cannot create channel", "dave", func(s *setup) Content { return &ChannelCreate{Name: "x", Durability: Strict} }, CodeForbidden},
		{"admin archives channel", "bob", func(s *setup) Content {
			return &ChannelUpdate{Channel: s.general, Name: "general", Durability: Replicated, Archived: true}
		}, ""},
		{"update unknown channel", "bob", func(s *setup) Content {
			return &ChannelUpdate{Channel: Sum([]byte("x")), Name: "x", Durability: Replicated}
		}, CodeUnknownChannel},
		{"override role above own rank", "bob", func(s *setup) Content {
			return &ChannelOverride{Channel: s.general, Role: s.admin, Deny: PermPost}
		}, CodeRank},
		{"creator leaves", "alice", func(s *setup) Content { return &Leave{} }, CodeForbidden},
		{"member leaves", "dave", func(s *setup) Content { return &Leave{} }, ""},
		{"member changes policy", "dave", func(s *setup) Content { return &ServerPolicy{Name: "mine", Everyone: PermRead} }, CodeForbidden},
		{"admin changes policy", "bob", func(s *setup) Content { return &ServerPolicy{Name: "renamed", Everyone: PermRead} }, ""},
		{"admin grants storage", "bob", func(s *setup) Content { return &StorageGrant{Node: pub("hub1"), Channels: []ID{s.secret}} }, ""},
		{"grant unknown channel", "bob", func(s *setup) Content { return &StorageGrant{Node: pub("hub1"), Channels: []ID{Sum(nil)}} }, CodeUnknownChannel},
		{"mod cannot grant storage", "carol", func(s *setup) Content { return &StorageGrant{Node: pub("hub1")} }, CodeForbidden},
		{"revoke absent grant", "bob", func(s *setup) Content { return &StorageRevoke{Node: pub("hub1")} }, CodeConflict},
		{"revoke someone else's device", "dave", func(s *setup) Content {
			return &DeviceRevoke{Revocation: NewDeviceRevocation(seedKey("dan"), pub("dan-phone"), t0).Raw}
		}, CodeForbidden},
		{"revoke own device", "dave", func(s *setup) Content {
			return &DeviceRevoke{Revocation: NewDeviceRevocation(seedKey("dave"), pub("dave-phone"), t0).Raw}
		}, ""},
		{"mod revokes invite", "carol", func(s *setup) Content { return &InviteRevoke{Invite: Sum([]byte("inv"))} }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := base(t)
			before := s.w.state().Digest()
			e := s.w.do(tc.who, tc.act(s), tc.want)
			if after := s.w.state().Digest(); (tc.want == "") == (after == before) {
				t.Fatalf("%s: state changed=%v, want changed=%v", e.Kind, after != before, tc.want == "")
			}
		})
	}
}

func TestBannedMemberLaterEventsAndPostsInvalid(t *testing.T) {
	w := newWorld(t, "alice")
	ch := w.channel("alice", "general", Replicated)
	w.member("mallory")
	dev := deviceOf(t, "mallory", "mallory-laptop")
	if err := w.state().CheckEnvelope(w.envelope(dev, ch), w.now); err != nil {
		t.Fatalf("member post before ban: %v", err)
	}
	w.do("alice", &Ban{Member: pub("mallory")}, "")
	wantCode(t, w.state().CheckEnvelope(w.envelope(dev, ch), w.now), CodeBanned)
	w.doAs(dev, &Leave{}, CodeBanned)
	w.do("mallory", &ChannelCreate{Name: "x", Durability: Strict}, CodeBanned)
	// A fresh invite does not bring a banned identity back: bans beat invites.
	w.do("mallory", &Join{Invite: w.invite("alice", 5).Raw}, CodeBanned)
	w.do("alice", &Unban{Member: pub("mallory")}, "")
	if w.state().IsMember(pub("mallory")) {
		t.Fatal("unban must not restore membership")
	}
	w.do("mallory", &Join{Invite: w.invite("alice", 5).Raw}, "")
}

func TestInvites(t *testing.T) {
	w := newWorld(t, "alice")
	mod := w.role("alice", "mod", 50, modPerms)
	high := w.role("alice", "high", 60, PermRead)
	w.member("carol", mod)

	t.Run("offline inviter's invite admits up to its uses", func(t *testing.T) {
		inv := w.invite("carol", 2)
		w.do("n1", &Join{Invite: inv.Raw}, "")
		w.do("n2", &Join{Invite: inv.Raw}, "")
		w.do("n3", &Join{Invite: inv.Raw}, CodeInviteExhausted)
		if got := w.state().InviteUses(inv.ID); got != 2 {
			t.Fatalf("uses = %d, want 2", got)
		}
	})
	t.Run("expired", func(t *testing.T) {
		inv := w.invite("carol", 1)
		w.now += msPerDay
		w.do("n4", &Join{Invite: inv.Raw}, CodeInviteExpired)
	})
	t.Run("revoked", func(t *testing.T) {
		inv := w.invite("carol", 1)
		w.do("alice", &InviteRevoke{Invite: inv.ID}, "")
		w.do("n5", &Join{Invite: inv.Raw}, CodeInviteRevoked)
	})
	t.Run("grants a role above the inviter", func(t *testing.T) {
		w.do("n6", &Join{Invite: w.invite("carol", 1, high).Raw}, CodeInvalidInvite)
	})
	t.Run("other server", func(t *testing.T) {
		other := newWorld(t, "zed")
		w.do("n7", &Join{Invite: other.invite("zed", 1).Raw}, CodeWrongServer)
	})
	t.Run("already a member", func(t *testing.T) {
		w.do("n1", &Join{Invite: w.invite("carol", 1).Raw}, CodeConflict)
	})
	t.Run("used after the inviter is banned", func(t *testing.T) {
		inv := w.invite("carol", 3)
		w.do("n8", &Join{Invite: inv.Raw}, "")
		w.do("alice", &Ban{Member: pub("carol")}, "")
		w.do("n9", &Join{Invite: inv.Raw}, CodeInvalidInvite)
	})
	t.Run("joiner gets the invite's roles", func(t *testing.T) {
		w.member("n10", mod)
		if got := w.state().MemberRoles(pub("n10")); !slices.Equal(got, []ID{mod}) {
			t.Fatalf("roles = %v", got)
		}
	})
}

// A demoted admin's concurrent actions fail: the creator's demotion and the
// admin's ban are concurrent (same parents); the creator outranks the admin,
// so the demotion is folded first and the ban is unauthorised, in every
// delivery order.
func TestDemotedAdminConcurrentActionsFail(t *testing.T) {
	for _, order := range []string{"demote first", "ban first"} {
		t.Run(order, func(t *testing.T) {
			w := newWorld(t, "alice")
			admin := w.role("alice", "admin", 100, PermAll)
			w.member("bob", admin)
			w.member("dave")
			heads := w.log.Heads()
			demote := w.sign(IdentitySigner(seedKey("alice")), heads, &RoleRevoke{Role: admin, Member: pub("bob")})
			ban := w.sign(IdentitySigner(seedKey("bob")), heads, &Ban{Member: pub("dave")})
			if order == "demote first" {
				w.add(demote, ban)
			} else {
				w.add(ban, demote)
			}
			w.expect(demote, "")
			w.expect(ban, CodeForbidden)
			if !w.state().IsMember(pub("dave")) {
				t.Fatal("dave was banned by a demoted admin")
			}
		})
	}
}

// Mutual bans: between equal ranks neither outranks the other, so both fail;
// between different ranks the higher is folded first and the lower's ban
// fails because its author is by then banned.
func TestMutualBans(t *testing.T) {
	for _, tc := range []struct {
		name           string
		rankA, rankB   uint32
		wantA, wantB   Code
		memberA, membB bool
	}{
		{"equal ranks", 50, 50, CodeRank, CodeRank, true, true},
		{"A outranks B", 60, 50, "", CodeBanned, true, false},
		{"B outranks A", 50, 60, CodeBanned, "", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, "alice")
			ra := w.role("alice", "ra", tc.rankA, modPerms)
			rb := w.role("alice", "rb", tc.rankB, modPerms)
			w.member("a", ra)
			w.member("b", rb)
			heads := w.log.Heads()
			banB := w.sign(IdentitySigner(seedKey("a")), heads, &Ban{Member: pub("b")})
			banA := w.sign(IdentitySigner(seedKey("b")), heads, &Ban{Member: pub("a")})
			w.add(banA, banB)
			w.expect(banB, tc.wantA)
			w.expect(banA, tc.wantB)
			if w.state().IsMember(pub("a")) != tc.memberA || w.state().IsMember(pub("b")) != tc.membB {
				t.Fatalf("membership a=%v b=%v", w.state().IsMember(pub("a")), w.state().IsMember(pub("b")))
			}
		})
	}
}

func TestReadersFollowPermissions(t *testing.T) {
	w := newWorld(t, "alice")
	mod := w.role("alice", "mod", 50, modPerms)
	ch := w.channel("alice", "mods-only", Strict)
	w.member("carol", mod)
	w.member("dave")
	if got := w.state().Readers(ch); len(got) != 3 {
		t.Fatalf("readers before override = %d, want 3 (alice, carol, dave)", len(got))
	}
	w.do("alice", &ChannelOverride{Channel: ch, Deny: PermRead | PermPost}, "")
	w.do("alice", &ChannelOverride{Channel: ch, Role: mod, Allow: PermRead | PermPost}, "")
	want := []PublicKey{pub("alice"), pub("carol")}
	slices.SortFunc(want, PublicKey.Compare)
	if got := w.state().Readers(ch); !slices.Equal(got, want) {
		t.Fatalf("readers = %v, want %v", got, want)
	}
	w.do("alice", &RoleRevoke{Role: mod, Member: pub("carol")}, "")
	if got := w.state().Readers(ch); !slices.Equal(got, []PublicKey{pub("alice")}) {
		t.Fatalf("readers after demotion = %v", got)
	}
	w.do("alice", &RoleDelete{Role: mod}, "")
	if _, ok := w.state().Role(mod); ok {
		t.Fatal("role survives delete")
	}
}

func TestRevokedDevice(t *testing.T) {
	w := newWorld(t, "alice")
	ch := w.channel("alice", "general", Replicated)
	w.member("dave")
	phone, laptop := deviceOf(t, "dave", "dave-phone"), deviceOf(t, "dave", "dave-laptop")
	if err := w.state().CheckEnvelope(w.envelope(phone, ch), w.now); err != nil {
		t.Fatal(err)
	}
	w.doAs(laptop, &DeviceRevoke{Revocation: NewDeviceRevocation(seedKey("dave"), pub("dave-phone"), w.now).Raw}, "")
	wantCode(t, w.state().CheckEnvelope(w.envelope(phone, ch), w.now), CodeDeviceRevoked)
	w.doAs(phone, &Leave{}, CodeDeviceRevoked)
	if err := w.state().CheckEnvelope(w.envelope(laptop, ch), w.now); err != nil {
		t.Fatalf("other device: %v", err)
	}
}

func TestCheckEnvelope(t *testing.T) {
	w := newWorld(t, "alice")
	general := w.channel("alice", "general", Replicated)
	announce := w.channel("alice", "announce", Replicated)
	archived := w.channel("alice", "old", Replicated)
	w.do("alice", &ChannelOverride{Channel: announce, Deny: PermPost}, "")
	w.do("alice", &ChannelUpdate{Channel: archived, Name: "old", Durability: Replicated, Archived: true}, "")
	w.member("dave")
	dave := deviceOf(t, "dave", "dave-phone")
	erin := deviceOf(t, "erin", "erin-phone")
	other := newWorld(t, "zed")
	otherCh := other.channel("zed", "x", Replicated)

	for _, tc := range []struct {
		name string
		env  func() *Envelope
		now  int64
		want Code
	}{
		{"member posts", func() *Envelope { return w.envelope(dave, general) }, 0, ""},
		{"non-member", func() *Envelope { return w.envelope(erin, general) }, 0, CodeNotMember},
		{"no post permission", func() *Envelope { return w.envelope(dave, announce) }, 0, CodeForbidden},
		{"archived channel", func() *Envelope { return w.envelope(dave, archived) }, 0, CodeUnknownChannel},
		{"unknown channel", func() *Envelope { return w.envelope(dave, Sum([]byte("none"))) }, 0, CodeUnknownChannel},
		{"other server", func() *Envelope { return other.envelope(dave, otherCh) }, 0, CodeWrongServer},
		{"from the future", func() *Envelope { return w.envelope(dave, general) }, -MaxClockSkew - 2000, CodeClock},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.env()
			wantCode(t, w.state().CheckEnvelope(e, e.Time+tc.now), tc.want)
		})
	}
	t.Run("server size limit", func(t *testing.T) {
		w.do("alice", &ServerPolicy{Name: "test server", Everyone: PermRead | PermPost, MaxEnvelopeBytes: 600}, "")
		w.now += 1000
		e, err := NewEnvelope(dave, EnvelopeBody{Server: w.server(), Channel: general, Time: w.now, Ciphertext: make([]byte, 600)})
		if err != nil {
			t.Fatal(err)
		}
		wantCode(t, w.state().CheckEnvelope(e, w.now), CodeTooLarge)
	})
}

func TestStorageEligibility(t *testing.T) {
	w := newWorld(t, "alice")
	mod := w.role("alice", "mod", 50, modPerms)
	strict := w.channel("alice", "mods", Strict)
	repl := w.channel("alice", "general", Replicated)
	w.do("alice", &ChannelOverride{Channel: strict, Deny: PermRead}, "")
	w.do("alice", &ChannelOverride{Channel: strict, Role: mod, Allow: PermRead}, "")
	w.member("carol", mod)
	w.member("dave")
	hub, wide := pub("hub-strict"), pub("hub-wide")
	w.do("alice", &StorageGrant{Node: hub, Channels: []ID{strict}}, "")
	w.do("alice", &StorageGrant{Node: wide}, "")
	carolNode, daveNode, erinNode := deviceOf(t, "carol", "carol-home"), deviceOf(t, "dave", "dave-home"), deviceOf(t, "erin", "erin-home")
	s := w.state()
	for _, tc := range []struct {
		name string
		node PublicKey
		cert *DeviceCert
		ch   ID
		want Code
	}{
		{"granted hub, strict", hub, nil, strict, ""},
		{"granted hub, channel not named", hub, nil, repl, CodeNotEligible},
		{"server-wide grant, replicated", wide, nil, repl, ""},
		{"server-wide grant, strict", wide, nil, strict, CodeNotEligible},
		{"ungranted hub", pub("hub-x"), nil, repl, CodeNotEligible},
		{"reader's node, strict", carolNode.Cert.Device, carolNode.Cert, strict, ""},
		{"non-reader's node, strict", daveNode.Cert.Device, daveNode.Cert, strict, CodeNotEligible},
		{"member's node, replicated", daveNode.Cert.Device, daveNode.Cert, repl, ""},
		{"outsider's node, replicated", erinNode.Cert.Device, erinNode.Cert, repl, CodeNotEligible},
		{"cert for another node", pub("hub-x"), daveNode.Cert, repl, CodeNotEligible},
		{"unknown channel", hub, nil, Sum(nil), CodeUnknownChannel},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, s.MayStore(tc.node, tc.cert, tc.ch, w.now), tc.want) })
	}
	w.do("alice", &StorageRevoke{Node: hub}, "")
	wantCode(t, w.state().MayStore(hub, nil, strict, w.now), CodeNotEligible)
}

func TestTombstonesAndReceipts(t *testing.T) {
	w := newWorld(t, "alice")
	mod := w.role("alice", "mod", 50, modPerms)
	ch := w.channel("alice", "general", Guaranteed)
	w.member("carol", mod)
	w.member("dave")
	w.member("dan")
	env := w.envelope(deviceOf(t, "dave", "dave-phone"), ch)
	tomb := func(who string) *Tombstone {
		ts, err := NewTombstone(IdentitySigner(seedKey(who)), TombstoneBody{Server: w.server(), Channel: ch, Target: env.ID, TargetTime: env.Time, Time: w.now})
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	wantCode(t, w.state().CheckTombstone(tomb("dave"), env), "")
	wantCode(t, w.state().CheckTombstone(tomb("carol"), env), "")
	wantCode(t, w.state().CheckTombstone(tomb("dan"), env), CodeForbidden)
	wantCode(t, w.state().CheckTombstone(tomb("erin"), env), CodeNotMember)

	hub := IdentitySigner(seedKey("hub"))
	r := NewReceipt(hub, ReceiptBody{Envelope: env.ID, Server: w.server(), Channel: ch, Seq: 1, StoredAt: w.now})
	parsed, err := ParseReceipt(r.Raw)
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, w.state().CheckReceipt(parsed, env, nil, w.now), CodeNotEligible)
	w.do("alice", &StorageGrant{Node: hub.Identity}, "")
	wantCode(t, w.state().CheckReceipt(parsed, env, nil, w.now), "")
	other := w.envelope(deviceOf(t, "dave", "dave-phone"), ch)
	wantCode(t, w.state().CheckReceipt(parsed, other, nil, w.now), CodeMalformed)
	forged := NewReceipt(IdentitySigner(seedKey("mallory")), r.ReceiptBody)
	forged.Raw = resign(t, forged.Raw, hub.Identity)
	if _, err := ParseReceipt(forged.Raw); CodeOf(err) != CodeBadSignature {
		t.Fatalf("receipt re-attributed to another hub: %v", err)
	}
}

// resign rewrites the signed body of b so that it names key k in place of
// its signer, keeping the old signature: the forgery a tampering node would try.
func resign(t *testing.T, b []byte, k PublicKey) []byte {
	t.Helper()
	var s signed
	if err := decMode.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	var body ReceiptBody
	if err := decMode.Unmarshal(s.Body, &body); err != nil {
		t.Fatal(err)
	}
	body.Hub = k
	s.Body = marshal(body)
	return marshal(s)
}

func TestEventTimeNotBeforeParents(t *testing.T) {
	w := newWorld(t, "alice")
	e, err := NewEvent(IdentitySigner(seedKey("alice")), w.server(), w.log.Heads(), t0-1, &ChannelCreate{Name: "x", Durability: Strict})
	if err != nil {
		t.Fatal(err)
	}
	w.add(e)
	w.expect(e, CodeClock)
}

// Priorities among concurrent events use ranks in the state folded so far: a
// promotion folded first makes the promoted member's concurrent ban go before
// a lower-ranked rival's, whose ban then fails because its author is banned.
func TestPriorityUsesRanksAfterEarlierConcurrentEvents(t *testing.T) {
	w := newWorld(t, "alice")
	admin := w.role("alice", "admin", 100, modPerms)
	modHi := w.role("alice", "mod-hi", 60, modPerms)
	modLo := w.role("alice", "mod-lo", 50, modPerms)
	w.member("bob", modLo)
	w.member("carol", modHi)
	heads := w.log.Heads()
	promote := w.sign(IdentitySigner(seedKey("alice")), heads, &RoleGrant{Role: admin, Member: pub("bob")})
	bobBans := w.sign(IdentitySigner(seedKey("bob")), heads, &Ban{Member: pub("carol")})
	carolBans := w.sign(IdentitySigner(seedKey("carol")), heads, &Ban{Member: pub("bob")})
	w.add(carolBans, bobBans, promote)
	w.expect(promote, "")
	w.expect(bobBans, "")
	w.expect(carolBans, CodeBanned)
}

// An envelope older than its channel's retention is not acceptable: hubs
// delete such envelopes, and must not take them back from a peer. A
// channel without retention accepts any age.
func TestEnvelopeBeyondRetention(t *testing.T) {
	w := newWorld(t, "alice")
	brief := w.do("alice", &ChannelCreate{Name: "brief", Durability: Replicated, RetentionMs: 60_000}, "").ID
	forever := w.channel("alice", "forever", Replicated)
	dev := deviceOf(t, "alice", "alice-laptop")
	old, kept := w.envelope(dev, brief), w.envelope(dev, forever)
	if err := w.state().CheckEnvelope(old, old.Time+60_000); err != nil {
		t.Fatalf("at the retention's edge: %v", err)
	}
	wantCode(t, w.state().CheckEnvelope(old, old.Time+60_001), CodeExpired)
	if err := w.state().CheckEnvelope(kept, kept.Time+365*24*3600_000); err != nil {
		t.Fatalf("a channel without retention refused an old envelope: %v", err)
	}
}
