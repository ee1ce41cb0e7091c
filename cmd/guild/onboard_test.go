package main

import (
	"strings"
	"testing"
	"time"

	"github.com/guildhall/guildhall/client/clienttest"
)

// The allow-list onboarding of docs/OPERATIONS.md, step by step: the
// community admin tells the operator their identity key; the operator
// lists it and reloads; the admin creates the server on the hub. Someone
// not listed is refused with a message saying what the operator must list,
// and nothing of their server stays.
func TestAllowListOnboarding(t *testing.T) {
	admin, stranger := newUser(t), newUser(t)
	var who struct {
		Identity string `json:"identity"`
	}
	admin.run("identity", "create")
	stranger.run("identity", "create")
	admin.json(&who, "identity", "show")
	if !strings.HasPrefix(who.Identity, "b5ua") {
		t.Fatalf("identity show gave %q", who.Identity)
	}

	hub := clienttest.NewHub(t, "sqlite")
	hub.Admission = "allow-list"
	hub.Start()
	if _, err := admin.try("server", "create", "club", "--hub", hub.URL); err == nil {
		t.Fatal("an unlisted admin created a server on an allow-list hub")
	}
	hub.Extra = "  allow: [" + who.Identity + "]\n" // under admission:, as the docs show
	hub.Reload()
	deadline := time.Now().Add(10 * time.Second)
	var server struct {
		ID string `json:"id"`
	}
	for {
		out, err := admin.try("--json", "server", "create", "club", "--hub", hub.URL)
		if err == nil {
			if err := jsonUnmarshal(out, &server); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the listed admin still cannot create the server: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// (A refused create leaves a local entry of the same name: use the ID.)
	admin.run("channel", "create", server.ID, "general")
	admin.run("send", server.ID, "general", "we are live")
	_, err := stranger.try("server", "create", "other", "--hub", hub.URL)
	if err == nil || !strings.Contains(err.Error(), "allow-list") {
		t.Fatalf("an unlisted creator: %v, want a refusal naming the allow-list", err)
	}
}
