package hub_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/hub/hubtest"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

var (
	key = hubtest.Key
	t0  = hubtest.T0
)

// Code names a refusal by its policy code, as the service's tests compare
// them; the mapping of every error to a wire code is the HTTP layer's
// (httpapi.Code), which the service must not import.
func Code(err error) string { return string(policy.CodeOf(err)) }

// fixture is the service's test fixture (hubtest), with the helpers these
// tests add to it.
type fixture struct{ *hubtest.Fixture }

func newFixtureOn(t *testing.T, profile string, configure ...func(*hub.Config)) *fixture {
	return &fixture{hubtest.New(t, profile, configure...)}
}

// state resolves the server's state from the events the hub stored, as a
// client would.
func (f *fixture) state() *policy.State {
	f.T.Helper()
	raws, err := f.Hub.EventsExcept(context.Background(), f.Gen.ID, nil, 0)
	if err != nil {
		f.T.Fatal(err)
	}
	var events []*policy.Event
	for _, raw := range raws {
		e, err := policy.ParseEvent(raw)
		if err != nil {
			f.T.Fatal(err)
		}
		if e.ID != f.Gen.ID {
			events = append(events, e)
		}
	}
	l, err := policy.Resolve(f.Gen, events)
	if err != nil {
		f.T.Fatal(err)
	}
	return l.State()
}

func newFixture(t *testing.T, adm hub.Admission, quota storage.Quota) *fixture {
	t.Helper()
	return newFixtureOn(t, "sqlite", func(c *hub.Config) { c.Admission, c.DefaultQuota = adm, quota })
}

func TestPostAcceptsAndReceiptsVerify(t *testing.T) {
	f := newFixture(t, hub.Open, storage.Quota{})
	f.Community()
	e := f.Envelope(f.Device("dave"), f.General, 1024)
	res := f.Post(e.Raw)
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	r, err := policy.ParseReceipt(res[0].Receipt.Raw)
	if err != nil || r.Hub != f.Hub.NodeID() || r.Envelope != e.ID || r.Seq != 1 || r.StoredAt != f.Now().UnixMilli() {
		t.Fatalf("receipt %+v, %v", r, err)
	}
	if err := f.state().CheckReceipt(r, e, nil, f.Now().UnixMilli()); err != nil {
		t.Fatalf("receipt does not prove eligible storage: %v", err)
	}
	// Replay: idempotent, same sequence.
	again := f.Post(e.Raw)
	if again[0].Err != nil || again[0].Receipt.Seq != 1 || f.Stored(f.General) != 1 {
		t.Fatalf("replay: %+v, stored %d", again[0], f.Stored(f.General))
	}
}

// TestPostRefusals: each refusal has its typed error and stores nothing.
func TestPostRefusals(t *testing.T) {
	f := newFixture(t, hub.Open, storage.Quota{Bytes: 64 << 10})
	f.Community()
	dave, erin, carol := f.Device("dave"), f.Device("erin"), f.Device("carol")
	forged := f.Envelope(dave, f.General, 10)
	forgedRaw := slices.Clone(forged.Raw)
	forgedRaw[len(forgedRaw)-1] ^= 1
	stale := f.Envelope(dave, f.General, 10)
	f.Advance(10 * time.Minute)
	for _, tc := range []struct {
		name string
		raw  func() []byte
		want error
	}{
		{"forged signature", func() []byte { return forgedRaw }, policy.ErrBadSignature},
		{"malformed", func() []byte { return []byte{0x82, 0x41} }, policy.ErrMalformed},
		{"oversized", func() []byte { return make([]byte, policy.MaxEnvelopeSize+1) }, policy.ErrTooLarge},
		{"stale", func() []byte { return stale.Raw }, policy.ErrClock},
		{"non-member", func() []byte { return f.Envelope(erin, f.General, 10).Raw }, policy.ErrNotMember},
		{"unknown channel", func() []byte { return f.Envelope(dave, policy.Sum([]byte("none")), 10).Raw }, policy.ErrUnknownChannel},
		{"no post permission in the strict channel", func() []byte { return f.Envelope(dave, f.Mods, 10).Raw }, policy.ErrForbidden},
		{"strict channel on a hub not granted it", func() []byte { return f.Envelope(carol, f.Mods, 10).Raw }, policy.ErrNotEligible},
		{"over quota", func() []byte { return f.Envelope(dave, f.General, 70<<10).Raw }, storage.ErrQuotaExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.Stored(f.General) + f.Stored(f.Mods)
			res := f.Post(tc.raw())
			if !errors.Is(res[0].Err, tc.want) || res[0].Receipt != nil {
				t.Fatalf("got %v (receipt %v), want %v", res[0].Err, res[0].Receipt != nil, tc.want)
			}
			if after := f.Stored(f.General) + f.Stored(f.Mods); after != before {
				t.Fatal("a refused envelope was stored")
			}
		})
	}
	t.Run("strict channel after the grant", func(t *testing.T) {
		f.MustPublish(f.Event("alice", &policy.StorageGrant{Node: f.Hub.NodeID(), Channels: []policy.ID{f.Mods}}))
		if res := f.Post(f.Envelope(carol, f.Mods, 10).Raw); res[0].Err != nil {
			t.Fatal(res[0].Err)
		}
	})
	t.Run("banned sender", func(t *testing.T) {
		f.MustPublish(f.Event("carol", &policy.Ban{Member: policy.KeyOf(key("dave"))}))
		res := f.Post(f.Envelope(dave, f.General, 10).Raw)
		if !errors.Is(res[0].Err, policy.ErrBanned) {
			t.Fatalf("got %v", res[0].Err)
		}
	})
	t.Run("revoked device", func(t *testing.T) {
		rev := policy.NewDeviceRevocation(key("carol"), policy.KeyOf(key("carol-phone")), f.Now().UnixMilli())
		f.MustPublish(f.Event("carol", &policy.DeviceRevoke{Revocation: rev.Raw}))
		res := f.Post(f.Envelope(carol, f.General, 10).Raw)
		if !errors.Is(res[0].Err, policy.ErrDeviceRevoked) {
			t.Fatalf("got %v", res[0].Err)
		}
	})
}

func TestPublishRefusalsStoreNothing(t *testing.T) {
	f := newFixture(t, hub.Open, storage.Quota{})
	f.Community()
	count := func() int {
		evs, err := f.Hub.Events(context.Background(), hub.Caller{Identity: policy.KeyOf(key("alice"))}, f.Gen.ID, 0, storage.MaxPage)
		if err != nil {
			t.Fatal(err)
		}
		return len(evs)
	}
	before := count()
	if _, err := f.Publish(f.Event("erin", &policy.ChannelCreate{Name: "spam", Durability: policy.Strict})); !errors.Is(err, policy.ErrNotMember) {
		t.Fatalf("non-member event: %v", err)
	}
	bad := f.Event("alice", &policy.Leave{})
	raw := slices.Clone(bad.Raw)
	raw[len(raw)-1] ^= 1
	if _, err := f.Hub.PublishEvents(context.Background(), f.Gen.ID, [][]byte{f.Event("alice", &policy.ChannelCreate{Name: "ok", Durability: policy.Strict}).Raw, raw}); !errors.Is(err, policy.ErrBadSignature) {
		t.Fatalf("batch with a forged event: %v", err)
	}
	// A new join through an invite the folded joins have used up.
	inv, err := policy.NewInvite(policy.IdentitySigner(key("alice")), policy.InviteBody{Server: f.Gen.ID, Issued: f.Now().UnixMilli(), Expires: f.Now().Add(time.Hour).UnixMilli(), Uses: 1, Nonce: []byte("one-use-invite--")})
	if err != nil {
		t.Fatal(err)
	}
	first := f.Event("frank", &policy.Join{Invite: inv.Raw})
	f.MustPublish(first)
	before = count()
	if _, err := f.Publish(f.Event("grace", &policy.Join{Invite: inv.Raw})); !errors.Is(err, policy.ErrInviteExhausted) {
		t.Fatalf("a join through a used-up invite: %v", err)
	}
	if _, err := f.Publish(first); err != nil { // history may be published again
		t.Fatalf("the first join again: %v", err)
	}
	if count() != before {
		t.Fatal("a refused publication stored events")
	}
	// An unauthorised event by a member is stored (it is part of the DAG)
	// and reported as having no effect.
	res, err := f.Publish(f.Event("dave", &policy.ChannelCreate{Name: "x", Durability: policy.Strict}))
	if err != nil || !res[0].Folded || !errors.Is(res[0].Reason, policy.ErrForbidden) || count() != before+1 {
		t.Fatalf("member's unauthorised event: %+v, %v", res, err)
	}
}

func TestAdmission(t *testing.T) {
	genesis := func(f *fixture) *policy.Event {
		return f.Event("alice", &policy.Genesis{Creators: []policy.PublicKey{policy.KeyOf(key("alice"))}, Policy: policy.ServerPolicy{Name: "c"}})
	}
	t.Run("provisioned refuses an unknown server", func(t *testing.T) {
		f := newFixture(t, hub.Provisioned, storage.Quota{})
		if _, err := f.Publish(genesis(f)); !errors.Is(err, storage.ErrNotHosted) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("provisioned accepts a provisioned server", func(t *testing.T) {
		f := newFixture(t, hub.Provisioned, storage.Quota{})
		g := genesis(f)
		if err := f.Store.PutTenant(context.Background(), g.ID, storage.Quota{}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Publish(g); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("allow-list", func(t *testing.T) {
		f := newFixture(t, hub.AllowList, storage.Quota{})
		g := genesis(f)
		if _, err := f.Publish(g); !errors.Is(err, storage.ErrNotHosted) {
			t.Fatalf("unlisted: %v", err)
		}
		// The operator lists the server and restarts the hub.
		listed, err := hub.New(hub.Config{NodeKey: key("hub"), Store: f.Store, Admission: hub.AllowList, Allowed: []policy.ID{g.ID}, Now: f.Clock})
		if err != nil {
			t.Fatal(err)
		}
		f.Hub = listed
		if _, err := f.Publish(g); err != nil {
			t.Fatalf("listed: %v", err)
		}
	})
	t.Run("open admits with the default quota", func(t *testing.T) {
		f := newFixture(t, hub.Open, storage.Quota{Envelopes: 7})
		g := genesis(f)
		if _, err := f.Publish(g); err != nil {
			t.Fatal(err)
		}
		tn, err := f.Store.Tenant(context.Background(), g.ID)
		if err != nil || tn.Quota.Envelopes != 7 {
			t.Fatalf("tenant %+v, %v", tn, err)
		}
	})
}

// TestRestartReloadsState: a new service on the same store rebuilds each
// server's state from the stored log and enforces it.
func TestRestartReloadsState(t *testing.T) {
	f := newFixture(t, hub.Open, storage.Quota{})
	f.Community()
	f.MustPublish(f.Event("carol", &policy.Ban{Member: policy.KeyOf(key("dave"))}))
	restarted, err := hub.New(hub.Config{NodeKey: key("hub"), Store: f.Store, Now: func() time.Time { return f.Now() }})
	if err != nil {
		t.Fatal(err)
	}
	f.Hub = restarted
	if res := f.Post(f.Envelope(f.Device("dave"), f.General, 10).Raw); !errors.Is(res[0].Err, policy.ErrBanned) {
		t.Fatalf("ban forgotten across restart: %v", res[0].Err)
	}
	if res := f.Post(f.Envelope(f.Device("carol"), f.General, 10).Raw); res[0].Err != nil {
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
	if _, err := hub.New(hub.Config{NodeKey: key("home"), Store: nil, Admission: hub.Home}); err == nil {
		t.Fatal("a home node without a certificate")
	}
	f := newFixtureOn(t, "sqlite", func(c *hub.Config) { c.NodeKey, c.NodeCert, c.Admission = key("home"), cert, hub.Home })
	mine := f.Event("alice", &policy.Genesis{Creators: []policy.PublicKey{policy.KeyOf(key("alice"))}, Policy: policy.ServerPolicy{Name: "mine", Everyone: policy.PermRead}})
	if _, err := f.Hub.PublishEvents(context.Background(), mine.ID, [][]byte{mine.Raw}); err != nil {
		t.Fatalf("the owner's server: %v", err)
	}
	f.Advance(time.Second)
	other := f.Event("zed", &policy.Genesis{Creators: []policy.PublicKey{policy.KeyOf(key("zed"))}, Policy: policy.ServerPolicy{Name: "zed's", Everyone: policy.PermRead}})
	if _, err := f.Hub.PublishEvents(context.Background(), other.ID, [][]byte{other.Raw}); !errors.Is(err, storage.ErrNotHosted) {
		t.Fatalf("another's server: %v", err)
	}
	inv, err := policy.NewInvite(policy.IdentitySigner(key("zed")), policy.InviteBody{Server: other.ID, Issued: f.Now().UnixMilli(), Expires: f.Now().Add(time.Hour).UnixMilli(), Uses: 1, Nonce: []byte("0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	join, err := policy.NewEvent(policy.IdentitySigner(key("alice")), other.ID, []policy.ID{other.ID}, f.Tick(), &policy.Join{Invite: inv.Raw})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Hub.PublishEvents(context.Background(), other.ID, [][]byte{other.Raw, join.Raw}); err != nil {
		t.Fatalf("a server the owner joins: %v", err)
	}
}

// The state cache keeps at most MaxServers logs and reloads evicted ones.
func TestStateCacheIsBounded(t *testing.T) {
	f := newFixtureOn(t, "sqlite", func(c *hub.Config) { c.MaxServers = 2 })
	var servers []policy.ID
	for i := range 5 {
		g := f.Event("alice", &policy.Genesis{Creators: []policy.PublicKey{policy.KeyOf(key("alice"))}, Policy: policy.ServerPolicy{Name: string(rune('a' + i)), Everyone: policy.PermRead}})
		if _, err := f.Hub.PublishEvents(context.Background(), g.ID, [][]byte{g.Raw}); err != nil {
			t.Fatal(err)
		}
		servers = append(servers, g.ID)
	}
	if n := f.Hub.Loaded(); n > 2 {
		t.Fatalf("%d logs loaded, bound 2", n)
	}
	var wg sync.WaitGroup
	for range 4 {
		for _, s := range servers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := f.Hub.MayRead(context.Background(), s, policy.ID{}, hub.Caller{Identity: policy.KeyOf(key("alice"))}); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	if err := f.Hub.MayRead(context.Background(), servers[0], policy.ID{}, hub.Caller{Identity: policy.KeyOf(key("alice"))}); err != nil {
		t.Fatal(err)
	}
	if n := f.Hub.Loaded(); n > 2 {
		t.Fatalf("%d logs loaded, bound 2", n)
	}
}

// A live state event dated outside the hub's clock window is refused and
// stored nowhere, so it can never become a head that makes an honest event
// invalid; the creator's next event is taken.
func TestLiveEventsMustBeFresh(t *testing.T) {
	f := newFixture(t, hub.Open, storage.Quota{})
	f.Community()
	dated := func(who string, at time.Time) *policy.Event {
		e, err := policy.NewEvent(policy.IdentitySigner(key(who)), f.Gen.ID, f.Heads, at.UnixMilli(), &policy.ChannelCreate{Name: "dated", Durability: policy.Replicated})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	// Within the window, an event dated before its parents (before dave
	// joined) is stored but has no effect.
	res, err := f.Publish(dated("dave", hubtest.T0))
	if err != nil || !res[0].Folded || !errors.Is(res[0].Reason, policy.ErrClock) {
		t.Fatalf("backdated before its parents: %+v, %v", res, err)
	}
	f.Advance(10 * time.Minute)
	before := len(f.state().Channels())
	for name, e := range map[string]*policy.Event{
		"a year ahead":                 dated("dave", f.Now().AddDate(1, 0, 0)),
		"six minutes ahead":            dated("dave", f.Now().Add(6*time.Minute)),
		"ten minutes back":             dated("dave", f.Now().Add(-10*time.Minute)),
		"the creator's, an hour ahead": dated("alice", f.Now().Add(time.Hour)),
	} {
		if _, err := f.Publish(e); !errors.Is(err, policy.ErrClock) {
			t.Errorf("%s: %v, want clock", name, err)
		}
	}
	heads := f.Heads
	f.MustPublish(f.Event("alice", &policy.ChannelCreate{Name: "after", Durability: policy.Replicated}))
	if got := len(f.state().Channels()); got != before+1 {
		t.Fatalf("%d channels, want %d: the creator's event after the refused ones", got, before+1)
	}
	if len(heads) != 1 || len(f.Heads) != 1 {
		t.Fatalf("heads %v then %v: a refused event became a head", heads, f.Heads)
	}
	// A future-dated genesis admits no server.
	g, err := policy.NewEvent(policy.IdentitySigner(key("zed")), policy.ID{}, nil, f.Now().AddDate(0, 1, 0).UnixMilli(), &policy.Genesis{
		Creators: []policy.PublicKey{policy.KeyOf(key("zed"))}, Policy: policy.ServerPolicy{Name: "later", Everyone: policy.PermRead}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Publish(g); !errors.Is(err, policy.ErrClock) {
		t.Fatalf("future genesis: %v", err)
	}
	if _, err := f.Hub.Tenant(context.Background(), g.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a future-dated genesis made a tenant: %v", err)
	}
}

// A captured proof cannot be replayed: a challenge is answered once.
func TestChallengesAreSingleUse(t *testing.T) {
	f := newFixture(t, hub.Open, storage.Quota{})
	f.Community()
	answer := func(challenge []byte) []byte {
		a, err := policy.NewAuth(f.Device("dave"), policy.AuthBody{Hub: f.Hub.NodeID(), Challenge: challenge, Time: f.Now().UnixMilli()})
		if err != nil {
			t.Fatal(err)
		}
		return a.Raw
	}
	ch, _ := f.Hub.Challenge()
	proof := answer(ch)
	if _, c, _, err := f.Hub.Session(proof); err != nil || c.Identity != policy.KeyOf(key("dave")) {
		t.Fatalf("first answer: %v, %v", c, err)
	}
	if _, _, _, err := f.Hub.Session(proof); !errors.Is(err, hub.ErrUnauthenticated) {
		t.Fatalf("replayed proof: %v, want unauthenticated", err)
	}
	if _, _, _, err := f.Hub.Session(answer(ch)); !errors.Is(err, hub.ErrUnauthenticated) {
		t.Fatalf("a second proof for the same challenge: %v, want unauthenticated", err)
	}
	ch2, _ := f.Hub.Challenge()
	if _, _, _, err := f.Hub.Session(answer(ch2)); err != nil {
		t.Fatalf("a new challenge: %v", err)
	}
	// A proof that fails its checks does not spend the challenge.
	f.Advance(time.Hour)
	ch3, _ := f.Hub.Challenge()
	stale, err := policy.NewAuth(f.Device("dave"), policy.AuthBody{Hub: f.Hub.NodeID(), Challenge: ch3, Time: f.Now().Add(-10 * time.Minute).UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := f.Hub.Session(stale.Raw); !errors.Is(err, policy.ErrClock) {
		t.Fatalf("stale proof: %v", err)
	}
	if _, _, _, err := f.Hub.Session(answer(ch3)); err != nil {
		t.Fatalf("the challenge after a refused proof: %v", err)
	}
}

// Finding 10: replaying a sender's envelopes costs the sender nothing, so a
// stranger cannot mute it by replaying its posts; new envelopes are still
// limited.
func TestReplaysDoNotSpendTheSendersRate(t *testing.T) {
	f := newFixtureOn(t, "sqlite", func(c *hub.Config) { c.PostRate, c.PostBurst = 0.001, 3 })
	f.Community()
	dave := f.Device("dave")
	first := f.Envelope(dave, f.General, 10)
	if r := f.Post(first.Raw); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	for range 20 { // a replayer sends it again and again
		if r := f.Post(first.Raw); r[0].Err != nil || r[0].Receipt == nil {
			t.Fatalf("a replay: %v", r[0].Err)
		}
	}
	for i := range 2 { // dave's burst is still there for his own new posts
		if r := f.Post(f.Envelope(dave, f.General, 10).Raw); r[0].Err != nil {
			t.Fatalf("dave's new post %d after the replays: %v", i, r[0].Err)
		}
	}
	if r := f.Post(f.Envelope(dave, f.General, 10).Raw); !errors.Is(r[0].Err, hub.ErrRateLimited) {
		t.Fatalf("a fourth new post within the burst of 3: %v, want rate limited", r[0].Err)
	}
	// Within one batch, the burst is judged before anything is stored.
	batch := [][]byte{f.Envelope(f.Device("carol"), f.General, 10).Raw, f.Envelope(f.Device("carol"), f.General, 10).Raw,
		f.Envelope(f.Device("carol"), f.General, 10).Raw, f.Envelope(f.Device("carol"), f.General, 10).Raw}
	res := f.Post(batch...)
	if res[2].Err != nil || !errors.Is(res[3].Err, hub.ErrRateLimited) {
		t.Fatalf("a batch of 4 against a burst of 3: %v, %v", res[2].Err, res[3].Err)
	}
}

// Finding 6 (in part): a peer's push claims to be live, so an old envelope
// pushed is not taken (it comes by reconciliation, judged as history).
func TestPushesMustBeFresh(t *testing.T) {
	f := newFixture(t, hub.Open, storage.Quota{})
	f.Community()
	old := f.Envelope(f.Device("dave"), f.General, 10)
	f.Advance(2 * time.Hour)
	if n, err := f.Hub.PushEnvelopes(context.Background(), [][]byte{old.Raw}); err != nil || n != 0 {
		t.Fatalf("a two-hour-old envelope pushed: %d stored, %v", n, err)
	}
	fresh := f.Envelope(f.Device("dave"), f.General, 10)
	if n, err := f.Hub.PushEnvelopes(context.Background(), [][]byte{fresh.Raw}); err != nil || n != 1 {
		t.Fatalf("a fresh envelope pushed: %d stored, %v", n, err)
	}
	if n, err := f.Hub.ReplicateEnvelopes(context.Background(), [][]byte{old.Raw}); err != nil || n != 1 {
		t.Fatalf("the old one as history: %d stored, %v", n, err)
	}
}

// Finding 5 (in part): only the invites of applied joins name hubs to
// dial; a stranger's join carried in by a peer names none.
func TestInviteHintsComeFromAppliedJoins(t *testing.T) {
	f := newFixture(t, hub.Open, storage.Quota{})
	f.Community()
	invite := func(who, hint string) *policy.Invite {
		inv, err := policy.NewInvite(policy.IdentitySigner(key(who)), policy.InviteBody{Server: f.Gen.ID, Issued: f.Now().UnixMilli(),
			Expires: f.Now().Add(time.Hour).UnixMilli(), Uses: 5, Hubs: []string{hint}, Nonce: []byte(who + "-hint-nonce-----")[:16]})
		if err != nil {
			t.Fatal(err)
		}
		return inv
	}
	f.MustPublish(f.Event("erin", &policy.Join{Invite: invite("alice", "https://member.example").Raw}))
	strangers := f.Event("zed", &policy.Join{Invite: invite("zed", "https://attacker.example").Raw})
	if _, err := f.Hub.ReplicateEvents(context.Background(), f.Gen.ID, [][]byte{strangers.Raw}); err != nil {
		t.Fatal(err)
	}
	hints, err := f.Hub.InviteHints(context.Background(), f.Gen.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(hints, "https://member.example") || slices.Contains(hints, "https://attacker.example") {
		t.Fatalf("hints %v: want the member's invite's, not the stranger's", hints)
	}
}
