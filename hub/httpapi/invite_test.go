package httpapi

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
	"github.com/guildhall/guildhall/wire"
)

// A newcomer holding an invite reads the state log, and nothing else; an
// expired, revoked or stranger's invite says why it does not open it.
func TestInviteOpensTheStateLog(t *testing.T) {
	e := newAPIEnv(t, "sqlite", nil)
	e.Community()
	invite := func(who string, ttl time.Duration) *policy.Invite {
		inv, err := policy.NewInvite(policy.IdentitySigner(key(who)), policy.InviteBody{Server: e.Gen.ID, Issued: e.Now().UnixMilli(),
			Expires: e.Now().Add(ttl).UnixMilli(), Uses: 1, Nonce: []byte(who + "-newcomer-nonce--")[:16]})
		if err != nil {
			t.Fatal(err)
		}
		return inv
	}
	events := e.srv.URL + "/v1/servers/" + e.Gen.ID.String() + "/events"
	valid := policy.EncodeInviteToken(invite("alice", time.Hour))
	var page wire.Events
	if st, we := call(t, "GET", events, valid, nil, &page); we != nil || st != http.StatusOK || len(page.Events) == 0 {
		t.Fatalf("with a valid invite: %d %v, %d events", st, we, len(page.Events))
	}
	if st, we := call(t, "GET", events, "", nil, nil); we == nil || we.Code != wire.CodeUnauthenticated {
		t.Fatalf("without a credential: %d %+v", st, we)
	}
	channel := e.srv.URL + "/v1/servers/" + e.Gen.ID.String() + "/channels/" + e.General.String() + "/envelopes"
	if st, we := call(t, "GET", channel, valid, nil, nil); we == nil || we.Code != wire.CodeUnauthenticated {
		t.Fatalf("an invite and a channel: %d %+v, want unauthenticated", st, we)
	}
	blob := e.srv.URL + "/v1/servers/" + e.Gen.ID.String() + "/blobs/" + policy.Sum([]byte("a blob")).String()
	if st, we := call(t, "GET", blob, valid, nil, nil); we == nil || we.Code != wire.CodeUnauthenticated {
		t.Fatalf("an invite and a blob: %d %+v, want unauthenticated", st, we)
	}
	expired := invite("alice", time.Second)
	e.Advance(time.Minute)
	for name, tc := range map[string]struct {
		token string
		want  string
	}{
		"expired":             {policy.EncodeInviteToken(expired), string(policy.CodeInviteExpired)},
		"a stranger's":        {policy.EncodeInviteToken(invite("zed", time.Hour)), string(policy.CodeInvalidInvite)},
		"cut short":           {valid[:len(valid)-9], wire.CodeUnauthenticated},
		"of no server at all": {strings.Replace(valid, "ghinv1:", "ghinv1:AAAA", 1), wire.CodeUnauthenticated},
	} {
		if st, we := call(t, "GET", events, tc.token, nil, nil); we == nil || we.Code != tc.want {
			t.Errorf("%s invite: %d %+v, want %s", name, st, we, tc.want)
		}
	}
	revoked := invite("alice", time.Hour)
	e.MustPublish(e.Event("alice", &policy.InviteRevoke{Invite: revoked.ID}))
	if st, we := call(t, "GET", events, policy.EncodeInviteToken(revoked), nil, nil); we == nil || we.Code != string(policy.CodeInviteRevoked) {
		t.Fatalf("revoked invite: %d %+v", st, we)
	}
}

// Finding 13 (second half): a body a web page may send to any origin
// without asking (text/plain, a form, no type) is not decoded, so no page
// can write to a hub on the visitor's loopback.
func TestCrossOriginBodiesAreRefused(t *testing.T) {
	e := newAPIEnv(t, "sqlite", nil)
	e.Community()
	raw := e.envelopeBy(e.Device("dave"), e.General, 16)
	body, err := wire.Marshal(wire.CBOR, wire.Objects{Objects: [][]byte{raw}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range []string{"text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""} {
		req, err := http.NewRequest("POST", e.srv.URL+"/v1/envelopes", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", "https://evil.example")
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("Content-Type %q: status %d, want 400", ct, resp.StatusCode)
		}
	}
	if n := e.Stored(e.General); n != 0 {
		t.Fatalf("%d envelopes stored through cross-origin bodies", n)
	}
	if st, we := call(t, "POST", e.srv.URL+"/v1/envelopes", "", wire.Objects{Objects: [][]byte{raw}}, nil); we != nil || st != http.StatusOK {
		t.Fatalf("the same post as CBOR: %d %+v", st, we)
	}
}

// Finding 14 (in part): a session token in a URL opens nothing but the
// WebSocket, where browsers have no other way to send it.
func TestTokenInURLOnlyForTheWebSocket(t *testing.T) {
	e := newAPIEnv(t, "sqlite", nil)
	e.Community()
	token := e.login(e.Device("carol"))
	events := e.srv.URL + "/v1/servers/" + e.Gen.ID.String() + "/events"
	if st, we := call(t, "GET", events, token, nil, nil); we != nil {
		t.Fatalf("with the header: %d %+v", st, we)
	}
	if st, we := call(t, "GET", events+"?token="+token, "", nil, nil); we == nil || we.Code != wire.CodeUnauthenticated {
		t.Fatalf("with ?token= on a REST route: %d %+v, want unauthenticated", st, we)
	}
}

// Finding 12: a blob of a members-only server is not served under another
// server's name, even one whose history is public.
func TestBlobsStayWithTheirServer(t *testing.T) {
	e := newAPIEnv(t, "sqlite", func(c *hub.Config, a *Config) { c.DefaultQuota = storage.Quota{Bytes: 1 << 20} })
	e.Community()
	data := bytes.Repeat([]byte("members only"), 100)
	id := policy.Sum(data)
	if st, we := call(t, "PUT", e.url("/v1/servers/%s/blobs/%s", e.Gen.ID, id), e.login(e.Device("dave")), data, nil); st != http.StatusCreated {
		t.Fatalf("upload: %d %+v", st, we)
	}
	g, err := policy.NewEvent(policy.IdentitySigner(key("zed")), policy.ID{}, nil, e.Now().UnixMilli(), &policy.Genesis{
		Creators: []policy.PublicKey{policy.KeyOf(key("zed"))}, Policy: policy.ServerPolicy{Name: "zed's", Everyone: policy.PermRead | policy.PermPost, PublicHistory: true}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Hub.PublishEvents(context.Background(), g.ID, [][]byte{g.Raw}); err != nil {
		t.Fatal(err)
	}
	if st, we := call(t, "GET", e.url("/v1/servers/%s/blobs/%s", g.ID, id), "", nil, nil); we == nil || we.Code != wire.CodeNotFound {
		t.Fatalf("the blob under a stranger's public server: %d %+v, want not_found", st, we)
	}
	if st, we := call(t, "GET", e.url("/v1/servers/%s/blobs/%s", e.Gen.ID, id), e.login(e.Device("carol")), nil, nil); we != nil {
		t.Fatalf("a member of its own server: %d %+v", st, we)
	}
}

// Finding 14 (in part): malformed WebSocket messages cost like frames: a
// source that sends garbage past its rate is cut off.
func TestMalformedFramesAreRateLimited(t *testing.T) {
	e := newAPIEnv(t, "sqlite", func(c *hub.Config, a *Config) { a.SourceRate, a.SourceBurst = 0.001, 20 })
	ws := e.dial("")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	closed := false
	for i := 0; i < 100 && !closed; i++ {
		if err := ws.c.Write(ctx, websocket.MessageBinary, []byte{0xff, 0x00, 0x13}); err != nil {
			closed = true
			break
		}
		for {
			_, b, err := ws.c.Read(ctx)
			if err != nil {
				closed = true
				break
			}
			var frames []wire.Frame
			if wire.Unmarshal(wire.CBOR, b, &frames) == nil && len(frames) > 0 && frames[0].Op == wire.OpErr {
				break
			}
		}
	}
	if !closed {
		t.Fatal("100 malformed messages against a burst of 20 did not end the socket")
	}
}

// Finding 7 (in part): a WebSocket that follows nothing and sends nothing
// is closed after IdleTimeout; one that follows a channel is not.
func TestIdleSocketsAreClosed(t *testing.T) {
	e := newAPIEnv(t, "sqlite", func(c *hub.Config, a *Config) { a.IdleTimeout = 300 * time.Millisecond })
	e.Community()
	idle := e.dial("")
	following := e.dial(e.login(e.Device("carol")))
	following.send(wire.Frame{Op: wire.OpSub, ID: 1, Topics: []wire.Topic{{Server: e.Gen.ID, Channel: e.General}}})
	following.next(op(wire.OpAck, 1))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, _, err := idle.c.Read(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("an idle socket was not closed within 5 s: %v", err)
	}
	time.Sleep(time.Second) // three idle periods
	if r := e.Post(e.Envelope(e.Device("dave"), e.General, 10).Raw); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	following.next(func(f wire.Frame) bool { return f.Op == wire.OpMsg })
}
