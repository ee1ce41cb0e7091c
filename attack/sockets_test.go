package attack

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/guildhall/guildhall/client"
	"github.com/guildhall/guildhall/client/clienttest"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// wsURL is a hub's WebSocket endpoint.
func wsURL(h *clienttest.Hub) string { return "ws" + strings.TrimPrefix(h.URL, "http") + "/v1/ws" }

// dialFrom opens a WebSocket to a hub from a local address (any of
// 127.0.0.0/8 is this machine, and a different source to the hub).
func dialFrom(h *clienttest.Hub, from string) (*websocket.Conn, *http.Response, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return websocket.Dial(dctx, wsURL(h), &websocket.DialOptions{HTTPClient: hc})
}

// Finding 7. Bound: one source (an address; an IPv6 /64; behind a trusted
// proxy, the client it names) holds at most limits.sockets_per_source
// WebSockets (8 here, 64 by default) of the hub's max_sockets: the next is
// refused with 429 rate_limited and counted in
// guildhall_hub_rate_limited_total{scope="socket_source"}, while another
// source still gets a socket, and the first gets one again once it lets one
// go.
func TestOneSourceCannotHoldEverySocket(t *testing.T) {
	h := clienttest.NewHub(t, "sqlite")
	h.Extra = "limits:\n  sockets_per_source: 8\n"
	h.Start()
	var held []*websocket.Conn
	defer func() {
		for _, c := range held {
			c.CloseNow()
		}
	}()
	for i := range 8 {
		c, _, err := dialFrom(h, "127.0.0.1")
		if err != nil {
			t.Fatalf("socket %d of the source: %v", i+1, err)
		}
		held = append(held, c)
	}
	c, resp, err := dialFrom(h, "127.0.0.1")
	if err == nil {
		c.CloseNow()
		t.Fatal("a 9th WebSocket of one source was accepted")
	}
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a 9th WebSocket of one source: %v (response %+v), want 429", err, resp)
	}
	var we wire.Error
	b, _ := io.ReadAll(resp.Body)
	if wire.Unmarshal(wire.JSON, b, &we); we.Code != wire.CodeRateLimited || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("a 9th WebSocket of one source: %q (Retry-After %q), want rate_limited", b, resp.Header.Get("Retry-After"))
	}
	if got := metric(t, h, `guildhall_hub_rate_limited_total{scope="socket_source"}`); got != 1 {
		t.Fatalf("refusals counted: %v, want 1", got)
	}
	other, _, err := dialFrom(h, "127.0.0.2")
	if err != nil {
		t.Fatalf("another source was refused while the first held its share: %v", err)
	}
	other.CloseNow()
	held[0].Close(websocket.StatusNormalClosure, "")
	held = held[1:]
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, _, err := dialFrom(h, "127.0.0.1")
		if err == nil {
			held = append(held, c)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the source was refused after closing one of its sockets: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Finding 14 (a). Bound: a state change that removes a reader cuts their
// live subscriptions before anything stored after it is sent to them, not
// at the next periodic re-check (10 s). A member follows a channel; the
// owner bans them and, once the ban is acknowledged, posts: the banned
// socket receives none of those envelopes, and gets a cut frame with the
// code banned and the cursor to resume from.
func TestBannedSubscriberIsCutBeforeTheNextMessage(t *testing.T) {
	c := newCommunity(t)
	general, err := c.alice.CreateChannel(ctx, c.server, policy.ChannelCreate{Name: "general", Durability: policy.Replicated})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.bob.SyncState(ctx, c.server); err != nil {
		t.Fatal(err)
	}
	d, err := c.bob.Device()
	if err != nil {
		t.Fatal(err)
	}
	token, err := c.api.Login(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.api.Subscribe(ctx, token, []wire.Topic{{Server: c.server, Channel: general}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	before, err := c.alice.Send(ctx, c.server, general, "before the ban")
	if err != nil {
		t.Fatal(err)
	}
	wait := time.After(10 * time.Second)
	for got := false; !got; {
		select {
		case f := <-sub.C:
			got = f.Op == wire.OpMsg && policy.Sum(f.Raw) == before.ID
		case <-wait:
			t.Fatal("the member's subscription did not deliver a message before the ban")
		}
	}
	// From here every frame is stamped as it arrives.
	type stamped struct {
		f  wire.Frame
		at time.Time
	}
	frames := make(chan stamped, 1024)
	go func() {
		defer close(frames)
		for f := range sub.C {
			frames <- stamped{f, time.Now()}
		}
	}()
	bobID, _ := c.bob.Identity()
	if _, err := c.alice.Publish(ctx, c.server, &policy.Ban{Member: bobID.Public(), Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	banned := time.Now()
	after := map[policy.ID]bool{}
	for i := range 20 {
		s, err := c.alice.Send(ctx, c.server, general, fmt.Sprintf("after the ban %d", i))
		if err != nil {
			t.Fatal(err)
		}
		after[s.ID] = true
	}
	var cut *wire.Frame
	var cutAfter time.Duration
	leaked := 0
	timeout := time.After(3 * time.Second) // well inside the 10 s re-check
	for done := false; !done; {
		select {
		case sf, ok := <-frames:
			switch f := sf.f; {
			case !ok:
				done = true
			case f.Op == wire.OpMsg && after[policy.Sum(f.Raw)]:
				leaked++
			case f.Op == wire.OpCut && cut == nil:
				cut, cutAfter = &f, sf.at.Sub(banned)
			}
		case <-timeout:
			done = true
		}
	}
	t.Logf("cut frame %v after the client had the ban's acknowledgement (negative: before); %d of %d envelopes posted after it delivered", cutAfter, leaked, len(after))
	if leaked > 0 {
		t.Fatalf("the banned subscriber received %d of the %d envelopes stored after the ban", leaked, len(after))
	}
	if cut == nil || cut.Error == nil || cut.Error.Code != string(policy.CodeBanned) {
		t.Fatalf("the banned subscriber got no cut frame with code banned within 3 s: %+v", cut)
	}
	if len(cut.Topics) != 1 || cut.Topics[0].Channel != general || cut.Topics[0].After == 0 {
		t.Fatalf("cut topics %+v, want general with its cursor", cut.Topics)
	}
}

// answer is what a client can see of a refusal: status and body, with the
// IDs it named replaced, since echoing them tells nothing.
type answer struct {
	status int
	body   string
}

func anonymous(t *testing.T, method, url string, body []byte, ids ...policy.ID) answer {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", wire.CBOR)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, mask(string(b), ids...)}
}

func mask(s string, ids ...policy.ID) string {
	for _, id := range ids {
		s = strings.ReplaceAll(s, id.String(), "ID")
	}
	return s
}

func randomID() policy.ID {
	var id policy.ID
	rand.Read(id[:])
	return id
}

// Finding 14 (b). Bound: an unauthenticated request to a server whose
// history is not public learns nothing of what exists: a members-only
// server, a server the hub does not host, a channel and an envelope that
// do not exist all get the same answer (401 unauthenticated, the same body
// apart from the IDs it echoes), over HTTP and in a WebSocket sub; a public
// server's history still reads anonymously.
func TestAnonymousAnswersSayNothingOfWhatExists(t *testing.T) {
	c := newCommunity(t)
	general, err := c.alice.CreateChannel(ctx, c.server, policy.ChannelCreate{Name: "general", Durability: policy.Replicated})
	if err != nil {
		t.Fatal(err)
	}
	sent, err := c.alice.Send(ctx, c.server, general, "members only")
	if err != nil {
		t.Fatal(err)
	}
	ghost, ghostChannel, ghostEnvelope := randomID(), randomID(), randomID()
	reconcile, _ := wire.Marshal(wire.CBOR, wire.Reconcile{})
	u := func(format string, ids ...policy.ID) string {
		args := make([]any, len(ids))
		for i, id := range ids {
			args[i] = id
		}
		return c.hub.URL + fmt.Sprintf(format, args...)
	}
	for _, tc := range []struct {
		name          string
		method, path  string
		body          []byte
		real, imagine []policy.ID // the path's IDs: existing, and made up
	}{
		{"state log", "GET", "/v1/servers/%s/events", nil, []policy.ID{c.server}, []policy.ID{ghost}},
		{"channel read", "GET", "/v1/servers/%s/channels/%s/envelopes", nil, []policy.ID{c.server, general}, []policy.ID{c.server, ghostChannel}},
		{"channel read, unhosted", "GET", "/v1/servers/%s/channels/%s/envelopes", nil, []policy.ID{c.server, general}, []policy.ID{ghost, ghostChannel}},
		{"envelope by ID", "GET", "/v1/servers/%s/envelopes/%s", nil, []policy.ID{c.server, sent.ID}, []policy.ID{c.server, ghostEnvelope}},
		{"envelope by ID, unhosted", "GET", "/v1/servers/%s/envelopes/%s", nil, []policy.ID{c.server, sent.ID}, []policy.ID{ghost, ghostEnvelope}},
		{"reconcile", "POST", "/v1/servers/%s/channels/%s/reconcile", reconcile, []policy.ID{c.server, general}, []policy.ID{c.server, ghostChannel}},
		{"reconcile, unhosted", "POST", "/v1/servers/%s/channels/%s/reconcile", reconcile, []policy.ID{c.server, general}, []policy.ID{ghost, ghostChannel}},
		{"blob, unhosted", "GET", "/v1/servers/%s/blobs/%s", nil, []policy.ID{c.server, ghostEnvelope}, []policy.ID{ghost, ghostEnvelope}},
		{"blob upload, unhosted", "PUT", "/v1/servers/%s/blobs/%s", []byte("x"), []policy.ID{c.server, policy.Sum([]byte("x"))}, []policy.ID{ghost, policy.Sum([]byte("x"))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			real := anonymous(t, tc.method, u(tc.path, tc.real...), tc.body, tc.real...)
			made := anonymous(t, tc.method, u(tc.path, tc.imagine...), tc.body, tc.imagine...)
			if real.status != http.StatusUnauthorized || !strings.Contains(real.body, `"unauthenticated"`) {
				t.Fatalf("the members-only server answered %d %s, want 401 unauthenticated", real.status, real.body)
			}
			if made != real {
				t.Fatalf("what exists and what does not are told apart:\n  exists: %d %s\n  made up: %d %s", real.status, real.body, made.status, made.body)
			}
		})
	}
	t.Run("websocket sub", func(t *testing.T) {
		sub := func(server, channel policy.ID) string {
			conn, _, err := websocket.Dial(ctx, wsURL(c.hub), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.CloseNow()
			b, _ := wire.Marshal(wire.CBOR, []wire.Frame{{Op: wire.OpSub, ID: 1, Topics: []wire.Topic{{Server: server, Channel: channel}}}})
			if err := conn.Write(ctx, websocket.MessageBinary, b); err != nil {
				t.Fatal(err)
			}
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, b, err = conn.Read(rctx)
			if err != nil {
				t.Fatal(err)
			}
			var frames []wire.Frame
			if err := wire.Unmarshal(wire.CBOR, b, &frames); err != nil || len(frames) != 1 || frames[0].Error == nil {
				t.Fatalf("answer to sub: %+v (%v)", frames, err)
			}
			return mask(frames[0].Op+" "+frames[0].Error.Code+" "+frames[0].Error.Message, server, channel)
		}
		real := sub(c.server, general)
		if !strings.HasPrefix(real, "err unauthenticated ") {
			t.Fatalf("anonymous sub to a members-only channel: %s", real)
		}
		for _, made := range []string{sub(c.server, ghostChannel), sub(ghost, ghostChannel)} {
			if made != real {
				t.Fatalf("subs told apart: %q and %q", real, made)
			}
		}
	})
	t.Run("public history still reads", func(t *testing.T) {
		public, err := c.alice.CreateServer(ctx, "public", []string{c.hub.URL}, client.ServerOptions{PublicHistory: true})
		if err != nil {
			t.Fatal(err)
		}
		if a := anonymous(t, "GET", u("/v1/servers/%s/events", public), nil); a.status != http.StatusOK {
			t.Fatalf("anonymous read of a public state log: %d %s", a.status, a.body)
		}
		if a := anonymous(t, "GET", u("/v1/servers/%s/channels/%s/envelopes", public, ghostChannel), nil); a.status != http.StatusNotFound || !strings.Contains(a.body, `"unknown_channel"`) {
			t.Fatalf("anonymous read of a public server's unknown channel: %d %s, want unknown_channel", a.status, a.body)
		}
	})
}

// Finding 14 (c). Bound: with an admin token configured, the admin
// listener's /metrics needs it as a bearer token like every admin route
// (401 unauthenticated without it or with another); /healthz and /readyz
// stay open for probes.
func TestAdminMetricsNeedTheToken(t *testing.T) {
	t.Setenv("GUILDHALL_HUB_ADMIN_TOKEN", "metrics-token-for-the-test")
	h := clienttest.StartHub(t, "sqlite")
	get := func(path, auth string) (int, string) {
		req, _ := http.NewRequest("GET", h.Admin+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, auth := range []string{"", "Bearer wrong", "metrics-token-for-the-test"} {
		if st, body := get("/metrics", auth); st != http.StatusUnauthorized || !strings.Contains(body, `"unauthenticated"`) {
			t.Fatalf("/metrics with Authorization %q: %d %.80s, want 401 unauthenticated", auth, st, body)
		}
	}
	if st, body := get("/metrics", "Bearer metrics-token-for-the-test"); st != http.StatusOK || !strings.Contains(body, "guildhall_hub_websockets ") {
		t.Fatalf("/metrics with the token: %d %.80s", st, body)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if st, body := get(path, ""); st != http.StatusOK {
			t.Fatalf("%s without the token: %d %s, want 200", path, st, body)
		}
	}
}
