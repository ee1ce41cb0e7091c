package relay

import (
	"net"
	"time"
)

// Allocation accounting. pion asks the quota handler before it creates an
// allocation and reports the creation after: checking there and counting
// here let concurrent Allocates of one user all pass the check (33 of 32
// with 200 clients). The quota handler therefore admits and counts in one
// step; the creation event confirms the admission, and an admission never
// confirmed (the allocation failed after the quota check) is released
// after admissionTTL.

// admission is an allocation the quota handler admitted and counted.
type admission struct {
	user string
	at   time.Time
}

// admissionTTL bounds how long an admission waits for its allocation:
// pion creates it right after the check, within milliseconds.
const admissionTTL = 10 * time.Second

func admissionKey(src net.Addr) string { return src.Network() + "/" + src.String() }

// quota admits a new allocation: not while draining, within the user's
// and the total quota. Admitted, it is counted at once.
func (s *Server) quota(user, _ string, src net.Addr) bool {
	l := s.limits.Load()
	reason := ""
	now := time.Now()
	s.mu.Lock()
	for k, a := range s.pending {
		if now.Sub(a.at) > admissionTTL {
			delete(s.pending, k)
			s.release(a.user)
		}
	}
	switch {
	case s.draining.Load():
		reason = "draining"
	case l.totalQuota > 0 && s.total >= l.totalQuota:
		reason = "total"
	case l.userQuota > 0 && s.perUser[user] >= l.userQuota:
		reason = "user"
	default:
		if old, ok := s.pending[admissionKey(src)]; ok { // a retransmitted Allocate: one admission
			s.release(old.user)
		}
		s.perUser[user]++
		s.total++
		s.pending[admissionKey(src)] = admission{user: user, at: now}
	}
	s.mu.Unlock()
	if reason != "" {
		s.metrics.quotaRejections.WithLabelValues(reason).Inc()
		return false
	}
	return true
}

// release uncounts one allocation of user. Guarded by mu.
func (s *Server) release(user string) {
	if s.perUser[user]--; s.perUser[user] <= 0 {
		delete(s.perUser, user)
	}
	s.total--
}

func (s *Server) onCreated(src, _ net.Addr, _, user, _ string, _ net.Addr, _ int) {
	s.mu.Lock()
	if a, ok := s.pending[admissionKey(src)]; ok {
		delete(s.pending, admissionKey(src))
		s.release(a.user)
	}
	s.perUser[user]++
	s.total++
	s.mu.Unlock()
	s.metrics.active.Inc()
	// pion names every allocation's five-tuple "UDP"; the client's
	// transport is the source address's network: udp or tcp (TLS too).
	s.metrics.allocations.WithLabelValues(src.Network()).Inc()
}

func (s *Server) onDeleted(_, _ net.Addr, _, user, _ string) {
	s.mu.Lock()
	s.release(user)
	s.mu.Unlock()
	s.metrics.active.Dec()
}

// onAuth counts failed authentications against their source and exempts
// a stream whose request authenticated from the auth timeout.
func (s *Server) onAuth(src, _ net.Addr, _, _, _ string, _ string, verdict bool) {
	if !verdict {
		s.metrics.authFailures.Inc()
		s.authFails.Charge(sourceOf(src), 1)
		s.refusals.refuse(src)
		return
	}
	s.refusals.forget(src)
	if src.Network() == "tcp" {
		if sc, ok := s.streams.Load(src.String()); ok {
			sc.(*streamConn).markAuthed()
		}
	}
}
