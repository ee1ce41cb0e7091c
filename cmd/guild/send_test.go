package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/guildhall/guildhall/client"
	"github.com/guildhall/guildhall/client/clienttest"
)

// Messages as people write them: text from standard input (past the
// shell's argument limit), nothing stored for an empty or blank message,
// and a text too long for one message refused with the way out.
func TestSendingText(t *testing.T) {
	hub := clienttest.StartHub(t, "sqlite")
	alice := newUser(t)
	alice.run("identity", "create")
	alice.run("server", "create", "club", "--hub", hub.URL)
	alice.run("channel", "create", "club", "general")

	long := strings.Repeat("a long line of a long letter\n", 3000) // 87 KB: no shell takes it as one argument
	var out, errb bytes.Buffer
	sys := testSystem(&out, &errb)
	sys.stdin = strings.NewReader(long)
	if err := run(context.Background(), []string{"--home", alice.home, "send", "club", "general", "-"}, sys); err != nil {
		t.Fatalf("send from stdin: %v", err)
	}
	for _, blank := range []string{"", "   ", "\n\t"} {
		_, err := alice.try("send", "club", "general", blank)
		if err == nil || !strings.Contains(err.Error(), "nothing to send") {
			t.Fatalf("send %q: %v, want nothing to send", blank, err)
		}
	}
	huge := strings.Repeat("x", client.MaxText+1)
	sys.stdin = strings.NewReader(huge)
	err := run(context.Background(), []string{"--home", alice.home, "send", "club", "general", "-"}, sys)
	if err == nil || !strings.Contains(err.Error(), "--file") {
		t.Fatalf("an over-long message: %v, want the hint to attach it as a file", err)
	}
	var hist []struct {
		Text string `json:"text"`
	}
	alice.json(&hist, "history", "club", "general")
	var texts []string
	for _, m := range hist {
		texts = append(texts, m.Text)
	}
	if !slices.Equal(texts, []string{strings.TrimSuffix(long, "\n")}) {
		t.Fatalf("history holds %d messages (%d bytes in the first); want the one from stdin only", len(texts), len(strings.Join(texts, "")))
	}
}
