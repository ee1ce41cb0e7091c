package policy

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"slices"
	"testing"
)

// t0 is the fixed clock every test starts from (Unix ms).
const t0 int64 = 1_767_225_600_000 // 2026-01-01T00:00:00Z

// seedKey derives a private key from a name: the same name, the same key,
// in every run and in the test vectors.
func seedKey(name string) ed25519.PrivateKey {
	if keysUsed != nil {
		keysUsed[name] = true
	}
	seed := sha256.Sum256([]byte("guildhall test key " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

// keysUsed, while not nil, records every name seedKey derives a key for:
// the vectors list a seed for each (tests in this package do not run in
// parallel).
var keysUsed map[string]bool

func pub(name string) PublicKey { return KeyOf(seedKey(name)) }

// encKey is a fixed X25519-sized encryption key for device certificates.
func encKey(name string) []byte {
	k := sha256.Sum256([]byte("guildhall test enc " + name))
	return k[:]
}

// deviceOf certifies the device named dev for identity id, valid for a year from t0.
func deviceOf(tb testing.TB, id, dev string) Signer {
	tb.Helper()
	c, err := NewDeviceCert(seedKey(id), DeviceCertBody{Device: pub(dev), KEM: KEMX25519, EncKey: encKey(dev), Issued: t0, Expires: t0 + 365*msPerDay})
	if err != nil {
		tb.Fatal(err)
	}
	return DeviceSigner(seedKey(dev), c)
}

// world is a server under test: a log and a clock that ticks one second per event.
type world struct {
	tb  testing.TB
	log *Log
	now int64
	gen *Event
}

// newWorld creates a server whose creators are the named identities (the
// first signs the genesis) and whose members may read and post by default.
func newWorld(tb testing.TB, creators ...string) *world {
	tb.Helper()
	var keys []PublicKey
	for _, c := range creators {
		keys = append(keys, pub(c))
	}
	slices.SortFunc(keys, PublicKey.Compare)
	g, err := NewEvent(IdentitySigner(seedKey(creators[0])), ID{}, nil, t0, &Genesis{
		Creators: keys, Policy: ServerPolicy{Name: "test server", Everyone: PermRead | PermPost},
	})
	if err != nil {
		tb.Fatal(err)
	}
	l, err := NewLog(g)
	if err != nil {
		tb.Fatal(err)
	}
	return &world{tb: tb, log: l, now: t0, gen: g}
}

func (w *world) server() ID    { return w.gen.ID }
func (w *world) state() *State { return w.log.State() }

// sign builds an event by the named identity on the given parents (the
// current heads when nil) at the next tick.
func (w *world) sign(s Signer, parents []ID, c Content) *Event {
	w.tb.Helper()
	if parents == nil {
		parents = w.log.Heads()
	}
	w.now += 1000
	e, err := NewEvent(s, w.server(), parents, w.now, c)
	if err != nil {
		w.tb.Fatalf("sign %s: %v", c.Kind(), err)
	}
	return e
}

// do signs an event by the named identity on the heads, adds it and checks
// its outcome: applied when want is "", else rejected with that code.
func (w *world) do(who string, c Content, want Code) *Event {
	w.tb.Helper()
	return w.doAs(IdentitySigner(seedKey(who)), c, want)
}

func (w *world) doAs(s Signer, c Content, want Code) *Event {
	w.tb.Helper()
	e := w.sign(s, nil, c)
	w.add(e)
	w.expect(e, want)
	return e
}

func (w *world) add(es ...*Event) {
	w.tb.Helper()
	for _, e := range es {
		if err := w.log.Add(e); err != nil {
			w.tb.Fatalf("add %s: %v", e.Kind, err)
		}
	}
}

func (w *world) expect(e *Event, want Code) {
	w.tb.Helper()
	folded, reason := w.log.Outcome(e.ID)
	if !folded {
		w.tb.Fatalf("%s by %s: not folded", e.Kind, e.Author)
	}
	if got := CodeOf(reason); got != want {
		w.tb.Fatalf("%s by %s: outcome %q (%v), want %q", e.Kind, e.Author, got, reason, want)
	}
}

// role defines a role as the named identity and returns its ID.
func (w *world) role(who, name string, rank uint32, perms Perm) ID {
	w.tb.Helper()
	return w.do(who, &RoleDefine{Name: name, Rank: rank, Perms: perms}, "").ID
}

func (w *world) channel(who, name string, d Durability) ID {
	w.tb.Helper()
	return w.do(who, &ChannelCreate{Name: name, Durability: d}, "").ID
}

// invite signs an invite by the named identity, valid for a day, n uses.
func (w *world) invite(who string, uses uint32, roles ...ID) *Invite {
	w.tb.Helper()
	nonce := sha256.Sum256([]byte(who + string(rune(w.now))))
	inv, err := NewInvite(IdentitySigner(seedKey(who)), InviteBody{Server: w.server(), Issued: w.now, Expires: w.now + msPerDay, Uses: uses, Roles: roles, Nonce: nonce[:16]})
	if err != nil {
		w.tb.Fatal(err)
	}
	return inv
}

// join makes the named identity a member through a fresh invite from inviter.
func (w *world) join(who, inviter string, roles ...ID) {
	w.tb.Helper()
	w.do(who, &Join{Invite: w.invite(inviter, 1, roles...).Raw}, "")
}

// member joins who with the given roles, invited by the creator "alice".
func (w *world) member(who string, roles ...ID) { w.join(who, "alice", roles...) }

func (w *world) envelope(s Signer, channel ID) *Envelope {
	w.tb.Helper()
	w.now += 1000
	e, err := NewEnvelope(s, EnvelopeBody{Server: w.server(), Channel: channel, Epoch: 1, Time: w.now, Ciphertext: []byte("opaque ciphertext")})
	if err != nil {
		w.tb.Fatal(err)
	}
	return e
}

func wantCode(tb testing.TB, err error, want Code) {
	tb.Helper()
	if got := CodeOf(err); got != want {
		tb.Fatalf("got %q (%v), want %q", got, err, want)
	}
	if want != "" && !errors.Is(err, &Error{Code: want}) {
		tb.Fatalf("errors.Is(%v, %s) is false", err, want)
	}
}
