package main

import (
	"os"
	"strings"
	"testing"
)

// docs/CLIENT.md lists every command with an example, so that a command
// added without its documentation fails here.
func TestClientDocListsEveryCommand(t *testing.T) {
	b, err := os.ReadFile("../../docs/CLIENT.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, c := range commands {
		if !strings.Contains(doc, "| "+c.name+" | `guild "+c.name) {
			t.Errorf("docs/CLIENT.md, \"Every command\": no row with an example for %q", c.name)
		}
	}
}
