package policy

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"testing"
)

// benchServer builds a verified state log of n events shaped like a real
// community: roles and channels up front, then mostly joins, with role
// grants, channel overrides, bans and pairs of concurrent events that the
// next event merges. It returns the raw events and the resolved log.
func benchServer(b *testing.B, n int) (gen *Event, raws [][]byte, l *Log) {
	b.Helper()
	alice := IdentitySigner(seedKey("alice"))
	gen, err := NewEvent(alice, ID{}, nil, t0, &Genesis{Creators: []PublicKey{alice.Identity}, Policy: ServerPolicy{Name: "bench", Everyone: PermRead | PermPost}})
	if err != nil {
		b.Fatal(err)
	}
	l, _ = NewLog(gen)
	now := t0
	var roles, channels []ID
	add := func(s Signer, parents []ID, c Content) *Event {
		now++
		e, err := NewEvent(s, gen.ID, parents, now, c)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Add(e); err != nil {
			b.Fatal(err)
		}
		raws = append(raws, e.Raw)
		return e
	}
	for i := range 10 {
		roles = append(roles, add(alice, l.Heads(), &RoleDefine{Name: "role", Rank: uint32(10 * (i + 1)), Perms: modPerms}).ID)
	}
	for range 20 {
		channels = append(channels, add(alice, l.Heads(), &ChannelCreate{Name: "channel", Durability: Replicated}).ID)
	}
	inv, err := NewInvite(alice, InviteBody{Server: gen.ID, Issued: t0, Expires: t0 + 365*msPerDay, Uses: MaxInviteUses, Nonce: make([]byte, 16)})
	if err != nil {
		b.Fatal(err)
	}
	var members []PublicKey
	for i := 0; len(raws) < n; i++ {
		switch {
		case i%10 == 7 && len(members) > 0:
			add(alice, l.Heads(), &RoleGrant{Role: roles[i%len(roles)], Member: members[len(members)-1]})
		case i%50 == 13:
			add(alice, l.Heads(), &ChannelOverride{Channel: channels[i%len(channels)], Role: roles[i%len(roles)], Allow: PermModerate})
		case i%100 == 29 && len(members) > 0:
			add(alice, l.Heads(), &Ban{Member: members[i%len(members)]})
		case i%20 == 3 && len(members) > 1: // two concurrent acts, merged by the next event
			heads := l.Heads()
			add(alice, heads, &RoleGrant{Role: roles[(i+1)%len(roles)], Member: members[len(members)-2]})
			add(alice, heads, &ChannelOverride{Channel: channels[(i+1)%len(channels)], Deny: PermPost})
		default:
			k := memberKey(i)
			members = append(members, KeyOf(k))
			add(IdentitySigner(k), l.Heads(), &Join{Invite: inv.Raw})
		}
	}
	return gen, raws[:n], l
}

func memberKey(i int) ed25519.PrivateKey {
	var seed [32]byte
	binary.BigEndian.PutUint64(seed[:], uint64(i))
	seed = sha256.Sum256(seed[:])
	return ed25519.NewKeyFromSeed(seed[:])
}

// BenchmarkEd25519Verify is the reference: one raw signature check on a
// 1 KiB message, the floor under envelope validation.
func BenchmarkEd25519Verify(b *testing.B) {
	k := seedKey("x")
	msg := make([]byte, 1024)
	sig := ed25519.Sign(k, msg)
	pk := k.Public().(ed25519.PublicKey)
	for b.Loop() {
		if !ed25519.Verify(pk, msg, sig) {
			b.Fatal("verify")
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifies/s")
}

// BenchmarkEnvelopeValidation measures what a hub does per incoming 1 KiB
// envelope: decode with limits, canonical check, certificate (cached),
// signature, and the state checks against a server of 10,000 members.
func BenchmarkEnvelopeValidation(b *testing.B) {
	gen, _, l := benchServer(b, 10_000)
	s := l.State()
	member := memberKey(0)
	cert, err := NewDeviceCert(member, DeviceCertBody{Device: pub("bench-device"), KEM: KEMX25519, EncKey: encKey("d"), Issued: t0, Expires: t0 + 365*msPerDay})
	if err != nil {
		b.Fatal(err)
	}
	ch := s.Channels()[0].ID
	env, err := NewEnvelope(DeviceSigner(seedKey("bench-device"), cert), EnvelopeBody{Server: gen.ID, Channel: ch, Epoch: 1, Time: t0 + 1000, Ciphertext: make([]byte, 1024)})
	if err != nil {
		b.Fatal(err)
	}
	v := NewVerifier(0)
	b.SetBytes(int64(len(env.Raw)))
	for b.Loop() {
		e, err := v.Envelope(env.Raw)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.CheckEnvelope(e, t0+2000); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "envelopes/s")
}

// BenchmarkResolve10k resolves a 10,000-event log from its signed bytes:
// parallel verification of every event, then the deterministic fold.
func BenchmarkResolve10k(b *testing.B) {
	gen, raws, _ := benchServer(b, 10_000)
	for b.Loop() {
		events, err := NewVerifier(0).ParseEvents(raws)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Resolve(gen, events); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResolve10kVerified resolves 10,000 already verified events: the
// fold alone, what a node pays when re-resolving after a concurrent event.
func BenchmarkResolve10kVerified(b *testing.B) {
	gen, raws, _ := benchServer(b, 10_000)
	events, err := (*Verifier)(nil).ParseEvents(raws)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Resolve(gen, events); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyOne100k verifies and applies one new event (a join, on the
// current heads) to a resolved 100,000-event log.
func BenchmarkApplyOne100k(b *testing.B) {
	gen, _, l := benchServer(b, 100_000)
	inv, _ := NewInvite(IdentitySigner(seedKey("alice")), InviteBody{Server: gen.ID, Issued: t0, Expires: t0 + 365*msPerDay, Uses: MaxInviteUses, Nonce: make([]byte, 16)})
	now := t0 + 1_000_000
	i := 1_000_000
	v := NewVerifier(0)
	if _, err := v.invite(inv.Raw); err != nil { // a hub has seen the invite link before
		b.Fatal(err)
	}
	for b.Loop() {
		b.StopTimer()
		i++
		now++
		e, err := NewEvent(IdentitySigner(memberKey(i)), gen.ID, l.Heads(), now, &Join{Invite: inv.Raw})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		e, err = v.Event(e.Raw)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Add(e); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if l.Len() < 100_000 {
		b.Fatal("log too small")
	}
}

// BenchmarkApplyConcurrent100k applies an event concurrent with the latest
// one (it names the latest event's parents, not the latest event) to a
// resolved 100,000-event log: the re-fold from the nearest checkpoint that
// every non-head event costs. Signing and verification are not timed.
func BenchmarkApplyConcurrent100k(b *testing.B) {
	gen, _, l := benchServer(b, 100_000)
	inv, _ := NewInvite(IdentitySigner(seedKey("alice")), InviteBody{Server: gen.ID, Issued: t0, Expires: t0 + 365*msPerDay, Uses: MaxInviteUses, Nonce: make([]byte, 16)})
	now := t0 + 1_000_000
	i := 2_000_000
	for b.Loop() {
		b.StopTimer()
		i += 2
		now++
		base := l.Heads()
		first, err := NewEvent(IdentitySigner(memberKey(i)), gen.ID, base, now, &Join{Invite: inv.Raw})
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Add(first); err != nil {
			b.Fatal(err)
		}
		second, err := NewEvent(IdentitySigner(memberKey(i+1)), gen.ID, base, now, &Join{Invite: inv.Raw})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := l.Add(second); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEnvelopeValidationParallel is BenchmarkEnvelopeValidation on
// every core at once, sharing one Verifier and one State, as a hub does.
func BenchmarkEnvelopeValidationParallel(b *testing.B) {
	gen, _, l := benchServer(b, 10_000)
	s := l.State()
	cert, err := NewDeviceCert(memberKey(0), DeviceCertBody{Device: pub("bench-device"), KEM: KEMX25519, EncKey: encKey("d"), Issued: t0, Expires: t0 + 365*msPerDay})
	if err != nil {
		b.Fatal(err)
	}
	env, err := NewEnvelope(DeviceSigner(seedKey("bench-device"), cert), EnvelopeBody{Server: gen.ID, Channel: s.Channels()[0].ID, Epoch: 1, Time: t0 + 1000, Ciphertext: make([]byte, 1024)})
	if err != nil {
		b.Fatal(err)
	}
	v := NewVerifier(0)
	b.SetBytes(int64(len(env.Raw)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			e, err := v.Envelope(env.Raw)
			if err != nil {
				b.Error(err)
				return
			}
			if err := s.CheckEnvelope(e, t0+2000); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "envelopes/s")
}

// BenchmarkResolve10kStored resolves a 10,000-event log read back from a
// node's own store: every check but the events' signatures, then the fold
// (what a hub pays to load a log it evicted).
func BenchmarkResolve10kStored(b *testing.B) {
	gen, raws, _ := benchServer(b, 10_000)
	for b.Loop() {
		events, err := NewVerifier(0).ParseStoredEvents(raws)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Resolve(gen, events); err != nil {
			b.Fatal(err)
		}
	}
}
