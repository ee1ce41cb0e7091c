package httpapi

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guildhall/guildhall/fanout"
	"github.com/guildhall/guildhall/fanout/pgnotify"
	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
	"github.com/guildhall/guildhall/wire"
)

// Two hub processes share one PostgreSQL: a subscriber of A receives what
// was posted to B, and a ban published to B takes effect on A.
func TestProcessesShareFanoutAndState(t *testing.T) {
	a := newAPIEnv(t, "postgres", nil)
	a.Community()
	bus := func(h pgnotify.Handler) *pgnotify.Bus {
		b, err := pgnotify.New(context.Background(), pgnotify.Config{URL: pgURL(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		if err := b.Listen(ctx, h); err != nil {
			t.Fatal(err)
		}
		return b
	}
	busA := bus(a.Hub)
	a.Hub.SetNotifier(busA)
	// Process B: same store and node key, its own broker and API.
	b, err := hub.New(hub.Config{NodeKey: key("hub"), Store: a.Store, Blobs: a.Blobs, Broker: fanout.New(fanout.Config{}), Now: a.Clock})
	if err != nil {
		t.Fatal(err)
	}
	b.SetNotifier(bus(b))
	bsrv := httptest.NewServer(New(b, Config{}).Handler())
	defer bsrv.Close()

	// A session issued by A is valid at B: they share the node key.
	carol := a.Device("carol")
	token := a.login(carol)
	sub := a.dial(token)
	sub.send(wire.Frame{Op: wire.OpSub, ID: 1, Topics: []wire.Topic{{Server: a.Gen.ID, Channel: a.General}}})
	sub.next(op(wire.OpAck, 1))

	raw := a.envelopeBy(a.Device("dave"), a.General, 100)
	var res wire.Results
	if st, we := call(t, "POST", bsrv.URL+"/v1/envelopes", "", wire.Objects{Objects: [][]byte{raw}}, &res); we != nil || res.Results[0].Receipt == nil {
		t.Fatalf("post to B: %d %v %+v", st, we, res)
	}
	got := sub.next(func(f wire.Frame) bool { return f.Op == wire.OpMsg })
	if !bytes.Equal(got.Raw, raw) || got.Seq != 1 {
		t.Fatalf("A's subscriber got seq %d", got.Seq)
	}
	if st, _ := call(t, "GET", a.url("/v1/servers/%s/events", a.Gen.ID), token, nil, nil); st != 200 {
		t.Fatalf("B's session at A: %d", st)
	}

	// A ban published through B reaches A's cached state.
	ban := a.Event("alice", &policy.Ban{Member: policy.KeyOf(key("dave"))})
	if _, err := b.PublishEvents(context.Background(), a.Gen.ID, [][]byte{ban.Raw}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := a.postHTTP(a.envelopeBy(a.Device("dave"), a.General, 10))[0]
		if r.Error != nil && r.Error.Code == "banned" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A still accepts the banned sender: %+v", r)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Shutdown: subscribers get resume cursors, every post in flight is
// answered, and every acknowledged envelope is stored.
func TestShutdownLosesNothingAcknowledged(t *testing.T) {
	eachProfile(t, func(t *testing.T, profile string) {
		e := newAPIEnv(t, profile, func(c *hub.Config, a *Config) { c.PostRate = -1 })
		e.Community()
		token := e.login(e.Device("carol"))
		sub := e.dial(token)
		sub.send(wire.Frame{Op: wire.OpSub, ID: 1, Topics: []wire.Topic{{Server: e.Gen.ID, Channel: e.General}}})
		sub.next(op(wire.OpAck, 1))

		dave := e.Device("dave")
		poster := e.dial("")
		var sent [][]byte
		for i := range 200 {
			raw := e.envelopeBy(dave, e.General, 512)
			sent = append(sent, raw)
			poster.send(wire.Frame{Op: wire.OpPost, ID: uint64(i + 1), Objects: [][]byte{raw}})
		}
		// Shut down once the hub is busy with the posts (after the first
		// acknowledgement: on a loaded machine the hub may not have read any
		// post yet when the test has written them all), then read
		// acknowledgements until the hub closes the connection.
		done := make(chan error, 1)
		var shutdown sync.Once
		startShutdown := func() {
			shutdown.Do(func() {
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					done <- e.api.Shutdown(ctx)
				}()
			})
		}
		acked := map[policy.ID]bool{}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		for {
			_, b, err := poster.c.Read(ctx)
			if err != nil {
				break
			}
			var frames []wire.Frame
			if err := wire.Unmarshal(wire.CBOR, b, &frames); err != nil {
				t.Fatal(err)
			}
			for _, f := range frames {
				if f.Op == wire.OpAck && len(f.Results) == 1 && f.Results[0].Receipt != nil {
					acked[policy.Sum(sent[f.ID-1])] = true
					startShutdown()
				}
			}
		}
		startShutdown() // nothing acknowledged: shut down anyway, and fail below
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if len(acked) == 0 {
			t.Fatal("nothing was acknowledged")
		}
		for id := range acked {
			if _, err := e.Store.GetEnvelope(context.Background(), id); err != nil {
				t.Fatalf("acknowledged envelope %s: %v", id, err)
			}
		}
		cut := sub.next(func(f wire.Frame) bool { return f.Op == wire.OpCut })
		if cut.Error.Code != wire.CodeGoingAway || len(cut.Topics) != 1 {
			t.Fatalf("cut %+v", cut)
		}
		// New connections are refused while shut down.
		if st, we := call(t, "GET", e.srv.URL+"/v1/ws", "", nil, nil); st != http.StatusServiceUnavailable || we.Code != "unavailable" {
			t.Fatalf("after shutdown: %d %+v", st, we)
		}
	})
}

func TestAdminAPI(t *testing.T) {
	eachProfile(t, func(t *testing.T, profile string) {
		e := newAPIEnv(t, profile, func(c *hub.Config, a *Config) { c.Admission = hub.Provisioned })
		server := e.Event("alice", &policy.Genesis{Creators: []policy.PublicKey{policy.KeyOf(key("alice"))}, Policy: policy.ServerPolicy{Name: "c", Everyone: policy.PermRead | policy.PermPost}})
		if _, err := e.Hub.PublishEvents(context.Background(), server.ID, [][]byte{server.Raw}); Code(err) != wire.CodeNotHosted {
			t.Fatalf("unprovisioned genesis: %v", err)
		}
		admin := func(method, path, token string, body any, out any) (int, *wire.Error) {
			t.Helper()
			return call(t, method, e.admin.URL+path, token, body, out)
		}
		if st, we := admin("GET", "/v1/admin/tenants", "", nil, nil); st != http.StatusUnauthorized || we.Code != "unauthenticated" {
			t.Fatalf("no token: %d %+v", st, we)
		}
		if st, _ := admin("GET", "/v1/admin/tenants", "wrong", nil, nil); st != http.StatusUnauthorized {
			t.Fatalf("wrong token: %d", st)
		}
		var tn wire.Tenant
		if st, we := admin("POST", "/v1/admin/tenants", "admin-secret", wire.TenantRequest{Server: server.ID, Quota: wire.Quota{Envelopes: 2}}, &tn); st != http.StatusCreated || tn.Quota.Envelopes != 2 {
			t.Fatalf("create: %d %+v %+v", st, we, tn)
		}
		e.Gen, e.Heads = server, nil
		e.MustPublish(server)
		e.Heads = []policy.ID{server.ID}
		ch := e.Event("alice", &policy.ChannelCreate{Name: "general", Durability: policy.Replicated})
		e.MustPublish(ch, e.Event("alice", &policy.StorageGrant{Node: e.Hub.NodeID()}))
		alice := policy.DeviceSigner(key("alice-phone"), mustCert(t, "alice", "alice-phone"))
		if r := e.postHTTP(e.envelopeBy(alice, ch.ID, 100))[0]; r.Error != nil {
			t.Fatal(r.Error)
		}
		if st, _ := admin("POST", "/v1/admin/tenants/"+server.ID.String()+"/suspend", "admin-secret", nil, &tn); st != 200 || !tn.Suspended {
			t.Fatalf("suspend: %d %+v", st, tn)
		}
		if r := e.postHTTP(e.envelopeBy(alice, ch.ID, 100))[0]; r.Error == nil || r.Error.Code != "suspended" {
			t.Fatalf("post to a suspended tenant: %+v", r)
		}
		admin("POST", "/v1/admin/tenants/"+server.ID.String()+"/resume", "admin-secret", nil, &tn)
		var list wire.Tenants
		admin("GET", "/v1/admin/tenants", "admin-secret", nil, &list)
		if len(list.Tenants) != 1 || list.Tenants[0].Usage.Envelopes != 1 || list.Tenants[0].Usage.Bytes == 0 || list.Tenants[0].Suspended {
			t.Fatalf("tenants %+v", list)
		}
		req, _ := http.NewRequest("GET", e.admin.URL+"/v1/admin/usage?format=csv", nil)
		req.Header.Set("Authorization", "Bearer admin-secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		lines := strings.Split(strings.TrimSpace(string(body)), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "at,server,bytes,envelopes") || !strings.Contains(lines[1], server.ID.String()+",") {
			t.Fatalf("usage CSV:\n%s", body)
		}
	})
}

func TestBlobs(t *testing.T) {
	eachProfile(t, func(t *testing.T, profile string) {
		e := newAPIEnv(t, profile, func(c *hub.Config, a *Config) { c.DefaultQuota = storage.Quota{Bytes: 1 << 20} })
		e.Community()
		dave := e.login(e.Device("dave"))
		data := bytes.Repeat([]byte("ciphertext"), 1000)
		id := policy.Sum(data)
		u := e.url("/v1/servers/%s/blobs/%s", e.Gen.ID, id)
		if st, we := call(t, "PUT", u, "", data, nil); st != http.StatusUnauthorized {
			t.Fatalf("anonymous upload: %d %+v", st, we)
		}
		if st, we := call(t, "PUT", u, dave, data[1:], nil); st != http.StatusBadRequest || we.Code != "blob_mismatch" {
			t.Fatalf("mismatched upload: %d %+v", st, we)
		}
		if st, we := call(t, "PUT", u, dave, data, nil); st != http.StatusCreated {
			t.Fatalf("upload: %d %+v", st, we)
		}
		big := make([]byte, 2<<20)
		if st, we := call(t, "PUT", e.url("/v1/servers/%s/blobs/%s", e.Gen.ID, policy.Sum(big)), dave, big, nil); st != http.StatusInsufficientStorage || we.Code != "quota_exceeded" {
			t.Fatalf("over quota: %d %+v", st, we)
		}
		if st, _ := call(t, "GET", u, "", nil, nil); st != http.StatusUnauthorized {
			t.Fatalf("anonymous download: %d", st)
		}
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Authorization", "Bearer "+e.login(e.Device("carol")))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(got, data) {
			t.Fatalf("download: %d, %d bytes", resp.StatusCode, len(got))
		}
		// Presigned upload, where the store can: the store itself refuses
		// bytes that do not match the ID.
		var ticket wire.BlobTicket
		other := []byte("another attachment")
		st, we := call(t, "POST", e.url("/v1/servers/%s/blobs/%s/presign?op=put&size=18", e.Gen.ID, policy.Sum(other)), dave, nil, &ticket)
		if profile == "sqlite" {
			if st != http.StatusNotFound {
				t.Fatalf("presign on files: %d %+v", st, we)
			}
			return
		}
		if we != nil {
			t.Fatalf("presign: %d %+v", st, we)
		}
		put := func(b []byte) int {
			req, _ := http.NewRequest("PUT", ticket.URL, bytes.NewReader(b))
			for k, v := range ticket.Header {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if st := put([]byte("forged attachment!")); st == 200 {
			t.Fatal("the store accepted bytes that do not match the presigned checksum")
		}
		if st := put(other); st != 200 {
			t.Fatalf("presigned put: %d", st)
		}
	})
}

// A client that lost some envelopes finds exactly them by reconciliation,
// in a few rounds.
func TestReconcile(t *testing.T) {
	eachProfile(t, func(t *testing.T, profile string) {
		e := newAPIEnv(t, profile, func(c *hub.Config, a *Config) { c.PostRate = -1 })
		e.Community()
		dave := e.Device("dave")
		var all []storage.Key
		for i := 0; i < 2000; i += 100 {
			var raws [][]byte
			for range 100 {
				raws = append(raws, e.envelopeBy(dave, e.General, 16))
			}
			for _, p := range e.Hub.Post(context.Background(), raws) {
				if p.Err != nil {
					t.Fatal(p.Err)
				}
			}
			for _, r := range raws {
				env, _ := policy.ParseEnvelope(r)
				all = append(all, storage.Key{Time: env.Time, ID: env.ID})
			}
		}
		// The client holds all but 7 scattered envelopes.
		missing := map[policy.ID]bool{}
		for _, i := range []int{0, 3, 500, 999, 1000, 1500, 1999} {
			missing[all[i].ID] = true
		}
		var held []storage.Key
		for _, k := range all {
			if !missing[k.ID] {
				held = append(held, k)
			}
		}
		fp := func(from, to storage.Key) storage.Fingerprint {
			var f storage.Fingerprint
			for _, k := range held {
				if !k.Less(from) && k.Less(to) {
					f.Add(k.ID)
				}
			}
			return f
		}
		token := e.login(e.Device("carol"))
		top := storage.Key{Time: 1<<63 - 1}
		for i := range top.ID {
			top.ID[i] = 0xff
		}
		queue := []wire.Range{{From: wire.Key{}, To: wire.Key(top)}}
		found := map[policy.ID]bool{}
		rounds := 0
		for len(queue) > 0 {
			rounds++
			for i := range queue {
				f := fp(storage.Key(queue[i].From), storage.Key(queue[i].To))
				queue[i].Count, queue[i].Sum = f.Count, f.Sum[:]
			}
			var out wire.Reconcile
			if st, we := call(t, "POST", e.url("/v1/servers/%s/channels/%s/reconcile", e.Gen.ID, e.General), token, wire.Reconcile{Ranges: queue}, &out); we != nil {
				t.Fatalf("round %d: %d %+v", rounds, st, we)
			}
			queue = nil
			for _, r := range out.Ranges {
				if r.Listed {
					for _, k := range r.Keys {
						if !hasKey(held, storage.Key(k)) {
							found[k.ID] = true
						}
					}
					continue
				}
				f := fp(storage.Key(r.From), storage.Key(r.To))
				if f.Count != r.Count || !bytes.Equal(f.Sum[:], r.Sum) {
					queue = append(queue, wire.Range{From: r.From, To: r.To})
				}
			}
		}
		if len(found) != len(missing) {
			t.Fatalf("found %d of %d missing envelopes", len(found), len(missing))
		}
		for id := range missing {
			if !found[id] {
				t.Fatalf("missed %s", id)
			}
		}
		if rounds > 4 {
			t.Fatalf("%d rounds", rounds)
		}
		// What was found is fetched by ID; an ID of another server is not found.
		for id := range found {
			var env wire.Envelope
			if st, we := call(t, "GET", e.url("/v1/servers/%s/envelopes/%s", e.Gen.ID, id), token, nil, &env); we != nil || env.ID != id || policy.Sum(env.Raw) != id {
				t.Fatalf("fetch %s: %d %+v", id, st, we)
			}
			if st, _ := call(t, "GET", e.url("/v1/servers/%s/envelopes/%s", id, id), token, nil, nil); st != http.StatusNotFound {
				t.Fatalf("fetch under another server: %d", st)
			}
			if st, _ := call(t, "GET", e.url("/v1/servers/%s/envelopes/%s", e.Gen.ID, id), "", nil, nil); st != http.StatusUnauthorized {
				t.Fatalf("anonymous fetch: %d", st)
			}
			break
		}
		if st, _ := call(t, "POST", e.url("/v1/servers/%s/channels/%s/reconcile", e.Gen.ID, e.General), "", wire.Reconcile{Ranges: []wire.Range{{To: wire.Key(top)}}}, nil); st != http.StatusUnauthorized {
			t.Fatalf("anonymous reconciliation: %d", st)
		}
	})
}

func hasKey(keys []storage.Key, k storage.Key) bool {
	for _, h := range keys {
		if h == k {
			return true
		}
	}
	return false
}
