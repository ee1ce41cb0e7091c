package storagetest

import (
	"errors"
	"slices"
	"testing"

	"github.com/guildhall/guildhall/storage"
)

// testEarlyTombstone: a tombstone kept ahead of its envelope takes the
// envelope's place (key, sequence number, a charge of its own bytes), is
// reported Early when the envelope comes, joins the tombstone set, and
// gives way when dropped.
func testEarlyTombstone(t *testing.T, m Meta) {
	s, c := ServerID("early"), ChannelID("early")
	host(t, m, s, storage.Quota{})
	e1, e2, e3 := Envelope(s, c, 1, 1000), Envelope(s, c, 2, 1000), Envelope(s, c, 3, 1000)
	put(t, m, e1)
	tomb := []byte("signed tombstone of e2")
	early := storage.Envelope{ID: e2.ID, Server: s, Channel: c, Time: e2.Time, Tombstone: tomb}
	if ok, err := m.PutEarlyTombstone(ctx, early); err != nil || !ok {
		t.Fatalf("early tombstone: %v, %v", ok, err)
	}
	if ok, err := m.PutEarlyTombstone(ctx, early); err != nil || ok {
		t.Fatalf("early tombstone stored twice: %v, %v", ok, err)
	}
	if ok, err := m.PutEarlyTombstone(ctx, storage.Envelope{ID: e1.ID, Server: s, Channel: c, Time: e1.Time, Tombstone: tomb}); err != nil || ok {
		t.Fatalf("an early tombstone replaced a stored envelope: %v, %v", ok, err)
	}
	for _, bad := range []storage.Envelope{
		{ID: e3.ID, Server: s, Channel: c, Time: e3.Time},                               // no tombstone
		{ID: e3.ID, Server: s, Channel: c, Tombstone: tomb},                             // no time
		{ID: e3.ID, Server: s, Channel: c, Time: e3.Time, Tombstone: tomb, Raw: e3.Raw}, // ciphertext
	} {
		if _, err := m.PutEarlyTombstone(ctx, bad); !errors.Is(err, storage.ErrInvalid) {
			t.Fatalf("invalid early tombstone: %v, want ErrInvalid", err)
		}
	}
	if u := usage(t, m, s); u.Bytes != 1000+uint64(len(tomb)) || u.Envelopes != 1 {
		t.Fatalf("usage = %+v, want the tombstone's bytes and no envelope charged", u)
	}
	envs := readAll(t, m, s, c)
	if len(envs) != 2 || envs[1].ID != e2.ID || envs[1].Seq != 2 || envs[1].Raw != nil || string(envs[1].Tombstone) != string(tomb) {
		t.Fatalf("channel = %+v, want the early tombstone in place, seq 2", envs)
	}
	keys, err := m.TombstoneRangeKeys(ctx, s, c, storage.Key{}, storage.Key{Time: 1 << 62}, 10)
	if err != nil || !slices.Equal(keys, []storage.Key{{Time: e2.Time, ID: e2.ID}}) {
		t.Fatalf("tombstone keys = %v, %v", keys, err)
	}
	fp, err := m.TombstoneRangeFingerprint(ctx, s, c, storage.Key{}, storage.Key{Time: 1 << 62})
	var want storage.Fingerprint
	want.Add(e2.ID)
	if err != nil || fp != want {
		t.Fatalf("tombstone fingerprint = %+v, %v", fp, err)
	}
	st := put(t, m, e2, e1)
	if !st[0].Duplicate || !st[0].Early || !st[1].Duplicate || st[1].Early {
		t.Fatalf("put over an early tombstone = %+v, want it Early, the stored one not", st)
	}
	if err := m.DropEarlyTombstone(ctx, e1.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := m.GetEnvelope(ctx, e1.ID); err != nil || got.Raw == nil {
		t.Fatalf("dropping an early tombstone removed a stored envelope: %v", err)
	}
	if err := m.DropEarlyTombstone(ctx, e2.ID); err != nil {
		t.Fatal(err)
	}
	if u := usage(t, m, s); u.Bytes != 1000 {
		t.Fatalf("usage after the drop = %+v, want the tombstone refunded", u)
	}
	st = put(t, m, e2)
	if st[0].Duplicate || st[0].Seq != 3 {
		t.Fatalf("envelope after its early tombstone was dropped = %+v, want stored, seq 3", st[0])
	}
	if err := m.ApplyTombstone(ctx, e1.ID, []byte("t1")); err != nil {
		t.Fatal(err)
	}
	keys, err = m.TombstoneRangeKeys(ctx, s, c, storage.Key{}, storage.Key{Time: 1 << 62}, 10)
	if err != nil || !slices.Equal(keys, []storage.Key{{Time: e1.Time, ID: e1.ID}}) {
		t.Fatalf("tombstone keys after applying one = %v, %v", keys, err)
	}
}
