package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guildhall/guildhall/client/clienttest"
)

// p2pHub prepares a hub that replicates over libp2p on a fixed loopback
// port, so that its address survives a restart and its peers can name it.
func p2pHub(t *testing.T, profile, extra string, peers ...string) *clienttest.Hub {
	h := clienttest.NewHub(t, profile)
	h.Extra = extra + p2pConfig(clienttest.FreePort(t), peers...)
	return h
}

func p2pConfig(port int, peers ...string) string {
	s := fmt.Sprintf("p2p:\n  enabled: true\n  listen: [/ip4/127.0.0.1/tcp/%d]\n  interval: 1s\n", port)
	if len(peers) > 0 {
		s += "  peers: [" + strings.Join(peers, ", ") + "]\n"
	}
	return s
}

// homeNode makes a hub its user's home node through the CLI: the hub's
// link request, approved with "guild device approve", is the certificate
// the node is configured with.
func homeNode(t *testing.T, u *user, peers ...string) (*clienttest.Hub, int) {
	h := clienttest.NewHub(t, "sqlite")
	var cert struct {
		Token string `json:"token"`
	}
	u.json(&cert, "device", "approve", h.LinkRequest())
	port := clienttest.FreePort(t)
	h.Admission = "home"
	h.Extra = "home:\n  owner_cert: " + cert.Token + "\n" + p2pConfig(port, peers...)
	h.Start()
	return h, port
}

// ledger is every message a person sent and got a receipt for.
type ledger struct {
	mu   sync.Mutex
	sent map[string]string // envelope ID -> "sender: text"
}

func (l *ledger) send(u *user, who, server, channel, text string) error {
	out, err := u.try("--json", "send", server, channel, text)
	if err != nil {
		return fmt.Errorf("%s: send %q: %w", who, text, err)
	}
	var s sentJSON
	if err := jsonUnmarshal(out, &s); err != nil || len(s.Receipts) == 0 {
		return fmt.Errorf("%s: send %q: no receipt in %q (%v)", who, text, out, err)
	}
	l.mu.Lock()
	l.sent[s.ID] = who + ": " + text
	l.mu.Unlock()
	return nil
}

func (l *ledger) snapshot() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]string, len(l.sent))
	for k, v := range l.sent {
		out[k] = v
	}
	return out
}

// holding reads a person's history (--json, all of it) as a set of IDs.
func holding(u *user, server, channel string) (map[string]bool, error) {
	out, err := u.try("--json", "history", server, channel, "--limit", "0")
	if err != nil {
		return nil, err
	}
	var h histJSON
	if err := jsonUnmarshal(out, &h); err != nil {
		return nil, err
	}
	got := map[string]bool{}
	for _, m := range h {
		got[m.ID] = true
	}
	return got, nil
}

// diff names what a person lacks of want and holds beyond it.
func diff(want map[string]string, got map[string]bool) (missing, extra []string) {
	for id, what := range want {
		if !got[id] {
			missing = append(missing, id+" ("+what+")")
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			extra = append(extra, id)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	return missing, extra
}

// converge syncs each person until their history holds exactly want, and
// fails naming, per person, the messages missing and any not sent.
func converge(t *testing.T, people map[string]*user, server, channel string, want map[string]string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		report := ""
		for _, name := range sortedKeys(people) {
			u := people[name]
			_, syncErr := u.try("sync", server, channel)
			got, err := holding(u, server, channel)
			if err != nil {
				report += fmt.Sprintf("\n%s: history: %v", name, err)
				continue
			}
			if missing, extra := diff(want, got); len(missing)+len(extra) > 0 {
				report += fmt.Sprintf("\n%s holds %d of %d (sync: %v): missing %v; not sent by anyone %v", name, len(got)-len(extra), len(want), syncErr, missing, extra)
			}
		}
		if report == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v:%s", limit, report)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// readable checks that a person decrypted every message to what was sent.
func readable(t *testing.T, name string, u *user, server, channel string, want map[string]string) {
	t.Helper()
	var h histJSON
	u.json(&h, "history", server, channel, "--limit", "0")
	for _, m := range h {
		if w := want[m.ID]; m.Error != "" || !strings.HasSuffix(w, ": "+m.Text) {
			t.Errorf("%s reads %s as %q (error %q), sent as %q", name, m.ID, m.Text, m.Error, w)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// The white paper's three-person chat, through the CLI alone: Alice's
// server lives on a community hub; Bob and Carol each run a home node,
// added with "server hub add --prefer"; the community hub goes away
// (SIGTERM) while Bob and Carol keep talking through their home nodes and
// Alice is offline; it comes back, and everyone ends with the same
// messages: every one anybody got a receipt for. The community hub runs
// on each storage profile; home nodes are embedded.
func TestThreePeopleWithHomeNodes(t *testing.T) {
	for _, profile := range clienttest.Profiles {
		t.Run(profile, func(t *testing.T) { threePeople(t, profile) })
	}
}

func threePeople(t *testing.T, profile string) {
	start := time.Now()
	hub := p2pHub(t, profile, "")
	hub.Start()
	alice, bob, carol := newUser(t), newUser(t), newUser(t)
	people := map[string]*user{"alice": alice, "bob": bob, "carol": carol}
	for _, u := range people {
		u.run("identity", "create")
	}
	alice.run("server", "create", "paper", "--hub", hub.URL)
	alice.run("channel", "create", "paper", "general")
	var inv struct {
		Token string `json:"token"`
	}
	alice.json(&inv, "invite", "create", "paper", "--uses", "2")
	bob.run("join", inv.Token)
	carol.run("join", inv.Token)

	// Home nodes replicate with the community hub and with each other:
	// Carol's names Bob's; Bob's is restarted naming Carol's (same ports).
	bobHome, bobPort := homeNode(t, bob, hub.P2P)
	carolHome, _ := homeNode(t, carol, hub.P2P, bobHome.P2P)
	bobHome.Stop()
	bobHome.Extra = bobHome.Extra[:strings.Index(bobHome.Extra, "p2p:")] + p2pConfig(bobPort, hub.P2P, carolHome.P2P)
	bobHome.Start()
	for u, home := range map[*user]*clienttest.Hub{bob: bobHome, carol: carolHome} {
		// The node may have taken the server from the community hub by
		// itself already; if not, the add brings it the state log.
		if out := u.run("server", "hub", "add", "paper", home.URL, "--prefer"); !strings.Contains(out, "preferred") {
			t.Fatalf("adding a home node: %s", out)
		}
		if got := u.hubs("paper"); len(got) != 2 || got[0] != home.URL {
			t.Fatalf("hubs %v, want the home node %s first", got, home.URL)
		}
	}

	// All three post at once, from the start: each may begin a key epoch.
	l := &ledger{sent: map[string]string{}}
	const each = 10
	var wg sync.WaitGroup
	errs := make(chan error, 3*each)
	for name, u := range people {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := l.send(u, name, "paper", "general", fmt.Sprintf("%s says %d", name, i)); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	// Everyone reads what was said while all were online: the community
	// hub pushes to the home nodes after it answers, so a message receipted
	// a moment before the hub goes away may otherwise be only on it.
	converge(t, people, "paper", "general", l.snapshot(), 30*time.Second)

	// The community hub goes away; Alice is offline (her only hub is it).
	hub.Terminate()
	if _, err := alice.try("send", "paper", "general", "anyone there?"); err == nil {
		t.Fatal("alice's send succeeded with her only hub down")
	}
	away := &ledger{sent: map[string]string{}}
	for i := range 5 {
		for _, name := range []string{"bob", "carol"} {
			if err := away.send(people[name], name, "paper", "general", fmt.Sprintf("%s while the hub is away %d", name, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Bob and Carol read each other through their home nodes alone.
	for id, what := range away.snapshot() {
		l.sent[id] = what
	}
	converge(t, map[string]*user{"bob": bob, "carol": carol}, "paper", "general", l.snapshot(), 30*time.Second)

	// The hub is back (same addresses, same data); so is Alice.
	hub.Start()
	if err := l.send(alice, "alice", "paper", "general", "back"); err != nil {
		t.Fatal(err)
	}
	converge(t, people, "paper", "general", l.snapshot(), 45*time.Second)
	for _, name := range sortedKeys(people) {
		readable(t, name, people[name], "paper", "general", l.snapshot())
	}
	t.Logf("%d messages, the same set at all three, in %v", len(l.snapshot()), time.Since(start).Round(time.Millisecond))
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
