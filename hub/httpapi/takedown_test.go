package httpapi

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// A hosting provider removes what it must, as the operator's docs say: an
// envelope (ciphertext gone, a signed record in its place, readers told
// taken_down, a repost refused, its bytes off the bill), a blob (neither
// served nor uploaded again), a whole server (blocked, then unblocked); and
// every act is in an audit log that outlives the process.
func TestTakedownsAndAudit(t *testing.T) {
	eachProfile(t, func(t *testing.T, profile string) {
		e := newAPIEnv(t, profile, nil)
		e.Community()
		dave := e.Device("dave")
		token := e.login(dave)
		raw1, raw2 := e.envelopeBy(dave, e.General, 300), e.envelopeBy(dave, e.General, 300)
		for _, r := range e.postHTTP(raw1, raw2) {
			if r.Error != nil {
				t.Fatal(r.Error)
			}
		}
		env1, _ := policy.ParseEnvelope(raw1)
		admin := func(method, path, token string, body any, out any) (int, *wire.Error) {
			t.Helper()
			return call(t, method, e.admin.URL+path, token, body, out)
		}
		var before wire.Tenant
		admin("GET", "/v1/admin/tenants/"+e.Gen.ID.String(), "admin-secret", nil, &before)

		// An envelope.
		var td wire.Takedown
		st, we := admin("POST", "/v1/admin/takedowns", "admin-secret", wire.TakedownRequest{Server: e.Gen.ID, Kind: "envelope", Target: env1.ID, Reason: "court order 17"}, &td)
		if st != http.StatusCreated || we != nil {
			t.Fatalf("takedown: %d %+v", st, we)
		}
		rec, err := policy.ParseTakedown(td.Record)
		if err != nil || rec.Hub != e.Hub.NodeID() || rec.Target != env1.ID || rec.Reason != "court order 17" || td.Reason != "court order 17" {
			t.Fatalf("takedown record %+v, %v", rec, err)
		}
		var page wire.Envelopes
		if st, we := call(t, "GET", e.url("/v1/servers/%s/channels/%s/envelopes", e.Gen.ID, e.General), token, nil, &page); we != nil {
			t.Fatalf("read: %d %+v", st, we)
		}
		var shown, intact int
		for _, en := range page.Envelopes {
			switch {
			case en.ID == env1.ID && en.Raw == nil && bytes.Equal(en.TakenDown, td.Record):
				shown++
			case en.ID != env1.ID && en.Raw != nil && en.TakenDown == nil:
				intact++
			}
		}
		if shown != 1 || intact == 0 {
			t.Fatalf("the channel read shows the takedown %d times, %d envelopes intact, of %d", shown, intact, len(page.Envelopes))
		}
		if st, we := call(t, "GET", e.url("/v1/servers/%s/envelopes/%s", e.Gen.ID, env1.ID), token, nil, nil); st != http.StatusUnavailableForLegalReasons || we.Code != "taken_down" {
			t.Fatalf("the envelope by ID: %d %+v, want 451 taken_down", st, we)
		}
		if r := e.postHTTP(raw1)[0]; r.Error == nil || r.Error.Code != "taken_down" || r.Receipt != nil {
			t.Fatalf("posting it again: %+v, want taken_down and no receipt", r)
		}
		var after wire.Tenant
		admin("GET", "/v1/admin/tenants/"+e.Gen.ID.String(), "admin-secret", nil, &after)
		if after.Usage.Envelopes != before.Usage.Envelopes-1 || after.Usage.Bytes >= before.Usage.Bytes {
			t.Fatalf("usage %+v after the takedown, %+v before: its bytes should be off the bill", after.Usage, before.Usage)
		}

		// A blob.
		e.Tick()
		data := bytes.Repeat([]byte("illegal bytes"), 100)
		blob := policy.Sum(data)
		u := e.url("/v1/servers/%s/blobs/%s", e.Gen.ID, blob)
		if st, we := call(t, "PUT", u, token, data, nil); st != http.StatusCreated {
			t.Fatalf("upload: %d %+v", st, we)
		}
		if st, we := admin("POST", "/v1/admin/takedowns", "admin-secret", wire.TakedownRequest{Server: e.Gen.ID, Kind: "blob", Target: blob}, nil); st != http.StatusCreated {
			t.Fatalf("blob takedown: %d %+v", st, we)
		}
		if st, we := call(t, "GET", u, token, nil, nil); st != http.StatusUnavailableForLegalReasons || we.Code != "taken_down" {
			t.Fatalf("download after takedown: %d %+v", st, we)
		}
		if st, we := call(t, "PUT", u, token, data, nil); st != http.StatusUnavailableForLegalReasons || we.Code != "taken_down" {
			t.Fatalf("upload again: %d %+v", st, we)
		}

		// A whole server.
		e.Tick()
		if st, we := admin("POST", "/v1/admin/takedowns", "admin-secret", wire.TakedownRequest{Server: e.Gen.ID, Kind: "server", Reason: "terms of service"}, nil); st != http.StatusCreated {
			t.Fatalf("block: %d %+v", st, we)
		}
		if st, we := call(t, "GET", e.url("/v1/servers/%s/channels/%s/envelopes", e.Gen.ID, e.General), token, nil, nil); st != http.StatusUnavailableForLegalReasons || we.Code != "blocked" {
			t.Fatalf("read of a blocked server: %d %+v", st, we)
		}
		if r := e.postHTTP(e.envelopeBy(dave, e.General, 10))[0]; r.Error == nil || r.Error.Code != "blocked" {
			t.Fatalf("post to a blocked server: %+v", r)
		}
		var list wire.Takedowns
		admin("GET", "/v1/admin/takedowns?server="+e.Gen.ID.String(), "admin-secret", nil, &list)
		if len(list.Takedowns) != 3 || list.Takedowns[0].Kind != "envelope" || list.Takedowns[2].Kind != "server" || list.Takedowns[2].Reason != "terms of service" {
			t.Fatalf("takedowns listed: %+v", list)
		}
		if st, we := admin("DELETE", "/v1/admin/takedowns/"+e.Gen.ID.String(), "admin-secret", nil, nil); st != http.StatusNoContent {
			t.Fatalf("unblock: %d %+v", st, we)
		}
		if st, we := call(t, "GET", e.url("/v1/servers/%s/channels/%s/envelopes", e.Gen.ID, e.General), token, nil, nil); we != nil {
			t.Fatalf("read after unblock: %d %+v", st, we)
		}
		if st, we := admin("DELETE", "/v1/admin/takedowns/"+e.Gen.ID.String(), "admin-secret", nil, nil); st != http.StatusNotFound {
			t.Fatalf("unblocking an unblocked server: %d %+v", st, we)
		}
		if st, _ := admin("POST", "/v1/admin/takedowns", "wrong", wire.TakedownRequest{Server: e.Gen.ID, Kind: "server"}, nil); st != http.StatusUnauthorized {
			t.Fatalf("a takedown with a wrong token: %d", st)
		}
		if st, we := admin("POST", "/v1/admin/takedowns", "admin-secret", wire.TakedownRequest{Server: e.Gen.ID, Kind: "everything"}, nil); st != http.StatusBadRequest {
			t.Fatalf("an unknown kind: %d %+v", st, we)
		}

		// The audit log, read by another process over the same store.
		other, err := hub.New(hub.Config{NodeKey: key("hub"), Store: e.Store, Now: func() time.Time { return e.Now() }})
		if err != nil {
			t.Fatal(err)
		}
		otherAdmin := httptest.NewServer(NewAdmin(other, "admin-secret", nil))
		defer otherAdmin.Close()
		var audit wire.Audit
		if st, we := call(t, "GET", otherAdmin.URL+"/v1/admin/audit", "admin-secret", nil, &audit); we != nil {
			t.Fatalf("audit: %d %+v", st, we)
		}
		want := []struct{ action, result string }{
			{"POST /v1/admin/takedowns", "ok"}, {"POST /v1/admin/takedowns", "ok"}, {"POST /v1/admin/takedowns", "ok"},
			{"DELETE /v1/admin/takedowns/{server}", "ok"}, {"DELETE /v1/admin/takedowns/{server}", "not_found"},
			{"POST /v1/admin/takedowns", "unauthenticated"}, {"POST /v1/admin/takedowns", "bad_request"},
		}
		var got []wire.AuditEntry
		for _, a := range audit.Entries {
			if a.Action != "GET /v1/admin/tenants/{server}" { // the reads above are not acts
				got = append(got, a)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("audit log: %+v, want %d entries", got, len(want))
		}
		for i, w := range want {
			unread := w.result == "unauthenticated" // its body is not read: the server is not known
			if got[i].Action != w.action || got[i].Result != w.result || got[i].At == "" || got[i].Source == "" ||
				!unread && (got[i].Server == nil || *got[i].Server != e.Gen.ID) || unread && got[i].Server != nil {
				t.Fatalf("audit entry %d = %+v, want %s → %s about the server", i, got[i], w.action, w.result)
			}
		}
		if got[0].Target != "envelope "+env1.ID.String() || got[5].Actor != "unknown" || got[0].Actor != "admin" {
			t.Fatalf("audit entries name %q (%s), %q", got[0].Target, got[0].Actor, got[5].Actor)
		}
	})
}
