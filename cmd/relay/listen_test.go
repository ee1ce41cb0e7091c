package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/guildhall/guildhall/internal/daemon"
	"github.com/guildhall/guildhall/relay"
)

// The UDP listening sockets get the buffers configured (the default 4 MiB
// when unset), and report their receive drops.
func TestUDPSocketBuffers(t *testing.T) {
	rmemMax, wmemMax := sysctl(t, "rmem_max"), sysctl(t, "wmem_max")
	for name, c := range map[string]struct{ set, want int }{
		"default": {0, defaultUDPBuffer},
		"set":     {6 << 20, 6 << 20},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := Config{ExternalIP: "100.64.0.1", Auth: AuthConfig{Secrets: []string{"s"}},
				Listen: ListenConfig{UDP: "127.0.0.1:0", UDPSockets: 2, UDPReadBuffer: c.set, UDPWriteBuffer: c.set}}
			s, err := cfg.resolve()
			if err != nil {
				t.Fatal(err)
			}
			var rc relay.Config
			closers, err := listen(context.Background(), &s, &rc, &daemon.Certificate{}, slog.New(slog.DiscardHandler))
			defer closeAll(closers)
			if err != nil {
				t.Fatal(err)
			}
			if len(rc.UDP) != 2 {
				t.Fatalf("%d UDP sockets", len(rc.UDP))
			}
			// Linux reports twice the size set; without CAP_NET_ADMIN the
			// size is capped at net.core.rmem_max.
			wantR, wantW := c.want, c.want
			if !forced(rc.UDP[0]) {
				wantR, wantW = min(wantR, rmemMax), min(wantW, wmemMax)
			}
			for _, pc := range rc.UDP {
				r, w := socketBuffers(pc)
				if r < wantR || w < wantW {
					t.Fatalf("buffers: read %d, write %d; want at least %d and %d", r, w, wantR, wantW)
				}
				var ovfl int
				raw, _ := pc.(*net.UDPConn).SyscallConn()
				raw.Control(func(fd uintptr) { ovfl, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL) })
				if ovfl != 1 {
					t.Fatal("SO_RXQ_OVFL is off: receive drops would not be counted")
				}
			}
		})
	}
	if _, err := (Config{ExternalIP: "100.64.0.1", Auth: AuthConfig{Secrets: []string{"s"}}, Listen: ListenConfig{UDPReadBuffer: -2}}).resolve(); err == nil {
		t.Fatal("a negative buffer size accepted")
	}
}

// forced reports whether the process may set buffers past the maxima.
func forced(pc net.PacketConn) bool {
	raw, _ := pc.(*net.UDPConn).SyscallConn()
	var err error
	raw.Control(func(fd uintptr) {
		var v int
		v, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		if err == nil {
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, v/2)
		}
	})
	return err == nil
}

func sysctl(t *testing.T, name string) int {
	b, err := os.ReadFile("/proc/sys/net/core/" + name)
	if err != nil {
		t.Skip(err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}
