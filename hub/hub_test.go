package hub

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func key(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("hub test key " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

// Code names a refusal by its policy code, as the service's tests compare
// them; the mapping of every error to a wire code is the HTTP layer's
// (httpapi.Code), which this package must not import.
func Code(err error) string { return string(policy.CodeOf(err)) }

// fixture is a hub on embedded storage and a community that uses it.
type fixture struct {
	t       *testing.T
	mu      sync.Mutex // guards writes of now
	store   Store
	hub     *Service
	now     time.Time
	gen     *policy.Event
	heads   []policy.ID
	general policy.ID // replicated
	mods    policy.ID // strict, readers: alice and carol
}

func newFixture(t *testing.T, adm Admission, quota storage.Quota) *fixture {
	t.Helper()
	return newFixtureOn(t, "sqlite", func(c *Config) { c.Admission, c.DefaultQuota = adm, quota })
}

// newFixtureOn starts a hub on a storage profile: "sqlite" (embedded, with
// blobs in files) or "postgres" (a fresh schema of GUILDHALL_TEST_POSTGRES,
// blobs in MinIO when GUILDHALL_TEST_S3 is set, else in files).
func newFixtureOn(t *testing.T, profile string, configure ...func(*Config)) *fixture {
	t.Helper()
	f := &fixture{t: t, now: t0}
	clock := func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
	store, blobs := openProfile(t, profile, clock)
	f.store = store
	cfg := Config{NodeKey: key("hub"), Store: store, Blobs: blobs, Admission: Open, Now: clock}
	for _, c := range configure {
		c(&cfg)
	}
	var err error
	if f.hub, err = New(cfg); err != nil {
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

func (f *fixture) publish(es ...*policy.Event) ([]EventResult, error) {
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

func (f *fixture) post(raws ...[]byte) []Posted { return f.hub.Post(context.Background(), raws) }

func (f *fixture) stored(channel policy.ID) int {
	f.t.Helper()
	envs, err := f.hub.Read(context.Background(), Caller{Identity: policy.KeyOf(key("alice"))}, f.gen.ID, channel, 0, storage.MaxPage)
	if err != nil {
		f.t.Fatal(err)
	}
	return len(envs)
}

func TestPostAcceptsAndReceiptsVerify(t *testing.T) {
	f := newFixture(t, Open, storage.Quota{})
	f.community()
	e := f.envelope(f.device("dave"), f.general, 1024)
	res := f.post(e.Raw)
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	r, err := policy.ParseReceipt(res[0].Receipt.Raw)
	if err != nil || r.Hub != f.hub.NodeID() || r.Envelope != e.ID || r.Seq != 1 || r.StoredAt != f.now.UnixMilli() {
		t.Fatalf("receipt %+v, %v", r, err)
	}
	sl, _ := f.hub.lockLog(context.Background(), f.gen.ID)
	err = sl.log.State().CheckReceipt(r, e, nil, f.now.UnixMilli())
	sl.mu.Unlock()
	if err != nil {
		t.Fatalf("receipt does not prove eligible storage: %v", err)
	}
	// Replay: idempotent, same sequence.
	again := f.post(e.Raw)
	if again[0].Err != nil || again[0].Receipt.Seq != 1 || f.stored(f.general) != 1 {
		t.Fatalf("replay: %+v, stored %d", again[0], f.stored(f.general))
	}
}

// TestPostRefusals: each refusal has its typed error and stores nothing.
func TestPostRefusals(t *testing.T) {
	f := newFixture(t, Open, storage.Quota{Bytes: 64 << 10})
	f.community()
	dave, erin, carol := f.device("dave"), f.device("erin"), f.device("carol")
	forged := f.envelope(dave, f.general, 10)
	forgedRaw := slices.Clone(forged.Raw)
	forgedRaw[len(forgedRaw)-1] ^= 1
	stale := f.envelope(dave, f.general, 10)
	f.advance(10 * time.Minute)
	for _, tc := range []struct {
		name string
		raw  func() []byte
		want error
	}{
		{"forged signature", func() []byte { return forgedRaw }, policy.ErrBadSignature},
		{"malformed", func() []byte { return []byte{0x82, 0x41} }, policy.ErrMalformed},
		{"oversized", func() []byte { return make([]byte, policy.MaxEnvelopeSize+1) }, policy.ErrTooLarge},
		{"stale", func() []byte { return stale.Raw }, policy.ErrClock},
		{"non-member", func() []byte { return f.envelope(erin, f.general, 10).Raw }, policy.ErrNotMember},
		{"unknown channel", func() []byte { return f.envelope(dave, policy.Sum([]byte("none")), 10).Raw }, policy.ErrUnknownChannel},
		{"no post permission in the strict channel", func() []byte { return f.envelope(dave, f.mods, 10).Raw }, policy.ErrForbidden},
		{"strict channel on a hub not granted it", func() []byte { return f.envelope(carol, f.mods, 10).Raw }, policy.ErrNotEligible},
		{"over quota", func() []byte { return f.envelope(dave, f.general, 70<<10).Raw }, storage.ErrQuotaExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.stored(f.general) + f.stored(f.mods)
			res := f.post(tc.raw())
			if !errors.Is(res[0].Err, tc.want) || res[0].Receipt != nil {
				t.Fatalf("got %v (receipt %v), want %v", res[0].Err, res[0].Receipt != nil, tc.want)
			}
			if after := f.stored(f.general) + f.stored(f.mods); after != before {
				t.Fatal("a refused envelope was stored")
			}
		})
	}
	t.Run("strict channel after the grant", func(t *testing.T) {
		f.mustPublish(f.event("alice", &policy.StorageGrant{Node: f.hub.NodeID(), Channels: []policy.ID{f.mods}}))
		if res := f.post(f.envelope(carol, f.mods, 10).Raw); res[0].Err != nil {
			t.Fatal(res[0].Err)
		}
	})
	t.Run("banned sender", func(t *testing.T) {
		f.mustPublish(f.event("carol", &policy.Ban{Member: policy.KeyOf(key("dave"))}))
		res := f.post(f.envelope(dave, f.general, 10).Raw)
		if !errors.Is(res[0].Err, policy.ErrBanned) {
			t.Fatalf("got %v", res[0].Err)
		}
	})
	t.Run("revoked device", func(t *testing.T) {
		rev := policy.NewDeviceRevocation(key("carol"), policy.KeyOf(key("carol-phone")), f.now.UnixMilli())
		f.mustPublish(f.event("carol", &policy.DeviceRevoke{Revocation: rev.Raw}))
		res := f.post(f.envelope(carol, f.general, 10).Raw)
		if !errors.Is(res[0].Err, policy.ErrDeviceRevoked) {
			t.Fatalf("got %v", res[0].Err)
		}
	})
}

func TestPublishRefusalsStoreNothing(t *testing.T) {
	f := newFixture(t, Open, storage.Quota{})
	f.community()
	count := func() int {
		evs, err := f.hub.Events(context.Background(), Caller{Identity: policy.KeyOf(key("alice"))}, f.gen.ID, 0, storage.MaxPage)
		if err != nil {
			t.Fatal(err)
		}
		return len(evs)
	}
	before := count()
	if _, err := f.publish(f.event("erin", &policy.ChannelCreate{Name: "spam", Durability: policy.Strict})); !errors.Is(err, policy.ErrNotMember) {
		t.Fatalf("non-member event: %v", err)
	}
	bad := f.event("alice", &policy.Leave{})
	raw := slices.Clone(bad.Raw)
	raw[len(raw)-1] ^= 1
	if _, err := f.hub.PublishEvents(context.Background(), f.gen.ID, [][]byte{f.event("alice", &policy.ChannelCreate{Name: "ok", Durability: policy.Strict}).Raw, raw}); !errors.Is(err, policy.ErrBadSignature) {
		t.Fatalf("batch with a forged event: %v", err)
	}
	if count() != before {
		t.Fatal("a refused publication stored events")
	}
	// An unauthorised event by a member is stored (it is part of the DAG)
	// and reported as having no effect.
	res, err := f.publish(f.event("dave", &policy.ChannelCreate{Name: "x", Durability: policy.Strict}))
	if err != nil || !res[0].Folded || !errors.Is(res[0].Reason, policy.ErrForbidden) || count() != before+1 {
		t.Fatalf("member's unauthorised event: %+v, %v", res, err)
	}
}

func TestAdmission(t *testing.T) {
	genesis := func(f *fixture) *policy.Event {
		return f.event("alice", &policy.Genesis{Creators: []policy.PublicKey{policy.KeyOf(key("alice"))}, Policy: policy.ServerPolicy{Name: "c"}})
	}
	t.Run("provisioned refuses an unknown server", func(t *testing.T) {
		f := newFixture(t, Provisioned, storage.Quota{})
		if _, err := f.publish(genesis(f)); !errors.Is(err, storage.ErrNotHosted) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("provisioned accepts a provisioned server", func(t *testing.T) {
		f := newFixture(t, Provisioned, storage.Quota{})
		g := genesis(f)
		if err := f.store.PutTenant(context.Background(), g.ID, storage.Quota{}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.publish(g); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("allow-list", func(t *testing.T) {
		f := newFixture(t, AllowList, storage.Quota{})
		g := genesis(f)
		if _, err := f.publish(g); !errors.Is(err, storage.ErrNotHosted) {
			t.Fatalf("unlisted: %v", err)
		}
		f.hub.allowed[g.ID] = true
		if _, err := f.publish(g); err != nil {
			t.Fatalf("listed: %v", err)
		}
	})
	t.Run("open admits with the default quota", func(t *testing.T) {
		f := newFixture(t, Open, storage.Quota{Envelopes: 7})
		g := genesis(f)
		if _, err := f.publish(g); err != nil {
			t.Fatal(err)
		}
		tn, err := f.store.Tenant(context.Background(), g.ID)
		if err != nil || tn.Quota.Envelopes != 7 {
			t.Fatalf("tenant %+v, %v", tn, err)
		}
	})
}

// TestRestartReloadsState: a new service on the same store rebuilds each
// server's state from the stored log and enforces it.
func TestRestartReloadsState(t *testing.T) {
	f := newFixture(t, Open, storage.Quota{})
	f.community()
	f.mustPublish(f.event("carol", &policy.Ban{Member: policy.KeyOf(key("dave"))}))
	restarted, err := New(Config{NodeKey: key("hub"), Store: f.store, Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	f.hub = restarted
	if res := f.post(f.envelope(f.device("dave"), f.general, 10).Raw); !errors.Is(res[0].Err, policy.ErrBanned) {
		t.Fatalf("ban forgotten across restart: %v", res[0].Err)
	}
	if res := f.post(f.envelope(f.device("carol"), f.general, 10).Raw); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
}

// A home node hosts only the servers its owner creates or joins.
func TestHomeAdmission(t *testing.T) {
	cert, err := policy.NewDeviceCert(key("alice"), policy.DeviceCertBody{Device: policy.KeyOf(key("home")), KEM: policy.KEMX25519, EncKey: make([]byte, 32),
		Issued: t0.UnixMilli(), Expires: t0.Add(24 * time.Hour).UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{NodeKey: key("home"), Store: nil, Admission: Home}); err == nil {
		t.Fatal("a home node without a certificate")
	}
	f := newFixtureOn(t, "sqlite", func(c *Config) { c.NodeKey, c.NodeCert, c.Admission = key("home"), cert, Home })
	mine := f.event("alice", &policy.Genesis{Creators: []policy.PublicKey{policy.KeyOf(key("alice"))}, Policy: policy.ServerPolicy{Name: "mine", Everyone: policy.PermRead}})
	if _, err := f.hub.PublishEvents(context.Background(), mine.ID, [][]byte{mine.Raw}); err != nil {
		t.Fatalf("the owner's server: %v", err)
	}
	f.now = f.now.Add(time.Second)
	other := f.event("zed", &policy.Genesis{Creators: []policy.PublicKey{policy.KeyOf(key("zed"))}, Policy: policy.ServerPolicy{Name: "zed's", Everyone: policy.PermRead}})
	if _, err := f.hub.PublishEvents(context.Background(), other.ID, [][]byte{other.Raw}); !errors.Is(err, storage.ErrNotHosted) {
		t.Fatalf("another's server: %v", err)
	}
	inv, err := policy.NewInvite(policy.IdentitySigner(key("zed")), policy.InviteBody{Server: other.ID, Issued: f.now.UnixMilli(), Expires: f.now.Add(time.Hour).UnixMilli(), Uses: 1, Nonce: []byte("0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	join, err := policy.NewEvent(policy.IdentitySigner(key("alice")), other.ID, []policy.ID{other.ID}, f.tick(), &policy.Join{Invite: inv.Raw})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.hub.PublishEvents(context.Background(), other.ID, [][]byte{other.Raw, join.Raw}); err != nil {
		t.Fatalf("a server the owner joins: %v", err)
	}
}

// The state cache keeps at most MaxServers logs and reloads evicted ones.
func TestStateCacheIsBounded(t *testing.T) {
	f := newFixtureOn(t, "sqlite", func(c *Config) { c.MaxServers = 2 })
	var servers []policy.ID
	for i := range 5 {
		g := f.event("alice", &policy.Genesis{Creators: []policy.PublicKey{policy.KeyOf(key("alice"))}, Policy: policy.ServerPolicy{Name: string(rune('a' + i)), Everyone: policy.PermRead}})
		if _, err := f.hub.PublishEvents(context.Background(), g.ID, [][]byte{g.Raw}); err != nil {
			t.Fatal(err)
		}
		servers = append(servers, g.ID)
	}
	if n := f.hub.Loaded(); n > 2 {
		t.Fatalf("%d logs loaded, bound 2", n)
	}
	var wg sync.WaitGroup
	for range 4 {
		for _, s := range servers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := f.hub.MayRead(context.Background(), s, policy.ID{}, Caller{Identity: policy.KeyOf(key("alice"))}); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	if err := f.hub.MayRead(context.Background(), servers[0], policy.ID{}, Caller{Identity: policy.KeyOf(key("alice"))}); err != nil {
		t.Fatal(err)
	}
	if n := f.hub.Loaded(); n > 2 {
		t.Fatalf("%d logs loaded, bound 2", n)
	}
}
