package httpapi

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
	"github.com/guildhall/guildhall/storage/fs"
	"github.com/guildhall/guildhall/storage/postgres"
	"github.com/guildhall/guildhall/storage/s3"
	"github.com/guildhall/guildhall/storage/sqlite"
	"github.com/guildhall/guildhall/storage/storagetest"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func key(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("hub test key " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

// fixture is a hub service on a storage profile and a community that uses
// it, as the service's own tests build it (package hub, hub_test.go).
type fixture struct {
	t       *testing.T
	mu      sync.Mutex // guards writes of now
	store   hub.Store
	blobs   storage.BlobStore
	clock   func() time.Time
	hub     *hub.Service
	now     time.Time
	gen     *policy.Event
	heads   []policy.ID
	general policy.ID // replicated
	mods    policy.ID // strict, readers: alice and carol
}

// newFixtureOn starts a hub on a storage profile: "sqlite" (embedded, with
// blobs in files) or "postgres" (a fresh schema of GUILDHALL_TEST_POSTGRES,
// blobs in MinIO when GUILDHALL_TEST_S3 is set, else in files).
func newFixtureOn(t *testing.T, profile string, configure ...func(*hub.Config)) *fixture {
	t.Helper()
	f := &fixture{t: t, now: t0}
	f.clock = func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
	f.store, f.blobs = openProfile(t, profile, f.clock)
	cfg := hub.Config{NodeKey: key("hub"), Store: f.store, Blobs: f.blobs, Admission: hub.Open, Now: f.clock}
	for _, c := range configure {
		c(&cfg)
	}
	var err error
	if f.hub, err = hub.New(cfg); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) tick() int64 { return f.advance(time.Second) }

// advance moves the clock, which the hub's goroutines read.
func (f *fixture) advance(d time.Duration) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	return f.now.UnixMilli()
}

// event signs an event on the current heads.
func (f *fixture) event(who string, c policy.Content) *policy.Event {
	f.t.Helper()
	var server policy.ID
	if f.gen != nil {
		server = f.gen.ID
	}
	e, err := policy.NewEvent(policy.IdentitySigner(key(who)), server, f.heads, f.tick(), c)
	if err != nil {
		f.t.Fatal(err)
	}
	return e
}

func (f *fixture) publish(es ...*policy.Event) ([]hub.EventResult, error) {
	var raws [][]byte
	for _, e := range es {
		raws = append(raws, e.Raw)
	}
	server := es[0].Server
	if es[0].Kind == policy.EvGenesis {
		server = es[0].ID
	}
	res, err := f.hub.PublishEvents(context.Background(), server, raws)
	if err == nil {
		f.heads = []policy.ID{es[len(es)-1].ID}
	}
	return res, err
}

func (f *fixture) mustPublish(es ...*policy.Event) {
	f.t.Helper()
	res, err := f.publish(es...)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, r := range res {
		if !r.Folded || r.Reason != nil {
			f.t.Fatalf("event %s: folded %v, %v", r.ID, r.Folded, r.Reason)
		}
	}
}

// community creates a server with a replicated and a strict channel, grants
// this hub the server and the strict channel, and admits carol (mod) and dave.
func (f *fixture) community() {
	f.t.Helper()
	f.gen = f.event("alice", &policy.Genesis{Creators: []policy.PublicKey{policy.KeyOf(key("alice"))}, Policy: policy.ServerPolicy{Name: "c", Everyone: policy.PermRead | policy.PermPost}})
	f.heads = nil
	f.mustPublish(f.gen)
	f.heads = []policy.ID{f.gen.ID}
	mod := f.event("alice", &policy.RoleDefine{Name: "mod", Rank: 50, Perms: policy.PermRead | policy.PermPost | policy.PermBan})
	f.mustPublish(mod)
	gen := f.event("alice", &policy.ChannelCreate{Name: "general", Durability: policy.Replicated})
	f.mustPublish(gen)
	mods := f.event("alice", &policy.ChannelCreate{Name: "mods", Durability: policy.Strict})
	f.mustPublish(mods)
	f.general, f.mods = gen.ID, mods.ID
	f.mustPublish(f.event("alice", &policy.ChannelOverride{Channel: mods.ID, Deny: policy.PermRead | policy.PermPost}))
	f.mustPublish(f.event("alice", &policy.ChannelOverride{Channel: mods.ID, Role: mod.ID, Allow: policy.PermRead | policy.PermPost}))
	f.mustPublish(f.event("alice", &policy.StorageGrant{Node: f.hub.NodeID()}))
	for _, who := range []string{"carol", "dave"} {
		var roles []policy.ID
		if who == "carol" {
			roles = []policy.ID{mod.ID}
		}
		inv, err := policy.NewInvite(policy.IdentitySigner(key("alice")), policy.InviteBody{Server: f.gen.ID, Issued: f.now.UnixMilli(), Expires: f.now.Add(time.Hour).UnixMilli(), Uses: 1, Roles: roles, Nonce: []byte(who + "-invite-nonce---")[:16]})
		if err != nil {
			f.t.Fatal(err)
		}
		f.mustPublish(f.event(who, &policy.Join{Invite: inv.Raw}))
	}
}

func (f *fixture) device(who string) policy.Signer {
	f.t.Helper()
	c, err := policy.NewDeviceCert(key(who), policy.DeviceCertBody{Device: policy.KeyOf(key(who + "-phone")), KEM: policy.KEMX25519, EncKey: make([]byte, 32), Issued: t0.UnixMilli(), Expires: t0.Add(24 * time.Hour).UnixMilli()})
	if err != nil {
		f.t.Fatal(err)
	}
	return policy.DeviceSigner(key(who+"-phone"), c)
}

func (f *fixture) envelope(s policy.Signer, channel policy.ID, size int) *policy.Envelope {
	f.t.Helper()
	e, err := policy.NewEnvelope(s, policy.EnvelopeBody{Server: f.gen.ID, Channel: channel, Epoch: 1, Time: f.tick(), Ciphertext: make([]byte, size)})
	if err != nil {
		f.t.Fatal(err)
	}
	return e
}

func (f *fixture) stored(channel policy.ID) int {
	f.t.Helper()
	envs, err := f.hub.Read(context.Background(), hub.Caller{Identity: policy.KeyOf(key("alice"))}, f.gen.ID, channel, 0, storage.MaxPage)
	if err != nil {
		f.t.Fatal(err)
	}
	return len(envs)
}

// profiles are the two ways a hub stores data: embedded (SQLite + files)
// and PostgreSQL + S3 (MinIO).
var profiles = []string{"sqlite", "postgres"}

// eachProfile runs a test against every storage profile.
func eachProfile(t *testing.T, run func(t *testing.T, profile string)) {
	for _, p := range profiles {
		t.Run(p, func(t *testing.T) { run(t, p) })
	}
}

// openProfile opens fresh metadata and blob stores of a profile.
func openProfile(t testing.TB, profile string, clock func() time.Time) (hub.Store, storage.BlobStore) {
	t.Helper()
	ctx := context.Background()
	switch profile {
	case "sqlite":
		dir := t.TempDir()
		st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "hub.db"), Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		blobs, err := fs.Open(fs.Config{Dir: filepath.Join(dir, "blobs")})
		if err != nil {
			t.Fatal(err)
		}
		return st, blobs
	case "postgres":
		st, err := postgres.Open(ctx, postgres.Config{URL: pgURL(t), Schema: fmt.Sprintf("h_%x", rand.Uint64()), Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st, openS3(t)
	}
	t.Fatalf("unknown profile %q", profile)
	return nil, nil
}

func pgURL(t testing.TB) string { return storagetest.Require(t, "GUILDHALL_TEST_POSTGRES") }

func openS3(t testing.TB) *s3.Store {
	u, err := url.Parse(storagetest.Require(t, "GUILDHALL_TEST_S3"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s3.Open(context.Background(), s3.Config{Endpoint: u.Host, AccessKey: os.Getenv("GUILDHALL_TEST_S3_ACCESS_KEY"),
		SecretKey: os.Getenv("GUILDHALL_TEST_S3_SECRET_KEY"), Bucket: fmt.Sprintf("h-%x", rand.Uint64()), CreateBucket: true})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
