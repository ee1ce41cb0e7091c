package hub

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/guildhall/guildhall/fanout"
	"github.com/guildhall/guildhall/storage"
	"github.com/guildhall/guildhall/wire"
)

// WebSocket limits.
const (
	maxCoalesce   = 128 // frames per outgoing message
	outQueue      = 16  // answers waiting for the writer (posts in flight wait beyond it)
	maxSubTopics  = 256
	postTimeout   = 30 * time.Second
	replayPage    = 1000
	closeDeadline = 5 * time.Second
)

// socket is one WebSocket. The handler goroutine reads frames; one writer
// goroutine owns the subscription and all writes, coalescing whatever is
// ready into one message. Posts run concurrently, at most MaxInflight.
type socket struct {
	a    *API
	conn *websocket.Conn
	rd   Caller
	mt   string // encoding of the hub's messages: CBOR, or JSON with ?encoding=json

	out    chan *wire.Frame // answers and errors for the writer
	ctl    chan wire.Frame  // sub and unsub for the writer
	drain  chan struct{}    // closed when the hub shuts down
	quiet  chan struct{}    // closed when draining finished the posts in flight
	finish chan struct{}    // closed when nothing more will be sent to out
	slots  chan struct{}    // MaxInflight tokens

	mu       sync.Mutex // guards inflight, draining, idle
	inflight int
	draining bool
	idle     chan struct{} // closed when draining and nothing is in flight

	// Owned by the writer goroutine.
	sub    *fanout.Subscription
	topics map[fanout.Topic]uint64 // followed topics -> last sequence sent
	batch  [][]byte                // encoded frames waiting to be written
	urgent bool                    // batch holds an answer or a cut: write it now
	dead   bool                    // a write failed: discard the rest
	last   time.Time               // of the last write
}

func (a *API) websocket(w http.ResponseWriter, r *http.Request) error {
	rd, err := a.reader(r)
	if err != nil {
		return err
	}
	a.mu.Lock()
	full, closing := len(a.sockets) >= a.cfg.MaxSockets, a.closing
	a.mu.Unlock()
	if closing {
		return fmt.Errorf("%w: hub shutting down", storage.ErrUnavailable)
	}
	if full {
		return fmt.Errorf("%w: %d WebSockets open, the limit", ErrRateLimited, a.cfg.MaxSockets)
	}
	// Bearer tokens, not cookies, authenticate: any origin may connect.
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return nil // Accept wrote the HTTP error
	}
	conn.SetReadLimit(a.cfg.MaxFrame)
	mt := wire.CBOR
	if r.URL.Query().Get("encoding") == "json" {
		mt = wire.JSON
	}
	s := &socket{a: a, conn: conn, rd: rd, mt: mt, out: make(chan *wire.Frame, outQueue), ctl: make(chan wire.Frame),
		drain: make(chan struct{}), quiet: make(chan struct{}), finish: make(chan struct{}), slots: make(chan struct{}, a.cfg.MaxInflight),
		idle: make(chan struct{}), topics: map[fanout.Topic]uint64{}}
	a.mu.Lock()
	if a.closing {
		a.mu.Unlock()
		conn.Close(websocket.StatusGoingAway, "hub shutting down")
		return nil
	}
	a.sockets[s] = struct{}{}
	a.mu.Unlock()
	a.svc.metrics.sockets.Inc()
	defer func() {
		a.mu.Lock()
		delete(a.sockets, s)
		a.mu.Unlock()
		a.svc.metrics.sockets.Dec()
	}()
	done := make(chan struct{})
	go func() { s.writeLoop(); close(done) }()
	s.readLoop(r)
	s.setDraining()
	<-s.idle
	close(s.finish)
	<-done
	return nil
}

// readLoop reads messages until the connection ends.
func (s *socket) readLoop(r *http.Request) {
	ctx := r.Context()
	for {
		typ, b, err := s.conn.Read(ctx)
		if err != nil {
			return
		}
		mt := wire.CBOR
		if typ == websocket.MessageText {
			mt = wire.JSON
		}
		var frames []wire.Frame
		if err := wire.Unmarshal(mt, b, &frames); err != nil {
			s.send(wire.Frame{Op: wire.OpErr, Error: wireError(err)})
			continue
		}
		n := 0
		for _, f := range frames {
			n += max(1, len(f.Objects))
		}
		if err := s.a.limitSource(r, n); err != nil {
			for _, f := range frames {
				s.send(wire.Frame{Op: wire.OpErr, ID: f.ID, Error: wireError(err)})
			}
			continue
		}
		for _, f := range frames {
			s.handle(f)
		}
	}
}

func (s *socket) send(f wire.Frame) { s.out <- &f }

// handle starts one client operation.
func (s *socket) handle(f wire.Frame) {
	fail := func(err error) { s.send(wire.Frame{Op: wire.OpErr, ID: f.ID, Error: wireError(err)}) }
	switch f.Op {
	case wire.OpPost, wire.OpTomb:
		if len(f.Objects) == 0 || len(f.Objects) > s.a.cfg.MaxBatch {
			fail(fmt.Errorf("%w: %d objects in one frame, want 1..%d", ErrTooLarge, len(f.Objects), s.a.cfg.MaxBatch))
			return
		}
		s.slots <- struct{}{} // backpressure: stop reading while MaxInflight posts run
		if !s.begin() {
			<-s.slots
			fail(fmt.Errorf("%w: hub shutting down", storage.ErrUnavailable))
			return
		}
		go func() {
			defer s.end()
			defer func() { <-s.slots }()
			ctx, cancel := context.WithTimeout(context.Background(), postTimeout)
			defer cancel()
			ack := wire.Frame{Op: wire.OpAck, ID: f.ID}
			if f.Op == wire.OpPost {
				ack.Results = s.a.results(s.a.svc.Post(ctx, f.Objects)).Results
			} else {
				ack.Results = s.a.tombResults(s.a.svc.Tombstone(ctx, f.Objects)).Results
			}
			s.send(ack)
		}()
	case wire.OpSub, wire.OpUnsub:
		if len(f.Topics) == 0 || len(f.Topics) > maxSubTopics {
			fail(fmt.Errorf("%w: %d topics in one frame, want 1..%d", ErrTooLarge, len(f.Topics), maxSubTopics))
			return
		}
		select {
		case s.ctl <- f:
		case <-s.drain:
			fail(fmt.Errorf("%w: hub shutting down", storage.ErrUnavailable))
		}
	default:
		fail(fmt.Errorf("%w: unknown operation %q", ErrBadRequest, f.Op))
	}
}

// begin counts a request in flight unless the socket drains.
func (s *socket) begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	s.inflight++
	return true
}

func (s *socket) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight--
	if s.draining && s.inflight == 0 {
		close(s.idle)
	}
}

// setDraining refuses new requests; idle closes once none is in flight.
func (s *socket) setDraining() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return
	}
	s.draining = true
	if s.inflight == 0 {
		close(s.idle)
	}
}

// writeLoop owns the subscription and every write to the connection.
func (s *socket) writeLoop() {
	recheck := time.NewTicker(s.a.cfg.Recheck)
	defer recheck.Stop()
	defer func() {
		if s.sub != nil {
			s.sub.Close()
		}
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
			s.recheck()
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
		var queue <-chan *fanout.Message
		if s.sub != nil {
			queue = s.sub.C()
		}
	coalesce:
		for len(s.batch) < maxCoalesce {
			select {
			case f := <-s.out:
				s.add(*f)
			case m := <-queue:
				s.message(m)
			default:
				break coalesce
			}
		}
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
	s.topics[m.Topic] = m.Seq
	if s.mt == wire.CBOR && m.Encoded != nil { // encoded once for every subscriber
		s.batch = append(s.batch, m.Encoded)
		return
	}
	s.push(wire.Frame{Op: wire.OpMsg, Server: m.Topic.Server, Channel: m.Topic.Channel, Seq: m.Seq, Raw: m.Payload})
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
	ctx, cancel := context.WithTimeout(context.Background(), s.a.cfg.WriteTimeout)
	err := s.conn.Write(ctx, typ, b)
	cancel()
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
	for _, t := range f.Topics {
		topic := fanout.Topic{Server: t.Server, Channel: t.Channel}
		if f.Op == wire.OpUnsub {
			delete(next, topic)
			continue
		}
		if err := s.a.svc.MayRead(context.Background(), t.Server, t.Channel, s.rd); err != nil {
			fail(readErr(s.rd, err))
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
		fail(fmt.Errorf("%w: a socket follows at most %d channels", ErrTooLarge, maxSubTopics))
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
		if s.a.svc.cfg.Broker == nil {
			return fmt.Errorf("%w: this hub has no subscriptions", ErrBadRequest)
		}
		list := make([]fanout.Topic, 0, len(topics))
		for t := range topics {
			list = append(list, t)
		}
		sub, err := s.a.svc.cfg.Broker.Subscribe(list...)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadRequest, err)
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
		if _, ok := s.topics[t]; !ok {
			s.topics[t] = n
		}
	}
	return nil
}

// replay sends a channel's stored envelopes after the topic's cursor.
func (s *socket) replay(t wire.Topic) error {
	topic := fanout.Topic{Server: t.Server, Channel: t.Channel}
	for {
		after := s.topics[topic]
		envs, err := s.a.svc.Read(context.Background(), s.rd, t.Server, t.Channel, after, replayPage)
		if err != nil {
			return err
		}
		for _, e := range envs {
			if e.Raw != nil {
				s.push(wire.Frame{Op: wire.OpMsg, Server: t.Server, Channel: t.Channel, Seq: e.Seq, Raw: e.Raw})
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
			s.a.svc.metrics.cutoffs.Inc()
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

// recheck ends subscriptions to channels the reader may no longer read.
func (s *socket) recheck() {
	for t := range s.topics {
		if err := s.a.svc.MayRead(context.Background(), t.Server, t.Channel, s.rd); err != nil {
			tt := t
			s.cut(Code(err), err.Error(), &tt)
		}
	}
}

// Shutdown ends every WebSocket gracefully: subscriptions end with their
// resume cursors, posts in flight finish and are acknowledged, then the
// connections close. New WebSockets are refused from the first moment.
func (a *API) Shutdown(ctx context.Context) error {
	a.mu.Lock()
	was := a.closing
	a.closing = true
	socks := make([]*socket, 0, len(a.sockets))
	for s := range a.sockets {
		socks = append(socks, s)
	}
	a.mu.Unlock()
	for _, s := range socks {
		if !was {
			close(s.drain)
		}
	}
	for {
		a.mu.Lock()
		n := len(a.sockets)
		a.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			a.mu.Lock()
			for s := range a.sockets {
				s.conn.CloseNow()
			}
			a.mu.Unlock()
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
