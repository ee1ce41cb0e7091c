package relay

import (
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// Refused credentials are answered 401 with REALM and a NONCE, as coturn
// answers, over UDP, TCP and TLS: an expired REST credential, one signed
// with a secret the relay does not hold, a wrong password and an unknown
// user. The answer carries the request's transaction ID, and the client's
// retry on the same connection with good credentials and that nonce is
// served.
func TestRefusedCredentialsAnswered401(t *testing.T) {
	r := startRelay(t, nil)
	expired, expiredPass := restCredential("new-secret", "bob", -time.Minute)
	unsigned, unsignedPass := restCredential("unknown-secret", "bob", time.Hour)
	for i, network := range []string{"udp", "tcp", "tls"} {
		for j, c := range []struct{ name, user, pass string }{
			{"expired rest credential", expired, expiredPass},
			{"rest credential of an unknown secret", unsigned, unsignedPass},
			{"wrong password", "alice", "guess"},
			{"unknown user", "nobody", "wonderland"},
		} {
			t.Run(network+"/"+c.name, func(t *testing.T) {
				// Each from its own address: the source's failure rate allows them all.
				cl := dialRaw(t, r, network, fmt.Sprintf("127.0.%d.%d", i+1, j+1), c.user, c.pass)
				if code, _ := cl.request(stun.MethodAllocate, transport(17)); code != int(stun.CodeUnauthorized) {
					t.Fatalf("refused credentials answered %d, want 401", code)
				}
				nonce := refusedOnce(t, cl)
				// The retry, on the same connection with the nonce of the 401.
				cl.user, cl.pass = goodCredential(c.user)
				cl.nonce = nonce
				if code, m := cl.request(stun.MethodAllocate, transport(17)); code != 0 {
					t.Fatalf("the retry with good credentials answered %d: %v", code, m)
				}
			})
		}
	}
	if got := testutilCount(r.metrics.authFailures); got != 2*3*4 {
		t.Fatalf("%v failed authentications counted, want %d", got, 2*3*4)
	}
}

// goodCredential is a credential the relay accepts, of the kind of refused.
func goodCredential(refused string) (user, pass string) {
	if _, _, ok := restExpiry(refused); ok {
		return restCredential("old-secret", "bob", time.Hour)
	}
	return "alice", "wonderland"
}

// refusedOnce sends c's Allocate with c's credentials and nonce, checks the
// answer is a 401 to that transaction with the relay's REALM and a NONCE,
// and returns the nonce.
func refusedOnce(t *testing.T, c *rawClient) string {
	t.Helper()
	req := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest), transport(17),
		stun.NewUsername(c.user), stun.NewRealm(c.realm), stun.NewNonce(c.nonce),
		stun.NewLongTermIntegrity(c.user, c.realm, c.pass), stun.Fingerprint)
	c.send(req)
	m := c.read(2 * time.Second)
	if m == nil {
		t.Fatal("no answer")
	}
	var code stun.ErrorCodeAttribute
	var realm stun.Realm
	var nonce stun.Nonce
	if m.TransactionID != req.TransactionID || m.Type != stun.NewType(stun.MethodAllocate, stun.ClassErrorResponse) || code.GetFrom(m) != nil {
		t.Fatalf("answer %v to %v", m, req)
	}
	if code.Code != stun.CodeUnauthorized || realm.GetFrom(m) != nil || realm.String() != "guildhall" || nonce.GetFrom(m) != nil || nonce.String() == "" {
		t.Fatalf("refused credentials answered %d, realm %q, nonce %q; want 401 with realm guildhall and a nonce", code.Code, realm, nonce)
	}
	return nonce.String()
}

// What is not a refusal of the credentials stays 400: an Allocate that
// authenticates but lacks REQUESTED-TRANSPORT, over UDP and TCP.
func TestBadRequestAfterAuthenticationStays400(t *testing.T) {
	r := startRelay(t, nil)
	for _, network := range []string{"udp", "tcp"} {
		c := dialRaw(t, r, network, "", "alice", "wonderland")
		if code, _ := c.request(stun.MethodAllocate); code != int(stun.CodeBadRequest) {
			t.Fatalf("%s: an authenticated Allocate without REQUESTED-TRANSPORT answered %d, want 400", network, code)
		}
		if code, _ := c.request(stun.MethodAllocate, transport(17)); code != 0 {
			t.Fatalf("%s: then a good Allocate answered %d", network, code)
		}
	}
}

// The 401s answering refused credentials count against a source's
// challenge rate on UDP like pion's own: a source sending 200 requests
// with a wrong password and a valid nonce gets about the burst answered.
func TestRefusalAnswersAreRateLimited(t *testing.T) {
	r := startRelay(t, func(c *Config) {
		c.Limits.ChallengeRate, c.Limits.ChallengeBurst = 5, 10
		c.Limits.AuthFailureRate, c.Limits.AuthFailureBurst = 1000, 1000 // every request checked
	})
	c := dialRaw(t, r, "udp", "", "alice", "guess")
	if code, _ := c.request(stun.MethodAllocate, transport(17)); code != int(stun.CodeUnauthorized) {
		t.Fatalf("a wrong password answered %d, want 401", code)
	}
	const sent = 200
	for range sent {
		c.send(stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest), transport(17),
			stun.NewUsername("alice"), stun.NewRealm("guildhall"), stun.NewNonce(c.nonce),
			stun.NewLongTermIntegrity("alice", "guildhall", "guess"), stun.Fingerprint))
	}
	got := 0
	for m := c.read(500 * time.Millisecond); m != nil; m = c.read(500 * time.Millisecond) {
		var code stun.ErrorCodeAttribute
		if code.GetFrom(m) == nil && code.Code == stun.CodeUnauthorized {
			got++
		}
	}
	t.Logf("%d answers 401 to %d requests with a wrong password (burst 10, 5/s); %v failures counted", got, sent, testutilCount(r.metrics.authFailures))
	if got == 0 || got > 20 {
		t.Fatalf("%d 401 answers to %d refused requests from one source", got, sent)
	}
	if failed := testutilCount(r.metrics.authFailures); failed < sent {
		t.Fatalf("%v failed authentications counted for %d refused requests", failed, sent)
	}
}

// coturn's client retries on the 401 with the realm and nonce it carries:
// over UDP, TCP and TLS, a REST credential the relay finds expired (its
// clock is ahead for the first check) and one signed with a secret it
// holds only from the first refusal on (a wrong password) are refused
// once, and the client's retry on the same connection is served with no
// loss. Answered 400, the client drops the connection and starts over.
func TestUclientRetriesRefusedCredentials(t *testing.T) {
	peer := startPeer(t)
	for _, transport := range []struct {
		name string
		args func(r *testRelay) []string
	}{
		{"udp", func(r *testRelay) []string { return []string{"-p", fmt.Sprint(r.port)} }},
		{"tcp", func(r *testRelay) []string { return []string{"-t", "-p", fmt.Sprint(r.port)} }},
		{"tls", func(r *testRelay) []string { return []string{"-S", "-t", "-p", fmt.Sprint(r.tlsPort)} }},
	} {
		for _, c := range []struct {
			name   string
			secret string
			now    func(r *testRelay, first bool) time.Time
		}{
			{"expired rest credential", "new-secret", func(_ *testRelay, first bool) time.Time {
				if first {
					return time.Now().Add(400 * 24 * time.Hour)
				}
				return time.Now()
			}},
			{"wrong password", "rotated-secret", func(r *testRelay, first bool) time.Time {
				if first { // this request was looked up under the old secrets
					err := r.Reload(map[string]string{"alice": "wonderland"}, []string{"rotated-secret", "new-secret"},
						Limits{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
					if err != nil {
						panic(err)
					}
				}
				return time.Now()
			}},
		} {
			t.Run(transport.name+"/"+c.name, func(t *testing.T) {
				var relay atomic.Pointer[testRelay]
				var calls atomic.Int32
				r := startRelay(t, func(cfg *Config) {
					cfg.Now = func() time.Time { return c.now(relay.Load(), calls.Add(1) == 1) }
				})
				relay.Store(r)
				args := append([]string{"-v", "-u", "bob", "-W", c.secret, "-c", "-e", "127.0.0.1", "-r", fmt.Sprint(peer),
					"-n", "10", "-m", "1", "-l", "160", "-z", "5"}, transport.args(r)...)
				out := uclient(t, append(args, "127.0.0.1")...)
				wantNoLoss(t, out)
				// On its first connection, before its first success: the
				// Allocate the challenge answers, the refused one and the
				// retry, and no error (400: the client reconnects).
				first, _, _ := strings.Cut(out, ": success")
				if n := strings.Count(first, "allocate sent"); n != 3 || strings.Contains(first, "error 4") {
					t.Fatalf("%d Allocates before the first success, want 3 on one connection:\n%s", n, tail(first, 1500))
				}
				if got := testutilCount(r.metrics.authFailures); got != 1 {
					t.Fatalf("%v failed authentications, want the one refusal", got)
				}
			})
		}
	}
}
