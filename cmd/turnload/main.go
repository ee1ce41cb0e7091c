// Command turnload measures a TURN server: N allocations each keep a window
// of packets in flight through an echo peer (client -> server -> peer ->
// server -> client, over channel bindings), for a duration; it reports
// round trips per second and round-trip percentiles. With -hold it instead
// creates N idle allocations and reports the server's memory per
// allocation (-pid). It speaks TURN itself on the data path, so the
// client's own cost stays small and equal for every server measured. With
// -tcp the clients reach the server over TCP (one connection per
// allocation, STUN and ChannelData framed on the stream); the relayed leg
// to the peer stays UDP.
//
//	turnload -server 127.0.0.1:3478 -user u -pass p -allocs 32 -window 8 -size 160 -duration 10s
//	turnload -server 127.0.0.1:3478 -user u -pass p -allocs 10000 -hold -pid 1234
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
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

	"github.com/pion/stun/v3"
	"golang.org/x/sys/unix"
)

func main() {
	server := flag.String("server", "127.0.0.1:3478", "TURN server")
	tcp := flag.Bool("tcp", false, "reach the server over TCP instead of UDP")
	user := flag.String("user", "", "long-term user")
	pass := flag.String("pass", "", "password")
	realm := flag.String("realm", "", "realm (default: learned from the server)")
	allocs := flag.Int("allocs", 32, "allocations")
	window := flag.Int("window", 8, "packets in flight per allocation")
	size := flag.Int("size", 160, "payload bytes")
	dur := flag.Duration("duration", 10*time.Second, "measuring time")
	hold := flag.Bool("hold", false, "create idle allocations and report memory instead")
	pid := flag.Int("pid", 0, "the server's process ID (memory)")
	forwarder := flag.String("serve-forwarder", "", "instead: run a minimal UDP forwarder on this address (the machine's limit to compare with)")
	raw := flag.Bool("raw", false, "drive a minimal forwarder (-server) with raw datagrams instead of TURN")
	flag.Parse()
	if *forwarder != "" {
		if err := serveForwarder(*forwarder); err != nil {
			fmt.Fprintln(os.Stderr, "turnload:", err)
			os.Exit(1)
		}
		return
	}
	if *raw {
		if err := runRaw(*server, *allocs, *window, *size, *dur); err != nil {
			fmt.Fprintln(os.Stderr, "turnload:", err)
			os.Exit(1)
		}
		return
	}
	network := "udp"
	if *tcp {
		network = "tcp"
	}
	if err := run(network, *server, *user, *pass, *realm, *allocs, *window, *size, *dur, *hold, *pid); err != nil {
		fmt.Fprintln(os.Stderr, "turnload:", err)
		os.Exit(1)
	}
}

func run(network, server, user, pass, realm string, n, window, size int, dur time.Duration, hold bool, pid int) error {
	peer, err := startEcho()
	if err != nil {
		return err
	}
	rss0 := rss(pid)
	allocs := make([]*allocation, n)
	errc := make(chan error, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, 64) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				a, err := allocate(network, server, user, pass, realm, peer, uint16(0x4000+i%0x3000))
				for try := 0; err != nil && try < 3; try++ { // a stale allocation on a reused port (437)
					a, err = allocate(network, server, user, pass, realm, peer, uint16(0x4000+i%0x3000))
				}
				if err != nil {
					errc <- fmt.Errorf("allocation %d: %w", i, err)
					return
				}
				allocs[i] = a
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	defer func() {
		var wg sync.WaitGroup
		for i := 0; i < len(allocs); i += 256 {
			wg.Add(1)
			go func(part []*allocation) {
				defer wg.Done()
				for _, a := range part {
					a.release()
				}
			}(allocs[i:min(i+256, len(allocs))])
		}
		wg.Wait()
	}()
	if hold {
		time.Sleep(2 * time.Second)
		rss1 := rss(pid)
		fmt.Printf("hold: %d allocations; server RSS %.1f MiB -> %.1f MiB: %.1f KiB per allocation\n",
			n, float64(rss0)/(1<<20), float64(rss1)/(1<<20), float64(rss1-rss0)/float64(n)/1024)
		return nil
	}
	var trips atomic.Int64
	var mu sync.Mutex
	var rtts []time.Duration
	stop := time.Now().Add(dur)
	var done sync.WaitGroup
	for _, a := range allocs {
		done.Add(1)
		go func() {
			defer done.Done()
			local := a.pump(window, size, stop, &trips)
			mu.Lock()
			rtts = append(rtts, local...)
			mu.Unlock()
		}()
	}
	done.Wait()
	slices.Sort(rtts)
	q := func(p float64) time.Duration {
		if len(rtts) == 0 {
			return 0
		}
		return rtts[min(len(rtts)-1, int(p*float64(len(rtts))))]
	}
	fmt.Printf("load: %d allocations x %d in flight, %d-byte packets, %v: %.0f round trips/s; rtt p50 %v p99 %v\n",
		n, window, size, dur, float64(trips.Load())/dur.Seconds(), q(0.5), q(0.99))
	return nil
}

// allocation is one client: a socket connected to the server, an
// allocation and a channel bound to the echo peer.
type allocation struct {
	conn    net.Conn
	stream  *bufio.Reader // over TCP: frames are delimited by their headers
	channel uint16
	auth    []stun.Setter // username, realm, nonce
	key     stun.MessageIntegrity
}

// release deletes the allocation (Refresh with lifetime 0), so that the
// server's state does not outlive the run.
func (a *allocation) release() {
	setters := append([]stun.Setter{stun.TransactionID, stun.NewType(stun.MethodRefresh, stun.ClassRequest),
		stun.RawAttribute{Type: stun.AttrLifetime, Value: []byte{0, 0, 0, 0}}}, a.auth...)
	a.do(stun.MustBuild(append(setters, a.key, stun.Fingerprint)...))
	a.conn.Close()
}

func allocate(network, server, user, pass, realm string, peer *net.UDPAddr, channel uint16) (*allocation, error) {
	conn, err := net.Dial(network, server)
	if err != nil {
		return nil, err
	}
	a := &allocation{conn: conn, channel: channel}
	if network == "tcp" {
		a.stream = bufio.NewReaderSize(conn, 64<<10)
	}
	transport := stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}}
	res, err := a.do(stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest), transport, stun.Fingerprint))
	if err != nil {
		conn.Close()
		return nil, err
	}
	var nonce stun.Nonce
	var r stun.Realm
	if err := nonce.GetFrom(res); err != nil {
		conn.Close()
		return nil, errors.New("no nonce in the challenge")
	}
	if realm == "" {
		r.GetFrom(res)
		realm = r.String()
	}
	key := stun.NewLongTermIntegrity(user, realm, pass)
	auth := []stun.Setter{stun.NewUsername(user), stun.NewRealm(realm), nonce}
	a.auth, a.key = auth, key
	setters := append([]stun.Setter{stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest), transport}, auth...)
	res, err = a.do(stun.MustBuild(append(setters, key, stun.Fingerprint)...))
	if err == nil && res.Type.Class != stun.ClassSuccessResponse {
		var code stun.ErrorCodeAttribute
		code.GetFrom(res)
		err = fmt.Errorf("allocate refused: %v", code)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	num := make([]byte, 4)
	binary.BigEndian.PutUint16(num, channel)
	bind := append([]stun.Setter{stun.TransactionID, stun.NewType(stun.MethodChannelBind, stun.ClassRequest),
		stun.RawAttribute{Type: stun.AttrChannelNumber, Value: num}, &xorPeer{peer}}, auth...)
	res, err = a.do(stun.MustBuild(append(bind, key, stun.Fingerprint)...))
	if err == nil && res.Type.Class != stun.ClassSuccessResponse {
		var code stun.ErrorCodeAttribute
		code.GetFrom(res)
		err = fmt.Errorf("channel bind refused: %v", code)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return a, nil
}

type xorPeer struct{ addr *net.UDPAddr }

func (p *xorPeer) AddTo(m *stun.Message) error {
	return stun.XORMappedAddress{IP: p.addr.IP, Port: p.addr.Port}.AddToAs(m, stun.AttrXORPeerAddress)
}

// do sends a request and waits for its answer, retrying.
func (a *allocation) do(m *stun.Message) (*stun.Message, error) {
	buf := make([]byte, 1500)
	for try := range 5 {
		if _, err := a.conn.Write(m.Raw); err != nil {
			return nil, err
		}
		a.conn.SetReadDeadline(time.Now().Add(time.Duration(200<<try) * time.Millisecond))
		for {
			n, err := a.read(buf)
			if err != nil {
				break
			}
			res := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if res.Decode() == nil && res.TransactionID == m.TransactionID {
				a.conn.SetReadDeadline(time.Time{})
				return res, nil
			}
		}
	}
	return nil, errors.New("no answer")
}

// read reads one STUN message or ChannelData message: a datagram over
// UDP; over TCP, a frame whose length its header gives (ChannelData padded
// to 4 bytes, RFC 8656 §12.5).
func (a *allocation) read(buf []byte) (int, error) {
	if a.stream == nil {
		return a.conn.Read(buf)
	}
	h, err := a.stream.Peek(4)
	if err != nil {
		return 0, err
	}
	n := int(binary.BigEndian.Uint16(h[2:]))
	if h[0]&0xc0 == 0 {
		n += 20 // STUN header
	} else {
		n = 4 + (n+3)&^3
	}
	if n > len(buf) {
		return 0, fmt.Errorf("a %d-byte frame from the server", n)
	}
	return io.ReadFull(a.stream, buf[:n])
}

// pump keeps window packets in flight until stop, and returns the round
// trip times it measured.
func (a *allocation) pump(window, size int, stop time.Time, trips *atomic.Int64) []time.Duration {
	pkt := make([]byte, 4+size)
	binary.BigEndian.PutUint16(pkt, a.channel)
	binary.BigEndian.PutUint16(pkt[2:], uint16(size))
	send := func() {
		binary.BigEndian.PutUint64(pkt[4:], uint64(time.Now().UnixNano()))
		a.conn.Write(pkt)
	}
	for range window {
		send()
	}
	rtts := make([]time.Duration, 0, 1<<16)
	buf := make([]byte, 2048)
	a.conn.SetReadDeadline(stop)
	for time.Now().Before(stop) {
		n, err := a.read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && time.Now().Before(stop) {
				continue
			}
			break
		}
		if n < 12 || buf[0]&0xc0 != 0x40 { // not ChannelData
			continue
		}
		sent := int64(binary.BigEndian.Uint64(buf[4:12]))
		if len(rtts) < cap(rtts) {
			rtts = append(rtts, time.Duration(time.Now().UnixNano()-sent))
		}
		trips.Add(1)
		send()
	}
	return rtts
}

// startEcho runs the echo peer: one socket per core on one port.
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
