package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/guildhall/guildhall/client"
)

// system is the process's environment as main hands it to the commands:
// they read no globals, so tests run them in-process with their own.
type system struct {
	stdin    io.Reader
	stdout   io.Writer
	stderr   io.Writer
	getenv   func(string) string // the environment (GUILD_PASSWORD, GUILD_ADMIN_URL...)
	terminal bool                // stderr is a terminal: progress is shown there
	// readSecret reads a line from a terminal without echoing it; nil
	// when stdin is not a terminal (the line is read as any other).
	readSecret func() (string, error)
	hostname   string // the default device name
	userHome   string // the user's home directory, for the default --home
}

// env is what every command gets.
type env struct {
	system
	home string
	json bool
	c    *client.Client // opened lazily
	in   *bufio.Reader  // stdin, buffered once so that lines read one after another are not lost
}

func (e *env) client() (*client.Client, error) {
	if e.c == nil {
		c, err := client.Open(e.home)
		if err != nil {
			return nil, err
		}
		e.c = c
	}
	return e.c, nil
}

func (e *env) close() {
	if e.c != nil {
		e.c.Close()
	}
}

// print writes a result: JSON with --json, else its human form.
func (e *env) print(v any) error {
	if v == nil {
		return nil
	}
	if r, ok := v.(rawOut); ok {
		if len(r) > 0 && r[len(r)-1] != '\n' {
			r = append(r, '\n')
		}
		_, err := e.stdout.Write(r)
		return err
	}
	if e.json { // one object per line: streams (tail) are JSON lines
		return json.NewEncoder(e.stdout).Encode(v)
	}
	if h, ok := v.(interface{ Human() string }); ok {
		fmt.Fprintln(e.stdout, h.Human())
		return nil
	}
	fmt.Fprintln(e.stdout, v)
	return nil
}

// waitNotice is how long a command runs before a person at a terminal is
// told it is still at work, and how often after that.
const waitNotice = time.Second

// waiting starts telling a person at a terminal, after waitNotice and then
// every few seconds, that the command is still waiting (on a hub, most
// often); the function it returns stops it and clears the line.
func (e *env) waiting(what string) func() {
	if !e.terminal {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		start := time.Now()
		t := time.NewTimer(waitNotice)
		defer t.Stop()
		shown := false
		for {
			select {
			case <-done:
				if shown {
					fmt.Fprint(e.stderr, "\r\033[K")
				}
				return
			case <-t.C:
				fmt.Fprintf(e.stderr, "\rguild %s: still waiting (%ds; Ctrl-C to stop)", what, int(time.Since(start).Seconds()))
				shown = true
				t.Reset(3 * time.Second)
			}
		}
	}()
	return func() { close(done); <-finished }
}

// progress tells a person at a terminal what a long command is doing.
func (e *env) progress(format string, args ...any) {
	if e.terminal {
		fmt.Fprintf(e.stderr, format, args...)
	}
}

// envOr returns an environment variable, or def when it is unset.
func (e *env) envOr(k, def string) string {
	if v := e.getenv(k); v != "" {
		return v
	}
	return def
}

// deviceName is the default name of this device.
func (e *env) deviceName() string {
	if e.hostname == "" {
		return "device"
	}
	return e.hostname
}

func (e *env) readLine() (string, error) {
	if e.in == nil {
		e.in = bufio.NewReader(e.stdin)
	}
	line, err := e.in.ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		return "", errors.New("nothing on standard input")
	}
	return strings.TrimSpace(line), nil
}

// password is GUILD_PASSWORD, else read from stdin: without echo on a
// terminal, and, with confirm (a password being set), asked twice.
func (e *env) password(confirm bool) (string, error) {
	if p := e.getenv("GUILD_PASSWORD"); p != "" {
		return p, nil
	}
	read := e.readLine
	if e.readSecret != nil {
		read = e.readSecret
	}
	fmt.Fprint(e.stderr, "password: ")
	p, err := read()
	if e.readSecret != nil {
		fmt.Fprintln(e.stderr)
	}
	if err != nil {
		return "", err
	}
	if p == "" {
		return "", errors.New("an empty password")
	}
	if confirm {
		fmt.Fprint(e.stderr, "the same password again: ")
		again, err := read()
		if e.readSecret != nil {
			fmt.Fprintln(e.stderr)
		}
		if err != nil {
			return "", err
		}
		if again != p {
			return "", errors.New("the two passwords differ: nothing was written")
		}
	}
	return p, nil
}

func defaultHome(sys system) string {
	if base := sys.getenv("XDG_DATA_HOME"); base != "" {
		return filepath.Join(base, "guildhall", "guild")
	}
	if sys.userHome == "" {
		return ".guild"
	}
	return filepath.Join(sys.userHome, ".local", "share", "guildhall", "guild")
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
