package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/guildhall/guildhall/client"
	"github.com/guildhall/guildhall/client/clienttest"
	"github.com/guildhall/guildhall/policy"
)

// A hub's refusals reach the person in plain words, with the hub's code
// and message; nothing a hub refused reads as success or as "no hub".
func TestRefusalsInPlainWords(t *testing.T) {
	hub := clienttest.StartHub(t, "sqlite")
	alice, bob, carol := newUser(t), newUser(t), newUser(t)
	for _, u := range []*user{alice, bob, carol} {
		u.run("identity", "create")
	}
	alice.run("server", "create", "club", "--hub", hub.URL)
	alice.run("channel", "create", "club", "general")
	var inv, short struct {
		Token string `json:"token"`
	}
	alice.json(&inv, "invite", "create", "club", "--uses", "1")
	alice.json(&short, "invite", "create", "club", "--ttl", "1s")
	bob.run("join", inv.Token)

	want := func(what string, err error, is error, words ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", what)
		}
		if is != nil && !errors.Is(err, is) {
			t.Errorf("%s: %v is not %v", what, err, is)
		}
		for _, w := range words {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", what, err, w)
			}
		}
		for _, w := range []string{"no hub for this server", "unknown server", "base64"} {
			if strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q says %q", what, err, w)
			}
		}
	}

	_, err := carol.try("join", inv.Token)
	want("used-up invite", err, policy.ErrInviteExhausted, "used up", "invite_exhausted")
	time.Sleep(1100 * time.Millisecond)
	_, err = carol.try("join", short.Token)
	want("expired invite", err, policy.ErrInviteExpired, "expired", "invite_expired")
	_, err = carol.try("join", inv.Token[:len(inv.Token)-7])
	want("truncated invite", err, client.ErrInviteDamaged, "this invite is incomplete or damaged (copy it whole)")
	_, err = carol.try("join", inv.Token[:100]+"!"+inv.Token[101:])
	want("mangled invite", err, client.ErrInviteDamaged, "this invite is incomplete or damaged (copy it whole)")

	var id struct {
		Identity string `json:"identity"`
	}
	bob.json(&id, "identity", "show")
	alice.run("ban", "club", id.Identity)
	out, err := bob.try("server", "sync", "club")
	want("banned sync", err, policy.ErrBanned, "you are banned from this server", "the hub said banned")
	if strings.Contains(out, "new state events") {
		t.Errorf("banned sync printed %q", out)
	}
	_, err = bob.try("send", "club", "general", "still here?")
	want("banned send", err, policy.ErrBanned, "banned")

	// A tail does not retry a ban forever.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out2, errb bytes.Buffer
	err = run(ctx, []string{"--home", bob.home, "tail", "club", "general"}, testSystem(&out2, &errb))
	if ctx.Err() != nil {
		t.Fatalf("a banned member's tail kept retrying: %s", errb.String())
	}
	want("banned tail", err, policy.ErrBanned, "you are banned from this server")
}
