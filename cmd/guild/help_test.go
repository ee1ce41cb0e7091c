package main

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// Help as people look for it: per command, per group, a group named alone,
// global flags after the command, the version, and completion scripts a
// shell accepts.
func TestHelpVersionCompletion(t *testing.T) {
	out := func(argv ...string) (string, string, error) {
		var o, e bytes.Buffer
		err := run(context.Background(), argv, testSystem(&o, &e))
		return o.String(), e.String(), err
	}
	if o, _, err := out("help", "send"); err != nil || !strings.Contains(o, "usage: guild send SERVER CHANNEL TEXT") || !strings.Contains(o, "-file") {
		t.Fatalf("help send: %v\n%s", err, o)
	}
	if o, _, err := out("help", "server"); err != nil || !strings.Contains(o, "server create") || !strings.Contains(o, "server show") {
		t.Fatalf("help server: %v\n%s", err, o)
	}
	if _, e, err := out("server"); !errors.Is(err, errUsage) || !strings.Contains(e, "server create") {
		t.Fatalf("guild server alone: %v\n%s", err, e)
	}
	if _, _, err := out("help", "nonsense"); !errors.Is(err, errUsage) {
		t.Fatalf("help of no command: %v", err)
	}
	if o, _, err := out("version"); err != nil || !strings.HasPrefix(o, "guild ") || !strings.Contains(o, "go1.") {
		t.Fatalf("version: %v %q", err, o)
	}
	home := t.TempDir()
	if o, _, err := out("identity", "create", "--home", home, "--json"); err != nil || !strings.HasPrefix(strings.TrimSpace(o), "{") {
		t.Fatalf("global flags after the command: %v %q", err, o)
	}
	if o, _, err := out("--home", home, "identity", "show"); err != nil || o == "" {
		t.Fatalf("the identity made with --home after the command is not in that home: %v %q", err, o)
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		o, _, err := out("completion", shell)
		if err != nil || !strings.Contains(o, "identity") || !strings.Contains(o, "server") {
			t.Fatalf("completion %s: %v\n%s", shell, err, o)
		}
		if shell == "bash" { // bash is on every machine this runs on: the script must parse
			cmd := exec.Command("bash", "-n")
			cmd.Stdin = strings.NewReader(o)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("bash rejects its completion script: %v\n%s", err, b)
			}
		}
	}
	if _, _, err := out("completion", "tcsh"); !errors.Is(err, errUsage) {
		t.Fatalf("completion tcsh: %v", err)
	}
}
