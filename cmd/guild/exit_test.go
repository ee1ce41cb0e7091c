package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guildhall/guildhall/client/clienttest"
)

// Scripts tell failures apart by exit code, and with --json read one
// object on stdout for a result and one on stderr for an error.
func TestExitCodesAndJSON(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "guild")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	hub := clienttest.StartHub(t, "sqlite")
	home, other := t.TempDir(), t.TempDir()
	guild := func(home string, argv ...string) (int, string, string) {
		var o, e bytes.Buffer
		cmd := exec.Command(bin, append([]string{"--home", home}, argv...)...)
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), o.String(), e.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, o.String(), e.String()
	}
	if code, _, _ := guild(home, "identity", "show"); code != exitLocal {
		t.Fatalf("no identity yet: exit %d, want %d", code, exitLocal)
	}
	if code, _, _ := guild(home, "send"); code != exitUsage {
		t.Fatalf("a command line without its arguments: exit %d, want %d", code, exitUsage)
	}
	if code, _, e := guild(home, "no-such-command", "--json"); code != exitUsage || !strings.Contains(e, `"code":"usage"`) {
		t.Fatalf("an unknown command with --json: exit %d, stderr %q", code, e)
	}
	if code, out, _ := guild(home, "identity", "create", "--json"); code != 0 || strings.Count(strings.TrimSpace(out), "\n") != 0 || !json.Valid([]byte(out)) {
		t.Fatalf("identity create --json: exit %d, %q: want one JSON object on one line", code, out)
	}
	if code, _, e := guild(home, "server", "create", "x", "--hub", "http://127.0.0.1:1", "--json"); code != exitUnreachable || !strings.Contains(e, `"code":"unreachable"`) {
		t.Fatalf("no hub answering: exit %d, stderr %q", code, e)
	}
	if code, out, _ := guild(home, "server", "create", "club", "--hub", hub.URL); code != 0 {
		t.Fatalf("server create: %d %s", code, out)
	}
	guild(home, "channel", "create", "club", "general")
	_, out, _ := guild(home, "--json", "invite", "create", "club", "--uses", "1")
	var inv struct {
		Token string `json:"token"`
	}
	json.Unmarshal([]byte(out), &inv)
	guild(other, "identity", "create")
	if code, _, e := guild(other, "join", inv.Token); code != 0 {
		t.Fatalf("join: %d %s", code, e)
	}
	third := t.TempDir()
	guild(third, "identity", "create")
	code, _, e := guild(third, "--json", "join", inv.Token)
	var je struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Exit    int    `json:"exit"`
	}
	if err := json.Unmarshal([]byte(e), &je); err != nil || code != exitRefused || je.Exit != exitRefused || je.Code != "invite_exhausted" || je.Message == "" {
		t.Fatalf("a used-up invite: exit %d, stderr %q (%v)", code, e, err)
	}
	if code, out, _ := guild(home, "send", "club", "general", "hi", "--json"); code != 0 || !json.Valid([]byte(out)) {
		t.Fatalf("send --json: %d %q", code, out)
	}
	if _, out, _ := guild(home, "help"); !strings.Contains(out, "exit codes") {
		t.Fatalf("guild help does not document the exit codes:\n%s", out)
	}
}
