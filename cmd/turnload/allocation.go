package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/pion/stun/v3"
)

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
