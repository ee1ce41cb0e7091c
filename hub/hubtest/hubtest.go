// Package hubtest builds hub services for tests: one on each storage
// profile, on a clock the test moves, with a community (a server, two
// channels, a moderator and a member) published through the service. The
// service's own tests and its HTTP layer's use the same fixture. It is for
// tests only and never starts a process or listens on a socket.
package hubtest

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
	"github.com/guildhall/guildhall/storage/profile"
	"github.com/guildhall/guildhall/storage/s3"
	"github.com/guildhall/guildhall/storage/storagetest"
)

// T0 is where every fixture's clock starts.
var T0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// Key returns the test key of a name ("alice", "hub", "dave-phone").
func Key(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("hub test key " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

// Profiles are the two ways a hub stores data: embedded (SQLite + files)
// and PostgreSQL + S3 (MinIO).
var Profiles = []string{"sqlite", "postgres"}

// EachProfile runs a test against every storage profile.
func EachProfile(t *testing.T, run func(t *testing.T, profile string)) {
	for _, p := range Profiles {
		t.Run(p, func(t *testing.T) { run(t, p) })
	}
}

// OpenProfile opens fresh metadata and blob stores of a profile: "sqlite"
// (in a temporary directory) or "postgres" (a fresh schema of
// GUILDHALL_TEST_POSTGRES and a fresh bucket of GUILDHALL_TEST_S3). They
// are closed when the test ends.
func OpenProfile(t testing.TB, name string, clock func() time.Time) (hub.Store, storage.BlobStore) {
	t.Helper()
	c := profile.Config{Dir: t.TempDir(), Now: clock}
	switch name {
	case "sqlite":
	case "postgres":
		c.PostgresURL, c.Schema, c.S3 = PostgresURL(t), fmt.Sprintf("h_%x", rand.Uint64()), S3Config(t)
	default:
		t.Fatalf("unknown profile %q", name)
	}
	st, err := profile.Open(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st.Meta, st.Blobs
}

// PostgresURL returns the test environment's PostgreSQL (storagetest.Require).
func PostgresURL(t testing.TB) string { return storagetest.Require(t, "GUILDHALL_TEST_POSTGRES") }

// S3Config names a fresh bucket of the test environment's MinIO.
func S3Config(t testing.TB) s3.Config {
	u, err := url.Parse(storagetest.Require(t, "GUILDHALL_TEST_S3"))
	if err != nil {
		t.Fatal(err)
	}
	return s3.Config{Endpoint: u.Host, AccessKey: os.Getenv("GUILDHALL_TEST_S3_ACCESS_KEY"),
		SecretKey: os.Getenv("GUILDHALL_TEST_S3_SECRET_KEY"), Bucket: fmt.Sprintf("h-%x", rand.Uint64()), CreateBucket: true}
}

// Fixture is a hub service on a storage profile and, after Community, a
// server that uses it.
type Fixture struct {
	T     *testing.T
	Store hub.Store
	Blobs storage.BlobStore
	Clock func() time.Time // the fixture's clock, which the service reads
	Hub   *hub.Service

	Gen     *policy.Event // the server's genesis (Community)
	Heads   []policy.ID   // what the next Event names as parents
	General policy.ID     // a replicated channel
	Mods    policy.ID     // a strict channel; readers: alice and carol

	mu  sync.Mutex // guards now
	now time.Time
}

// New starts a hub service (open admission, node key Key("hub")) on a
// storage profile; configure may change its configuration first.
func New(t *testing.T, profile string, configure ...func(*hub.Config)) *Fixture {
	t.Helper()
	f := &Fixture{T: t, now: T0}
	f.Clock = f.Now
	f.Store, f.Blobs = OpenProfile(t, profile, f.Clock)
	cfg := hub.Config{NodeKey: Key("hub"), Store: f.Store, Blobs: f.Blobs, Admission: hub.Open, Now: f.Clock}
	for _, c := range configure {
		c(&cfg)
	}
	var err error
	if f.Hub, err = hub.New(cfg); err != nil {
		t.Fatal(err)
	}
	return f
}

// Now reads the fixture's clock.
func (f *Fixture) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }

// Tick moves the clock by a second and returns the new time (Unix ms).
func (f *Fixture) Tick() int64 { return f.Advance(time.Second) }

// Advance moves the clock, which the hub's goroutines read.
func (f *Fixture) Advance(d time.Duration) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	return f.now.UnixMilli()
}

// Event signs an event by who on the current heads, at the next tick.
func (f *Fixture) Event(who string, c policy.Content) *policy.Event {
	f.T.Helper()
	var server policy.ID
	if f.Gen != nil {
		server = f.Gen.ID
	}
	e, err := policy.NewEvent(policy.IdentitySigner(Key(who)), server, f.Heads, f.Tick(), c)
	if err != nil {
		f.T.Fatal(err)
	}
	return e
}

// Publish publishes events of one server through the service; on success
// the last becomes the head.
func (f *Fixture) Publish(es ...*policy.Event) ([]hub.EventResult, error) {
	var raws [][]byte
	for _, e := range es {
		raws = append(raws, e.Raw)
	}
	server := es[0].Server
	if es[0].Kind == policy.EvGenesis {
		server = es[0].ID
	}
	res, err := f.Hub.PublishEvents(context.Background(), server, raws)
	if err == nil {
		f.Heads = []policy.ID{es[len(es)-1].ID}
	}
	return res, err
}

// MustPublish publishes events and fails the test unless each is applied.
func (f *Fixture) MustPublish(es ...*policy.Event) {
	f.T.Helper()
	res, err := f.Publish(es...)
	if err != nil {
		f.T.Fatal(err)
	}
	for _, r := range res {
		if !r.Folded || r.Reason != nil {
			f.T.Fatalf("event %s: folded %v, %v", r.ID, r.Folded, r.Reason)
		}
	}
}

// Community creates a server with a replicated and a strict channel, grants
// this hub the server and the strict channel, and admits carol (mod) and dave.
func (f *Fixture) Community() {
	f.T.Helper()
	f.Gen = f.Event("alice", &policy.Genesis{Creators: []policy.PublicKey{policy.KeyOf(Key("alice"))}, Policy: policy.ServerPolicy{Name: "c", Everyone: policy.PermRead | policy.PermPost}})
	f.Heads = nil
	f.MustPublish(f.Gen)
	f.Heads = []policy.ID{f.Gen.ID}
	mod := f.Event("alice", &policy.RoleDefine{Name: "mod", Rank: 50, Perms: policy.PermRead | policy.PermPost | policy.PermBan})
	f.MustPublish(mod)
	gen := f.Event("alice", &policy.ChannelCreate{Name: "general", Durability: policy.Replicated})
	f.MustPublish(gen)
	mods := f.Event("alice", &policy.ChannelCreate{Name: "mods", Durability: policy.Strict})
	f.MustPublish(mods)
	f.General, f.Mods = gen.ID, mods.ID
	f.MustPublish(f.Event("alice", &policy.ChannelOverride{Channel: mods.ID, Deny: policy.PermRead | policy.PermPost}))
	f.MustPublish(f.Event("alice", &policy.ChannelOverride{Channel: mods.ID, Role: mod.ID, Allow: policy.PermRead | policy.PermPost}))
	f.MustPublish(f.Event("alice", &policy.StorageGrant{Node: f.Hub.NodeID()}))
	for _, who := range []string{"carol", "dave"} {
		var roles []policy.ID
		if who == "carol" {
			roles = []policy.ID{mod.ID}
		}
		now := f.Now()
		inv, err := policy.NewInvite(policy.IdentitySigner(Key("alice")), policy.InviteBody{Server: f.Gen.ID, Issued: now.UnixMilli(), Expires: now.Add(time.Hour).UnixMilli(), Uses: 1, Roles: roles, Nonce: []byte(who + "-invite-nonce---")[:16]})
		if err != nil {
			f.T.Fatal(err)
		}
		f.MustPublish(f.Event(who, &policy.Join{Invite: inv.Raw}))
	}
}

// Device returns who's phone: the device key Key(who+"-phone"), certified
// by who for a day from T0.
func (f *Fixture) Device(who string) policy.Signer {
	f.T.Helper()
	c, err := policy.NewDeviceCert(Key(who), policy.DeviceCertBody{Device: policy.KeyOf(Key(who + "-phone")), KEM: policy.KEMX25519, EncKey: make([]byte, 32), Issued: T0.UnixMilli(), Expires: T0.Add(24 * time.Hour).UnixMilli()})
	if err != nil {
		f.T.Fatal(err)
	}
	return policy.DeviceSigner(Key(who+"-phone"), c)
}

// Envelope signs an envelope of size ciphertext bytes in channel at the next tick.
func (f *Fixture) Envelope(s policy.Signer, channel policy.ID, size int) *policy.Envelope {
	f.T.Helper()
	e, err := policy.NewEnvelope(s, policy.EnvelopeBody{Server: f.Gen.ID, Channel: channel, Epoch: 1, Time: f.Tick(), Ciphertext: make([]byte, size)})
	if err != nil {
		f.T.Fatal(err)
	}
	return e
}

// Post posts envelopes through the service.
func (f *Fixture) Post(raws ...[]byte) []hub.Posted { return f.Hub.Post(context.Background(), raws) }

// Stored counts a channel's stored envelopes, as the store holds them.
func (f *Fixture) Stored(channel policy.ID) int {
	f.T.Helper()
	envs, err := f.Store.ReadChannel(context.Background(), f.Gen.ID, channel, 0, storage.MaxPage)
	if err != nil {
		f.T.Fatal(err)
	}
	return len(envs)
}
