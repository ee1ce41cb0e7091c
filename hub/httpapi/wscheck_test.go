package httpapi

import (
	"context"
	"testing"
	"time"

	"github.com/guildhall/guildhall/hub/hubtest"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// A subscriber who lost read permission is checked again before the next
// message is written, even when the poke that announces the change is
// lost: a ban's change count alone keeps the envelopes stored after it
// from the banned socket (the attack test of the same bound,
// attack.TestBannedSubscriberIsCutBeforeTheNextMessage, sees the poke
// cut first).
func TestBannedSubscriberCheckedBeforeWriting(t *testing.T) {
	e := newAPIEnv(t, "sqlite", nil)
	e.Community()
	dave := e.dial(e.login(e.Device("dave")))
	dave.send(wire.Frame{Op: wire.OpSub, ID: 1, Topics: []wire.Topic{{Server: e.Gen.ID, Channel: e.General}}})
	if f := dave.next(op(wire.OpAck, 1)); f.Op != wire.OpAck {
		t.Fatalf("subscribe: %+v", f)
	}
	carol := e.Device("carol")
	e.postHTTP(e.envelopeBy(carol, e.General, 10))
	if f := dave.next(func(f wire.Frame) bool { return f.Op == wire.OpMsg }); f.Seq != 1 {
		t.Fatalf("before the ban: %+v", f)
	}
	// No pokes from here: only the check before writing can stop delivery.
	e.api.gens.mu.Lock()
	delete(e.api.gens.watchers, e.Gen.ID)
	e.api.gens.mu.Unlock()
	e.MustPublish(e.Event("alice", &policy.Ban{Member: policy.KeyOf(hubtest.Key("dave"))}))
	e.postHTTP(e.envelopeBy(carol, e.General, 10))
	f := dave.next(func(f wire.Frame) bool { return f.Op == wire.OpMsg || f.Op == wire.OpCut })
	if f.Op != wire.OpCut || f.Error == nil || f.Error.Code != string(policy.CodeBanned) || len(f.Topics) != 1 || f.Topics[0].After != 1 {
		t.Fatalf("after the ban the socket was sent %s (seq %d, error %+v, topics %+v), want a cut with code banned and cursor 1", f.Op, f.Seq, f.Error, f.Topics)
	}
	e.postHTTP(e.envelopeBy(carol, e.General, 10))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, b, err := dave.c.Read(ctx); err == nil {
		t.Fatalf("the banned socket was sent more after its cut: %x", b)
	}
}
