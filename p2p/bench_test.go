package p2p

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

const sink = "/guildhall/test/sink/1"

// BenchmarkCircuitThroughput sends through a relayed circuit (peer B ->
// relay -> peer A) over loopback TCP, both peers barred from dialling each
// other directly.
func BenchmarkCircuitThroughput(b *testing.B) {
	_, a, bb, circuit := setup(b, RelayConfig{CircuitData: 1 << 40, CircuitDuration: time.Hour, BufferSize: 64 << 10})
	done := make(chan int64, 1)
	a.Host.SetStreamHandler(sink, func(s network.Stream) {
		n, _ := io.Copy(io.Discard, s)
		s.Write([]byte{1})
		s.Close()
		done <- n
	})
	ctx := context.Background()
	if err := bb.Host.Connect(ctx, circuit); err != nil {
		b.Fatal(err)
	}
	s, err := bb.Host.NewStream(network.WithAllowLimitedConn(ctx, "bench"), a.Host.ID(), sink)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for range b.N {
		if _, err := s.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	s.CloseWrite()
	io.ReadAll(s)
	if n := <-done; n != int64(b.N)*int64(len(buf)) {
		b.Fatalf("%d bytes arrived of %d", n, b.N*len(buf))
	}
}
