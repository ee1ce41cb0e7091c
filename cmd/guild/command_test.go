package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guildhall/guildhall/policy"
)

// Every command refuses a wrong count of arguments before it runs, and its
// usage line names the arguments it declares.
func TestArgumentCounts(t *testing.T) {
	for _, cmd := range commands {
		t.Run(cmd.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			argv := append([]string{"--home", t.TempDir()}, strings.Fields(cmd.name)...)
			for range len(cmd.params) + 1 {
				argv = append(argv, "x")
			}
			if err := run(context.Background(), argv, testSystem(&out, &errb)); !errors.Is(err, errUsage) {
				t.Fatalf("%d arguments: %v", len(cmd.params)+1, err)
			}
			if want := "usage: guild " + cmd.name + " " + usageLine(cmd.params) + "\n"; !strings.HasPrefix(errb.String(), want) {
				t.Fatalf("usage %q, want %q", errb.String(), want)
			}
		})
	}
}

// Arguments are checked by their kind before the command runs.
func TestArgumentKinds(t *testing.T) {
	server := policy.Sum([]byte("server")).String()
	for _, argv := range [][]string{
		{"ban", server, "not-a-key"},
		{"device revoke", server, "not-a-key"},
		{"delete", server, "not-an-id"},
		{"admin suspend", "not-an-id"},
	} {
		t.Run(argv[0], func(t *testing.T) {
			u := newUser(t)
			args := append(strings.Fields(argv[0]), argv[1:]...)
			if _, err := u.try(args...); err == nil || errors.Is(err, errUsage) {
				t.Fatalf("guild %s: %v", strings.Join(args, " "), err)
			}
		})
	}
}

// The password comes from the environment main hands over, else from
// stdin after a prompt: never from the process's globals directly.
func TestPasswordFromInjectedEnvironment(t *testing.T) {
	home := t.TempDir()
	file := filepath.Join(t.TempDir(), "id.pem")
	vars := map[string]string{"GUILD_PASSWORD": "from-env"}
	sys := func(stdin string, stderr *bytes.Buffer) system {
		s := testSystem(&bytes.Buffer{}, stderr)
		s.stdin = strings.NewReader(stdin)
		s.getenv = func(k string) string { return vars[k] }
		return s
	}
	var errb bytes.Buffer
	for _, argv := range [][]string{{"identity", "create"}, {"identity", "export", file}} {
		if err := run(context.Background(), append([]string{"--home", home}, argv...), sys("", &errb)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatal(err)
	}
	delete(vars, "GUILD_PASSWORD")
	errb.Reset()
	if err := run(context.Background(), []string{"--home", t.TempDir(), "identity", "import", file}, sys("from-env\n", &errb)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errb.String(), "password: ") {
		t.Fatalf("no prompt: %q", errb.String())
	}
}
