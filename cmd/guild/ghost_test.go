package main

import (
	"strings"
	"testing"

	"github.com/guildhall/guildhall/client/clienttest"
)

// A server whose creation failed leaves nothing behind; a server can be
// forgotten here (remove) or left (the protocol's leave), and a leaver is
// no longer a member anywhere.
func TestServersComeAndGo(t *testing.T) {
	hub := clienttest.StartHub(t, "sqlite")
	alice, bob := newUser(t), newUser(t)
	alice.run("identity", "create")
	bob.run("identity", "create")
	if _, err := alice.try("server", "create", "ghost", "--hub", "http://127.0.0.1:1"); err == nil {
		t.Fatal("a server was created on a hub that does not answer")
	}
	if got := alice.run("server", "list"); strings.Contains(got, "ghost") {
		t.Fatalf("a failed create left a server behind:\n%s", got)
	}
	alice.run("server", "create", "club", "--hub", hub.URL)
	alice.run("channel", "create", "club", "general")
	var inv struct {
		Token string `json:"token"`
	}
	alice.json(&inv, "invite", "create", "club", "--uses", "2")
	bob.run("join", inv.Token)
	bob.run("server", "remove", "club")
	if got := bob.run("server", "list"); strings.Contains(got, "club") {
		t.Fatalf("a removed server is still listed:\n%s", got)
	}
	bob.run("join", inv.Token) // back, with the same membership
	bob.run("send", "club", "general", "still here")
	bob.run("server", "leave", "club")
	if got := bob.run("server", "list"); strings.Contains(got, "club") {
		t.Fatalf("a server left is still listed:\n%s", got)
	}
	alice.run("server", "sync", "club")
	if got := alice.run("server", "show", "club"); strings.Contains(got, bobIdentity(t, bob)) {
		t.Fatalf("bob left but is still shown a member:\n%s", got)
	}
	if _, err := alice.try("server", "leave", "club"); err == nil {
		t.Fatal("the creator left its own server")
	}
}

func bobIdentity(t *testing.T, u *user) string {
	t.Helper()
	var id struct {
		Identity string `json:"identity"`
	}
	u.json(&id, "identity", "show")
	if id.Identity == "" {
		t.Fatal("no identity shown")
	}
	return id.Identity
}
