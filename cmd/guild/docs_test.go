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

// guild help shows the same example as the docs, for every command.
func TestExamplesMatchTheDocs(t *testing.T) {
	b, err := os.ReadFile("../../docs/CLIENT.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, c := range commands {
		ex, ok := examples[c.name]
		if !ok {
			t.Errorf("no example for %q in examples.go", c.name)
			continue
		}
		if !strings.Contains(doc, "| "+c.name+" | "+ex+" |") {
			t.Errorf("the example of %q differs from docs/CLIENT.md's: %s", c.name, ex)
		}
	}
}
