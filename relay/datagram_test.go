package relay

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// Datagrams are relayed whole and unchanged up to what UDP carries with
// TURN's framing, both ways, in Send/Data indications and in ChannelData.
func TestLargeDatagrams(t *testing.T) {
	r := startRelay(t, nil)
	c := dialRaw(t, r, "udp", "", "alice", "wonderland")
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
	readPeer := func() []byte {
		peer.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, _, err := peer.ReadFrom(buf)
		if err != nil {
			t.Fatalf("peer: %v", err)
		}
		return buf[:n]
	}
	readClient := func() []byte {
		c.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := c.conn.Read(buf)
		if err != nil {
			t.Fatalf("client: %v", err)
		}
		return buf[:n]
	}
	sizes := []int{1400, 8000, 16000, 65000}
	for _, size := range sizes {
		data := make([]byte, size)
		rand.Read(data)
		c.send(stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication), peerAddr("127.0.0.1", pa.Port),
			stun.RawAttribute{Type: stun.AttrData, Value: data}))
		if got := readPeer(); !bytes.Equal(got, data) {
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
		if _, err := c.conn.Write(append([]byte{0x40, 0, byte(size >> 8), byte(size)}, data...)); err != nil {
			t.Fatal(err)
		}
		if got := readPeer(); !bytes.Equal(got, data) {
			t.Fatalf("ChannelData of %d bytes: the peer got %d bytes, not the same", size, len(got))
		}
		if _, err := peer.WriteTo(data, &net.UDPAddr{IP: relayed.IP, Port: relayed.Port}); err != nil {
			t.Fatal(err)
		}
		got := readClient()
		if len(got) < 4 || binary.BigEndian.Uint16(got) != 0x4000 || int(binary.BigEndian.Uint16(got[2:])) != size || !bytes.Equal(got[4:], data) {
			t.Fatalf("ChannelData of %d bytes to the client: %d bytes, not the same", size, len(got))
		}
	}
}
