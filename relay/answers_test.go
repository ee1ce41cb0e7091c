package relay

import (
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	"github.com/pion/turn/v5"
)

// An Allocate for IPv6 on a relay whose external address is IPv4 is
// answered 440 (RFC 6156 §4.2), over UDP and TCP; IPv4 is served.
func TestUnservedFamilyIs440(t *testing.T) {
	r := startRelay(t, nil)
	for _, network := range []string{"udp", "tcp"} {
		c := dialRaw(t, r, network, "", "alice", "wonderland")
		if code, _ := c.request(stun.MethodAllocate, transport(17), family(0x02)); code != 440 {
			t.Fatalf("%s: an IPv6 Allocate answered %d, want 440", network, code)
		}
		if code, m := c.request(stun.MethodAllocate, transport(17), family(0x01)); code != 0 {
			t.Fatalf("%s: an IPv4 Allocate answered %d: %v", network, code, m)
		}
	}
	if got := testutilCount(r.metrics.familyRefused); got != 2 {
		t.Fatalf("%v refusals counted, want 2", got)
	}
}

// Requested lifetimes: below the default, the default; at or above the
// maximum, the maximum (pion's: just under an hour); between, as asked;
// a Refresh with 0 deletes.
func TestRequestedLifetimes(t *testing.T) {
	r := startRelay(t, nil) // default 10 minutes
	for _, c := range []struct {
		ask, want time.Duration
	}{
		{time.Second, DefaultAllocationLifetime},
		{0, DefaultAllocationLifetime},
		{20 * time.Minute, 20 * time.Minute},
		{2 * time.Hour, pionMaxLifetime},
	} {
		for _, network := range []string{"udp", "tcp"} {
			cl := dialRaw(t, r, network, "", "alice", "wonderland")
			code, m := cl.request(stun.MethodAllocate, transport(17), lifetime(c.ask))
			if code != 0 {
				t.Fatalf("%s: Allocate with lifetime %v answered %d", network, c.ask, code)
			}
			if got := lifetimeOf(t, m); got != c.want {
				t.Errorf("%s: asked %v, granted %v, want %v", network, c.ask, got, c.want)
			}
			code, m = cl.request(stun.MethodRefresh, lifetime(c.ask))
			if c.ask == 0 {
				continue // a Refresh with 0 deletes; checked below
			}
			if code != 0 || lifetimeOf(t, m) != c.want {
				t.Errorf("%s: Refresh asking %v answered %d", network, c.ask, code)
			}
		}
	}
	cl := dialRaw(t, r, "udp", "", "alice", "wonderland")
	if code, _ := cl.request(stun.MethodAllocate, transport(17)); code != 0 {
		t.Fatal("allocate:", code)
	}
	before := r.Allocations()
	if code, m := cl.request(stun.MethodRefresh, lifetime(0)); code != 0 || lifetimeOf(t, m) != 0 {
		t.Fatalf("a Refresh with 0 answered %d", code)
	}
	time.Sleep(100 * time.Millisecond)
	if r.Allocations() != before-1 {
		t.Fatalf("a Refresh with 0 left %d allocations of %d", r.Allocations(), before)
	}
	// A request whose signature does not check out is not re-signed.
	bad := dialRaw(t, r, "udp", "", "alice", "not-the-password")
	if code, _ := bad.request(stun.MethodAllocate, transport(17), lifetime(time.Second)); code == 0 {
		t.Fatal("a wrong password was accepted after a lifetime rewrite")
	}
}

// A ChannelBind to a denied peer is answered 403, not 401.
func TestChannelBindToDeniedPeerIs403(t *testing.T) {
	r := startRelay(t, func(c *Config) { c.Limits.Allow = nil })
	for _, network := range []string{"udp", "tcp"} {
		c := dialRaw(t, r, network, "", "alice", "wonderland")
		if code, _ := c.request(stun.MethodAllocate, transport(17)); code != 0 {
			t.Fatal("allocate:", code)
		}
		channel := stun.RawAttribute{Type: stun.AttrChannelNumber, Value: []byte{0x40, 0x01, 0, 0}}
		if code, _ := c.request(stun.MethodChannelBind, channel, peerAddr("10.0.0.1", 9)); code != 403 {
			t.Fatalf("%s: a ChannelBind to a private peer answered %d, want 403", network, code)
		}
		if code, _ := c.request(stun.MethodChannelBind, channel, peerAddr("8.8.8.8", 9)); code != 0 {
			t.Fatalf("%s: a ChannelBind to a public peer answered %d", network, code)
		}
	}
}

// 438 answers (bogus nonce) are throttled per source like 401s.
func TestBogusNonceAnswersAreRateLimited(t *testing.T) {
	r := startRelay(t, func(c *Config) { c.Limits.ChallengeRate, c.Limits.ChallengeBurst = 5, 10 })
	c := dialRaw(t, r, "udp", "", "alice", "wonderland")
	const sent = 200
	for range sent {
		c.send(stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest), transport(17),
			stun.NewUsername("alice"), stun.NewRealm("guildhall"), stun.NewNonce("bogus"),
			stun.NewLongTermIntegrity("alice", "guildhall", "wonderland"), stun.Fingerprint))
	}
	got := 0
	for m := c.read(500 * time.Millisecond); m != nil; m = c.read(500 * time.Millisecond) {
		var code stun.ErrorCodeAttribute
		if code.GetFrom(m) == nil && code.Code == stun.CodeStaleNonce {
			got++
		}
	}
	t.Logf("%d answers 438 to %d requests with a bogus nonce (burst 10, 5/s)", got, sent)
	if got == 0 || got > 20 {
		t.Fatalf("%d 438 answers to %d requests from one source", got, sent)
	}
}

// Wrong passwords are limited per source: after the burst, the source is
// refused even with the right password, while another source is served.
func TestFailedAuthenticationsAreRateLimited(t *testing.T) {
	r := startRelay(t, func(c *Config) { c.Limits.AuthFailureRate, c.Limits.AuthFailureBurst = 0.2, 5 })
	guesses := 0
	for range 20 {
		c := dialRaw(t, r, "udp", "127.0.0.3", "alice", "guess")
		if code, _ := c.request(stun.MethodAllocate, transport(17)); code == 0 {
			t.Fatal("a wrong password was accepted")
		}
		guesses++
	}
	right := dialRaw(t, r, "udp", "127.0.0.3", "alice", "wonderland")
	if code, _ := right.request(stun.MethodAllocate, transport(17)); code == 0 {
		t.Fatal("the guessing source is still checked: the right password got through after 20 failures")
	}
	other := dialRaw(t, r, "udp", "127.0.0.4", "alice", "wonderland")
	if code, _ := other.request(stun.MethodAllocate, transport(17)); code != 0 {
		t.Fatalf("another source was refused: %d", code)
	}
	checked, throttled := testutilCount(r.metrics.authFailures), testutilCount(r.metrics.authThrottled)
	t.Logf("%d guesses: %v checked and failed, %v refused unchecked", guesses, checked, throttled)
	if checked > 6 || throttled < 14 {
		t.Fatalf("%v guesses checked, %v throttled (burst 5)", checked, throttled)
	}
}

// Concurrent Allocates of one user never exceed the user quota: in each
// of 8 rounds, 100 users with two TCP clients each (200 in all) race for
// one allocation each. (With the check apart from the count, 13 to 115
// users of 800 got a second allocation, on 2 cores.)
func TestUserQuotaUnderConcurrency(t *testing.T) {
	const rounds, users, perUser, quota = 8, 100, 2, 1
	over := 0
	for round := range rounds {
		r := startRelay(t, func(c *Config) { c.Limits.UserQuota, c.Limits.ConnsPerSource = quota, -1 })
		var admitted [users]atomic.Int32
		var wg sync.WaitGroup
		var tried sync.WaitGroup // every client holds what it got until all have tried
		tried.Add(users * perUser)
		start := make(chan struct{})
		for u := range users {
			name, pass := restCredential("new-secret", "user"+strconv.Itoa(u), time.Hour)
			for range perUser {
				wg.Add(1)
				go func() {
					defer wg.Done()
					once := sync.OnceFunc(tried.Done)
					defer once()
					conn, err := net.Dial("tcp4", "127.0.0.1:"+strconv.Itoa(r.port))
					if err != nil {
						return
					}
					defer conn.Close()
					c, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: conn.RemoteAddr().String(), TURNServerAddr: conn.RemoteAddr().String(),
						Conn: turn.NewSTUNConn(conn), Username: name, Password: pass, Realm: "guildhall"})
					if err != nil || c.Listen() != nil {
						return
					}
					defer c.Close()
					<-start
					if _, err := c.Allocate(); err == nil {
						admitted[u].Add(1)
					}
					// Hold it while the others try: a fixed sleep let a slow
					// second Allocate of a loaded machine come after the first
					// was released, and count as a second allocation.
					once()
					tried.Wait()
				}()
			}
		}
		time.Sleep(200 * time.Millisecond)
		close(start)
		wg.Wait()
		total := 0
		for u := range users {
			n := int(admitted[u].Load())
			total += n
			if n > quota {
				over++
				t.Errorf("round %d, user%d: %d allocations admitted, quota %d", round, u, n, quota)
			}
		}
		if total != users*quota {
			t.Errorf("round %d: %d admitted, want %d", round, total, users*quota)
		}
		r.Close()
	}
	t.Logf("%d rounds of %d concurrent allocations (%d users, quota %d each): %d users over quota", rounds, users*perUser, users, quota, over)
}

// allocations_total is labelled by the client's transport.
func TestAllocationsByTransport(t *testing.T) {
	r := startRelay(t, nil)
	if _, err := turnClient(t, r, "alice", "wonderland", false).Allocate(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := turnClient(t, r, "alice", "wonderland", true).AllocateTCP(); err != nil {
			t.Fatal(err)
		}
	}
	udp, tcp := testutilCount(r.metrics.allocations.WithLabelValues("udp")), testutilCount(r.metrics.allocations.WithLabelValues("tcp"))
	if udp != 1 || tcp != 2 {
		t.Fatalf("allocations_total udp=%v tcp=%v, want 1 and 2", udp, tcp)
	}
}
