package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/guildhall/guildhall/client/clienttest"
)

type hubsJSON struct {
	Hubs []struct {
		URL       string `json:"url"`
		Preferred bool   `json:"preferred"`
	} `json:"hubs"`
}

func (u *user) hubs(server string) []string {
	u.t.Helper()
	var l hubsJSON
	u.json(&l, "server", "hubs", server)
	var out []string
	for _, h := range l.Hubs {
		out = append(out, h.URL)
	}
	return out
}

type sentJSON struct {
	ID       string `json:"id"`
	Receipts []struct {
		Hub string `json:"hub"`
	} `json:"receipts"`
	Refused []string `json:"refused"`
}

type histJSON []struct {
	ID    string `json:"id"`
	Text  string `json:"text"`
	Error string `json:"error"`
}

func (u *user) texts(server, channel string) map[string]bool {
	u.t.Helper()
	var h histJSON
	u.json(&h, "history", server, channel, "--limit", "0")
	out := map[string]bool{}
	for _, m := range h {
		if m.Error != "" {
			u.t.Errorf("message %s: %s", m.ID, m.Error)
		}
		out[m.Text] = true
	}
	return out
}

// A hub granted storage and added (preferred) carries the server alone
// once the first hub is gone: sends get its receipt, syncs read from it,
// for the creator and for a member who adds it afterwards.
func TestServerHubAdd(t *testing.T) {
	first := clienttest.StartHub(t, "sqlite")
	second := clienttest.StartHub(t, "sqlite")
	alice, bob := newUser(t), newUser(t)
	alice.run("identity", "create")
	bob.run("identity", "create")
	alice.run("server", "create", "club", "--hub", first.URL)
	alice.run("channel", "create", "club", "general")
	var inv struct {
		Token string `json:"token"`
	}
	alice.json(&inv, "invite", "create", "club")
	bob.run("join", inv.Token)
	alice.run("send", "club", "general", "before the move")

	// A URL without a scheme is refused, naming the form wanted, and not kept.
	bare := strings.TrimPrefix(second.URL, "http://")
	for _, bad := range []string{bare, "localhost:7420", "ftp://" + bare, "http://"} {
		_, err := alice.try("server", "hub", "add", "club", bad)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "http://HOST:PORT") {
			t.Fatalf("hub add %q: %v", bad, err)
		}
		if _, err := alice.try("storage", "grant", "club", bad); err == nil || !strings.Contains(err.Error(), "http://HOST:PORT") {
			t.Fatalf("storage grant %q: %v", bad, err)
		}
	}
	if got := alice.hubs("club"); len(got) != 1 || got[0] != first.URL {
		t.Fatalf("hubs after refused adds: %v", got)
	}

	alice.run("storage", "grant", "club", second.URL)
	if out := alice.run("server", "hub", "add", "club", second.URL, "--prefer"); !strings.Contains(out, "preferred") {
		t.Fatalf("hub add: %s", out)
	}
	if got := alice.hubs("club"); len(got) != 2 || got[0] != second.URL || got[1] != first.URL {
		t.Fatalf("alice's hubs %v, want [%s %s]", got, second.URL, first.URL)
	}
	var l hubsJSON
	alice.json(&l, "server", "hubs", "club")
	if !l.Hubs[0].Preferred || l.Hubs[1].Preferred {
		t.Fatalf("hubs %+v", l)
	}
	if out := bob.run("server", "hub", "add", "club", second.URL, "--prefer"); strings.Contains(out, "now hosts") {
		t.Fatalf("bob brought the log to a hub that hosts the server already: %s", out)
	}

	bob.run("sync", "club", "general") // the epoch's key, stored at the first hub only

	first.Stop()
	var sent sentJSON
	alice.json(&sent, "send", "club", "general", "through the second hub")
	if len(sent.Receipts) != 1 || len(sent.Refused) != 1 || !strings.Contains(sent.Refused[0], first.URL) {
		t.Fatalf("alice's send with the first hub down: %+v", sent)
	}
	bob.run("sync", "club", "general")
	bob.run("send", "club", "general", "bob through the second hub")
	alice.run("sync", "club", "general")
	want := []string{"before the move", "through the second hub", "bob through the second hub"}
	for _, u := range []*user{alice, bob} {
		got := u.texts("club", "general")
		for _, w := range want {
			if !got[w] {
				t.Errorf("a history lacks %q (has %v)", w, got)
			}
		}
	}
}

// A hub that does not host the server yet is brought the state log by
// "server hub add", and hosts it from then on.
func TestServerHubAddBringsTheLog(t *testing.T) {
	first := clienttest.StartHub(t, "sqlite")
	added := clienttest.StartHub(t, "sqlite")
	alice := newUser(t)
	alice.run("identity", "create")
	alice.run("server", "create", "club", "--hub", first.URL)
	if out := alice.run("server", "hub", "add", "club", added.URL); !strings.Contains(out, "now hosts") {
		t.Fatalf("hub add: %s", out)
	}
	if out := alice.run("server", "hub", "add", "club", added.URL); strings.Contains(out, "now hosts") {
		t.Fatalf("a second add brought the log again: %s", out)
	}
	first.Stop()
	if out := alice.run("server", "sync", "club"); !strings.Contains(out, "0 new") {
		t.Fatalf("server sync from the added hub: %s", out)
	}
	if _, err := alice.try("server", "hub", "prefer", "club", "http://127.0.0.1:1"); err == nil {
		t.Fatal("preferred a hub the server does not use")
	}
}

// A member's home node that replicates with nobody is brought the server
// by "server hub add": it admits it (its owner acts in it) and, the
// community hub gone, serves the state log and stores the member's posts.
func TestServerHubAddBringsTheLogToAHomeNode(t *testing.T) {
	community := clienttest.StartHub(t, "sqlite")
	alice, bob := newUser(t), newUser(t)
	alice.run("identity", "create")
	bob.run("identity", "create")
	alice.run("server", "create", "club", "--hub", community.URL)
	alice.run("channel", "create", "club", "general")
	var inv struct {
		Token string `json:"token"`
	}
	alice.json(&inv, "invite", "create", "club")
	bob.run("join", inv.Token)
	home, _ := homeNode(t, bob)
	if out := bob.run("server", "hub", "add", "club", home.URL, "--prefer"); !strings.Contains(out, "now hosts") {
		t.Fatalf("hub add of a home node: %s", out)
	}
	community.Stop()
	if out := bob.run("server", "sync", "club"); !strings.Contains(out, "0 new") {
		t.Fatalf("server sync from the home node: %s", out)
	}
	var sent sentJSON
	bob.json(&sent, "send", "club", "general", "kept at home")
	if len(sent.Receipts) != 1 {
		t.Fatalf("send with only the home node up: %+v", sent)
	}
	if got := bob.texts("club", "general"); !got["kept at home"] {
		t.Fatalf("history %v", got)
	}
}
