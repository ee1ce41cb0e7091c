package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/guildhall/guildhall/client/clienttest"
)

// tryErr runs the CLI like try, and returns what it wrote to stderr too.
func (u *user) tryErr(args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	err := run(context.Background(), append([]string{"--home", u.home}, args...), testSystem(&out, &errb))
	return out.String(), errb.String(), err
}

// Acting on a server works on what others did there a moment ago, without
// a "server sync"; with its hub down, an act that needs no hub goes on
// with the local state, soon, and says so.
func TestActsOnFreshState(t *testing.T) {
	hub := clienttest.StartHub(t, "sqlite")
	alice, bob, carol := newUser(t), newUser(t), newUser(t)
	for _, u := range []*user{alice, bob, carol} {
		u.run("identity", "create")
	}
	alice.run("server", "create", "club", "--hub", hub.URL)
	alice.run("channel", "create", "club", "general")
	alice.run("role", "create", "club", "mods")
	var inv struct {
		Token string `json:"token"`
	}
	alice.json(&inv, "invite", "create", "club", "--uses", "2")
	bob.run("join", inv.Token)

	// A channel created after bob joined: he posts to it by name.
	alice.run("channel", "create", "club", "news")
	bob.run("send", "club", "#news", "first!")

	// A member who joined a moment ago is given a role.
	carol.run("join", inv.Token)
	var id struct {
		Identity string `json:"identity"`
	}
	carol.json(&id, "identity", "show")
	alice.run("role", "grant", "club", "mods", id.Identity)

	alice.run("sync", "club", "news")
	var hist []struct {
		Text string `json:"text"`
	}
	alice.json(&hist, "history", "club", "news")
	if len(hist) != 1 || hist[0].Text != "first!" {
		t.Fatalf("history %+v", hist)
	}

	hub.Stop()
	start := time.Now()
	out, stderr, err := alice.tryErr("invite", "create", "club")
	if err != nil {
		t.Fatalf("invite create with the hub down: %v", err)
	}
	if !strings.Contains(out, "ghinv1:") {
		t.Errorf("invite create printed %q", out)
	}
	if !strings.Contains(stderr, "using the local state") {
		t.Errorf("with the hub down, stderr %q does not say the local state was used", stderr)
	}
	if d := time.Since(start); d > refreshTimeout+2*time.Second {
		t.Errorf("invite create with the hub down took %v", d)
	}
}
