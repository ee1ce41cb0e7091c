package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/guildhall/guildhall/client/clienttest"
)

// wantRefused runs a command that must fail, and checks its error says
// every one of words.
func wantRefused(t *testing.T, u *user, words []string, args ...string) {
	t.Helper()
	out, err := u.try(args...)
	if err == nil {
		t.Fatalf("guild %s: no error (printed %q)", strings.Join(args, " "), out)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("guild %s: %q does not say %q", strings.Join(args, " "), err, w)
		}
	}
}

type showJSON struct {
	Name     string `json:"name"`
	Everyone string `json:"everyone"`
	Public   bool   `json:"public_history"`
	Channels []struct {
		ID       string `json:"id"`
		Name     string `json:"name"`
		Archived bool   `json:"archived"`
	} `json:"channels"`
	Roles []struct {
		ID    string `json:"id"`
		Name  string `json:"name"`
		Rank  uint32 `json:"rank"`
		Perms string `json:"perms"`
	} `json:"roles"`
	Creators  []string          `json:"creators"`
	Topics    map[string]string `json:"topics"`
	Bans      []struct{ Member, Reason string }
	Overrides []struct{ Channel, Role, Allow, Deny string }
	Storage   []struct{ Node, URL string }
}

func identityOf(u *user) string {
	var id struct {
		Identity string `json:"identity"`
	}
	u.json(&id, "identity", "show")
	return id.Identity
}

// An admin manages invites, channels, roles, storage and the server's
// policy through the CLI; a member sees each act take effect.
func TestActs(t *testing.T) {
	hub, hub2 := clienttest.StartHub(t, "sqlite"), clienttest.StartHub(t, "sqlite")
	alice, bob, carol := newUser(t), newUser(t), newUser(t)
	for _, u := range []*user{alice, bob, carol} {
		u.run("identity", "create")
	}
	var srv struct {
		ID string `json:"id"`
	}
	alice.json(&srv, "server", "create", "club", "--hub", hub.URL)
	s := srv.ID
	alice.run("channel", "create", s, "general")
	alice.run("channel", "create", s, "random")
	show := func(u *user) showJSON {
		t.Helper()
		var o showJSON
		u.json(&o, "server", "show", s)
		return o
	}

	// Invites: the log knows an invite once a join used it.
	var inv struct {
		Token string `json:"token"`
	}
	alice.json(&inv, "invite", "create", s, "--uses", "2")
	bob.run("join", inv.Token)
	bobID := identityOf(bob)
	var invites []struct {
		ID      string `json:"id"`
		Left    uint32 `json:"left"`
		Revoked bool   `json:"revoked"`
	}
	alice.json(&invites, "invite", "list", s)
	if len(invites) != 1 || invites[0].Left != 1 {
		t.Fatalf("invite list after one join of two: %+v", invites)
	}
	wantRefused(t, alice, []string{"neither an invite ID"}, "invite", "revoke", s, "nonsense")
	alice.run("invite", "revoke", s, invites[0].ID)
	alice.json(&invites, "invite", "list", s)
	if len(invites) != 1 || !invites[0].Revoked || invites[0].Left != 0 {
		t.Fatalf("invite list after revoke: %+v", invites)
	}
	wantRefused(t, carol, []string{"revoked"}, "join", inv.Token)

	// Two roles of one name: the name is refused, the ID taken.
	alice.run("role", "create", s, "mod")
	alice.run("role", "create", s, "mod", "--rank", "5")
	wantRefused(t, alice, []string{"2 roles are named mod: give the role's ID"}, "role", "grant", s, "mod", bobID)
	roles := show(alice).Roles
	if len(roles) != 2 {
		t.Fatalf("roles: %+v", roles)
	}
	if roles[0].Rank == 5 { // roles[0]: the first mod (rank 10), roles[1]: the second (rank 5)
		roles[0], roles[1] = roles[1], roles[0]
	}
	alice.run("role", "grant", s, roles[0].ID, bobID)
	wantRefused(t, alice, []string{"nothing to change"}, "role", "update", s, roles[1].ID)
	alice.run("role", "update", s, roles[1].ID, "--name", "helper", "--perms", "read")
	alice.run("role", "delete", s, roles[0].ID)
	after := show(bob).Roles
	if len(after) != 1 || after[0].Name != "helper" || after[0].Perms != "read" || after[0].Rank != 5 {
		t.Fatalf("roles after update and delete, as bob sees them: %+v", after)
	}
	wantRefused(t, alice, []string{"no role"}, "role", "grant", s, roles[0].ID, bobID)
	wantRefused(t, alice, []string{`no role named "mod"`}, "role", "grant", s, "mod", bobID)
	wantRefused(t, bob, nil, "role", "delete", s, "helper")

	// Channel update and archive.
	alice.run("channel", "update", s, "general", "--name", "lobby", "--topic", "say hi")
	wantRefused(t, alice, []string{"nothing to change"}, "channel", "update", s, "lobby")
	wantRefused(t, alice, []string{"no channel"}, "channel", "update", s, "general", "--topic", "x")
	if o := show(bob); o.Topics["lobby"] != "say hi" {
		t.Fatalf("topics after update: %+v", o.Topics)
	}
	bob.run("send", s, "lobby", "hello")
	alice.run("channel", "archive", s, "lobby")
	wantRefused(t, bob, []string{"no open channel"}, "send", s, "lobby", "still here?")
	wantRefused(t, alice, []string{"already archived"}, "channel", "archive", s, "lobby")

	// Overrides: no flags is refused, --clear clears.
	if _, err := alice.try("channel", "override", s, "random"); !errors.Is(err, errUsage) || err.Error() != "nothing to set: give --allow/--deny, or --clear" {
		t.Errorf("override with no flags: %v, want the usage error \"nothing to set: give --allow/--deny, or --clear\"", err)
	}
	wantRefused(t, alice, []string{"--clear removes the override"}, "channel", "override", s, "random", "--clear", "--deny", "post")
	alice.run("channel", "override", s, "random", "--deny", "post")
	if o := show(alice).Overrides; len(o) != 1 || o[0].Channel != "random" || o[0].Role != "everyone" || o[0].Deny != "post" {
		t.Fatalf("overrides: %+v", o)
	}
	wantRefused(t, bob, nil, "send", s, "random", "denied")
	alice.run("channel", "override", s, "random", "--clear")
	if o := show(alice).Overrides; len(o) != 0 {
		t.Fatalf("overrides after --clear: %+v", o)
	}
	bob.run("send", s, "random", "allowed again")

	// Storage: grant, show, revoke.
	alice.run("server", "hub", "add", s, hub2.URL)
	alice.run("storage", "grant", s, hub2.URL)
	hasHub := func(u *user, url string) bool {
		for _, g := range show(u).Storage {
			if g.URL == url {
				return true
			}
		}
		return false
	}
	if !hasHub(alice, hub2.URL) || !hasHub(alice, hub.URL) {
		t.Fatalf("storage after grant: %+v", show(alice).Storage)
	}
	if out := alice.run("storage", "show", s); !strings.Contains(out, hub2.URL) {
		t.Fatalf("storage show: %q", out)
	}
	alice.run("storage", "revoke", s, hub2.URL)
	if hasHub(alice, hub2.URL) || !hasHub(alice, hub.URL) {
		t.Fatalf("storage after revoke: %+v", show(alice).Storage)
	}
	wantRefused(t, alice, []string{"holds no storage grant"}, "storage", "revoke", s, hub2.URL)

	// Server policy, seen by the member: everyone may only read.
	wantRefused(t, bob, nil, "server", "policy", s, "--everyone", "read,post,invite")
	wantRefused(t, alice, []string{"nothing to change"}, "server", "policy", s)
	alice.run("server", "policy", s, "--everyone", "read", "--public")
	if o := show(bob); o.Everyone != "read" || !o.Public {
		t.Fatalf("policy as bob sees it: everyone %q public %v", o.Everyone, o.Public)
	}
	wantRefused(t, bob, nil, "send", s, "random", "no post any more")

	// Ban, creators, rename.
	alice.run("ban", s, bobID, "--reason", "spam")
	o := show(alice)
	if len(o.Bans) != 1 || o.Bans[0].Member != bobID || o.Bans[0].Reason != "spam" {
		t.Fatalf("bans: %+v", o.Bans)
	}
	if len(o.Creators) != 1 || o.Creators[0] != identityOf(alice) {
		t.Fatalf("creators: %+v", o.Creators)
	}
	wantRefused(t, alice, []string{"empty"}, "server", "rename", s, " ")
	alice.run("server", "rename", s, "guild-club")
	if o := show(alice); o.Name != "guild-club" {
		t.Fatalf("name after rename: %q", o.Name)
	}
	if out := alice.run("server", "show", "guild-club"); !strings.Contains(out, "banned:") || !strings.Contains(out, "creators:") {
		t.Fatalf("server show by the new name: %q", out)
	}
}
