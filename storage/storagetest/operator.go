package storagetest

import (
	"testing"
	"time"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// testTakedowns: an envelope taken down loses its ciphertext and its bytes
// from usage at once, is never stored again, and a member's tombstone
// after it frees nothing twice; blob and server takedowns are records
// only; records are listed, looked up and dropped.
func testTakedowns(t *testing.T, m Meta) {
	s, c := ServerID("takedown"), ChannelID("takedown")
	other := ServerID("takedown other")
	host(t, m, s, storage.Quota{})
	host(t, m, other, storage.Quota{})
	e1, e2 := Envelope(s, c, 1, 4096), Envelope(s, c, 2, 4096)
	put(t, m, e1, e2)
	at := time.UnixMilli(1_700_000_000_000).UTC()
	td := func(server policy.ID, kind string, target policy.ID, n int) storage.Takedown {
		return storage.Takedown{Server: server, Kind: kind, Target: target, Record: []byte{byte(n), 1, 2}, At: at.Add(time.Duration(n) * time.Second)}
	}
	wantErr(t, m.PutTakedown(ctx, td(other, policy.TakedownEnvelope, e1.ID, 0)), storage.ErrInvalid)
	if u := usage(t, m, s); u.Bytes != 8192 || u.Envelopes != 2 {
		t.Fatalf("usage after a refused takedown = %+v", u)
	}
	if err := m.PutTakedown(ctx, td(s, policy.TakedownEnvelope, e1.ID, 1)); err != nil {
		t.Fatal(err)
	}
	got, err := m.GetEnvelope(ctx, e1.ID)
	if err != nil || got.Raw != nil || got.Tombstone != nil {
		t.Fatalf("taken-down envelope = raw %d bytes, tombstone %q, %v", len(got.Raw), got.Tombstone, err)
	}
	if u := usage(t, m, s); u.Bytes != 4096 || u.Envelopes != 1 {
		t.Fatalf("usage after a takedown = %+v, want its bytes released", u)
	}
	if again := put(t, m, e1); !again[0].Duplicate {
		t.Fatal("a taken-down envelope was stored again")
	}
	if got, _ := m.GetEnvelope(ctx, e1.ID); got.Raw != nil {
		t.Fatal("posting a taken-down envelope again brought its ciphertext back")
	}
	if err := m.ApplyTombstone(ctx, e1.ID, []byte("member's tombstone")); err != nil {
		t.Fatal(err)
	}
	if u := usage(t, m, s); u.Bytes != 4096 || u.Envelopes != 1 {
		t.Fatalf("usage after a tombstone of a taken-down envelope = %+v, freed twice", u)
	}
	if err := m.PutTakedown(ctx, td(s, policy.TakedownEnvelope, e1.ID, 2)); err != nil {
		t.Fatalf("taking it down again: %v", err)
	}
	if u := usage(t, m, s); u.Bytes != 4096 {
		t.Fatalf("a second takedown freed again: %+v", u)
	}
	blob := policy.Sum([]byte("a blob"))
	for _, x := range []storage.Takedown{td(s, policy.TakedownBlob, blob, 3), td(other, policy.TakedownServer, other, 4)} {
		if err := m.PutTakedown(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := m.GetEnvelope(ctx, e2.ID); got.Raw == nil {
		t.Fatal("an envelope not taken down lost its ciphertext")
	}
	found, err := m.TakenDown(ctx, []policy.ID{e1.ID, e2.ID, blob, other})
	if err != nil || len(found) != 3 || found[e1.ID].Record[0] != 2 || found[blob].Kind != policy.TakedownBlob || found[other].Server != other {
		t.Fatalf("TakenDown = %+v, %v", found, err)
	}
	if !found[e1.ID].At.Equal(at.Add(2 * time.Second)) {
		t.Fatalf("takedown time %v", found[e1.ID].At)
	}
	list, err := m.Takedowns(ctx, s, 10)
	if err != nil || len(list) != 2 || list[0].Target != e1.ID || list[1].Target != blob {
		t.Fatalf("a server's takedowns = %+v, %v", list, err)
	}
	if all, err := m.Takedowns(ctx, policy.ID{}, 10); err != nil || len(all) != 3 {
		t.Fatalf("all takedowns = %d, %v", len(all), err)
	}
	if err := m.DropTakedown(ctx, other); err != nil {
		t.Fatal(err)
	}
	wantErr(t, m.DropTakedown(ctx, other), storage.ErrNotFound)
	if found, _ := m.TakenDown(ctx, []policy.ID{other}); len(found) != 0 {
		t.Fatal("a dropped takedown is still found")
	}
}

// testAudit: entries come back in the order appended, with what was
// recorded, after a cursor.
func testAudit(t *testing.T, m Meta) {
	at := time.UnixMilli(1_700_000_000_000).UTC()
	s := ServerID("audited")
	var seqs []uint64
	for i, e := range []storage.AuditEntry{
		{At: at, Actor: "admin", Source: "192.0.2.1", Action: "POST /v1/admin/tenants", Server: s, Result: "ok"},
		{At: at.Add(time.Second), Actor: "admin", Source: "192.0.2.1", Action: "POST /v1/admin/takedowns", Server: s, Target: "bafk-envelope", Result: "ok"},
		{At: at.Add(2 * time.Second), Actor: "admin", Source: "[2001:db8::1]:443", Action: "GET /v1/admin/audit", Result: "unauthenticated"},
	} {
		seq, err := m.AppendAudit(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && seq <= seqs[i-1] {
			t.Fatalf("audit sequence %d after %d", seq, seqs[i-1])
		}
		seqs = append(seqs, seq)
	}
	got, err := m.Audit(ctx, 0, 10)
	if err != nil || len(got) != 3 {
		t.Fatalf("audit = %d entries, %v", len(got), err)
	}
	if got[1].Target != "bafk-envelope" || got[1].Server != s || !got[1].At.Equal(at.Add(time.Second)) || got[2].Server != (policy.ID{}) || got[2].Result != "unauthenticated" {
		t.Fatalf("audit entries = %+v", got)
	}
	if got, _ := m.Audit(ctx, seqs[1], 10); len(got) != 1 || got[0].Seq != seqs[2] {
		t.Fatalf("after the second: %+v", got)
	}
}

// testReports: reports come back whole, by server and after a cursor.
func testReports(t *testing.T, m Meta) {
	a, b := ServerID("reported"), ServerID("reported too")
	at := time.UnixMilli(1_700_000_000_000).UTC()
	var seqs []uint64
	for i, srv := range []policy.ID{a, b, a} {
		r := storage.Report{Server: srv, Channel: ChannelID("c"), Envelope: policy.Sum([]byte{byte(i)}), Author: policy.PublicKey(policy.Sum([]byte("author"))),
			Reporter: policy.PublicKey(policy.Sum([]byte("reporter"))), Reason: "spam", Evidence: []byte{1, 2, byte(i)}, Key: []byte{3, 4}, At: at}
		seq, err := m.PutReport(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	got, err := m.Reports(ctx, a, 0, 10)
	if err != nil || len(got) != 2 || got[0].Seq != seqs[0] || got[1].Seq != seqs[2] {
		t.Fatalf("server a's reports = %+v, %v", got, err)
	}
	r := got[1]
	if r.Server != a || r.Envelope != policy.Sum([]byte{2}) || r.Reason != "spam" || string(r.Evidence) != "\x01\x02\x02" || string(r.Key) != "\x03\x04" ||
		r.Author != policy.PublicKey(policy.Sum([]byte("author"))) || r.Reporter != policy.PublicKey(policy.Sum([]byte("reporter"))) || !r.At.Equal(at) {
		t.Fatalf("report = %+v", r)
	}
	if all, _ := m.Reports(ctx, policy.ID{}, seqs[0], 10); len(all) != 2 {
		t.Fatalf("all reports after the first: %d", len(all))
	}
}
