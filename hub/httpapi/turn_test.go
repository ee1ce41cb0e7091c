package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/relay"
	"github.com/guildhall/guildhall/wire"
)

const turnSecret = "the relays' shared secret"

// startTURNRelay runs the relay package's TURN server on a loopback UDP
// socket, accepting REST credentials of secret, with one allocation per
// user so that its per-user quota shows whom a credential counts for.
func startTURNRelay(t *testing.T, secret string) (addr string, authFailures func() float64) {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := relay.New(relay.Config{Realm: "guildhall", Secrets: []string{secret}, UDP: []net.PacketConn{pc},
		RelayIP: net.ParseIP("127.0.0.1"), RelayBind: "127.0.0.1", Limits: relay.Limits{UserQuota: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Metrics())
	return pc.LocalAddr().String(), func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "guildhall_relay_auth_failures_total" {
				return mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		t.Fatal("the relay counts no auth failures")
		return 0
	}
}

// allocate asks the relay at addr for an allocation with a credential.
func allocate(t *testing.T, addr string, c wire.TURNCredentials) error {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cl, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: addr, TURNServerAddr: addr, Conn: conn,
		Username: c.Username, Password: c.Credential, Realm: "guildhall", RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Listen(); err != nil {
		t.Fatal(err)
	}
	relayed, err := cl.Allocate()
	if err != nil {
		return err
	}
	t.Cleanup(func() { relayed.Close() }) // held, so that the relay counts it
	return nil
}

// turnAPI serves the fixture's hub through a second API issuing with tc.
func (e *apiEnv) turnAPI(tc TURN) string {
	api := New(e.Hub, Config{TURN: tc})
	srv := httptest.NewServer(api.Handler())
	e.T.Cleanup(func() { api.Shutdown(context.Background()); srv.Close() })
	return srv.URL
}

// A member signs in to the hub, fetches credentials, and they open an
// allocation at a real relay sharing the hub's secret, counted against
// that member; credentials that expired, or made with another secret, are
// refused by the relay.
func TestTURNCredentialsAllocate(t *testing.T) {
	addr, authFailures := startTURNRelay(t, turnSecret)
	urls := []string{"turn:" + addr + "?transport=udp"}
	e := newAPIEnv(t, "sqlite", func(_ *hub.Config, a *Config) { a.TURN = TURN{Secret: turnSecret, URLs: urls} })
	e.Community()
	carol, dave := e.Device("carol"), e.Device("dave")
	carolToken := e.login(carol)

	var got wire.TURNCredentials
	before := time.Now()
	if st, we := call(t, "GET", e.srv.URL+"/v1/turn/credentials", carolToken, nil, &got); we != nil {
		t.Fatalf("credentials: %d %v", st, we)
	}
	exp := time.UnixMilli(got.Expires)
	if got.TTL != 3600 || exp.Before(before.Add(time.Hour-time.Second)) || exp.After(time.Now().Add(time.Hour)) {
		t.Fatalf("ttl %d, expires %v", got.TTL, exp)
	}
	if !strings.HasSuffix(got.Username, ":"+carol.Identity.String()) || len(got.URLs) != 1 || got.URLs[0] != urls[0] {
		t.Fatalf("credentials %+v", got)
	}
	if err := allocate(t, addr, got); err != nil {
		t.Fatalf("the hub's credential was refused by the relay: %v", err)
	}
	// The relay counts the credential for carol: her second allocation is
	// over its per-user quota of one, dave's first is not.
	if err := allocate(t, addr, got); err == nil || authFailures() != 0 {
		t.Fatalf("a second allocation for carol: %v, auth failures %v; want refused by the quota", err, authFailures())
	}
	var daves wire.TURNCredentials
	if st, we := call(t, "GET", e.srv.URL+"/v1/turn/credentials", e.login(dave), nil, &daves); we != nil {
		t.Fatalf("credentials: %d %v", st, we)
	}
	if err := allocate(t, addr, daves); err != nil {
		t.Fatalf("dave's credential refused: %v", err)
	}

	for name, tc := range map[string]TURN{
		"expired":        {Secret: turnSecret, URLs: urls, TTL: time.Hour, Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }},
		"another secret": {Secret: "not the relays' secret", URLs: urls},
	} {
		t.Run(name, func(t *testing.T) {
			url := e.turnAPI(tc)
			var bad wire.TURNCredentials
			if st, we := call(t, "GET", url+"/v1/turn/credentials", carolToken, nil, &bad); we != nil {
				t.Fatalf("credentials: %d %v", st, we)
			}
			failed := authFailures()
			if err := allocate(t, addr, bad); err == nil {
				t.Fatal("the relay accepted it")
			} else if authFailures() != failed+1 {
				t.Fatalf("refused, but not for its credential: %v", err)
			}
		})
	}
}

// The endpoint answers a session only, and only where it is configured.
func TestTURNCredentialsRefusals(t *testing.T) {
	e := newAPIEnv(t, "sqlite", func(_ *hub.Config, a *Config) {
		a.TURN = TURN{Secret: turnSecret, URLs: []string{"turn:relay.example.org:3478"}}
	})
	e.Community()
	token := e.login(e.Device("carol"))
	inv, err := policy.NewInvite(policy.IdentitySigner(key("alice")), policy.InviteBody{Server: e.Gen.ID, Issued: e.Now().UnixMilli(),
		Expires: e.Now().Add(time.Hour).UnixMilli(), Uses: 1, Nonce: []byte("turn-newcomer-nonce-")[:16]})
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		url, token, code, says string
	}{
		"no session":       {e.srv.URL, "", wire.CodeUnauthenticated, "TURN credentials need a session"},
		"a forged session": {e.srv.URL, token[:len(token)-4] + "AAAA", wire.CodeUnauthenticated, "invalid session token"},
		"an invite":        {e.srv.URL, policy.EncodeInviteToken(inv), wire.CodeUnauthenticated, "TURN credentials need a session"},
		"not configured":   {e.turnAPI(TURN{}), token, wire.CodeNotConfigured, "issues no TURN credentials"},
	} {
		t.Run(name, func(t *testing.T) {
			st, we := call(t, "GET", tc.url+"/v1/turn/credentials", tc.token, nil, nil)
			if we == nil || we.Code != tc.code || st != wire.Status(tc.code) || !strings.Contains(we.Message, tc.says) {
				t.Fatalf("status %d, error %v; want %s", st, we, tc.code)
			}
		})
	}
	// The status of not_configured is its own, not a stray 404.
	if wire.Status(wire.CodeNotConfigured) != http.StatusNotFound {
		t.Fatalf("not_configured answers %d", wire.Status(wire.CodeNotConfigured))
	}
}

// Without Accept, the answer is JSON in RTCIceServer's field names, so a
// page can hand it to RTCPeerConnection; it is never cached.
func TestTURNCredentialsJSON(t *testing.T) {
	e := newAPIEnv(t, "sqlite", func(_ *hub.Config, a *Config) {
		a.TURN = TURN{Secret: turnSecret, URLs: []string{"turns:relay.example.org:5349?transport=tcp"}, TTL: 10 * time.Minute}
	})
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/turn/credentials", nil)
	req.Header.Set("Authorization", "Bearer "+e.login(e.Device("carol")))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != wire.JSON || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("%d %s %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"), b)
	}
	var ice map[string]any
	if err := json.Unmarshal(b, &ice); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"urls", "username", "credential", "ttl", "expires"} {
		if _, ok := ice[k]; !ok {
			t.Errorf("no %q in %s", k, b)
		}
	}
	if ice["ttl"] != 600.0 {
		t.Errorf("ttl %v", ice["ttl"])
	}
}

// The endpoint is charged to its source like every request: over the
// rate, rate_limited, before any credential is made.
func TestTURNCredentialsRateLimited(t *testing.T) {
	e := newAPIEnv(t, "sqlite", func(_ *hub.Config, a *Config) {
		a.TURN = TURN{Secret: turnSecret, URLs: []string{"turn:relay.example.org:3478"}}
		a.SourceRate, a.SourceBurst = 0.001, 3 // the sign-in's two requests, then one
	})
	token := e.login(e.Device("carol"))
	if st, we := call(t, "GET", e.srv.URL+"/v1/turn/credentials", token, nil, nil); we != nil {
		t.Fatalf("first: %d %v", st, we)
	}
	if st, we := call(t, "GET", e.srv.URL+"/v1/turn/credentials", token, nil, nil); we == nil || we.Code != wire.CodeRateLimited || st != http.StatusTooManyRequests {
		t.Fatalf("over the source rate: %d %v", st, we)
	}
}
