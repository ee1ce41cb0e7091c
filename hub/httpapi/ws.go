package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/guildhall/guildhall/fanout"
	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
	"github.com/guildhall/guildhall/wire"
)

// WebSocket limits.
const (
	maxCoalesce   = 128 // frames per outgoing message
	outQueue      = 16  // answers waiting for the writer (posts in flight wait beyond it)
	maxSubTopics  = 256
	postTimeout   = 30 * time.Second // one post or tombstone batch
	storeTimeout  = 30 * time.Second // one read of the writer: a permission check, a replay page
	replayPage    = 1000
	closeDeadline = 5 * time.Second
)

// socket is one WebSocket. The handler goroutine reads frames; one writer
// goroutine owns the subscription and all writes, coalescing whatever is
// ready into one message. Posts run concurrently, at most MaxInflight.
type socket struct {
	a    *API
	ctx  context.Context // the request's values, not its cancellation: every use adds a deadline
	conn *websocket.Conn
	rd   hub.Caller
	mt   string // encoding of the hub's messages: CBOR, or JSON with ?encoding=json
	host string // the upgrade request's Host, naming the hub in messages

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

	following atomic.Int32 // topics followed, stored by the writer, read by the reader for the idle rule

	// Owned by the writer goroutine.
	sub    *fanout.Subscription
	topics map[fanout.Topic]uint64 // followed topics -> last sequence sent
	batch  [][]byte                // encoded frames waiting to be written
	egress map[policy.ID]int       // envelope bytes in batch, by server: counted as the server's egress when written
	urgent bool                    // batch holds an answer or a cut: write it now
	dead   bool                    // a write failed: discard the rest
	last   time.Time               // of the last write

	// Read permission (wscheck.go), owned by the writer but poke.
	poke    chan struct{}               // a followed server's state changed
	seen    map[policy.ID]uint64        // followed servers -> their change count when last checked
	pre     map[policy.ID]uint64        // during subscribe: counts taken before the topics' checks
	revoked map[fanout.Topic]revocation // refused by a check, waiting for their cut frame
}

func (a *API) websocket(w http.ResponseWriter, r *http.Request) error {
	rd, err := a.caller(r)
	if err != nil {
		return err
	}
	src, hasSrc := a.source(r)
	if err := a.reserveSocket(src, hasSrc); err != nil {
		return err
	}
	defer a.releaseSocket(src, hasSrc)
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
	s := &socket{a: a, ctx: context.WithoutCancel(r.Context()), conn: conn, rd: rd, mt: mt, host: r.Host, out: make(chan *wire.Frame, outQueue), ctl: make(chan wire.Frame),
		drain: make(chan struct{}), quiet: make(chan struct{}), finish: make(chan struct{}), slots: make(chan struct{}, a.cfg.MaxInflight),
		idle: make(chan struct{}), topics: map[fanout.Topic]uint64{},
		poke: make(chan struct{}, 1), seen: map[policy.ID]uint64{}, revoked: map[fanout.Topic]revocation{}}
	a.mu.Lock()
	if a.closing {
		a.mu.Unlock()
		conn.Close(websocket.StatusGoingAway, "hub shutting down")
		return nil
	}
	a.sockets[s] = struct{}{}
	a.mu.Unlock()
	a.metrics.sockets.Inc()
	defer func() {
		a.mu.Lock()
		delete(a.sockets, s)
		a.mu.Unlock()
		a.metrics.sockets.Dec()
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
		// A socket that follows nothing and sends nothing for IdleTimeout is
		// closed (the read's context ending closes it): an idle socket holds
		// a descriptor and a MaxSockets place for nothing.
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if s.following.Load() == 0 {
			rctx, cancel = context.WithTimeout(ctx, s.a.cfg.IdleTimeout)
		}
		typ, b, err := s.conn.Read(rctx)
		cancel()
		if err != nil {
			return
		}
		mt := wire.CBOR
		if typ == websocket.MessageText {
			mt = wire.JSON
		}
		var frames []wire.Frame
		if err := wire.Unmarshal(mt, b, &frames); err != nil {
			// Garbage costs like a frame: a stream of malformed messages is
			// limited as a stream of good ones is, and ends the socket when
			// the source is over its rate.
			if lerr := s.a.limitSource(r, 1); lerr != nil {
				s.send(wire.Frame{Op: wire.OpErr, Error: wireError(lerr)})
				return
			}
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
			if f.Op == wire.OpSub && len(f.Topics) > 0 {
				s.following.Add(1) // until the writer stores the exact count: no idle cut meanwhile
			}
			s.handle(f)
		}
	}
}

func (s *socket) send(f wire.Frame) { s.out <- &f }

// reserveSocket takes a place for a new WebSocket of a source, within
// MaxSockets and the source's SocketsPerSource; releaseSocket gives it back.
// Places are taken before the upgrade, so concurrent upgrades cannot pass
// either bound together.
func (a *API) reserveSocket(src netip.Addr, hasSrc bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.closing:
		return fmt.Errorf("%w: hub shutting down", storage.ErrUnavailable)
	case a.open >= a.cfg.MaxSockets:
		a.metrics.rateLimited.WithLabelValues("sockets").Inc()
		return fmt.Errorf("%w: %d WebSockets open, the limit", hub.ErrRateLimited, a.cfg.MaxSockets)
	case hasSrc && a.cfg.SocketsPerSource > 0 && a.bySource[src] >= a.cfg.SocketsPerSource:
		a.metrics.rateLimited.WithLabelValues("socket_source").Inc()
		return fmt.Errorf("%w: source %s holds %d WebSockets, the limit per source", hub.ErrRateLimited, src, a.cfg.SocketsPerSource)
	}
	a.open++
	if hasSrc {
		a.bySource[src]++
	}
	return nil
}

func (a *API) releaseSocket(src netip.Addr, hasSrc bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.open--
	if hasSrc {
		if a.bySource[src]--; a.bySource[src] <= 0 {
			delete(a.bySource, src)
		}
	}
}

// handle starts one client operation.
func (s *socket) handle(f wire.Frame) {
	fail := func(err error) { s.send(wire.Frame{Op: wire.OpErr, ID: f.ID, Error: wireError(err)}) }
	switch f.Op {
	case wire.OpPost, wire.OpTomb:
		if len(f.Objects) == 0 || len(f.Objects) > s.a.cfg.MaxBatch {
			fail(fmt.Errorf("%w: %d objects in one frame, want 1..%d", hub.ErrTooLarge, len(f.Objects), s.a.cfg.MaxBatch))
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
			ctx, cancel := context.WithTimeout(s.ctx, postTimeout)
			defer cancel()
			ack := wire.Frame{Op: wire.OpAck, ID: f.ID}
			if f.Op == wire.OpPost {
				ack.Results = s.a.results(s.a.svc.Post(ctx, f.Objects), s.host).Results
			} else {
				ack.Results = s.a.tombResults(s.a.svc.Tombstone(ctx, f.Objects), s.host).Results
			}
			s.send(ack)
		}()
	case wire.OpSub, wire.OpUnsub:
		if len(f.Topics) == 0 || len(f.Topics) > maxSubTopics {
			fail(fmt.Errorf("%w: %d topics in one frame, want 1..%d", hub.ErrTooLarge, len(f.Topics), maxSubTopics))
			return
		}
		select {
		case s.ctl <- f:
		case <-s.drain:
			fail(fmt.Errorf("%w: hub shutting down", storage.ErrUnavailable))
		}
	default:
		fail(fmt.Errorf("%w: unknown operation %q", hub.ErrBadRequest, f.Op))
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
