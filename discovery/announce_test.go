package discovery_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guildhall/guildhall/discovery"
	"github.com/guildhall/guildhall/policy"
)

func TestAnnouncerConfig(t *testing.T) {
	n := newNode(t)
	ok := discovery.AnnouncerConfig{DHT: n.DHT, Host: n.Host, Key: n.key, Roles: []string{policy.RoleHub}}
	for _, tc := range []struct {
		name string
		edit func(c *discovery.AnnouncerConfig)
		ok   bool
	}{
		{"defaults", func(c *discovery.AnnouncerConfig) {}, true},
		{"an hour, for a day", func(c *discovery.AnnouncerConfig) { c.Interval, c.TTL = time.Hour, 24*time.Hour }, true},
		{"no DHT", func(c *discovery.AnnouncerConfig) { c.DHT = nil }, false},
		{"no host", func(c *discovery.AnnouncerConfig) { c.Host = nil }, false},
		{"no key", func(c *discovery.AnnouncerConfig) { c.Key = nil }, false},
		{"no roles", func(c *discovery.AnnouncerConfig) { c.Roles = nil }, false},
		{"records that expire between publications", func(c *discovery.AnnouncerConfig) { c.Interval, c.TTL = time.Hour, time.Hour }, false},
		{"records beyond 24 hours", func(c *discovery.AnnouncerConfig) { c.TTL = 25 * time.Hour }, false},
		{"a negative interval", func(c *discovery.AnnouncerConfig) { c.Interval = -time.Second }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			if _, err := discovery.NewAnnouncer(c); (err == nil) != tc.ok {
				t.Fatalf("NewAnnouncer: %v, want ok %v", err, tc.ok)
			}
		})
	}
}

// The record holds the host's addresses as /p2p/ multiaddrs, then the
// extra ones, the roles and capabilities, lives TTL from now, and each
// record's sequence number is above the previous one's.
func TestAnnouncerRecord(t *testing.T) {
	n := newNode(t)
	now := time.UnixMilli(1_800_000_000_123)
	a, err := discovery.NewAnnouncer(discovery.WithHooks(discovery.AnnouncerConfig{DHT: n.DHT, Host: n.Host, Key: n.key,
		Roles: []string{policy.RoleRelay}, Caps: []string{"turn"}, Extra: []string{"turn:192.0.2.1:3478?transport=udp"}, TTL: 2 * time.Hour},
		func() time.Time { return now }, nil))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range n.Host.Addrs() {
		want = append(want, m.String()+"/p2p/"+n.Host.ID().String())
	}
	want = append(want, "turn:192.0.2.1:3478?transport=udp")
	var seqs []uint64
	for range 2 {
		r, err := a.Record()
		if err != nil {
			t.Fatal(err)
		}
		if r.Node != policy.KeyOf(n.key) || !slices.Equal(r.Addrs, want) || !slices.Equal(r.Roles, []string{policy.RoleRelay}) ||
			!slices.Equal(r.Caps, []string{"turn"}) || r.Issued != now.UnixMilli() || r.Expires != now.Add(2*time.Hour).UnixMilli() {
			t.Fatalf("record %+v, want addresses %v", r.RecordBody, want)
		}
		seqs = append(seqs, r.Seq)
	}
	if seqs[0] != uint64(now.Unix()) || seqs[1] != seqs[0]+1 {
		t.Fatalf("sequence numbers %v in the same second, want %d then one more", seqs, now.Unix())
	}
}

// Run publishes at once and again every interval; a failed publication is
// logged and tried again; Run returns when its context ends.
func TestAnnouncerRetries(t *testing.T) {
	n := newNode(t)
	var mu sync.Mutex
	var calls int
	publish := func(context.Context, *policy.Record) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			return errors.New("no peers yet")
		}
		return nil
	}
	var logs syncBuffer
	a, err := discovery.NewAnnouncer(discovery.WithHooks(discovery.AnnouncerConfig{DHT: n.DHT, Host: n.Host, Key: n.key, Roles: []string{policy.RoleHub},
		Interval: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, time.Now, publish))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		c := calls
		mu.Unlock()
		if c >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d publications in 10 s at an interval of 10 ms", c)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if s := logs.String(); strings.Count(s, "publishing the discovery record") != 1 || !strings.Contains(s, "no peers yet") {
		t.Fatalf("logged %q, want the one failure", s)
	}
}

// An announced node is found by others through the DHT.
func TestAnnouncerFound(t *testing.T) {
	_, nodes := network(t, 3)
	pub := nodes[0]
	a, err := discovery.NewAnnouncer(discovery.AnnouncerConfig{DHT: pub.DHT, Host: pub.Host, Key: pub.key, Roles: []string{policy.RoleRelay}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.Run(ctx)
	deadline := time.Now().Add(20 * time.Second)
	for {
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		r, err := discovery.Resolve(rctx, nodes[2].DHT, policy.KeyOf(pub.key))
		rcancel()
		if err == nil {
			if !slices.Equal(r.Roles, []string{policy.RoleRelay}) || len(r.Addrs) == 0 {
				t.Fatalf("found %+v", r.RecordBody)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the announced record was not found: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
