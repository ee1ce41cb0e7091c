package relay

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// Datagrams are relayed whole and unchanged up to what UDP carries with
// TURN's framing, both ways, in Send/Data indications and in ChannelData,
// whether the client reaches the relay over UDP, TCP or TLS.
func TestLargeDatagrams(t *testing.T) {
	r := startRelay(t, nil)
	for _, network := range []string{"udp", "tcp", "tls"} {
		t.Run(network, func(t *testing.T) { testLargeDatagrams(t, dialRaw(t, r, network, "", "alice", "wonderland")) })
	}
}

func testLargeDatagrams(t *testing.T, c *rawClient) {
	code, m := c.request(stun.MethodAllocate, transport(17))
	if code != 0 {
		t.Fatalf("allocate: %d", code)
	}
	var relayed stun.XORMappedAddress
	if err := relayed.GetFromAs(m, stun.AttrXORRelayedAddress); err != nil {
		t.Fatal(err)
	}
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	pa := peer.LocalAddr().(*net.UDPAddr)
	if code, _ := c.request(stun.MethodCreatePermission, peerAddr("127.0.0.1", pa.Port)); code != 0 {
		t.Fatalf("permission: %d", code)
	}
	buf := make([]byte, 1<<16)
	readPeer := func(what string) []byte {
		peer.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, _, err := peer.ReadFrom(buf)
		if err != nil {
			t.Fatalf("%s: the peer got nothing: %v", what, err)
		}
		return buf[:n]
	}
	readClient := func() []byte {
		f := c.frame(2 * time.Second)
		if f == nil {
			t.Fatal("client: nothing relayed")
		}
		return f
	}
	sizes := []int{1400, 1597, 1601, 3333, 8000, 16000, 65000}
	for _, size := range sizes {
		data := make([]byte, size)
		rand.Read(data)
		c.send(stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication), peerAddr("127.0.0.1", pa.Port),
			stun.RawAttribute{Type: stun.AttrData, Value: data}))
		if got := readPeer(fmt.Sprintf("Send indication of %d bytes", size)); !bytes.Equal(got, data) {
			t.Fatalf("Send indication of %d bytes: the peer got %d bytes, not the same", size, len(got))
		}
		if _, err := peer.WriteTo(data, &net.UDPAddr{IP: relayed.IP, Port: relayed.Port}); err != nil {
			t.Fatal(err)
		}
		m := &stun.Message{Raw: append([]byte(nil), readClient()...)}
		if err := m.Decode(); err != nil {
			t.Fatalf("Data indication of %d bytes: %v", size, err)
		}
		got, err := m.Get(stun.AttrData)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Data indication of %d bytes: %d bytes, not the same (%v)", size, len(got), err)
		}
	}
	if code, _ := c.request(stun.MethodChannelBind, stun.RawAttribute{Type: stun.AttrChannelNumber, Value: []byte{0x40, 0, 0, 0}},
		peerAddr("127.0.0.1", pa.Port)); code != 0 {
		t.Fatalf("channel bind: %d", code)
	}
	for _, size := range sizes {
		data := make([]byte, size)
		rand.Read(data)
		frame := append([]byte{0x40, 0, byte(size >> 8), byte(size)}, data...)
		if c.stream { // RFC 5766 §11.5: padded to four bytes over TCP
			frame = append(frame, make([]byte, (4-size%4)%4)...)
		}
		if _, err := c.conn.Write(frame); err != nil {
			t.Fatal(err)
		}
		if got := readPeer(fmt.Sprintf("ChannelData of %d bytes", size)); !bytes.Equal(got, data) {
			t.Fatalf("ChannelData of %d bytes: the peer got %d bytes, not the same", size, len(got))
		}
		if _, err := peer.WriteTo(data, &net.UDPAddr{IP: relayed.IP, Port: relayed.Port}); err != nil {
			t.Fatal(err)
		}
		got := readClient()
		padded := 4 + (size+3)&^3 // over UDP padding is allowed, over a stream required
		if (len(got) != padded && (c.stream || len(got) != 4+size)) || binary.BigEndian.Uint16(got) != 0x4000 || int(binary.BigEndian.Uint16(got[2:])) != size || !bytes.Equal(got[4:4+size], data) {
			t.Fatalf("ChannelData of %d bytes to the client: %d bytes, not the same", size, len(got))
		}
	}
}

// Whatever a client sends over a stream, shrinkBig leaves it as it is or
// hands pion a frame under its buffer whose token stands for the data, and
// expandBig gives back the data's datagram once, never the token.
func FuzzBigFrames(f *testing.F) {
	f.Add(append([]byte{0x40, 0, 0x07, 0xd0}, make([]byte, 2000)...))
	f.Add(stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication), peerAddr("127.0.0.1", 9),
		stun.RawAttribute{Type: stun.AttrData, Value: make([]byte, 3001)}, stun.Fingerprint).Raw)
	f.Add(make([]byte, 1700))
	f.Fuzz(func(t *testing.T, frame []byte) {
		var slot atomic.Uint64
		orig := append([]byte(nil), frame...)
		small := shrinkBig(&slot, frame)
		if !bytes.Equal(frame, orig) {
			t.Fatal("shrinkBig changed its input")
		}
		if bytes.Equal(small, frame) {
			return
		}
		if len(small) >= streamMTU {
			t.Fatalf("a shrunk frame of %d bytes, as large as pion's buffer", len(small))
		}
		var data []byte
		if small[0]&0xc0 == 0x40 {
			data = small[4:]
		} else {
			m := &stun.Message{Raw: small}
			if err := m.Decode(); err != nil {
				t.Fatalf("a shrunk Send indication that does not decode: %v", err)
			}
			var err error
			if data, err = m.Get(stun.AttrData); err != nil {
				t.Fatalf("a shrunk Send indication without DATA: %v", err)
			}
		}
		got, token := takeBig(data)
		if !token || got == nil || len(got) >= len(frame) {
			t.Fatalf("the token stands for %d bytes (token %v) of a %d-byte frame", len(got), token, len(frame))
		}
		if !bytes.Contains(frame, got) {
			t.Fatal("the datagram set aside is not the frame's data")
		}
		if again, token := takeBig(data); !token || again != nil {
			t.Fatal("a token gave its datagram twice")
		}
		dropBig(&slot)
	})
}
