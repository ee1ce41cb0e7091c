package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/guildhall/guildhall/client/clienttest"
)

// guild runs the CLI in-process for one user (their --home).
type user struct {
	t    *testing.T
	home string
}

func newUser(t *testing.T) *user { return &user{t: t, home: t.TempDir()} }

func (u *user) try(args ...string) (string, error) {
	var out, errb bytes.Buffer
	err := run(context.Background(), append([]string{"--home", u.home}, args...), testSystem(&out, &errb))
	return out.String(), err
}

// testSystem is the environment of an in-process run: the process's
// variables (tests set GUILD_PASSWORD), empty stdin, no terminal.
func testSystem(stdout, stderr io.Writer) system {
	return system{stdin: strings.NewReader(""), stdout: stdout, stderr: stderr, getenv: os.Getenv, hostname: "test-device"}
}

func (u *user) run(args ...string) string {
	u.t.Helper()
	out, err := u.try(args...)
	if err != nil {
		u.t.Fatalf("guild %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func (u *user) json(v any, args ...string) {
	u.t.Helper()
	out := u.run(append([]string{"--json"}, args...)...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		u.t.Fatalf("guild %s: %v in %q", strings.Join(args, " "), err, out)
	}
}

// The README's walkthrough, with two people and two terminals.
func TestWalkthrough(t *testing.T) {
	hub := clienttest.StartHub(t, "sqlite")
	alice, bob := newUser(t), newUser(t)
	var id struct {
		Identity string `json:"identity"`
		Phrase   string `json:"recovery_phrase"`
	}
	alice.json(&id, "identity", "create", "--device", "alice-laptop")
	if len(strings.Fields(id.Phrase)) != 24 {
		t.Fatalf("phrase %q", id.Phrase)
	}
	bob.run("identity", "create")
	var server struct {
		ID string `json:"id"`
	}
	alice.json(&server, "server", "create", "book club", "--hub", hub.URL)
	alice.run("channel", "create", "book club", "general")
	var inv struct {
		Token string `json:"token"`
	}
	alice.json(&inv, "invite", "create", "book club", "--uses", "3")
	if !strings.HasPrefix(inv.Token, "ghinv1:") {
		t.Fatalf("token %q", inv.Token)
	}
	if out := bob.run("join", inv.Token); !strings.Contains(out, "book club") {
		t.Fatalf("join: %s", out)
	}

	// Bob tails in one terminal while alice sends in another.
	tailCtx, stop := context.WithCancel(context.Background())
	var tailOut bytes.Buffer
	tailDone := make(chan error, 1)
	go func() {
		tailDone <- run(tailCtx, []string{"--home", bob.home, "--json", "tail", "book club", "general"}, testSystem(&syncBuf{b: &tailOut}, os.Stderr))
	}()
	time.Sleep(500 * time.Millisecond) // the subscription is up
	alice.run("send", "book club", "#general", "chapter one was great")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(tailOutString(&tailOut), "chapter one was great") {
		if time.Now().After(deadline) {
			t.Fatalf("tail printed %q", tailOutString(&tailOut))
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	if err := <-tailDone; err != nil {
		t.Fatal(err)
	}

	// Attachments, history, sync, reconciliation.
	file := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(file, []byte("margin notes"), 0o600)
	var sent struct {
		ID       string `json:"id"`
		Receipts []any  `json:"receipts"`
	}
	bob.json(&sent, "send", "book club", "general", "my notes", "--file", file)
	if len(sent.Receipts) != 1 {
		t.Fatalf("sent %+v", sent)
	}
	alice.run("sync", "book club", "general")
	var hist []struct {
		Text  string   `json:"text"`
		Files []string `json:"files"`
		ID    string   `json:"id"`
	}
	alice.json(&hist, "history", "book club", "general")
	if len(hist) != 2 || hist[1].Text != "my notes" || len(hist[1].Files) != 1 {
		t.Fatalf("history %+v", hist)
	}
	out := t.TempDir()
	alice.run("download", "book club", "general", hist[1].ID, "--out", out)
	if b, _ := os.ReadFile(filepath.Join(out, "notes.txt")); string(b) != "margin notes" {
		t.Fatalf("downloaded %q", b)
	}
	if got := alice.run("sync", "book club", "general", "--reconcile", hub.URL); !strings.Contains(got, "0 envelopes fetched") {
		t.Fatalf("reconcile: %s", got)
	}
	if got := alice.run("server", "show", "book club"); !strings.Contains(got, "#general") {
		t.Fatalf("server show: %s", got)
	}

	// A second device for bob, approved by his first.
	bobLaptop := newUser(t)
	var req struct {
		Token string `json:"token"`
	}
	bobLaptop.json(&req, "device", "request", "--name", "bob-laptop")
	var cert struct {
		Token string `json:"token"`
	}
	bob.json(&cert, "device", "approve", req.Token)
	bobLaptop.run("device", "install", cert.Token)
	var a, b struct {
		Identity string `json:"identity"`
	}
	bob.json(&a, "identity", "show")
	bobLaptop.json(&b, "identity", "show")
	if a.Identity != b.Identity {
		t.Fatal("the linked device acts for another identity")
	}

	// Ban: bob's posts are refused afterwards.
	alice.run("ban", "book club", a.Identity, "--reason", "spoilers")
	if _, err := bob.try("send", "book club", "general", "spoiler!"); err == nil || !strings.Contains(err.Error(), "banned") {
		t.Fatalf("banned send: %v", err)
	}

	// Operator tools.
	var tenants struct {
		Tenants []struct {
			Server string `json:"server"`
		} `json:"tenants"`
	}
	alice.json(&tenants, "admin", "tenants", "--admin", hub.Admin)
	if len(tenants.Tenants) != 1 || tenants.Tenants[0].Server != server.ID {
		t.Fatalf("tenants %+v", tenants)
	}
	if got := alice.run("admin", "usage", "--admin", hub.Admin); !strings.Contains(got, server.ID) {
		t.Fatalf("usage: %s", got)
	}
	secretFile := filepath.Join(t.TempDir(), "turn-secret")
	os.WriteFile(secretFile, []byte("s3cret\n"), 0o600)
	var ice struct {
		URLs       []string `json:"urls"`
		Username   string   `json:"username"`
		Credential string   `json:"credential"`
		TTL        int64    `json:"ttl"`
	}
	alice.json(&ice, "turn", "credentials", "--secret-file", secretFile, "--user", "alice", "--url", "turn:relay.example.org:3478?transport=udp", "--ttl", "1h")
	if !strings.HasSuffix(ice.Username, ":alice") || ice.TTL != 3600 || len(ice.URLs) != 1 || ice.Credential == "" {
		t.Fatalf("turn credentials: %+v", ice)
	}
	if exp, user, err := parseREST(ice.Username); err != nil || user != "alice" || time.Until(exp) > time.Hour+time.Minute {
		t.Fatalf("turn credentials username %q: %v %v", ice.Username, exp, err)
	}
}

func TestCLIErrors(t *testing.T) {
	u := newUser(t)
	if _, err := u.try("no", "such", "command"); !errors.Is(err, errUsage) {
		t.Fatalf("unknown command: %v", err)
	}
	if _, err := u.try("send", "x", "y"); !errors.Is(err, errUsage) {
		t.Fatalf("missing argument: %v", err)
	}
	if _, err := u.try("server", "show", "nope"); err == nil {
		t.Fatal("an unknown server was shown")
	}
	if _, err := u.try("identity", "phrase"); err == nil {
		t.Fatal("a phrase without an identity")
	}
	if _, err := u.try("turn", "credentials"); !errors.Is(err, errUsage) {
		t.Fatalf("TURN credentials without a secret: %v", err)
	}
	if _, err := u.try("turn", "credentials", "--secret", "on-the-command-line"); !errors.Is(err, errUsage) {
		t.Fatalf("a secret on the command line: %v, want a usage error", err)
	}
	// Export and re-import an identity under a password.
	u.run("identity", "create")
	t.Setenv("GUILD_PASSWORD", "pw")
	file := filepath.Join(t.TempDir(), "id.pem")
	u.run("identity", "export", file)
	other := newUser(t)
	other.run("identity", "import", file)
	var a, b struct {
		Identity string `json:"identity"`
	}
	u.json(&a, "identity", "show")
	other.json(&b, "identity", "show")
	if a.Identity != b.Identity {
		t.Fatal("import gave another identity")
	}
	t.Setenv("GUILD_PASSWORD", "wrong")
	if _, err := newUser(t).try("identity", "import", file); err == nil {
		t.Fatal("a wrong password imported")
	}
}

// syncBuf is a buffer written by the tail goroutine and read by the test.
type syncBuf struct {
	b *bytes.Buffer
}

var tailMu = make(chan struct{}, 1)

func (s *syncBuf) Write(p []byte) (int, error) {
	tailMu <- struct{}{}
	defer func() { <-tailMu }()
	return s.b.Write(p)
}

func tailOutString(b *bytes.Buffer) string {
	tailMu <- struct{}{}
	defer func() { <-tailMu }()
	return b.String()
}

// A join that cannot work says why, in the protocol's words.
func TestCLIJoinErrors(t *testing.T) {
	hub := clienttest.StartHub(t, "sqlite")
	alice, bob, carol := newUser(t), newUser(t), newUser(t)
	for _, u := range []*user{alice, bob, carol} {
		u.run("identity", "create")
	}
	alice.run("server", "create", "club", "--hub", hub.URL)
	var inv struct {
		Token string `json:"token"`
	}
	alice.json(&inv, "invite", "create", "club", "--uses", "1")
	bob.run("join", inv.Token)
	for name, tc := range map[string]struct {
		token string
		want  string
	}{
		"used up":   {inv.Token, "invite_exhausted"},
		"cut short": {inv.Token[:len(inv.Token)-20], "incomplete or damaged (copy it whole)"},
		"not one":   {"hello", "not an invite token"},
	} {
		_, err := carol.try("join", tc.token)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "unknown server or channel") {
			t.Errorf("%s invite: %v, want it to say %q", name, err, tc.want)
		}
	}
}

// parseREST splits a TURN REST username "expiry:user".
func parseREST(u string) (time.Time, string, error) {
	ts, user, ok := strings.Cut(u, ":")
	n, err := strconv.ParseInt(ts, 10, 64)
	if !ok || err != nil {
		return time.Time{}, "", fmt.Errorf("not expiry:user: %q", u)
	}
	return time.Unix(n, 0), user, nil
}
