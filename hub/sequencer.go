package hub

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/guildhall/guildhall/fanout"
	"github.com/guildhall/guildhall/storage"
)

// Live delivery order. The store numbers each channel's envelopes 1, 2, ...
// in commit order (storage.Stored.Seq), but the callers that stored them
// announce them on their own: after a group commit, or from another process
// sharing the store (Remote), announcements arrive in any order, and a
// subscriber that dropped what came out of order lost it. The sequencer
// hands envelopes to the broker in each channel's sequence order, once each:
// an announcement above the next expected sequence means everything between
// is committed already (commit order), so it reads those from the store and
// delivers them first; an announcement at or below what it delivered is a
// duplicate and is dropped.
const (
	// maxFill bounds the envelopes read from the store to fill one gap: a
	// fanout queue's worth. Beyond it the subscribers that follow the
	// channel would be cut off as slow anyway; the announcement is
	// delivered and subscribers resume from storage by cursor.
	maxFill = 1024
	// maxSequenced bounds the channels whose delivery position a process
	// remembers; beyond it the least recently announced are forgotten
	// (their next announcement is delivered as it comes).
	maxSequenced = 1 << 16
	// fillTimeout bounds the store read of one gap.
	fillTimeout = 5 * time.Second
	// firstSightFill and firstSightWindow bound what a channel's first
	// announcement in a process delivers before it: at most that many
	// envelopes, stored at most that long ago.
	firstSightFill   = 64
	firstSightWindow = 2 * time.Second
)

type sequencer struct {
	mu     sync.Mutex // guards topics
	topics map[fanout.Topic]*channelSeq
}

// channelSeq is one channel's delivery position in this process.
type channelSeq struct {
	mu   sync.Mutex // held while delivering, so a channel's deliveries are ordered
	last uint64     // guarded by mu; the last sequence handed to the broker, 0: none yet
	used time.Time  // guarded by sequencer.mu
}

// channel returns t's delivery position, locked.
func (q *sequencer) channel(t fanout.Topic) *channelSeq {
	q.mu.Lock()
	if q.topics == nil {
		q.topics = map[fanout.Topic]*channelSeq{}
	}
	c, ok := q.topics[t]
	if !ok {
		if len(q.topics) >= maxSequenced {
			q.forgetOldest()
		}
		c = &channelSeq{}
		q.topics[t] = c
	}
	c.used = time.Now()
	q.mu.Unlock()
	c.mu.Lock()
	return c
}

// forgetOldest drops the least recently announced half of the positions;
// the caller holds q.mu.
func (q *sequencer) forgetOldest() {
	times := make([]time.Time, 0, len(q.topics))
	for _, c := range q.topics {
		times = append(times, c.used)
	}
	cut := median(times)
	for t, c := range q.topics {
		if !c.used.After(cut) {
			delete(q.topics, t)
		}
	}
}

// median sorts ts: once per maxSequenced/2 new channels, cheap enough.
func median(ts []time.Time) time.Time {
	slices.SortFunc(ts, time.Time.Compare)
	return ts[len(ts)/2]
}

// publish hands a stored envelope to local subscribers in its channel's
// sequence order, after any envelope before it not yet handed over, and
// drops it if it was (see sequencer).
func (s *Service) publish(m *fanout.Message) {
	if s.cfg.Broker == nil {
		return
	}
	c := s.sequence.channel(m.Topic)
	defer c.mu.Unlock()
	switch {
	case c.last == 0:
		s.firstSight(c, m)
	case m.Seq <= c.last:
		s.metrics.sequenced.WithLabelValues("duplicate").Inc()
		return
	case m.Seq > c.last+1:
		s.fill(c, m)
	}
	s.deliver(m)
	c.last = m.Seq
}

// firstSight starts a channel's delivery position at m, the first
// announcement this process sees of it (since start, or since it forgot an
// idle channel): envelopes before m stored within firstSightWindow may
// still be on their way to being announced (a group commit's other
// callers), and would be dropped as below the position once they are, so
// they are delivered first; older ones were never this process's to
// announce live, and subscribers have them from storage by cursor. The
// caller holds c.mu.
func (s *Service) firstSight(c *channelSeq, m *fanout.Message) {
	if m.Seq <= 1 {
		return
	}
	c.last = m.Seq - min(m.Seq-1, firstSightFill) - 1
	s.fill(c, m, s.now()-firstSightWindow.Milliseconds())
}

// fill delivers the envelopes of m's channel after c.last and before m from
// the store, skipping any stored before storedSince (Unix ms) when given;
// the caller holds c.mu.
func (s *Service) fill(c *channelSeq, m *fanout.Message, storedSince ...int64) {
	ctx, cancel := context.WithTimeout(context.Background(), fillTimeout)
	defer cancel()
	want := min(m.Seq-c.last-1, maxFill)
	s.metrics.sequenced.WithLabelValues("gap").Inc()
	for after := c.last; want > 0; {
		page, err := s.cfg.Store.ReadChannel(ctx, m.Topic.Server, m.Topic.Channel, after, int(min(want, storage.MaxPage)))
		if err != nil {
			s.cfg.Logger.Warn("hub: reading envelopes to deliver in order", "server", m.Topic.Server, "channel", m.Topic.Channel, "after", after, "err", err)
			return
		}
		for _, e := range page {
			if e.Seq >= m.Seq {
				return
			}
			after, want = e.Seq, want-1
			if e.Raw == nil || len(storedSince) > 0 && e.StoredAt < storedSince[0] {
				continue // deleted since, or announced long ago: nothing to deliver
			}
			s.metrics.sequenced.WithLabelValues("filled").Inc()
			s.deliver(&fanout.Message{Topic: m.Topic, Seq: e.Seq, Payload: e.Raw})
			c.last = e.Seq
		}
		if len(page) == 0 {
			return
		}
	}
}

func (s *Service) deliver(m *fanout.Message) {
	s.metrics.delivered.Add(float64(s.cfg.Broker.Publish(m)))
}
