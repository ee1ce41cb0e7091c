package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/guildhall/guildhall/client/clienttest"
)

// Through the CLI only: a member who joins after messages were sent, and
// never posts, reads every message sent after joining; two members who
// pick the same display name are shown apart.
func TestNewcomerReadsWithoutPosting(t *testing.T) {
	hub := clienttest.StartHub(t, "sqlite")
	alice, eve, mallory := newUser(t), newUser(t), newUser(t)
	for _, u := range []*user{alice, eve, mallory} {
		u.run("identity", "create")
	}
	alice.run("server", "create", "club", "--hub", hub.URL)
	alice.run("channel", "create", "club", "lounge")
	alice.run("send", "club", "lounge", "before anyone joined")
	var inv struct {
		Token string `json:"token"`
	}
	alice.json(&inv, "invite", "create", "club", "--uses", "2")
	eve.run("join", inv.Token)
	mallory.run("join", inv.Token)
	alice.run("send", "club", "lounge", "welcome")
	alice.run("server", "sync", "club")
	alice.run("send", "club", "lounge", "second after")
	alice.run("profile", "set", "club", "lounge", "--name", "Alice")
	mallory.run("profile", "set", "club", "lounge", "--name", "alice")

	eve.run("server", "sync", "club")
	eve.run("sync", "club", "lounge")
	var hist []struct {
		Name  string `json:"sender_name"`
		Text  string `json:"text"`
		Error string `json:"error"`
	}
	eve.json(&hist, "history", "club", "lounge")
	var read []string
	names := map[string]bool{}
	for _, m := range hist {
		if m.Error != "" {
			t.Errorf("eve cannot read a message: %s", m.Error)
		}
		read = append(read, m.Text)
		names[m.Name] = true
	}
	for _, want := range []string{"welcome", "second after"} {
		if !slices.Contains(read, want) {
			t.Fatalf("eve, who never posted, reads %q; want %q among them", read, want)
		}
	}
	var aliceNames []string
	for n := range names {
		if strings.HasPrefix(strings.ToLower(n), "alice (") {
			aliceNames = append(aliceNames, n)
		}
	}
	if len(aliceNames) != 1 || names["Alice"] {
		t.Fatalf("names shown: %v; want alice shown with her key fingerprint", names)
	}
	if out := eve.run("history", "club", "lounge"); strings.Contains(out, "Alice:") {
		t.Fatalf("a bare \"Alice:\" is shown while two members take that name:\n%s", out)
	}
}
