package httpapi

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
	"github.com/guildhall/guildhall/wire"
)

// adminGet fetches an admin path with the token and returns status and body.
func (e *apiEnv) adminGet(path string) (int, string) {
	e.T.Helper()
	req, _ := http.NewRequest("GET", e.admin.URL+path, nil)
	req.Header.Set("Authorization", "Bearer admin-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.T.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// ledgerRows reads the whole ledger in both formats, checks that they
// hold the same rows, and returns them.
func (e *apiEnv) ledgerRows(from, to time.Time) []wire.Sample {
	e.T.Helper()
	q := "/v1/admin/usage/ledger?from=" + from.UTC().Format(time.RFC3339) + "&to=" + to.UTC().Format(time.RFC3339)
	st, body := e.adminGet(q + "&format=jsonl")
	if st != 200 {
		e.T.Fatalf("ledger in JSON Lines: %d %s", st, body)
	}
	var rows []wire.Sample
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	for dec.More() {
		var s wire.Sample
		if err := dec.Decode(&s); err != nil {
			e.T.Fatalf("ledger line: %v in %q", err, body)
		}
		rows = append(rows, s)
	}
	st, body = e.adminGet(q + "&format=csv")
	if st != 200 {
		e.T.Fatalf("ledger in CSV: %d %s", st, body)
	}
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || len(recs) != len(rows)+1 || !slices.Equal(recs[0], wire.SampleFields) {
		e.T.Fatalf("ledger CSV: %v, %d records for %d JSON lines: %q", err, len(recs), len(rows), body)
	}
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	for i, s := range rows {
		if want := []string{s.At, s.Server.String(), s.Label, u(s.Bytes), u(s.Envelopes), u(s.Blobs), u(s.EgressBytes)}; !slices.Equal(recs[i+1], want) {
			e.T.Fatalf("CSV row %d = %q, JSON line %q", i, recs[i+1], want)
		}
		if _, err := time.Parse(time.RFC3339, s.At); err != nil || !strings.HasSuffix(s.At, "Z") {
			e.T.Fatalf("ledger time %q is not RFC 3339 UTC", s.At)
		}
	}
	return rows
}

func sampleOf(rows []wire.Sample, server policy.ID, at time.Time) (wire.Sample, bool) {
	i := slices.IndexFunc(rows, func(s wire.Sample) bool { return s.Server == server && s.At == at.UTC().Format(time.RFC3339) })
	if i < 0 {
		return wire.Sample{}, false
	}
	return rows[i], true
}

// The billing life of a tenant through the admin API, on both profiles: a
// label set by PATCH shows in listings and samples; a sample holds the
// tenant's usage; the bytes of a channel read and a blob download show as
// egress in the next sample (and a presigned download, when issued);
// deleting the tenant removes its envelopes,
// state and blob (the blob store no longer has the object), refuses its
// posts and its genesis as not hosted, keeps its samples, and is
// idempotent; an unknown tenant is not_found.
func TestBillingLifecycle(t *testing.T) {
	eachProfile(t, func(t *testing.T, profile string) {
		e := newAPIEnv(t, profile, nil)
		e.Community()
		server := e.Gen.ID
		ctx := context.Background()

		if st, we := call(t, "PATCH", e.admin.URL+"/v1/admin/tenants/"+server.String(), "admin-secret", wire.QuotaUpdate{Label: ptr("ACME Corp")}, nil); st != 200 {
			t.Fatalf("PATCH label: %d %+v", st, we)
		}
		if st, body := e.adminGet("/v1/admin/tenants"); st != 200 || !strings.Contains(body, `"label":"ACME Corp"`) {
			t.Fatalf("tenant listing: %d %s", st, body)
		}
		if st, body := e.adminGet("/v1/admin/usage?format=csv"); st != 200 || !strings.Contains(body, ",label\n") || !strings.Contains(body, ",ACME Corp\n") {
			t.Fatalf("usage CSV: %d %s", st, body)
		}

		raw := e.envelopeBy(e.Device("dave"), e.General, 300)
		if res := e.postHTTP(raw); res[0].Error != nil {
			t.Fatalf("post: %+v", res[0].Error)
		}
		blob := bytes.Repeat([]byte("attachment "), 200)
		blobID := policy.Sum(blob)
		dave := e.login(e.Device("dave"))
		if st, we := call(t, "PUT", e.url("/v1/servers/%s/blobs/%s", server, blobID), dave, blob, nil); st != http.StatusCreated {
			t.Fatalf("upload: %d %+v", st, we)
		}

		t1 := e.Now().Truncate(time.Hour).Add(time.Hour)
		if _, err := e.Hub.SampleUsage(ctx, t1.UnixMilli()); err != nil {
			t.Fatal(err)
		}
		from, to := t1.Add(-time.Hour), t1.Add(3*time.Hour)
		first, ok := sampleOf(e.ledgerRows(from, to), server, t1)
		if !ok || first.Label != "ACME Corp" || first.Envelopes != 1 || first.Blobs != 1 || first.Bytes < uint64(len(raw)+len(blob)) || first.EgressBytes != 0 {
			t.Fatalf("first sample = %+v (found %v)", first, ok)
		}

		var envs wire.Envelopes
		if st, we := call(t, "GET", e.url("/v1/servers/%s/channels/%s/envelopes", server, e.General), dave, nil, &envs); st != 200 {
			t.Fatalf("read: %d %+v", st, we)
		}
		var served int
		for _, v := range envs.Envelopes {
			served += len(v.Raw) + len(v.Tombstone)
		}
		if served < len(raw) {
			t.Fatalf("the read served %d bytes, less than the posted envelope", served)
		}
		if st, we := call(t, "GET", e.url("/v1/servers/%s/blobs/%s", server, blobID), dave, nil, nil); st != 200 {
			t.Fatalf("download: %d %+v", st, we)
		}
		if profile == "postgres" { // S3 presigns: a presigned download is counted when issued
			if st, we := call(t, "POST", e.url("/v1/servers/%s/blobs/%s/presign?op=get", server, blobID), dave, nil, nil); st != 200 {
				t.Fatalf("presign: %d %+v", st, we)
			}
			served += len(blob)
		}
		// The client has the whole blob once its last bytes are sent, which
		// can be just before the handler counts them: sample the interval
		// again (a sample adds the egress counted since) until they show.
		t2 := t1.Add(time.Hour)
		var second wire.Sample
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if _, err := e.Hub.SampleUsage(ctx, t2.UnixMilli()); err != nil {
				t.Fatal(err)
			}
			second, ok = sampleOf(e.ledgerRows(from, to), server, t2)
			if ok && second.EgressBytes >= uint64(served+len(blob)) || time.Now().After(deadline) {
				break
			}
		}
		if !ok || second.EgressBytes != uint64(served+len(blob)) || second.Label != "ACME Corp" {
			t.Fatalf("second sample = %+v (found %v); want egress %d (read %d + blob %d)", second, ok, served+len(blob), served, len(blob))
		}

		var del wire.TenantDeleted
		if st, we := call(t, "DELETE", e.admin.URL+"/v1/admin/tenants/"+server.String(), "admin-secret", nil, &del); st != 200 || !del.Deleted {
			t.Fatalf("delete: %d %+v %+v", st, we, del)
		}
		if _, err := e.Blobs.StatBlob(ctx, blobID); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("the blob store still holds the deleted tenant's blob: %v", err)
		}
		if _, err := e.Store.Tenant(ctx, server); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("tenant after deletion: %v", err)
		}
		if evs, err := e.Store.Events(ctx, server, 0, 10); err != nil || len(evs) != 0 {
			t.Fatalf("state events after deletion: %d, %v", len(evs), err)
		}
		if _, err := e.Store.GetEnvelope(ctx, policy.Sum(raw)); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("envelope after deletion: %v", err)
		}
		if res := e.postHTTP(e.envelopeBy(e.Device("dave"), e.General, 100)); res[0].Error == nil || res[0].Error.Code != wire.CodeNotHosted {
			t.Fatalf("a post after deletion: %+v, want not_hosted", res[0].Error)
		}
		if st, we := call(t, "POST", e.url("/v1/servers/%s/events", server), "", wire.Objects{Objects: [][]byte{e.Gen.Raw}}, nil); we == nil || we.Code != wire.CodeNotHosted {
			t.Fatalf("the genesis again after deletion (open admission): %d %+v, want not_hosted", st, we)
		}
		if st, body := e.adminGet("/v1/admin/tenants"); st != 200 || strings.Contains(body, server.String()) {
			t.Fatalf("tenant listing after deletion: %d %s", st, body)
		}
		if _, ok := sampleOf(e.ledgerRows(from, to), server, t2); !ok {
			t.Fatal("the deleted tenant's samples are gone: they are its bill")
		}
		if st, we := call(t, "DELETE", e.admin.URL+"/v1/admin/tenants/"+server.String(), "admin-secret", nil, &del); st != 200 || del.Deleted {
			t.Fatalf("delete again: %d %+v %+v, want 200 and deleted false", st, we, del)
		}
		if st, we := call(t, "DELETE", e.admin.URL+"/v1/admin/tenants/"+policy.Sum([]byte("nobody")).String(), "admin-secret", nil, nil); st != 404 || we.Code != wire.CodeNotFound {
			t.Fatalf("delete of an unknown tenant: %d %+v", st, we)
		}
	})
}

// The ledger refuses what it cannot answer within bounds, and streams more
// rows than one page of the store.
func TestLedgerRequests(t *testing.T) {
	e := newAPIEnv(t, "sqlite", nil)
	for _, q := range []string{"format=xml", "from=yesterday", "to=2026-01-01", "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
		"from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z"} {
		if st, body := e.adminGet("/v1/admin/usage/ledger?" + q); st != 400 || !strings.Contains(body, "bad_request") {
			t.Fatalf("%s: %d %s", q, st, body)
		}
	}
	for i := range 3 {
		if err := e.Hub.PutTenant(context.Background(), policy.Sum([]byte{byte(i)}), storage.Quota{}, ptr("c"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	hours := ledgerPage/3 + 5 // more than a page of rows
	for h := range hours {
		if _, err := e.Hub.SampleUsage(context.Background(), start.Add(time.Duration(h)*time.Hour).UnixMilli()); err != nil {
			t.Fatal(err)
		}
	}
	rows := e.ledgerRows(start, start.Add(time.Duration(hours)*time.Hour))
	if len(rows) != 3*hours {
		t.Fatalf("%d rows, want %d", len(rows), 3*hours)
	}
	if rows[0].At != "2026-11-01T00:00:00Z" || rows[len(rows)-1].At != start.Add(time.Duration(hours-1)*time.Hour).Format(time.RFC3339) {
		t.Fatalf("rows from %s to %s", rows[0].At, rows[len(rows)-1].At)
	}
}

func ptr[T any](v T) *T { return &v }
