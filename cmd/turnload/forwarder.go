package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func startEcho() (*net.UDPAddr, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) })
		return errors.Join(err, serr)
	}}
	addr := "127.0.0.1:0"
	var first *net.UDPAddr
	for range runtime.GOMAXPROCS(0) {
		pc, err := lc.ListenPacket(context.Background(), "udp4", addr)
		if err != nil {
			return nil, err
		}
		if first == nil {
			first = pc.LocalAddr().(*net.UDPAddr)
			addr = first.String()
		}
		go func() {
			buf := make([]byte, 2048)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				pc.WriteTo(buf[:n], from)
			}
		}()
	}
	return first, nil
}

// rss returns a process's resident memory in bytes (0 without a pid).
func rss(pid int) int64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// serveForwarder is the benchmark's reference: the least a relay can do.
// Each client gets its own upstream socket (as an allocation has), the first
// datagram names the peer (its first 6 bytes: IPv4 and port), and datagrams
// are copied both ways with nothing else: no authentication, no permission,
// no framing. One read loop per socket, like the relay's.
func serveForwarder(addr string) error {
	l, err := net.ListenPacket("udp4", addr)
	if err != nil {
		return err
	}
	fmt.Println("forwarder", l.LocalAddr())
	var mu sync.Mutex
	ups := map[string]net.PacketConn{}
	buf := make([]byte, 2048)
	for {
		n, from, err := l.ReadFrom(buf)
		if err != nil || n < 6 {
			continue
		}
		peer := &net.UDPAddr{IP: net.IP(append([]byte(nil), buf[:4]...)), Port: int(binary.BigEndian.Uint16(buf[4:6]))}
		mu.Lock()
		up, ok := ups[from.String()]
		if !ok {
			up, err = net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				mu.Unlock()
				continue
			}
			ups[from.String()] = up
			go func(up net.PacketConn, client net.Addr) {
				b := make([]byte, 2048)
				for {
					n, _, err := up.ReadFrom(b)
					if err != nil {
						return
					}
					l.WriteTo(b[:n], client)
				}
			}(up, from)
		}
		mu.Unlock()
		up.WriteTo(buf[:n], peer)
	}
}

// runRaw drives the forwarder with the same load shape as the TURN runs.
func runRaw(server string, n, window, size int, dur time.Duration) error {
	srv, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		return err
	}
	peer, err := startEcho()
	if err != nil {
		return err
	}
	var trips atomic.Int64
	var mu sync.Mutex
	var rtts []time.Duration
	stop := time.Now().Add(dur)
	var wg sync.WaitGroup
	for range n {
		conn, err := net.DialUDP("udp", nil, srv)
		if err != nil {
			return err
		}
		defer conn.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			pkt := make([]byte, 6+size)
			copy(pkt, peer.IP.To4())
			binary.BigEndian.PutUint16(pkt[4:], uint16(peer.Port))
			send := func() {
				binary.BigEndian.PutUint64(pkt[6:], uint64(time.Now().UnixNano()))
				conn.Write(pkt)
			}
			for range window {
				send()
			}
			local := make([]time.Duration, 0, 1<<16)
			buf := make([]byte, 2048)
			conn.SetReadDeadline(stop)
			for time.Now().Before(stop) {
				m, err := conn.Read(buf)
				if err != nil {
					break
				}
				if m >= 14 {
					if len(local) < cap(local) {
						local = append(local, time.Duration(time.Now().UnixNano()-int64(binary.BigEndian.Uint64(buf[6:14]))))
					}
					trips.Add(1)
				}
				send()
			}
			mu.Lock()
			rtts = append(rtts, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(rtts)
	p99 := time.Duration(0)
	if len(rtts) > 0 {
		p99 = rtts[len(rtts)*99/100]
	}
	fmt.Printf("load: %d allocations x %d in flight, %d-byte packets, %v: %.0f round trips/s; rtt p50 %v p99 %v\n",
		n, window, size, dur, float64(trips.Load())/dur.Seconds(), rtts[len(rtts)/2], p99)
	return nil
}
