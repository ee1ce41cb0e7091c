// Package fanout delivers newly stored envelopes to the subscribers of their
// channel. Topics are (server, channel); subscription maps are sharded by
// topic so publishers of different channels do not contend; each subscriber
// has a bounded queue, and a subscriber whose queue is full is cut off with a
// resume cursor (the last sequence number queued for it per topic) instead
// of slowing anyone else down: it reconnects and catches up from storage.
//
// Messages carry opaque payloads and are shared, not copied, between
// subscribers. fanout never reads content and never blocks a publisher.
package fanout

import (
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/guildhall/guildhall/policy"
)

// Topic is a channel of a server.
type Topic struct {
	Server, Channel policy.ID
}

// Message is one stored envelope announced to a topic. Subscribers must not
// modify it: every subscriber receives the same pointer.
type Message struct {
	Topic   Topic
	Seq     uint64 // the hub's per-channel sequence number
	Payload []byte // the envelope's signed bytes

	once    sync.Once
	encoded []byte // guarded by once
}

// Encoded returns the message's delivery form (the hub's WebSocket frame):
// made by encode on the first call and shared by every later one, so a
// message delivered to many subscribers is encoded once for all of them,
// and only if one of them wants it. Every caller must pass the same
// encoding; a subscriber needing another form encodes its own.
func (m *Message) Encoded(encode func(*Message) []byte) []byte {
	m.once.Do(func() { m.encoded = encode(m) })
	return m.encoded
}

// Note announces, to the other hub processes sharing one store, a stored
// envelope (ID set: fan it out) or new state events of a server (ID zero:
// refresh its state). It carries identifiers only, never content.
type Note struct {
	Server, Channel policy.ID
	Seq             uint64
	ID              policy.ID
	// Deleted marks a tombstone applied to envelope ID (for replication
	// between hubs; processes sharing a store see it in storage).
	Deleted bool
}

// ErrSlow ends a subscription whose queue overflowed; ErrClosed one its
// owner closed.
var (
	ErrSlow   = errors.New("fanout: subscriber too slow, cut off")
	ErrClosed = errors.New("fanout: subscription closed")
)

// Config bounds a Broker.
type Config struct {
	Shards    int // subscription map shards; default 64
	QueueLen  int // messages queued per subscriber before it is cut off; default 1024 (a full post batch)
	MaxTopics int // topics one subscription may follow; default 256
}

// Broker routes messages to subscriptions. It is safe for concurrent use.
type Broker struct {
	cfg    Config
	seed   maphash.Seed
	shards []shard
}

type shard struct {
	mu   sync.RWMutex
	subs map[Topic]map[*Subscription]struct{} // guarded by mu
}

// New returns a Broker.
func New(cfg Config) *Broker {
	if cfg.Shards <= 0 {
		cfg.Shards = 64
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 1024
	}
	if cfg.MaxTopics <= 0 {
		cfg.MaxTopics = 256
	}
	b := &Broker{cfg: cfg, seed: maphash.MakeSeed(), shards: make([]shard, cfg.Shards)}
	for i := range b.shards {
		b.shards[i].subs = map[Topic]map[*Subscription]struct{}{}
	}
	return b
}

func (b *Broker) shard(t Topic) *shard {
	h := maphash.Comparable(b.seed, t)
	return &b.shards[h%uint64(len(b.shards))]
}

// Subscription receives the messages of its topics until it is closed or
// cut off.
type Subscription struct {
	b      *Broker
	topics []Topic
	c      chan *Message
	done   chan struct{}
	ended  atomic.Bool
	mu     sync.Mutex       // guards err and resume
	err    error            // why it ended
	resume map[Topic]uint64 // last sequence queued per topic
	once   sync.Once
}

// Subscribe follows topics. It fails if there are more than MaxTopics.
func (b *Broker) Subscribe(topics ...Topic) (*Subscription, error) {
	if len(topics) == 0 || len(topics) > b.cfg.MaxTopics {
		return nil, errors.New("fanout: a subscription follows 1..MaxTopics topics")
	}
	s := &Subscription{b: b, topics: topics, c: make(chan *Message, b.cfg.QueueLen), done: make(chan struct{}), resume: map[Topic]uint64{}}
	for _, t := range topics {
		sh := b.shard(t)
		sh.mu.Lock()
		set := sh.subs[t]
		if set == nil {
			set = map[*Subscription]struct{}{}
			sh.subs[t] = set
		}
		set[s] = struct{}{}
		sh.mu.Unlock()
	}
	return s, nil
}

// C is the subscription's queue. Messages already queued stay readable
// after the subscription ends.
func (s *Subscription) C() <-chan *Message { return s.c }

// Done is closed when the subscription ends; Err then says why.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err returns ErrSlow or ErrClosed once the subscription ended, else nil.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Resume returns, per topic, the last sequence number queued for this
// subscriber: after draining C, a cut-off subscriber reads each topic from
// storage after that number and misses nothing.
func (s *Subscription) Resume() map[Topic]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[Topic]uint64, len(s.resume))
	for t, n := range s.resume {
		out[t] = n
	}
	return out
}

// Close ends the subscription and removes it from the broker.
func (s *Subscription) Close() {
	s.end(ErrClosed)
	s.detach()
}

func (s *Subscription) end(err error) {
	s.once.Do(func() {
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		s.ended.Store(true)
		close(s.done)
	})
}

func (s *Subscription) detach() {
	for _, t := range s.topics {
		sh := s.b.shard(t)
		sh.mu.Lock()
		if set := sh.subs[t]; set != nil {
			delete(set, s)
			if len(set) == 0 {
				delete(sh.subs, t)
			}
		}
		sh.mu.Unlock()
	}
}

// Publish queues m for every live subscriber of its topic, never blocking:
// a subscriber whose queue is full is cut off. It returns how many
// subscribers received m.
func (b *Broker) Publish(m *Message) int {
	sh := b.shard(m.Topic)
	var slow []*Subscription
	n := 0
	sh.mu.RLock()
	for s := range sh.subs[m.Topic] {
		if s.ended.Load() {
			continue
		}
		select {
		case s.c <- m:
			s.mu.Lock()
			s.resume[m.Topic] = m.Seq
			s.mu.Unlock()
			n++
		default:
			slow = append(slow, s)
		}
	}
	sh.mu.RUnlock()
	for _, s := range slow { // outside the shard lock: detach takes shard locks
		s.end(ErrSlow)
		s.detach()
	}
	return n
}
