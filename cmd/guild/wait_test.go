package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// A command waiting on a hub that accepts and never answers tells the
// person at the terminal it is still waiting, instead of hanging silent.
func TestWaitsAreShown(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	u := newUser(t)
	u.run("identity", "create")
	var out, errb bytes.Buffer
	sys := testSystem(&out, &errb)
	sys.terminal = true
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	err = run(ctx, []string{"--home", u.home, "server", "create", "club", "--hub", "http://" + l.Addr().String()}, sys)
	if err == nil {
		t.Fatal("a server was created on a hub that never answers")
	}
	if !strings.Contains(errb.String(), "still waiting") {
		t.Fatalf("nothing told the person it was waiting; stderr %q", errb.String())
	}
}
