package storagetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// RunMeta runs the metadata conformance suite. open must return a fresh,
// empty store and arrange for it to be closed when the test ends.
func RunMeta(t *testing.T, open func(t *testing.T) Meta) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, m Meta)
	}{
		{"Tenants", testTenants},
		{"IdempotentReinsert", testIdempotent},
		{"SequencesUnderConcurrentWriters", testConcurrentSequences},
		{"QuotaExceededWritesNothing", testQuota},
		{"SuspendedTenant", testSuspended},
		{"TombstoneFreesSpace", testTombstone},
		{"EarlyTombstone", testEarlyTombstone},
		{"KeyEntries", testKeyEntries},
		{"Takedowns", testTakedowns},
		{"AuditLog", testAudit},
		{"Reports", testReports},
		{"EnvelopeBlobs", testEnvelopeBlobs},
		{"SweptBlobs", testSweptBlobs},
		{"RetentionFreesSpace", testRetention},
		{"ReconciliationRanges", testRanges},
		{"StateEvents", testEvents},
		{"BlobRefs", testBlobRefs},
		{"InvalidInput", testInvalid},
		{"Labels", testLabels},
		{"UsageLedger", testLedger},
		{"DeleteTenant", testDeleteTenant},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

var ctx = context.Background()

func host(t *testing.T, m Meta, server policy.ID, q storage.Quota) {
	t.Helper()
	if err := m.PutTenant(ctx, server, q); err != nil {
		t.Fatal(err)
	}
}

func usage(t *testing.T, m Meta, server policy.ID) storage.Usage {
	t.Helper()
	tn, err := m.Tenant(ctx, server)
	if err != nil {
		t.Fatal(err)
	}
	return tn.Usage
}

func put(t *testing.T, m Meta, envs ...storage.Envelope) []storage.Stored {
	t.Helper()
	st, err := m.PutEnvelopes(ctx, envs)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != len(envs) {
		t.Fatalf("%d results for %d envelopes", len(st), len(envs))
	}
	return st
}

func readAll(t *testing.T, m Meta, server, channel policy.ID) []storage.Envelope {
	t.Helper()
	envs, err := m.ReadChannel(ctx, server, channel, 0, storage.MaxPage)
	if err != nil {
		t.Fatal(err)
	}
	return envs
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want %v", err, want)
	}
}

func testTenants(t *testing.T, m Meta) {
	a, b := ServerID("a"), ServerID("b")
	_, err := m.Tenant(ctx, a)
	wantErr(t, err, storage.ErrNotFound)
	_, err = m.PutEnvelopes(ctx, []storage.Envelope{Envelope(a, ChannelID("c"), 1, 100)})
	wantErr(t, err, storage.ErrNotHosted)
	host(t, m, b, storage.Quota{Bytes: 1 << 20})
	host(t, m, a, storage.Quota{Envelopes: 10})
	host(t, m, a, storage.Quota{Envelopes: 20, Blobs: 3}) // replaces the quota
	tn, err := m.Tenant(ctx, a)
	if err != nil || tn.Quota != (storage.Quota{Envelopes: 20, Blobs: 3}) || tn.Server != a || tn.Created == 0 {
		t.Fatalf("tenant = %+v, %v", tn, err)
	}
	all, err := m.Tenants(ctx)
	if err != nil || len(all) != 2 || all[0].Server.Compare(all[1].Server) >= 0 {
		t.Fatalf("tenants = %+v, %v (want 2, ordered)", all, err)
	}
	wantErr(t, m.SetSuspended(ctx, ServerID("nobody"), true), storage.ErrNotFound)
}

func testIdempotent(t *testing.T, m Meta) {
	s, c := ServerID("idem"), ChannelID("idem")
	host(t, m, s, storage.Quota{})
	e1, e2 := Envelope(s, c, 1, 512), Envelope(s, c, 2, 512)
	first := put(t, m, e1, e2)
	if first[0].Seq != 1 || first[1].Seq != 2 || first[0].Duplicate || first[0].StoredAt == 0 {
		t.Fatalf("first put = %+v", first)
	}
	again := put(t, m, e2, Envelope(s, c, 3, 512), e1, e2)
	if !again[0].Duplicate || again[0].Seq != 2 || again[0].StoredAt != first[1].StoredAt {
		t.Fatalf("re-put of e2 = %+v, want duplicate of seq 2", again[0])
	}
	if again[1].Duplicate || again[1].Seq != 3 || !again[2].Duplicate || again[2].Seq != 1 || !again[3].Duplicate || again[3].Seq != 2 {
		t.Fatalf("mixed batch = %+v", again)
	}
	if u := usage(t, m, s); u.Envelopes != 3 || u.Bytes != 3*512 {
		t.Fatalf("usage %+v counts duplicates", u)
	}
	if got := readAll(t, m, s, c); len(got) != 3 {
		t.Fatalf("%d envelopes stored, want 3", len(got))
	}
	got, err := m.GetEnvelope(ctx, e1.ID)
	if err != nil || !slices.Equal(got.Raw, e1.Raw) || got.Seq != 1 || got.Sender != e1.Sender || got.Time != e1.Time || got.Size != 512 {
		t.Fatalf("get = %+v, %v", got, err)
	}
	_, err = m.GetEnvelope(ctx, policy.Sum([]byte("absent")))
	wantErr(t, err, storage.ErrNotFound)
}

// Follow reads a channel by cursor until stop is closed and fails if a
// sequence number ever becomes visible before every smaller one: the reader
// a client is. It returns nil if it saw no gap.
func Follow(r storage.EnvelopeStore, server, channel policy.ID, stop <-chan struct{}) error {
	var last uint64
	for {
		envs, err := r.ReadChannel(ctx, server, channel, last, 1000)
		if err != nil {
			return err
		}
		for _, e := range envs {
			if e.Seq != last+1 {
				return fmt.Errorf("reader at %d saw %d: a later sequence became visible before an earlier one", last, e.Seq)
			}
			last = e.Seq
		}
		select {
		case <-stop:
			return nil
		default:
		}
	}
}

// testConcurrentSequences: 100 writers put to one channel while a reader
// follows it by cursor. Nothing is lost, sequences are dense, and the reader
// never sees a sequence number before every smaller one is visible.
func testConcurrentSequences(t *testing.T, m Meta) {
	s, c := ServerID("conc"), ChannelID("conc")
	host(t, m, s, storage.Quota{})
	const writers, each = 100, 20
	stop := make(chan struct{})
	readErr := make(chan error, 1)
	go func() { readErr <- Follow(m, s, c, stop) }()
	var wg sync.WaitGroup
	ids := make([][]policy.ID, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				e := Envelope(s, c, w*each+i, 256)
				if _, err := m.PutEnvelopes(ctx, []storage.Envelope{e}); err != nil {
					t.Error(err)
					return
				}
				ids[w] = append(ids[w], e.ID)
			}
		})
	}
	wg.Wait()
	close(stop)
	if err := <-readErr; err != nil {
		t.Fatal(err)
	}
	got := readAll(t, m, s, c)
	if len(got) != writers*each {
		t.Fatalf("%d envelopes stored, want %d", len(got), writers*each)
	}
	seen := map[policy.ID]bool{}
	for i, e := range got {
		if e.Seq != uint64(i+1) {
			t.Fatalf("sequence %d at position %d: not dense", e.Seq, i)
		}
		seen[e.ID] = true
	}
	for _, w := range ids {
		for _, id := range w {
			if !seen[id] {
				t.Fatalf("acknowledged envelope %s missing", id)
			}
		}
	}
}

func testQuota(t *testing.T, m Meta) {
	s, c := ServerID("quota"), ChannelID("quota")
	host(t, m, s, storage.Quota{Envelopes: 5, Bytes: 10_000})
	put(t, m, Envelope(s, c, 1, 1000), Envelope(s, c, 2, 1000), Envelope(s, c, 3, 1000), Envelope(s, c, 4, 1000))
	before := usage(t, m, s)
	_, err := m.PutEnvelopes(ctx, []storage.Envelope{Envelope(s, c, 5, 1000), Envelope(s, c, 6, 1000)})
	var qe *storage.QuotaError
	if !errors.As(err, &qe) || qe.Resource != storage.ResourceEnvelopes || qe.Limit != 5 || qe.Used != 4 || qe.Want != 2 {
		t.Fatalf("over envelope quota: %v", err)
	}
	wantErr(t, err, storage.ErrQuotaExceeded)
	_, err = m.PutEnvelopes(ctx, []storage.Envelope{Envelope(s, c, 7, 7000)})
	if !errors.As(err, &qe) || qe.Resource != storage.ResourceBytes {
		t.Fatalf("over byte quota: %v", err)
	}
	if after := usage(t, m, s); after != before {
		t.Fatalf("usage changed by refused writes: %+v -> %+v", before, after)
	}
	if got := readAll(t, m, s, c); len(got) != 4 {
		t.Fatalf("%d envelopes after refused writes, want 4", len(got))
	}
	// A batch spanning two servers where only the second is over quota:
	// nothing of it is written, the first server's usage included.
	free := ServerID("quota-free")
	for i := 0; free.Compare(s) > 0; i++ { // charged first where charges go in ID order
		free = ServerID(fmt.Sprintf("quota-free-%d", i))
	}
	host(t, m, free, storage.Quota{})
	_, err = m.PutEnvelopes(ctx, []storage.Envelope{Envelope(free, c, 1, 1000), Envelope(s, c, 9, 9000)})
	wantErr(t, err, storage.ErrQuotaExceeded)
	if u := usage(t, m, free); u != (storage.Usage{}) {
		t.Fatalf("refused batch charged another server: %+v", u)
	}
	if got := readAll(t, m, free, c); len(got) != 0 {
		t.Fatal("refused batch stored an envelope of another server")
	}
	put(t, m, Envelope(s, c, 8, 1000)) // exactly at the quota is fine
	host(t, m, s, storage.Quota{})     // lifting the quota lets writes through
	put(t, m, Envelope(s, c, 9, 1000))
}

func testSuspended(t *testing.T, m Meta) {
	s, c := ServerID("susp"), ChannelID("susp")
	host(t, m, s, storage.Quota{})
	e := Envelope(s, c, 1, 100)
	put(t, m, e)
	if err := m.SetSuspended(ctx, s, true); err != nil {
		t.Fatal(err)
	}
	_, err := m.PutEnvelopes(ctx, []storage.Envelope{Envelope(s, c, 2, 100)})
	wantErr(t, err, storage.ErrSuspended)
	_, err = m.AppendEvents(ctx, s, []storage.Event{{ID: policy.Sum([]byte("ev")), Raw: []byte("ev")}})
	wantErr(t, err, storage.ErrSuspended)
	if got := readAll(t, m, s, c); len(got) != 1 {
		t.Fatal("reads must continue while suspended")
	}
	if err := m.ApplyTombstone(ctx, e.ID, []byte("tombstone")); err != nil {
		t.Fatalf("deletions must continue while suspended: %v", err)
	}
	if err := m.SetSuspended(ctx, s, false); err != nil {
		t.Fatal(err)
	}
	put(t, m, Envelope(s, c, 2, 100))
}

func testTombstone(t *testing.T, m Meta) {
	s, c := ServerID("tomb"), ChannelID("tomb")
	host(t, m, s, storage.Quota{})
	e1, e2 := Envelope(s, c, 1, 4096), Envelope(s, c, 2, 4096)
	put(t, m, e1, e2)
	if err := m.ApplyTombstone(ctx, e1.ID, []byte("signed tombstone")); err != nil {
		t.Fatal(err)
	}
	got, err := m.GetEnvelope(ctx, e1.ID)
	if err != nil || got.Raw != nil || string(got.Tombstone) != "signed tombstone" || got.Size != 4096 {
		t.Fatalf("tombstoned envelope = raw %d bytes, tombstone %q, %v", len(got.Raw), got.Tombstone, err)
	}
	if u := usage(t, m, s); u.Bytes != 4096 || u.Envelopes != 1 {
		t.Fatalf("usage after tombstone = %+v, want the deleted bytes freed", u)
	}
	if err := m.ApplyTombstone(ctx, e1.ID, []byte("again")); err != nil {
		t.Fatalf("second tombstone: %v", err)
	}
	if u := usage(t, m, s); u.Bytes != 4096 {
		t.Fatalf("second tombstone freed again: %+v", u)
	}
	wantErr(t, m.ApplyTombstone(ctx, policy.Sum([]byte("absent")), []byte("t")), storage.ErrNotFound)
	envs := readAll(t, m, s, c)
	if len(envs) != 2 || envs[0].Raw != nil || envs[0].Tombstone == nil || envs[1].Raw == nil {
		t.Fatal("cursor reads must return tombstones in place, without ciphertext")
	}
	if again := put(t, m, e1); !again[0].Duplicate {
		t.Fatal("a tombstoned envelope must not be stored again")
	}
}

func testRetention(t *testing.T, m Meta) {
	s, c, other := ServerID("ret"), ChannelID("ret"), ChannelID("ret-other")
	host(t, m, s, storage.Quota{})
	var envs []storage.Envelope
	for i := range 20 {
		envs = append(envs, Envelope(s, c, i, 1000))
	}
	put(t, m, envs...)
	put(t, m, Envelope(s, other, 0, 1000))
	if err := m.ApplyTombstone(ctx, envs[2].ID, []byte("t")); err != nil {
		t.Fatal(err)
	}
	// Age: everything older than envelope 5 goes (0..4; 2 was already tombstoned).
	sw, err := m.Sweep(ctx, s, c, storage.Retention{OlderThan: envs[5].Time})
	if err != nil || sw.Envelopes != 4 || sw.Bytes != 4000 {
		t.Fatalf("age sweep = %+v, %v; want 4 envelopes, 4000 bytes", sw, err)
	}
	// Size: 15 left (5..19); keep at most 10,500 bytes: the oldest 5 go.
	sw, err = m.Sweep(ctx, s, c, storage.Retention{MaxBytes: 10_500})
	if err != nil || sw.Envelopes != 5 || sw.Bytes != 5000 {
		t.Fatalf("size sweep = %+v, %v; want 5 envelopes, 5000 bytes", sw, err)
	}
	left := readAll(t, m, s, c)
	if len(left) != 10 || left[0].ID != envs[10].ID {
		t.Fatalf("%d left, first %v; want 10 from envelope 10", len(left), left[0].ID)
	}
	if _, err := m.GetEnvelope(ctx, envs[2].ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal("swept tombstone still stored")
	}
	if u := usage(t, m, s); u.Envelopes != 11 || u.Bytes != 11_000 {
		t.Fatalf("usage after sweeps = %+v, want 11 envelopes, 11000 bytes", u)
	}
	if sw, err := m.Sweep(ctx, s, c, storage.Retention{MaxBytes: 10_500}); err != nil || sw.Envelopes != 0 {
		t.Fatalf("sweep within limits freed %+v, %v", sw, err)
	}
	if len(readAll(t, m, s, other)) != 1 {
		t.Fatal("sweep touched another channel")
	}
	// Writes continue with the next sequence numbers.
	if st := put(t, m, Envelope(s, c, 100, 10)); st[0].Seq != 21 {
		t.Fatalf("after sweep, next seq = %d, want 21", st[0].Seq)
	}

	// Size is judged by the envelopes' own (time, ID) order, not the order
	// they arrived in: a replica that received them newest first deletes
	// the same ones.
	late := ChannelID("ret-late")
	var arrived []storage.Envelope
	for i := range 10 {
		arrived = append(arrived, Envelope(s, late, 9-i, 1000)) // newest first
	}
	for _, e := range arrived {
		put(t, m, e)
	}
	sw, err = m.Sweep(ctx, s, late, storage.Retention{MaxBytes: 6_500})
	if err != nil || sw.Envelopes != 4 {
		t.Fatalf("size sweep of envelopes that arrived newest first = %+v, %v; want 4", sw, err)
	}
	kept := map[policy.ID]bool{}
	for _, e := range readAll(t, m, s, late) {
		kept[e.ID] = true
	}
	for i, e := range arrived {
		if oldest := i >= 6; kept[e.ID] == oldest { // arrived[6..9] are times 3..0
			t.Fatalf("envelope of time index %d: kept %v; the four oldest by time must go", 9-i, kept[e.ID])
		}
	}
}

func testRanges(t *testing.T, m Meta) {
	s, c := ServerID("range"), ChannelID("range")
	host(t, m, s, storage.Quota{})
	var envs []storage.Envelope
	for i := range 50 {
		e := Envelope(s, c, i/3, 64) // three envelopes per timestamp: the ID breaks ties
		e.ID = policy.Sum(append(e.Raw, byte(i)))
		e.Raw = append(e.Raw, byte(i))
		envs = append(envs, e)
	}
	put(t, m, envs...)
	all := storage.Key{Time: math.MaxInt64, ID: policy.ID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	keys, err := m.RangeKeys(ctx, s, c, storage.Key{}, all, 1000)
	if err != nil || len(keys) != 50 {
		t.Fatalf("range keys = %d, %v", len(keys), err)
	}
	var want storage.Fingerprint
	for i, k := range keys {
		if i > 0 && !keys[i-1].Less(k) {
			t.Fatal("range keys out of order")
		}
		want.Add(k.ID)
	}
	fp, err := m.RangeFingerprint(ctx, s, c, storage.Key{}, all)
	if err != nil || fp != want {
		t.Fatalf("fingerprint %+v, want %+v (%v)", fp, want, err)
	}
	mid := keys[25]
	lo, _ := m.RangeKeys(ctx, s, c, storage.Key{}, mid, 1000)
	hi, _ := m.RangeKeys(ctx, s, c, mid, all, 1000)
	if len(lo) != 25 || len(hi) != 25 || hi[0] != mid {
		t.Fatalf("split at the 26th key: %d below, %d from it", len(lo), len(hi))
	}
	flo, _ := m.RangeFingerprint(ctx, s, c, storage.Key{}, mid)
	if flo.Count != 25 {
		t.Fatalf("lower fingerprint counts %d", flo.Count)
	}
	if page, _ := m.RangeKeys(ctx, s, c, storage.Key{}, all, 7); len(page) != 7 || page[6] != keys[6] {
		t.Fatal("range limit not honoured")
	}
}

func testEvents(t *testing.T, m Meta) {
	s := ServerID("events")
	ev := func(i int) storage.Event {
		raw := []byte{byte(i), 'e', 'v'}
		return storage.Event{ID: policy.Sum(raw), Raw: raw}
	}
	_, err := m.AppendEvents(ctx, s, []storage.Event{ev(0)})
	wantErr(t, err, storage.ErrNotHosted)
	host(t, m, s, storage.Quota{})
	n, err := m.AppendEvents(ctx, s, []storage.Event{ev(0), ev(1), ev(1)})
	if err != nil || n != 2 {
		t.Fatalf("append = %d, %v; want 2", n, err)
	}
	n, err = m.AppendEvents(ctx, s, []storage.Event{ev(1), ev(2)})
	if err != nil || n != 1 {
		t.Fatalf("append with a repeat = %d, %v; want 1", n, err)
	}
	got, err := m.Events(ctx, s, 0, 100)
	if err != nil || len(got) != 3 || got[0].ID != ev(0).ID || got[2].Seq != 3 || !slices.Equal(got[2].Raw, ev(2).Raw) {
		t.Fatalf("events = %+v, %v", got, err)
	}
	since, _ := m.Events(ctx, s, 2, 100)
	if len(since) != 1 || since[0].ID != ev(2).ID {
		t.Fatal("events after a cursor")
	}
	if u := usage(t, m, s); u.Bytes != 9 {
		t.Fatalf("event bytes not metered: %+v", u)
	}
}

func testBlobRefs(t *testing.T, m Meta) {
	a, b := ServerID("ba"), ServerID("bb")
	host(t, m, a, storage.Quota{Blobs: 1})
	host(t, m, b, storage.Quota{})
	id, other := policy.Sum([]byte("blob")), policy.Sum([]byte("other"))
	if err := m.AddBlobRef(ctx, a, id, 1000); err != nil {
		t.Fatal(err)
	}
	if err := m.AddBlobRef(ctx, a, id, 1000); err != nil {
		t.Fatalf("repeat reference: %v", err)
	}
	if u := usage(t, m, a); u.Blobs != 1 || u.Bytes != 1000 {
		t.Fatalf("usage = %+v", u)
	}
	var qe *storage.QuotaError
	if err := m.AddBlobRef(ctx, a, other, 10); !errors.As(err, &qe) || qe.Resource != storage.ResourceBlobs {
		t.Fatalf("over blob quota: %v", err)
	}
	has := func(server, blob policy.ID) bool {
		t.Helper()
		ok, err := m.HasBlobRef(ctx, server, blob)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !has(a, id) || has(b, id) || has(a, other) {
		t.Fatal("HasBlobRef does not answer per server and blob")
	}
	if err := m.AddBlobRef(ctx, b, id, 1000); err != nil {
		t.Fatal(err)
	}
	still, err := m.RemoveBlobRef(ctx, a, id)
	if err != nil || !still {
		t.Fatalf("remove a's ref: still=%v, %v; b still references it", still, err)
	}
	if u := usage(t, m, a); u.Blobs != 0 || u.Bytes != 0 {
		t.Fatalf("usage after removal = %+v", u)
	}
	if has(a, id) || !has(b, id) {
		t.Fatal("HasBlobRef after a's reference was removed")
	}
	if still, err = m.RemoveBlobRef(ctx, b, id); err != nil || still {
		t.Fatalf("remove last ref: still=%v, %v", still, err)
	}
}

func testInvalid(t *testing.T, m Meta) {
	s, c := ServerID("inv"), ChannelID("inv")
	host(t, m, s, storage.Quota{})
	e := Envelope(s, c, 1, 100)
	e.Raw = append(e.Raw, 'x') // no longer hashes to its ID
	_, err := m.PutEnvelopes(ctx, []storage.Envelope{Envelope(s, c, 2, 100), e})
	wantErr(t, err, storage.ErrInvalid)
	if len(readAll(t, m, s, c)) != 0 {
		t.Fatal("a batch with an invalid envelope stored part of itself")
	}
	_, err = m.AppendEvents(ctx, s, []storage.Event{{ID: policy.Sum([]byte("a")), Raw: []byte("b")}})
	wantErr(t, err, storage.ErrInvalid)
	for _, limit := range []int{0, -1, storage.MaxPage + 1} { // every read is bounded
		_, err = m.ReadChannel(ctx, s, c, 0, limit)
		wantErr(t, err, storage.ErrInvalid)
		_, err = m.Events(ctx, s, 0, limit)
		wantErr(t, err, storage.ErrInvalid)
		_, err = m.RangeKeys(ctx, s, c, storage.Key{}, storage.Key{Time: 1}, limit)
		wantErr(t, err, storage.ErrInvalid)
	}
	wantErr(t, m.ApplyTombstone(ctx, e.ID, nil), storage.ErrInvalid)
}
