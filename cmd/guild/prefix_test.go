package main

import (
	"strings"
	"testing"

	"github.com/guildhall/guildhall/client/clienttest"
)

// A message is named by the ID history shows (16 characters) or any unique
// prefix of it, as git names commits; too short or unknown prefixes are
// refused with a reason.
func TestMessageIDPrefixes(t *testing.T) {
	hub := clienttest.StartHub(t, "sqlite")
	u := newUser(t)
	u.run("identity", "create")
	u.run("server", "create", "club", "--hub", hub.URL)
	u.run("channel", "create", "club", "general")
	u.run("send", "club", "general", "keep me")
	u.run("send", "club", "general", "regrettable")
	var hist []struct {
		ID      string `json:"id"`
		Text    string `json:"text"`
		Deleted bool   `json:"deleted"`
	}
	u.json(&hist, "history", "club", "general")
	var target string
	for _, m := range hist {
		if m.Text == "regrettable" {
			target = m.ID
		}
	}
	shown := target[:16] // what the human history prints
	if !strings.Contains(u.run("history", "club", "general"), shown) {
		t.Fatalf("history does not show %s", shown)
	}
	if _, err := u.try("delete", "club", "bafkrei"); err == nil || !strings.Contains(err.Error(), "at least") {
		t.Fatalf("a prefix of nothing but the common start: %v", err)
	}
	if _, err := u.try("delete", "club", "bafkreizzzzzzzzz"); err == nil || !strings.Contains(err.Error(), "no message") {
		t.Fatalf("an unknown prefix: %v", err)
	}
	if out := u.run("delete", "club", shown); !strings.Contains(out, target) {
		t.Fatalf("delete by the shown prefix: %s", out)
	}
	hist = nil
	u.json(&hist, "history", "club", "general")
	for _, m := range hist {
		if (m.ID == target) != m.Deleted {
			t.Fatalf("after deleting %s by its prefix: %+v", shown, m)
		}
	}
}
