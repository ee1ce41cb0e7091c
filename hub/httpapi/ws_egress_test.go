package httpapi

import (
	"context"
	"testing"
	"time"

	"github.com/guildhall/guildhall/wire"
)

// What the hub pushes over WebSocket, live and replayed, is its tenant's
// egress like what it serves over HTTP.
func TestWebSocketDeliveriesAreEgress(t *testing.T) {
	e := newAPIEnv(t, "sqlite", nil)
	e.Community()
	first, replayed := e.envelopeBy(e.Device("dave"), e.General, 400), e.envelopeBy(e.Device("dave"), e.General, 400)
	if r := e.postHTTP(first, replayed); r[0].Error != nil || r[1].Error != nil {
		t.Fatal(r)
	}
	sub := e.dial(e.login(e.Device("carol")))
	sub.send(wire.Frame{Op: wire.OpSub, ID: 1, Topics: []wire.Topic{{Server: e.Gen.ID, Channel: e.General, After: 1}}})
	sub.next(op(wire.OpAck, 1))
	live := e.envelopeBy(e.Device("dave"), e.General, 400)
	if r := e.postHTTP(live)[0]; r.Error != nil {
		t.Fatal(r.Error)
	}
	got := 0
	for got < 2 {
		if f := sub.next(func(f wire.Frame) bool { return f.Op == wire.OpMsg }); f.Op == wire.OpMsg {
			got++
		}
	}
	at := e.Now().Truncate(time.Hour).Add(time.Hour)
	want := uint64(len(replayed) + len(live))
	var s wire.Sample
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := e.Hub.SampleUsage(context.Background(), at.UnixMilli()); err != nil {
			t.Fatal(err)
		}
		var ok bool
		if s, ok = sampleOf(e.ledgerRows(at.Add(-time.Hour), at.Add(time.Hour)), e.Gen.ID, at); ok && s.EgressBytes >= want || time.Now().After(deadline) {
			break
		}
	}
	if s.EgressBytes < want {
		t.Fatalf("egress %d after pushing %d bytes of envelopes (one replayed, one live)", s.EgressBytes, want)
	}
}
