package httpapi

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/guildhall/guildhall/fanout"
	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// The writer half of a socket: everything here runs on its writer
// goroutine, which owns the subscription and every write.

// writeLoop owns the subscription and every write to the connection.
func (s *socket) writeLoop() {
	recheck := time.NewTicker(s.a.cfg.Recheck)
	defer recheck.Stop()
	defer func() {
		if s.sub != nil {
			s.sub.Close()
		}
		s.unwatchAll()
	}()
	drain, quiet := s.drain, s.quiet
	var flush *time.Timer
	var flushC <-chan time.Time
	defer func() {
		if flush != nil {
			flush.Stop()
		}
	}()
	for {
		var subC <-chan *fanout.Message
		var subDone <-chan struct{}
		if s.sub != nil {
			subDone = s.sub.Done()
			if flushC == nil { // while a write waits, messages wait in the queue: one wake-up per write
				subC = s.sub.C()
			}
		}
		select {
		case f := <-s.out:
			s.add(*f)
		case <-flushC:
			flushC = nil
		case f := <-s.ctl:
			s.subscribe(f)
		case m := <-subC:
			s.message(m)
		case <-subDone:
			s.cut(wire.CodeSlow, "subscriber fell behind; resume from the cursors", nil)
		case <-recheck.C:
			s.recheckAll()
		case <-s.poke:
			s.recheckStale()
		case <-drain: // shutdown: end subscriptions with their cursors, finish the posts in flight
			drain = nil
			s.cut(wire.CodeGoingAway, "hub shutting down; resume from the cursors elsewhere or later", nil)
			s.flush()
			go func() { s.setDraining(); <-s.idle; close(s.quiet) }()
		case <-quiet: // every post in flight was answered: say goodbye
			quiet = nil
			s.drainOut()
			s.flush()
			if !s.dead {
				s.conn.Close(websocket.StatusGoingAway, "hub shutting down")
				s.dead = true
			}
		case <-s.finish:
			s.drainOut()
			s.flush()
			if !s.dead {
				s.conn.Close(websocket.StatusNormalClosure, "")
			}
			return
		}
	coalesce:
		for len(s.batch) < maxCoalesce {
			var queue <-chan *fanout.Message
			if s.sub != nil {
				queue = s.sub.C()
			}
			select {
			case f := <-s.out:
				s.add(*f)
			case m := <-queue:
				s.message(m)
			default:
				break coalesce
			}
		}
		s.applyRevoked()
		// Answers go out at once; pushed messages at most every Coalesce,
		// so that under load one write carries many of them.
		wait := s.a.cfg.Coalesce - time.Since(s.last)
		if s.urgent || wait <= 0 || len(s.batch) >= maxCoalesce {
			s.flush()
			if flush != nil {
				flush.Stop()
				flushC = nil
			}
		} else if len(s.batch) > 0 && flushC == nil {
			if flush == nil {
				flush = time.NewTimer(wait)
			} else {
				flush.Reset(wait)
			}
			flushC = flush.C
		}
	}
}

// add queues a frame of the hub's own (an answer or a cut) for writing now.
func (s *socket) add(f wire.Frame) {
	b, err := wire.Marshal(s.mt, f)
	if err != nil {
		s.a.cfg.Logger.Error("hub: encoding a frame", "err", err)
		return
	}
	s.batch = append(s.batch, b)
	s.urgent = true
}

func (s *socket) drainOut() {
	for {
		select {
		case f := <-s.out:
			s.add(*f)
		default:
			return
		}
	}
}

// message queues a live envelope unless replay already sent it.
func (s *socket) message(m *fanout.Message) {
	last, ok := s.topics[m.Topic]
	if !ok || m.Seq <= last {
		return
	}
	if !s.current(m.Topic.Server) { // the server's state changed since the reader was checked
		if s.recheckServer(m.Topic.Server); !s.follows(m.Topic) {
			return
		}
	}
	s.topics[m.Topic] = m.Seq
	s.countEgress(m.Topic.Server, len(m.Payload))
	if s.mt == wire.CBOR { // encoded once for every subscriber
		if b := m.Encoded(encodeCBOR); b != nil {
			s.batch = append(s.batch, b)
			return
		}
	}
	s.push(msgFrame(m))
}

// msgFrame is the frame that pushes a stored envelope.
func msgFrame(m *fanout.Message) wire.Frame {
	return wire.Frame{Op: wire.OpMsg, Server: m.Topic.Server, Channel: m.Topic.Channel, Seq: m.Seq, Raw: m.Payload}
}

// encodeCBOR is the shared delivery form of a message (fanout.Message.Encoded):
// its frame in CBOR, or nil if it does not encode.
func encodeCBOR(m *fanout.Message) []byte {
	b, err := wire.Marshal(wire.CBOR, msgFrame(m))
	if err != nil {
		return nil
	}
	return b
}

// countEgress notes n bytes of server's envelopes queued in the batch.
func (s *socket) countEgress(server policy.ID, n int) {
	if s.egress == nil {
		s.egress = map[policy.ID]int{}
	}
	s.egress[server] += n
}

// push queues a message frame, which may wait for the coalescing interval.
func (s *socket) push(f wire.Frame) {
	b, err := wire.Marshal(s.mt, f)
	if err == nil {
		s.batch = append(s.batch, b)
	}
}

// writeBufs holds the buffers batches are encoded into: their memory
// follows the writes in progress, not the number of sockets (a buffer per
// socket grew to 64 KiB on each of 10,000 backlogged subscribers).
var writeBufs = sync.Pool{New: func() any { return new([]byte) }}

// flush writes the batch as one message.
func (s *socket) flush() {
	if len(s.batch) == 0 {
		return
	}
	defer func() { clear(s.batch); s.batch, s.urgent, s.last = s.batch[:0], false, time.Now() }()
	if s.dead {
		return
	}
	buf := writeBufs.Get().(*[]byte)
	typ, b := websocket.MessageBinary, wire.AppendArray((*buf)[:0], s.mt, s.batch)
	if s.mt == wire.JSON {
		typ = websocket.MessageText
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.a.cfg.WriteTimeout)
	err := s.conn.Write(ctx, typ, b)
	cancel()
	if err == nil {
		for server, n := range s.egress { // one count per batch, not per delivery
			s.a.svc.CountEgress(server, n)
		}
	}
	clear(s.egress)
	if cap(b) <= 256<<10 { // drop a buffer grown by a burst
		*buf = b[:0]
		writeBufs.Put(buf)
	}
	if err != nil {
		s.dead = true
		s.conn.CloseNow() // ends the read loop
	}
}

// subscribe follows or stops following topics: the subscription is
// replaced by one over the new set (the old one's queued messages are
// forwarded first), then new topics with a cursor are replayed from storage.
func (s *socket) subscribe(f wire.Frame) {
	fail := func(err error) { s.add(wire.Frame{Op: wire.OpErr, ID: f.ID, Error: wireError(err)}) }
	next := make(map[fanout.Topic]uint64, len(s.topics)+len(f.Topics))
	for t, n := range s.topics {
		next[t] = n
	}
	var replay []wire.Topic
	s.pre = map[policy.ID]uint64{}
	defer func() { s.pre = nil; s.recheckStale() }()
	for _, t := range f.Topics {
		if _, ok := s.pre[t.Server]; !ok {
			s.pre[t.Server] = s.a.gens.of(t.Server).Load() // before the check
		}
		topic := fanout.Topic{Server: t.Server, Channel: t.Channel}
		if f.Op == wire.OpUnsub {
			delete(next, topic)
			continue
		}
		if err := s.mayRead(t.Server, t.Channel); err != nil {
			fail(s.readErr(t.Server, err))
			return
		}
		if _, ok := next[topic]; !ok {
			next[topic] = t.After
			if t.After > 0 {
				replay = append(replay, t)
			}
		}
	}
	if len(next) > maxSubTopics {
		fail(fmt.Errorf("%w: a socket follows at most %d channels", hub.ErrTooLarge, maxSubTopics))
		return
	}
	if err := s.resubscribe(next); err != nil {
		fail(err)
		return
	}
	s.add(wire.Frame{Op: wire.OpAck, ID: f.ID})
	for _, t := range replay {
		if err := s.replay(t); err != nil {
			s.cut(Code(err), err.Error(), &fanout.Topic{Server: t.Server, Channel: t.Channel})
		}
	}
}

// resubscribe replaces the subscription by one over topics.
func (s *socket) resubscribe(topics map[fanout.Topic]uint64) error {
	old := s.sub
	s.sub = nil
	if len(topics) > 0 {
		broker := s.a.svc.Broker()
		if broker == nil {
			return fmt.Errorf("%w: this hub has no subscriptions", hub.ErrBadRequest)
		}
		list := make([]fanout.Topic, 0, len(topics))
		for t := range topics {
			list = append(list, t)
		}
		sub, err := broker.Subscribe(list...)
		if err != nil {
			return fmt.Errorf("%w: %v", hub.ErrBadRequest, err)
		}
		s.sub = sub
	}
	if old != nil {
		old.Close()
		for drained := false; !drained; {
			select {
			case m := <-old.C():
				s.message(m)
			default:
				drained = true
			}
		}
	}
	for t := range s.topics {
		if _, ok := topics[t]; !ok {
			delete(s.topics, t)
		}
	}
	for t, n := range topics {
		_, revoked := s.revoked[t]
		if _, ok := s.topics[t]; !ok && !revoked {
			s.topics[t] = n
		}
	}
	s.syncServers()
	s.following.Store(int32(len(s.topics)))
	return nil
}

// replay sends a channel's stored envelopes after the topic's cursor.
func (s *socket) replay(t wire.Topic) error {
	topic := fanout.Topic{Server: t.Server, Channel: t.Channel}
	for {
		after := s.topics[topic]
		ctx, cancel := context.WithTimeout(s.ctx, storeTimeout)
		envs, err := s.a.svc.Read(ctx, s.rd, t.Server, t.Channel, after, replayPage)
		cancel()
		if err != nil {
			return err
		}
		if !s.current(t.Server) { // changed during the read: the page may hold what the reader may no longer see
			if s.recheckServer(t.Server); !s.follows(topic) {
				return nil
			}
		}
		for _, e := range envs {
			if e.Raw != nil {
				s.push(wire.Frame{Op: wire.OpMsg, Server: t.Server, Channel: t.Channel, Seq: e.Seq, Raw: e.Raw})
				s.countEgress(t.Server, len(e.Raw))
			}
			s.topics[topic] = e.Seq
			if len(s.batch) >= maxCoalesce {
				s.flush()
			}
		}
		if len(envs) < replayPage || s.dead {
			return nil
		}
	}
}

// cut ends the subscription to one topic (or all, with nil), telling the
// client where to resume.
func (s *socket) cut(code, msg string, only *fanout.Topic) {
	if s.sub != nil && only == nil {
		for drained := false; !drained; { // deliver what was queued before the cut
			select {
			case m := <-s.sub.C():
				s.message(m)
			default:
				drained = true
			}
		}
		if code == wire.CodeSlow {
			s.a.metrics.cutoffs.Inc()
		}
	}
	f := wire.Frame{Op: wire.OpCut, Error: &wire.Error{Code: code, Message: msg}}
	next := map[fanout.Topic]uint64{}
	for t, n := range s.topics {
		if only != nil && t != *only {
			next[t] = n
			continue
		}
		f.Topics = append(f.Topics, wire.Topic{Server: t.Server, Channel: t.Channel, After: n})
	}
	if len(f.Topics) == 0 {
		return
	}
	s.add(f)
	if err := s.resubscribe(next); err != nil {
		s.resubscribe(nil)
	}
}

// follows reports whether the socket follows a topic.
func (s *socket) follows(t fanout.Topic) bool { _, ok := s.topics[t]; return ok }

// readErr is API.readErr for the socket's caller.
func (s *socket) readErr(server policy.ID, err error) error {
	ctx, cancel := context.WithTimeout(s.ctx, storeTimeout)
	defer cancel()
	return s.a.readErr(ctx, s.rd, server, err)
}

// mayRead asks the service whether the socket's caller may read a channel.
func (s *socket) mayRead(server, channel policy.ID) error {
	ctx, cancel := context.WithTimeout(s.ctx, storeTimeout)
	defer cancel()
	return s.a.svc.MayRead(ctx, server, channel, s.rd)
}
