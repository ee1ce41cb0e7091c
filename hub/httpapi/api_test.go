package httpapi

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/fxamacker/cbor/v2"

	"github.com/guildhall/guildhall/fanout"
	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
	"github.com/guildhall/guildhall/wire"
)

// apiEnv is a hub served over real HTTP on loopback.
type apiEnv struct {
	*fixture
	api   *API
	srv   *httptest.Server
	admin *httptest.Server
}

func newAPIEnv(t *testing.T, profile string, configure func(*hub.Config, *Config)) *apiEnv {
	t.Helper()
	var acfg Config
	f := newFixtureOn(t, profile, func(c *hub.Config) {
		c.Broker = fanout.New(fanout.Config{})
		if configure != nil {
			configure(c, &acfg)
		}
	})
	e := &apiEnv{fixture: f, api: New(f.Hub, acfg)}
	e.srv = httptest.NewServer(e.api.Handler())
	e.admin = httptest.NewServer(NewAdmin(f.Hub, "admin-secret", nil))
	t.Cleanup(func() { e.api.Shutdown(context.Background()); e.srv.Close(); e.admin.Close() })
	return e
}

// call makes a request in CBOR (or raw bytes when body is []byte) and
// decodes a success into out; it returns the status and any wire error.
func call(t *testing.T, method, url, token string, body any, out any) (int, *wire.Error) {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case nil:
	case []byte:
		b = v
	default:
		var err error
		if b, err = wire.Marshal(wire.CBOR, body); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", wire.CBOR)
	switch {
	case strings.HasPrefix(token, policy.InviteTokenPrefix):
		req.Header.Set("Authorization", "Invite "+token)
	case token != "":
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		var we wire.Error
		if err := wire.Unmarshal(wire.JSON, rb, &we); err != nil || we.Code == "" {
			t.Fatalf("%s %s: status %d with body %q", method, url, resp.StatusCode, rb)
		}
		return resp.StatusCode, &we
	}
	if out != nil {
		if err := wire.Unmarshal(resp.Header.Get("Content-Type"), rb, out); err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
	}
	return resp.StatusCode, nil
}

func (e *apiEnv) url(format string, args ...any) string {
	for _, a := range args {
		format = strings.Replace(format, "%s", a.(interface{ String() string }).String(), 1)
	}
	return e.srv.URL + format
}

// login runs the device-key challenge for a signer and returns its token.
func (e *apiEnv) login(s policy.Signer) string {
	e.T.Helper()
	var ch wire.Challenge
	if st, we := call(e.T, "POST", e.srv.URL+"/v1/auth/challenge", "", nil, &ch); we != nil {
		e.T.Fatalf("challenge: %d %v", st, we)
	}
	proof, err := policy.NewAuth(s, policy.AuthBody{Hub: e.Hub.NodeID(), Challenge: ch.Challenge, Time: e.Now().UnixMilli()})
	if err != nil {
		e.T.Fatal(err)
	}
	var sess wire.Session
	if st, we := call(e.T, "POST", e.srv.URL+"/v1/auth/session", "", wire.SessionRequest{Proof: proof.Raw}, &sess); we != nil {
		e.T.Fatalf("session: %d %v", st, we)
	}
	if sess.Identity != s.Identity || sess.Device != policy.KeyOf(s.Key) {
		e.T.Fatalf("session for %s/%s", sess.Identity, sess.Device)
	}
	return sess.Token
}

// postHTTP posts envelopes and returns the per-envelope results.
func (e *apiEnv) postHTTP(raws ...[]byte) []wire.Result {
	e.T.Helper()
	var res wire.Results
	if st, we := call(e.T, "POST", e.srv.URL+"/v1/envelopes", "", wire.Objects{Objects: raws}, &res); we != nil {
		e.T.Fatalf("post: %d %v", st, we)
	}
	return res.Results
}

func TestAPIRefusals(t *testing.T) {
	eachProfile(t, func(t *testing.T, profile string) {
		e := newAPIEnv(t, profile, func(c *hub.Config, a *Config) {
			c.DefaultQuota = storage.Quota{Envelopes: 20}
			a.MaxBody = 256 << 10
		})
		e.Community()
		dave, carol := e.Device("dave"), e.Device("carol")
		// A second hub, never granted the strict channel.
		other, err := hub.New(hub.Config{NodeKey: key("other hub"), Store: e.Store, Now: func() time.Time { return e.Now() }})
		if err != nil {
			t.Fatal(err)
		}
		otherAPI := httptest.NewServer(New(other, Config{}).Handler())
		defer otherAPI.Close()

		forged := e.Envelope(dave, e.General, 10).Raw
		forged = bytes.Clone(forged)
		forged[len(forged)-1] ^= 1
		e.Tick()
		revoked := e.Device("erin") // erin joins below, then revokes this device
		stranger := policy.DeviceSigner(key("zed-phone"), mustCert(t, "zed", "zed-phone"))
		// Claims to be dave, on a device that mallory certified.
		unknownDevice := func() []byte {
			return rawEnvelope(t, key("dave-tablet"), policy.EnvelopeBody{Server: e.Gen.ID, Channel: e.General, Epoch: 1,
				Author: policy.KeyOf(key("dave")), Cert: mustCert(t, "mallory", "dave-tablet").Raw, Time: e.Tick(), Ciphertext: []byte("x")})
		}

		e.MustPublish(e.Event("erin", &policy.Join{Invite: e.invite("erin").Raw}))
		e.MustPublish(e.Event("frank", &policy.Join{Invite: e.invite("frank").Raw}))
		e.MustPublish(e.Event("erin", &policy.DeviceRevoke{Revocation: policy.NewDeviceRevocation(key("erin"), policy.KeyOf(key("erin-phone")), e.Tick()).Raw}))
		e.MustPublish(e.Event("alice", &policy.Ban{Member: policy.KeyOf(key("frank"))}))
		frank := e.Device("frank")
		readOnly := e.General
		_ = readOnly

		cases := []struct {
			name string
			raw  func() []byte
			code string
		}{
			{"forged signature", func() []byte { return forged }, "bad_signature"},
			{"malformed encoding", func() []byte { return []byte{0x82, 0x41, 0x00, 0x40} }, "malformed"},
			{"device certified for another identity", unknownDevice, "cert_invalid"},
			{"revoked device", func() []byte { return e.envelopeBy(revoked, e.General, 10) }, "device_revoked"},
			{"non-member", func() []byte { return e.envelopeBy(stranger, e.General, 10) }, "not_member"},
			{"banned sender", func() []byte { return e.envelopeBy(frank, e.General, 10) }, "banned"},
			{"post without permission", func() []byte { return e.envelopeBy(dave, e.Mods, 10) }, "forbidden"},
			{"unknown channel", func() []byte { return e.envelopeBy(dave, policy.Sum([]byte("nope")), 10) }, "unknown_channel"},
			{"oversized envelope", func() []byte {
				return rawEnvelope(t, carol.Key, policy.EnvelopeBody{Server: e.Gen.ID, Channel: e.General, Epoch: 1, Author: carol.Identity,
					Cert: carol.Cert.Raw, Time: e.Tick(), Ciphertext: make([]byte, policy.MaxEnvelopeSize)})
			}, "too_large"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				before := e.Stored(e.General) + e.Stored(e.Mods)
				res := e.postHTTP(c.raw())
				if res[0].Error == nil || res[0].Error.Code != c.code || res[0].Receipt != nil {
					t.Fatalf("got %+v, want code %s", res[0], c.code)
				}
				if after := e.Stored(e.General) + e.Stored(e.Mods); after != before {
					t.Fatalf("a refused envelope was stored (%d -> %d)", before, after)
				}
			})
		}
		t.Run("strict channel on an ungranted hub", func(t *testing.T) {
			var res wire.Results
			call(t, "POST", otherAPI.URL+"/v1/envelopes", "", wire.Objects{Objects: [][]byte{e.envelopeBy(carol, e.Mods, 10)}}, &res)
			if res.Results[0].Error == nil || res.Results[0].Error.Code != "not_eligible" {
				t.Fatalf("got %+v", res.Results[0])
			}
			if e.Stored(e.Mods) != 0 {
				t.Fatal("stored")
			}
		})
		t.Run("oversized request body", func(t *testing.T) {
			big := wire.Objects{Objects: [][]byte{make([]byte, 300<<10)}}
			st, we := call(t, "POST", e.srv.URL+"/v1/envelopes", "", big, nil)
			if st != http.StatusRequestEntityTooLarge || we.Code != "too_large" {
				t.Fatalf("%d %+v", st, we)
			}
		})
		t.Run("malformed request", func(t *testing.T) {
			st, we := call(t, "POST", e.srv.URL+"/v1/envelopes", "", []byte("not cbor"), nil)
			if st != http.StatusBadRequest || we.Code != "malformed" {
				t.Fatalf("%d %+v", st, we)
			}
		})
		t.Run("over quota", func(t *testing.T) {
			n := e.Stored(e.General)
			var raws [][]byte
			for range 20 - n + 1 {
				raws = append(raws, e.envelopeBy(carol, e.General, 10))
			}
			res := e.postHTTP(raws...)
			for _, r := range res {
				if r.Error == nil || r.Error.Code != "quota_exceeded" {
					t.Fatalf("got %+v", r)
				}
			}
			if e.Stored(e.General) != n {
				t.Fatal("an over-quota batch was partly stored")
			}
		})
		t.Run("unauthenticated read of members-only history", func(t *testing.T) {
			st, we := call(t, "GET", e.url("/v1/servers/%s/channels/%s/envelopes", e.Gen.ID, e.General), "", nil, nil)
			if st != http.StatusUnauthorized || we.Code != "unauthenticated" {
				t.Fatalf("%d %+v", st, we)
			}
			st, we = call(t, "GET", e.url("/v1/servers/%s/events", e.Gen.ID), "", nil, nil)
			if st != http.StatusUnauthorized || we.Code != "unauthenticated" {
				t.Fatalf("%d %+v", st, we)
			}
			st, we = call(t, "GET", e.url("/v1/servers/%s/events", e.Gen.ID), "forged-token", nil, nil)
			if st != http.StatusUnauthorized || we.Code != "unauthenticated" {
				t.Fatalf("%d %+v", st, we)
			}
		})
	})
}

// rawEnvelope signs an envelope body as is, the way an attacker would,
// without the checks of policy.NewEnvelope.
func rawEnvelope(t *testing.T, priv ed25519.PrivateKey, body policy.EnvelopeBody) []byte {
	t.Helper()
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		t.Fatal(err)
	}
	b, err := em.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	sig := ed25519.Sign(priv, append([]byte(policy.Domain+policy.KindEnvelope+"\x00"), b...))
	out, err := em.Marshal([]any{b, sig})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRateLimits(t *testing.T) {
	e := newAPIEnv(t, "sqlite", func(c *hub.Config, a *Config) {
		c.PostRate, c.PostBurst = 1e-9, 3 // a sender may post 3, then is limited
		a.SourceRate, a.SourceBurst = 1e-9, 12
	})
	e.Community()
	dave := e.Device("dave")
	var codes []string
	for range 5 {
		r := e.postHTTP(e.envelopeBy(dave, e.General, 10))[0]
		if r.Error != nil {
			codes = append(codes, r.Error.Code)
		} else {
			codes = append(codes, "ok")
		}
	}
	if strings.Join(codes, ",") != "ok,ok,ok,rate_limited,rate_limited" {
		t.Fatalf("per sender: %v", codes)
	}
	if e.Stored(e.General) != 3 {
		t.Fatal("a rate-limited envelope was stored")
	}
	// Another sender is not affected; the source address is, after its
	// burst of 12 requests.
	carol := e.Device("carol")
	if r := e.postHTTP(e.envelopeBy(carol, e.General, 10))[0]; r.Error != nil {
		t.Fatalf("carol: %+v", r)
	}
	var last int
	for range 10 {
		last, _ = call(t, "GET", e.srv.URL+"/v1/info", "", nil, nil)
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("source over its burst: status %d", last)
	}
	st, we := call(t, "POST", e.srv.URL+"/v1/envelopes", "", wire.Objects{Objects: [][]byte{e.envelopeBy(carol, e.General, 10)}}, nil)
	if st != http.StatusTooManyRequests || we.Code != "rate_limited" || e.Stored(e.General) != 4 {
		t.Fatalf("post over the source limit: %d %+v", st, we)
	}
}

func mustCert(t *testing.T, identity, device string) *policy.DeviceCert {
	t.Helper()
	c, err := policy.NewDeviceCert(key(identity), policy.DeviceCertBody{Device: policy.KeyOf(key(device)), KEM: policy.KEMX25519, EncKey: make([]byte, 32), Issued: t0.UnixMilli(), Expires: t0.Add(24 * time.Hour).UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// envelopeBy signs an envelope of size bytes of ciphertext.
func (f *fixture) envelopeBy(s policy.Signer, channel policy.ID, size int) []byte {
	f.T.Helper()
	e, err := policy.NewEnvelope(s, policy.EnvelopeBody{Server: f.Gen.ID, Channel: channel, Epoch: 1, Time: f.Tick(), Ciphertext: make([]byte, size)})
	if err != nil {
		f.T.Fatal(err)
	}
	return e.Raw
}

// invite is a one-use invite from alice.
func (f *fixture) invite(who string) *policy.Invite {
	f.T.Helper()
	nonce := sha256.Sum256([]byte(who))
	inv, err := policy.NewInvite(policy.IdentitySigner(key("alice")), policy.InviteBody{Server: f.Gen.ID, Issued: f.Now().UnixMilli(), Expires: f.Now().Add(time.Hour).UnixMilli(), Uses: 1, Nonce: nonce[:16]})
	if err != nil {
		f.T.Fatal(err)
	}
	return inv
}

func TestAPIReadsFollowTheState(t *testing.T) {
	eachProfile(t, func(t *testing.T, profile string) {
		e := newAPIEnv(t, profile, nil)
		e.Community()
		dave := e.Device("dave")
		res := e.postHTTP(e.envelopeBy(dave, e.General, 100), e.envelopeBy(dave, e.General, 100))
		for _, r := range res {
			rc, err := policy.ParseReceipt(r.Receipt)
			if err != nil || rc.Hub != e.Hub.NodeID() {
				t.Fatalf("receipt %v %v", rc, err)
			}
		}
		token := e.login(dave)
		var page wire.Envelopes
		if st, we := call(t, "GET", e.url("/v1/servers/%s/channels/%s/envelopes?after=1", e.Gen.ID, e.General), token, nil, &page); we != nil {
			t.Fatalf("%d %v", st, we)
		}
		if len(page.Envelopes) != 1 || page.Envelopes[0].Seq != 2 || page.Next != 2 || page.More {
			t.Fatalf("page %+v", page)
		}
		var evs wire.Events
		if st, we := call(t, "GET", e.url("/v1/servers/%s/events", e.Gen.ID), token, nil, &evs); we != nil || len(evs.Events) < 8 {
			t.Fatalf("%d %v %d", st, we, len(evs.Events))
		}
		st, we := call(t, "GET", e.url("/v1/servers/%s/channels/%s/envelopes", e.Gen.ID, e.Mods), token, nil, nil)
		if st != http.StatusForbidden || we.Code != "forbidden" {
			t.Fatalf("strict channel without read: %d %+v", st, we)
		}
		// A ban takes effect on the live session at once.
		e.MustPublish(e.Event("alice", &policy.Ban{Member: policy.KeyOf(key("dave"))}))
		st, we = call(t, "GET", e.url("/v1/servers/%s/channels/%s/envelopes", e.Gen.ID, e.General), token, nil, nil)
		if st != http.StatusForbidden || we.Code != "banned" {
			t.Fatalf("banned reader: %d %+v", st, we)
		}
		// A proof for another hub, or an expired challenge, opens no session.
		var ch wire.Challenge
		call(t, "POST", e.srv.URL+"/v1/auth/challenge", "", nil, &ch)
		carol := e.Device("carol")
		for name, body := range map[string]policy.AuthBody{
			"another hub":        {Hub: policy.KeyOf(key("other hub")), Challenge: ch.Challenge, Time: e.Now().UnixMilli()},
			"invented challenge": {Hub: e.Hub.NodeID(), Challenge: bytes.Repeat([]byte{1}, 40), Time: e.Now().UnixMilli()},
		} {
			proof, err := policy.NewAuth(carol, body)
			if err != nil {
				t.Fatal(err)
			}
			st, we := call(t, "POST", e.srv.URL+"/v1/auth/session", "", wire.SessionRequest{Proof: proof.Raw}, nil)
			if st != http.StatusUnauthorized || we.Code != "unauthenticated" {
				t.Fatalf("%s: %d %+v", name, st, we)
			}
		}
		e.Advance(2 * time.Minute)
		proof, _ := policy.NewAuth(carol, policy.AuthBody{Hub: e.Hub.NodeID(), Challenge: ch.Challenge, Time: e.Now().UnixMilli()})
		if st, we := call(t, "POST", e.srv.URL+"/v1/auth/session", "", wire.SessionRequest{Proof: proof.Raw}, nil); st != http.StatusUnauthorized {
			t.Fatalf("expired challenge: %d %+v", st, we)
		}
		// Public history: anyone reads.
		e.MustPublish(e.Event("alice", &policy.ServerPolicy{Name: "c", Everyone: policy.PermRead | policy.PermPost, PublicHistory: true}))
		if st, we := call(t, "GET", e.url("/v1/servers/%s/channels/%s/envelopes", e.Gen.ID, e.General), "", nil, &page); we != nil || len(page.Envelopes) != 2 {
			t.Fatalf("public history: %d %+v", st, we)
		}
	})
}

// wsConn is a test WebSocket client.
type wsConn struct {
	t       *testing.T
	c       *websocket.Conn
	pending []wire.Frame // read but not yet consumed
}

func (e *apiEnv) dial(token string) *wsConn {
	e.T.Helper()
	opts := &websocket.DialOptions{HTTPHeader: http.Header{}}
	if token != "" {
		opts.HTTPHeader.Set("Authorization", "Bearer "+token)
	}
	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(e.srv.URL, "http")+"/v1/ws", opts)
	if err != nil {
		e.T.Fatal(err)
	}
	c.SetReadLimit(16 << 20)
	e.T.Cleanup(func() { c.CloseNow() })
	return &wsConn{t: e.T, c: c}
}

func (w *wsConn) send(frames ...wire.Frame) {
	w.t.Helper()
	b, err := wire.Marshal(wire.CBOR, frames)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.c.Write(context.Background(), websocket.MessageBinary, b); err != nil {
		w.t.Fatal(err)
	}
}

// next reads frames until one satisfies want, failing after 10 s.
func (w *wsConn) next(want func(wire.Frame) bool) wire.Frame {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		for len(w.pending) > 0 {
			f := w.pending[0]
			w.pending = w.pending[1:]
			if want(f) {
				return f
			}
		}
		_, b, err := w.c.Read(ctx)
		if err != nil {
			w.t.Fatalf("reading: %v", err)
		}
		if err := wire.Unmarshal(wire.CBOR, b, &w.pending); err != nil {
			w.t.Fatal(err)
		}
	}
}

func op(name string, id uint64) func(wire.Frame) bool {
	return func(f wire.Frame) bool { return f.Op == name && f.ID == id || f.Op == wire.OpErr && f.ID == id }
}

func TestWebSocketPostSubscribeReplay(t *testing.T) {
	eachProfile(t, func(t *testing.T, profile string) {
		e := newAPIEnv(t, profile, nil)
		e.Community()
		dave, carol := e.Device("dave"), e.Device("carol")
		// Two stored before anyone follows.
		e.postHTTP(e.envelopeBy(dave, e.General, 10), e.envelopeBy(dave, e.General, 10))

		anon := e.dial("")
		anon.send(wire.Frame{Op: wire.OpSub, ID: 1, Topics: []wire.Topic{{Server: e.Gen.ID, Channel: e.General}}})
		if f := anon.next(op(wire.OpAck, 1)); f.Op != wire.OpErr || f.Error.Code != "unauthenticated" {
			t.Fatalf("anonymous subscription: %+v", f)
		}

		sub := e.dial(e.login(carol))
		sub.send(wire.Frame{Op: wire.OpSub, ID: 1, Topics: []wire.Topic{{Server: e.Gen.ID, Channel: e.General, After: 1}}})
		if f := sub.next(op(wire.OpAck, 1)); f.Op != wire.OpAck {
			t.Fatalf("subscribe: %+v", f)
		}
		replayed := sub.next(func(f wire.Frame) bool { return f.Op == wire.OpMsg })
		if replayed.Seq != 2 {
			t.Fatalf("replay from cursor 1 began at %d", replayed.Seq)
		}

		poster := e.dial("")
		raw := e.envelopeBy(dave, e.General, 10)
		poster.send(wire.Frame{Op: wire.OpPost, ID: 7, Objects: [][]byte{raw, raw}})
		ack := poster.next(op(wire.OpAck, 7))
		if len(ack.Results) != 2 || ack.Results[0].Receipt == nil || !bytes.Equal(ack.Results[0].Receipt, ack.Results[1].Receipt) {
			t.Fatalf("ack %+v", ack)
		}
		got := sub.next(func(f wire.Frame) bool { return f.Op == wire.OpMsg })
		if got.Seq != 3 || !bytes.Equal(got.Raw, raw) {
			t.Fatalf("pushed %d %x", got.Seq, got.Raw[:8])
		}
		// The duplicate was not pushed twice: the next push is the next post.
		poster.send(wire.Frame{Op: wire.OpPost, ID: 8, Objects: [][]byte{e.envelopeBy(dave, e.General, 10)}})
		if got := sub.next(func(f wire.Frame) bool { return f.Op == wire.OpMsg }); got.Seq != 4 {
			t.Fatalf("next push seq %d", got.Seq)
		}
		// Oversized frame: the connection is closed with "message too big".
		e.api.cfg.MaxFrame = 1 << 10
		big := e.dial("")
		big.send(wire.Frame{Op: wire.OpPost, ID: 1, Objects: [][]byte{make([]byte, 4<<10)}})
		_, _, err := big.c.Read(context.Background())
		if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
			t.Fatalf("oversized frame: %v", err)
		}
	})
}

func TestSlowSubscriberDoesNotDelayOthers(t *testing.T) {
	e := newAPIEnv(t, "sqlite", func(c *hub.Config, a *Config) {
		c.Broker = fanout.New(fanout.Config{QueueLen: 128})
		c.PostRate = -1
		a.WriteTimeout = time.Minute // the slow reader resumes reading only once the others are done
	})
	e.Community()
	token := e.login(e.Device("carol"))
	slow := e.dial(token)
	fast := e.dial(token)
	for _, w := range []*wsConn{slow, fast} {
		w.send(wire.Frame{Op: wire.OpSub, ID: 1, Topics: []wire.Topic{{Server: e.Gen.ID, Channel: e.General}}})
		w.next(op(wire.OpAck, 1))
	}
	dave := e.Device("dave")
	const n = 2000
	done := make(chan error, 1)
	go func() { // the fast subscriber reads everything
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		var last uint64
		for last < n {
			_, b, err := fast.c.Read(ctx)
			if err != nil {
				done <- err
				return
			}
			var frames []wire.Frame
			wire.Unmarshal(wire.CBOR, b, &frames)
			for _, f := range frames {
				if f.Op == wire.OpMsg {
					if f.Seq != last+1 {
						done <- errors.New("fast subscriber missed a message")
						return
					}
					last = f.Seq
				}
			}
		}
		done <- nil
	}()
	// The slow subscriber reads nothing while 2,000 envelopes of 16 KiB are
	// posted: its socket buffers fill, its queue overflows, and it is cut.
	for i := 0; i < n; i += 10 {
		var raws [][]byte
		for range 10 {
			raws = append(raws, e.envelopeBy(dave, e.General, 16<<10))
		}
		for _, r := range e.Hub.Post(context.Background(), raws) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cut := slow.next(func(f wire.Frame) bool { return f.Op == wire.OpCut })
	if cut.Error.Code != wire.CodeSlow || len(cut.Topics) != 1 || cut.Topics[0].After == 0 || cut.Topics[0].After >= n {
		t.Fatalf("cut %+v", cut)
	}
	// Resuming from the cursor delivers the rest, in order, from storage.
	slow.send(wire.Frame{Op: wire.OpSub, ID: 2, Topics: cut.Topics})
	want := cut.Topics[0].After + 1
	for want <= n {
		f := slow.next(func(f wire.Frame) bool { return f.Op == wire.OpMsg })
		if f.Seq != want {
			t.Fatalf("resumed at %d, want %d", f.Seq, want)
		}
		want++
	}
}

// The key-delivery reads refuse what they do not define: a `bundles` value
// other than omit, and a keys read without a device session, even where
// anyone may read the history.
func TestKeyReadRefusals(t *testing.T) {
	e := newAPIEnv(t, "sqlite", nil)
	e.Community()
	dave := e.Device("dave")
	token := e.login(dave)
	for _, v := range []string{"bogus", "OMIT", "omit,omit"} {
		st, we := call(t, "GET", e.url("/v1/servers/%s/channels/%s/envelopes?bundles="+v, e.Gen.ID, e.General), token, nil, nil)
		if st != http.StatusBadRequest || we == nil || we.Code != "bad_request" {
			t.Fatalf("bundles=%s: %d %+v, want 400 bad_request", v, st, we)
		}
	}
	var keys wire.SealedKeys
	if st, we := call(t, "GET", e.url("/v1/servers/%s/channels/%s/keys", e.Gen.ID, e.General), token, nil, &keys); we != nil {
		t.Fatalf("a member's keys read: %d %+v", st, we)
	}
	e.MustPublish(e.Event("alice", &policy.ServerPolicy{Name: "c", Everyone: policy.PermRead | policy.PermPost, PublicHistory: true}))
	var page wire.Envelopes
	if st, we := call(t, "GET", e.url("/v1/servers/%s/channels/%s/envelopes?bundles=omit", e.Gen.ID, e.General), "", nil, &page); we != nil {
		t.Fatalf("public history, anonymous: %d %+v", st, we)
	}
	st, we := call(t, "GET", e.url("/v1/servers/%s/channels/%s/keys", e.Gen.ID, e.General), "", nil, nil)
	if st != http.StatusUnauthorized || we == nil || we.Code != "unauthenticated" {
		t.Fatalf("keys without a device session: %d %+v, want 401 unauthenticated", st, we)
	}
}
