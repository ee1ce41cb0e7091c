package storagetest

import (
	"errors"
	"slices"
	"testing"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// testLabels: a label is set when provisioning, kept when a later call
// names none, refused when it is not printable UTF-8, and an admission
// call (PutTenant) leaves it alone.
func testLabels(t *testing.T, m Meta) {
	s := ServerID("labels")
	label := func(v string) *string { return &v }
	if err := m.ProvisionTenant(ctx, s, storage.Quota{Bytes: 10}, label("ACME Corp, plan gold")); err != nil {
		t.Fatal(err)
	}
	check := func(want string, q uint64) {
		t.Helper()
		tn, err := m.Tenant(ctx, s)
		if err != nil || tn.Label != want || tn.Quota.Bytes != q {
			t.Fatalf("tenant = %+v, %v; want label %q, quota %d", tn, err, want, q)
		}
	}
	check("ACME Corp, plan gold", 10)
	if err := m.ProvisionTenant(ctx, s, storage.Quota{Bytes: 20}, nil); err != nil {
		t.Fatal(err)
	}
	check("ACME Corp, plan gold", 20)
	host(t, m, s, storage.Quota{Bytes: 30})
	check("ACME Corp, plan gold", 30)
	for _, bad := range []string{"a\nb", "\xff", string(make([]byte, storage.MaxLabel+1))} {
		if err := m.ProvisionTenant(ctx, s, storage.Quota{}, label(bad)); !errors.Is(err, storage.ErrInvalid) {
			t.Fatalf("label %q: %v, want ErrInvalid", bad, err)
		}
	}
	if err := m.ProvisionTenant(ctx, s, storage.Quota{Bytes: 30}, label("")); err != nil {
		t.Fatal(err)
	}
	check("", 30)
	if ts, err := m.Tenants(ctx); err != nil || len(ts) != 1 || ts[0].Label != "" {
		t.Fatalf("tenants = %+v, %v", ts, err)
	}
}

// testLedger: a sample is a tenant's usage and label at a time; a second
// recording at the same time replaces usage and adds egress; egress of a
// server that is no tenant is kept too; pages resume after their cursor
// and stay within [from, to).
func testLedger(t *testing.T, m Meta) {
	a, b, gone := ServerID("ledger-a"), ServerID("ledger-b"), ServerID("ledger-gone")
	if a.Compare(b) > 0 {
		a, b = b, a
	}
	lbl := "customer a"
	if err := m.ProvisionTenant(ctx, a, storage.Quota{}, &lbl); err != nil {
		t.Fatal(err)
	}
	host(t, m, b, storage.Quota{})
	c := ChannelID("ledger")
	put(t, m, Envelope(a, c, 1, 1000), Envelope(a, c, 2, 500))
	if n, err := m.RecordSamples(ctx, 3_600_000, map[policy.ID]uint64{a: 700}); err != nil || n != 2 {
		t.Fatalf("record: %d, %v; want 2 tenants sampled", n, err)
	}
	put(t, m, Envelope(a, c, 3, 100))
	if _, err := m.RecordSamples(ctx, 3_600_000, map[policy.ID]uint64{a: 300, gone: 5}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.RecordSamples(ctx, 7_200_000, nil); err != nil {
		t.Fatal(err)
	}
	all, err := m.Samples(ctx, 0, 1<<62, storage.SampleCursor{}, storage.MaxPage)
	if err != nil || len(all) != 5 {
		t.Fatalf("samples: %d, %v; want 5", len(all), err)
	}
	first := all[slices.IndexFunc(all, func(s storage.Sample) bool { return s.Server == a })]
	if first.At != 3_600_000 || first.Label != "customer a" || first.Egress != 1000 ||
		first.Usage != (storage.Usage{Bytes: 1600, Envelopes: 3}) {
		t.Fatalf("a's first sample = %+v; want the usage of the second recording and the sum of egress", first)
	}
	if i := slices.IndexFunc(all, func(s storage.Sample) bool { return s.Server == gone }); i < 0 || all[i].Egress != 5 || all[i].Usage != (storage.Usage{}) {
		t.Fatalf("the egress of a server that is no tenant was not kept: %+v", all)
	}
	for i := 1; i < len(all); i++ {
		if p, q := all[i-1], all[i]; p.At > q.At || p.At == q.At && p.Server.Compare(q.Server) >= 0 {
			t.Fatalf("samples out of (at, server) order at %d", i)
		}
	}
	var paged []storage.Sample
	for cur := (storage.SampleCursor{}); ; {
		page, err := m.Samples(ctx, 0, 1<<62, cur, 2)
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, page...)
		if len(page) < 2 {
			break
		}
		cur = storage.SampleCursor{At: page[1].At, Server: page[1].Server}
	}
	if !slices.Equal(paged, all) {
		t.Fatalf("pages of 2 give %d samples, one page %d", len(paged), len(all))
	}
	if late, err := m.Samples(ctx, 3_600_001, 7_200_001, storage.SampleCursor{}, 10); err != nil || len(late) != 2 || late[0].At != 7_200_000 {
		t.Fatalf("samples in [3600001, 7200001): %+v, %v", late, err)
	}
	if none, err := m.Samples(ctx, 0, 3_600_000, storage.SampleCursor{}, 10); err != nil || len(none) != 0 {
		t.Fatalf("samples before the first: %+v, %v", none, err)
	}
	if _, err := m.Samples(ctx, 0, 1, storage.SampleCursor{}, 0); !errors.Is(err, storage.ErrInvalid) {
		t.Fatalf("a page of 0: %v", err)
	}
}

// testDeleteTenant: deleting a tenant removes everything it stores in one
// go, queues the blobs no one else references, keeps its samples, refuses
// its writes and its re-admission as not hosted, and is idempotent; the
// operator may provision it again, empty.
func testDeleteTenant(t *testing.T, m Meta) {
	s, keep, c := ServerID("delete"), ServerID("delete-keep"), ChannelID("delete")
	host(t, m, s, storage.Quota{})
	host(t, m, keep, storage.Quota{})
	if _, err := m.AppendEvents(ctx, s, []storage.Event{{ID: policy.Sum([]byte("genesis")), Raw: []byte("genesis")}}); err != nil {
		t.Fatal(err)
	}
	e := Envelope(s, c, 1, 2000)
	st := put(t, m, e)
	dev := policy.PublicKey(policy.Sum([]byte("dev")))
	if err := m.PutKeyEntries(ctx, []storage.KeyEntry{{Server: s, Channel: c, Device: dev, Seq: st[0].Seq, Envelope: e.ID, Off: 10, Len: 20}}); err != nil {
		t.Fatal(err)
	}
	own, shared := policy.Sum([]byte("own blob")), policy.Sum([]byte("shared blob"))
	for _, r := range []struct{ server, id policy.ID }{{s, own}, {s, shared}, {keep, shared}} {
		if err := m.AddBlobRef(ctx, r.server, r.id, 100); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.AddEnvelopeBlobs(ctx, s, e.ID, []policy.ID{own, shared}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.RecordSamples(ctx, 1000, map[policy.ID]uint64{s: 42}); err != nil {
		t.Fatal(err)
	}

	if deleted, err := m.DeleteTenant(ctx, s); err != nil || !deleted {
		t.Fatalf("delete: %v, %v", deleted, err)
	}
	if _, err := m.Tenant(ctx, s); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("tenant after deletion: %v", err)
	}
	if evs, err := m.Events(ctx, s, 0, 10); err != nil || len(evs) != 0 {
		t.Fatalf("events after deletion: %d, %v", len(evs), err)
	}
	if _, err := m.GetEnvelope(ctx, e.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("envelope after deletion: %v", err)
	}
	if envs, err := m.ReadChannel(ctx, s, c, 0, 10); err != nil || len(envs) != 0 {
		t.Fatalf("channel after deletion: %d, %v", len(envs), err)
	}
	if keys, err := m.ReadKeyEntries(ctx, s, c, dev, 0, 10); err != nil || len(keys) != 0 {
		t.Fatalf("key entries after deletion: %d, %v", len(keys), err)
	}
	for _, id := range []policy.ID{own, shared} {
		if ok, err := m.HasBlobRef(ctx, s, id); err != nil || ok {
			t.Fatalf("blob ref after deletion: %v, %v", ok, err)
		}
	}
	if ok, _ := m.HasBlobRef(ctx, keep, shared); !ok {
		t.Fatal("the other tenant lost its blob reference")
	}
	pending, err := m.PendingBlobDeletes(ctx, 10)
	if err != nil || !slices.Equal(pending, []policy.ID{own}) {
		t.Fatalf("pending blob deletes = %v, %v; want only the blob no other tenant references", pending, err)
	}
	if err := m.BlobDeleted(ctx, own); err != nil {
		t.Fatal(err)
	}
	if pending, err := m.PendingBlobDeletes(ctx, 10); err != nil || len(pending) != 0 {
		t.Fatalf("pending after BlobDeleted = %v, %v", pending, err)
	}
	if got, _ := m.Samples(ctx, 0, 2000, storage.SampleCursor{}, 10); !slices.ContainsFunc(got, func(x storage.Sample) bool { return x.Server == s && x.Egress == 42 }) {
		t.Fatalf("the deleted tenant's samples are gone: %+v", got)
	}

	if _, err := m.PutEnvelopes(ctx, []storage.Envelope{Envelope(s, c, 2, 100)}); !errors.Is(err, storage.ErrNotHosted) {
		t.Fatalf("a write after deletion: %v, want ErrNotHosted", err)
	}
	if err := m.PutTenant(ctx, s, storage.Quota{}); !errors.Is(err, storage.ErrNotHosted) {
		t.Fatalf("re-admission after deletion: %v, want ErrNotHosted", err)
	}
	if deleted, err := m.DeleteTenant(ctx, s); err != nil || deleted {
		t.Fatalf("deleting again: %v, %v; want false, nil", deleted, err)
	}
	if _, err := m.DeleteTenant(ctx, ServerID("never hosted")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deleting an unknown tenant: %v, want ErrNotFound", err)
	}
	if err := m.ProvisionTenant(ctx, s, storage.Quota{}, nil); err != nil {
		t.Fatal(err)
	}
	if u := usage(t, m, s); u != (storage.Usage{}) {
		t.Fatalf("usage of the re-provisioned tenant = %+v, want none", u)
	}
	put(t, m, Envelope(s, c, 3, 100))
}

// Populate stores something of every kind for server, a tenant already:
// a state event, envelopes in two channels, a key entry, a blob reference
// and an envelope's blob. Backend tests use it to check that DeleteTenant
// leaves no row of server in any table.
func Populate(t testing.TB, m Meta, server policy.ID) {
	t.Helper()
	raw := append([]byte("event "), server[:]...)
	if _, err := m.AppendEvents(ctx, server, []storage.Event{{ID: policy.Sum(raw), Raw: raw}}); err != nil {
		t.Fatal(err)
	}
	var last storage.Envelope
	for i, c := range []policy.ID{ChannelID("populate 1"), ChannelID("populate 2")} {
		last = Envelope(server, c, i, 500)
		st, err := m.PutEnvelopes(ctx, []storage.Envelope{last})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.PutKeyEntries(ctx, []storage.KeyEntry{{Server: server, Channel: c, Device: policy.PublicKey(server), Seq: st[0].Seq, Envelope: last.ID, Off: 0, Len: 10}}); err != nil {
			t.Fatal(err)
		}
	}
	blob := policy.Sum(append([]byte("blob "), server[:]...))
	if err := m.AddBlobRef(ctx, server, blob, 10); err != nil {
		t.Fatal(err)
	}
	if err := m.AddEnvelopeBlobs(ctx, server, last.ID, []policy.ID{blob}); err != nil {
		t.Fatal(err)
	}
}
