package httpapi

import (
	"context"
	"testing"
	"time"

	"github.com/guildhall/guildhall/fanout"
	"github.com/guildhall/guildhall/fanout/pgnotify"
	"github.com/guildhall/guildhall/hub"
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

// Two processes share one PostgreSQL: a ban published through B cuts a
// subscriber of A before anything B stores after the ban reaches it (B's
// notes arrive at A in order: the ban's, then the envelopes').
func TestBanThroughAnotherProcessCutsBeforeItsPosts(t *testing.T) {
	a := newAPIEnv(t, "postgres", nil)
	a.Community()
	bus := func(h pgnotify.Handler) *pgnotify.Bus {
		b, err := pgnotify.New(context.Background(), pgnotify.Config{URL: pgURL(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		if err := b.Listen(ctx, h); err != nil {
			t.Fatal(err)
		}
		return b
	}
	a.Hub.SetNotifier(bus(a.Hub))
	b, err := hub.New(hub.Config{NodeKey: key("hub"), Store: a.Store, Blobs: a.Blobs, Broker: fanout.New(fanout.Config{}), Now: a.Clock, PostRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	b.SetNotifier(bus(b))
	carol := a.dial(a.login(a.Device("carol")))
	carol.send(wire.Frame{Op: wire.OpSub, ID: 1, Topics: []wire.Topic{{Server: a.Gen.ID, Channel: a.General}}})
	if f := carol.next(op(wire.OpAck, 1)); f.Op != wire.OpAck {
		t.Fatalf("subscribe: %+v", f)
	}
	dave := a.Device("dave")
	before := a.envelopeBy(dave, a.General, 10)
	if res := b.Post(context.Background(), [][]byte{before}); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	if f := carol.next(func(f wire.Frame) bool { return f.Op == wire.OpMsg }); f.Seq != 1 {
		t.Fatalf("before the ban: %+v", f)
	}
	ban := a.Event("alice", &policy.Ban{Member: policy.KeyOf(key("carol"))})
	if _, err := b.PublishEvents(context.Background(), a.Gen.ID, [][]byte{ban.Raw}); err != nil {
		t.Fatal(err)
	}
	var after [][]byte
	for range 20 {
		after = append(after, a.envelopeBy(dave, a.General, 10))
	}
	for _, p := range b.Post(context.Background(), after) {
		if p.Err != nil {
			t.Fatal(p.Err)
		}
	}
	f := carol.next(func(f wire.Frame) bool { return f.Op == wire.OpMsg || f.Op == wire.OpCut })
	if f.Op != wire.OpCut || f.Error == nil || f.Error.Code != string(policy.CodeBanned) {
		t.Fatalf("after the ban at B, A's socket was sent %s (seq %d, error %+v)", f.Op, f.Seq, f.Error)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, m, err := carol.c.Read(ctx); err == nil {
		t.Fatalf("the banned socket was sent more after its cut: %x", m)
	}
}
