package relay

import (
	"net"

	"golang.org/x/net/ipv4"
)

// batchReader reads datagrams in batches (recvmmsg on Linux) and hands
// them out one ReadFrom at a time: under load one system call brings many
// packets. It is for a socket with a single reader (pion reads each socket
// from one goroutine).
type batchReader struct {
	net.PacketConn
	pc   *ipv4.PacketConn
	msgs []ipv4.Message
	n, i int
}

func newBatchReader(c net.PacketConn, batch, size int) net.PacketConn {
	u, ok := c.(*net.UDPConn)
	if !ok || batch < 2 {
		return c
	}
	b := &batchReader{PacketConn: c, pc: ipv4.NewPacketConn(u), msgs: make([]ipv4.Message, batch)}
	for i := range b.msgs {
		b.msgs[i].Buffers = [][]byte{make([]byte, size)}
	}
	return b
}

func (b *batchReader) ReadFrom(p []byte) (int, net.Addr, error) {
	if b.i >= b.n {
		n, err := b.pc.ReadBatch(b.msgs, 0)
		if err != nil {
			return 0, nil, err
		}
		b.n, b.i = n, 0
	}
	m := &b.msgs[b.i]
	b.i++
	return copy(p, m.Buffers[0][:m.N]), m.Addr, nil
}
