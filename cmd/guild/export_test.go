package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/guildhall/guildhall/client/clienttest"
	"golang.org/x/sys/unix"
)

// Exporting the identity as a person does: the password asked twice, the
// two must agree, and an existing file is kept unless --force.
func TestIdentityExportPrompts(t *testing.T) {
	home, dir := t.TempDir(), t.TempDir()
	vars := map[string]string{}
	sys := func(stdin string, stderr *bytes.Buffer) system {
		s := testSystem(&bytes.Buffer{}, stderr)
		s.stdin = strings.NewReader(stdin)
		s.getenv = func(k string) string { return vars[k] }
		return s
	}
	guild := func(stdin string, argv ...string) (string, error) {
		var errb bytes.Buffer
		err := run(context.Background(), append([]string{"--home", home}, argv...), sys(stdin, &errb))
		return errb.String(), err
	}
	if _, err := guild("", "identity", "create"); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "id.export")
	if _, err := guild("one\ntwo\n", "identity", "export", file); err == nil || !strings.Contains(err.Error(), "differ") {
		t.Fatalf("two different passwords: %v", err)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("a refused export left a file: %v", err)
	}
	prompts, err := guild("s3cret\ns3cret\n", "identity", "export", file)
	if err != nil || !strings.Contains(prompts, "password: ") || !strings.Contains(prompts, "again") {
		t.Fatalf("export: %v, prompts %q", err, prompts)
	}
	first, _ := os.ReadFile(file)
	if _, err := guild("other\nother\n", "identity", "export", file); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("exporting over an existing file: %v", err)
	}
	if now, _ := os.ReadFile(file); !bytes.Equal(now, first) {
		t.Fatal("the existing export was replaced")
	}
	if _, err := guild("other\nother\n", "identity", "export", file, "--force"); err != nil {
		t.Fatalf("--force: %v", err)
	}
	if _, err := guild("s3cret\n", "--home", t.TempDir(), "identity", "import", file); err == nil {
		t.Fatal("the replaced export still opens with the old password")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("the export directory holds %d files, want the export only", len(entries))
	}
}

// At a terminal the password is not echoed: the guild binary runs on a
// pseudo-terminal and what the terminal shows holds the prompts, not the
// password typed.
func TestPasswordIsNotEchoed(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "guild")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	home := t.TempDir()
	create := exec.Command(bin, "--home", home, "identity", "create")
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("identity create: %v\n%s", err, out)
	}
	master, slave := openPTY(t)
	cmd := exec.Command(bin, "--home", home, "identity", "export", filepath.Join(t.TempDir(), "id.export"))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.Env = append(os.Environ(), "GUILD_PASSWORD=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var shown bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&shown, master); close(done) }()
	time.Sleep(300 * time.Millisecond)
	master.Write([]byte("visible-if-echoed\r"))
	time.Sleep(300 * time.Millisecond)
	master.Write([]byte("visible-if-echoed\r"))
	if err := cmd.Wait(); err != nil {
		t.Fatalf("export on a terminal: %v\n%s", err, shown.String())
	}
	master.Close()
	<-done
	if strings.Contains(shown.String(), "visible-if-echoed") {
		t.Fatalf("the terminal shows the password: %q", shown.String())
	}
	if !strings.Contains(shown.String(), "password: ") || !strings.Contains(shown.String(), "identity written") {
		t.Fatalf("the terminal shows %q", shown.String())
	}
}

// openPTY opens a pseudo-terminal pair.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// An identity imported on a new device brings its servers: the export
// carries them (encrypted with the key), and the new device posts without
// being invited again.
func TestImportBringsTheServers(t *testing.T) {
	hub := clienttest.StartHub(t, "sqlite")
	t.Setenv("GUILD_PASSWORD", "pw")
	old, fresh := newUser(t), newUser(t)
	old.run("identity", "create")
	old.run("server", "create", "club", "--hub", hub.URL)
	old.run("channel", "create", "club", "general")
	file := filepath.Join(t.TempDir(), "id.export")
	old.run("identity", "export", file)
	fresh.run("identity", "import", file, "--device", "new-laptop")
	if got := fresh.run("server", "list"); !strings.Contains(got, "club") {
		t.Fatalf("the imported identity's device lists:\n%s", got)
	}
	fresh.run("send", "club", "general", "from the new laptop")
	old.run("sync", "club", "general")
	if got := old.run("history", "club", "general"); !strings.Contains(got, "from the new laptop") {
		t.Fatalf("the old device reads:\n%s", got)
	}
}
