package storagetest

import (
	"bytes"
	"testing"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// testKeyEntries: a device is served exactly the bytes its entries point
// at, in sequence order, after a cursor, and nothing of a deleted envelope.
func testKeyEntries(t *testing.T, m Meta) {
	s, c := ServerID("keys"), ChannelID("keys")
	host(t, m, s, storage.Quota{})
	e1, e2 := Envelope(s, c, 1, 3000), Envelope(s, c, 2, 3000)
	st := put(t, m, e1, e2)
	me, other := policy.PublicKey(policy.Sum([]byte("me"))), policy.PublicKey(policy.Sum([]byte("other")))
	entry := func(e storage.Envelope, seq uint64, dev policy.PublicKey, off, n int) storage.KeyEntry {
		return storage.KeyEntry{Server: s, Channel: c, Device: dev, Seq: seq, Envelope: e.ID, Epoch: seq + 10, KeyID: [8]byte{byte(seq)}, Off: off, Len: n}
	}
	entries := []storage.KeyEntry{entry(e1, st[0].Seq, me, 100, 50), entry(e1, st[0].Seq, other, 150, 50), entry(e2, st[1].Seq, me, 2000, 999)}
	if err := m.PutKeyEntries(ctx, entries); err != nil {
		t.Fatal(err)
	}
	if err := m.PutKeyEntries(ctx, entries[:1]); err != nil {
		t.Fatalf("recording an entry again: %v", err)
	}
	got, err := m.ReadKeyEntries(ctx, s, c, me, 0, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("entries = %d, %v; want 2", len(got), err)
	}
	if got[0].Seq != st[0].Seq || got[0].Envelope != e1.ID || got[0].Epoch != st[0].Seq+10 || got[0].KeyID != [8]byte{byte(st[0].Seq)} ||
		!bytes.Equal(got[0].Sealed, e1.Raw[100:150]) || !bytes.Equal(got[1].Sealed, e2.Raw[2000:2999]) {
		t.Fatalf("entries do not hold the bytes they point at: %+v", got[0])
	}
	if got, _ := m.ReadKeyEntries(ctx, s, c, me, st[0].Seq, 10); len(got) != 1 || got[0].Envelope != e2.ID {
		t.Fatalf("after the first: %d entries", len(got))
	}
	if err := m.ApplyTombstone(ctx, e2.ID, []byte("tombstone")); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.ReadKeyEntries(ctx, s, c, me, 0, 10); len(got) != 1 || got[0].Envelope != e1.ID {
		t.Fatalf("a deleted bundle's entry is still served (%d entries)", len(got))
	}
	if _, err := m.ReadKeyEntries(ctx, s, c, me, 0, 0); err == nil {
		t.Fatal("a page of 0 was accepted")
	}
}
