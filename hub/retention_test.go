package hub_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/hub/hubtest"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// A channel's retention (age and size) is applied by Sweep on both storage
// profiles; an envelope already beyond the age limit is refused at ingest,
// so it cannot come back once swept; other channels are untouched; usage
// follows.
func TestRetentionSweep(t *testing.T) {
	for _, profile := range []string{"sqlite", "postgres"} {
		t.Run(profile, func(t *testing.T) {
			f := newFixtureOn(t, profile)
			f.Community()
			brief := f.Event("alice", &policy.ChannelCreate{Name: "brief", Durability: policy.Replicated, RetentionMs: 60_000})
			f.MustPublish(brief)
			capped := f.Event("alice", &policy.ChannelCreate{Name: "capped", Durability: policy.Replicated, RetentionBytes: 5000})
			f.MustPublish(capped)
			dave := f.Device("dave")
			post := func(channel policy.ID, n int) []*policy.Envelope {
				var envs []*policy.Envelope
				var raws [][]byte
				for range n {
					e := f.Envelope(dave, channel, 1000)
					envs, raws = append(envs, e), append(raws, e.Raw)
				}
				for i, p := range f.Post(raws...) {
					if p.Err != nil {
						t.Fatalf("envelope %d: %v", i, p.Err)
					}
				}
				return envs
			}
			post(brief.ID, 5)
			capEnvs := post(capped.ID, 10)
			post(f.General, 3)
			before := f.usage(t)

			f.Advance(61 * time.Second) // the 5 in brief are now beyond 60 s
			fresh := post(brief.ID, 2)
			late := f.Envelope(dave, brief.ID, 100)
			f.Advance(61 * time.Second) // late is now beyond 60 s, fresh too
			if p := f.Post(late.Raw); p[0].Err == nil || Code(p[0].Err) != string(policy.CodeExpired) {
				t.Fatalf("an envelope beyond the channel's retention was answered %v", p[0].Err)
			}
			sw, err := f.Hub.Sweep(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if n := f.Stored(brief.ID); n != 0 {
				t.Fatalf("%d envelopes left in brief after its retention", n)
			}
			left, err := f.Hub.Read(context.Background(), hub.Caller{Identity: policy.KeyOf(key("alice"))}, f.Gen.ID, capped.ID, 0, storage.MaxPage)
			if err != nil {
				t.Fatal(err)
			}
			var kept uint64
			for i, e := range left {
				kept += uint64(e.Size)
				if want := capEnvs[len(capEnvs)-len(left)+i].ID; e.ID != want {
					t.Fatalf("capped kept %s at %d, want the newest envelopes", e.ID, i)
				}
			}
			if len(left) == 0 || kept > 5000 || kept+uint64(len(capEnvs[0].Raw)) <= 5000 {
				t.Fatalf("capped keeps %d envelopes, %d bytes: want the most that fit in 5,000", len(left), kept)
			}
			if n := f.Stored(f.General); n != 3 {
				t.Fatalf("general has %d envelopes after a sweep of other channels, want 3", n)
			}
			wantEnvs := uint64(5+len(fresh)) + uint64(len(capEnvs)-len(left))
			if sw.Envelopes != wantEnvs {
				t.Fatalf("swept %d envelopes, want %d", sw.Envelopes, wantEnvs)
			}
			after := f.usage(t)
			if after.Envelopes != before.Envelopes+uint64(len(fresh))-wantEnvs || after.Bytes != before.Bytes+freshBytes(fresh)-sw.Bytes {
				t.Fatalf("usage %+v before, %+v after sweeping %+v", before, after, sw)
			}
			if again, err := f.Hub.Sweep(context.Background()); err != nil || again.Envelopes != 0 {
				t.Fatalf("a second sweep freed %+v, %v", again, err)
			}
		})
	}
}

func freshBytes(envs []*policy.Envelope) uint64 {
	var n uint64
	for _, e := range envs {
		n += uint64(len(e.Raw))
	}
	return n
}

func (f *fixture) usage(t *testing.T) storage.Usage {
	t.Helper()
	tn, err := f.Store.Tenant(context.Background(), f.Gen.ID)
	if err != nil {
		t.Fatal(err)
	}
	return tn.Usage
}

// RunRetention sweeps on its own, every interval, until its context ends;
// it refuses an interval that would never (or constantly) sweep.
func TestRunRetention(t *testing.T) {
	for _, interval := range []time.Duration{0, -time.Second} {
		f := newFixtureOn(t, "sqlite")
		if err := f.Hub.RunRetention(context.Background(), interval); err == nil {
			t.Fatalf("interval %v accepted", interval)
		}
	}
	f := newFixtureOn(t, "sqlite")
	f.Community()
	capped := f.Event("alice", &policy.ChannelCreate{Name: "capped", Durability: policy.Replicated, RetentionBytes: 3000})
	f.MustPublish(capped)
	dave := f.Device("dave")
	var raws [][]byte
	for range 10 {
		raws = append(raws, f.Envelope(dave, capped.ID, 1000).Raw)
	}
	for i, p := range f.Post(raws...) {
		if p.Err != nil {
			t.Fatalf("envelope %d: %v", i, p.Err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Hub.RunRetention(ctx, 10*time.Millisecond) }()
	deadline := time.Now().Add(10 * time.Second)
	for f.Stored(capped.ID) > 2 {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s of sweeps every 10 ms, capped holds %d envelopes of 1,000 bytes, over its 3,000", f.Stored(capped.ID))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RunRetention did not return after its context ended")
	}
}

// A channel made strict leaves every hub not granted it: the hub stops
// serving and taking it at once and, on the state change, deletes the
// ciphertext it holds; a grant naming the channel brings it back.
func TestChannelMadeStrictIsPurged(t *testing.T) {
	f := hubtest.New(t, "sqlite")
	f.Community()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Hub.RunRetention(ctx, time.Hour) }()
	defer func() { cancel(); <-done }()
	for i := range 5 {
		if r := f.Post(f.Envelope(f.Device("dave"), f.General, 10+i).Raw); r[0].Err != nil {
			t.Fatal(r[0].Err)
		}
	}
	f.MustPublish(f.Event("alice", &policy.ChannelUpdate{Channel: f.General, Name: "general", Durability: policy.Strict}))
	if _, err := f.Hub.Read(context.Background(), hub.Caller{Identity: policy.KeyOf(key("alice"))}, f.Gen.ID, f.General, 0, 100); !errors.Is(err, policy.ErrNotEligible) {
		t.Fatalf("a read of the channel made strict: %v, want not_eligible", err)
	}
	if r := f.Post(f.Envelope(f.Device("dave"), f.General, 10).Raw); !errors.Is(r[0].Err, policy.ErrNotEligible) {
		t.Fatalf("a post to the channel made strict: %v, want not_eligible", r[0].Err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.Stored(f.General) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d envelopes of the channel made strict still held after 5 s", f.Stored(f.General))
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.MustPublish(f.Event("alice", &policy.StorageGrant{Node: f.Hub.NodeID(), Channels: []policy.ID{f.General}}))
	if r := f.Post(f.Envelope(f.Device("dave"), f.General, 10).Raw); r[0].Err != nil {
		t.Fatalf("a post once the hub is granted the strict channel: %v", r[0].Err)
	}
	if f.Stored(f.Mods) != 0 || f.Stored(f.General) != 1 {
		t.Fatalf("held after the grant: %d in general, %d in mods", f.Stored(f.General), f.Stored(f.Mods))
	}
}
