package storagetest

import (
	"slices"
	"testing"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// testEnvelopeBlobs: a blob named by two envelopes is orphaned only when
// both are forgotten; another server's envelopes do not keep it.
func testEnvelopeBlobs(t *testing.T, m Meta) {
	a, b := ServerID("eb-a"), ServerID("eb-b")
	blob, other := policy.Sum([]byte("blob")), policy.Sum([]byte("other blob"))
	e1, e2, e3 := policy.Sum([]byte("e1")), policy.Sum([]byte("e2")), policy.Sum([]byte("e3"))
	for _, step := range []struct {
		server, env policy.ID
		blobs       []policy.ID
	}{{a, e1, []policy.ID{blob, other}}, {a, e2, []policy.ID{blob}}, {b, e3, []policy.ID{blob}}, {a, e1, []policy.ID{blob}}} {
		if err := m.AddEnvelopeBlobs(ctx, step.server, step.env, step.blobs); err != nil {
			t.Fatal(err)
		}
	}
	orphans, err := m.DropEnvelopeBlobs(ctx, a, e1)
	if err != nil || !slices.Equal(orphans, []policy.ID{other}) {
		t.Fatalf("dropping e1: orphans %v, %v; want only the blob no other envelope names", orphans, err)
	}
	if orphans, err = m.DropEnvelopeBlobs(ctx, a, e1); err != nil || len(orphans) != 0 {
		t.Fatalf("dropping e1 again: %v, %v", orphans, err)
	}
	if orphans, err = m.DropEnvelopeBlobs(ctx, a, e2); err != nil || !slices.Equal(orphans, []policy.ID{blob}) {
		t.Fatalf("dropping e2: %v, %v; want the blob (server b's envelope is not a's)", orphans, err)
	}
}

// testSweptBlobs: after a sweep, the blobs only swept envelopes named are
// returned once; a blob a kept envelope names, or another server's, stays.
func testSweptBlobs(t *testing.T, m Meta) {
	s, c, other := ServerID("swept-blobs"), ChannelID("swept-blobs"), ServerID("swept-blobs other")
	host(t, m, s, storage.Quota{})
	old, kept := Envelope(s, c, 1, 2000), Envelope(s, c, 2, 2000)
	old.Time, kept.Time = 1_000, 2_000_000_000_000
	put(t, m, old, kept)
	only, shared := policy.Sum([]byte("only the old one")), policy.Sum([]byte("shared"))
	for _, l := range []struct {
		server, env policy.ID
		blobs       []policy.ID
	}{{s, old.ID, []policy.ID{only, shared}}, {s, kept.ID, []policy.ID{shared}}, {other, old.ID, []policy.ID{only}}} {
		if err := m.AddEnvelopeBlobs(ctx, l.server, l.env, l.blobs); err != nil {
			t.Fatal(err)
		}
	}
	if orphans, err := m.DropSweptBlobs(ctx, s); err != nil || len(orphans) != 0 {
		t.Fatalf("before any sweep: %v, %v", orphans, err)
	}
	if sw, err := m.Sweep(ctx, s, c, storage.Retention{OlderThan: 1_000_000}); err != nil || sw.Envelopes != 1 {
		t.Fatalf("sweep: %+v, %v", sw, err)
	}
	orphans, err := m.DropSweptBlobs(ctx, s)
	if err != nil || !slices.Equal(orphans, []policy.ID{only}) {
		t.Fatalf("after the sweep: orphans %v, %v; want only the blob the swept envelope alone named", orphans, err)
	}
	if orphans, err := m.DropSweptBlobs(ctx, s); err != nil || len(orphans) != 0 {
		t.Fatalf("again: %v, %v", orphans, err)
	}
}
