package httpapi

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/guildhall/guildhall/fanout"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// Read permission of live subscriptions. A state change that removes a
// reader (ban, leave, role revoke, channel override, device revocation)
// must end their subscriptions before anything stored after it reaches
// them. The service calls stateGens.changed, with the server's state
// locked, before it answers the publication that brought the change; the
// call counts a change of the server and pokes the sockets that follow it.
// A socket's writer checks the count of a message's server before it
// queues the message, and checks the reader again when it moved: any
// envelope stored after the change was acknowledged is seen after the
// count moved, and the check that follows sees the new state. The poke
// makes the cut prompt when nothing is posted; Config.Recheck remains a
// backstop.

// genShards is how many change counters the servers share. A change of one
// server makes the subscribers of the servers sharing its counter check
// once more, for nothing but a lookup in memory; the counters are fixed
// memory, whatever the number of servers, and the keyed hash keeps a
// server's creator from choosing to share a counter with another.
const genShards = 4096

// stateGens counts state changes per server (sharded) and knows which
// sockets follow which server. Lock order: the service's server state lock
// (held while changed runs) before mu.
type stateGens struct {
	seed     maphash.Seed
	gen      [genShards]atomic.Uint64
	mu       sync.Mutex
	watchers map[policy.ID]map[*socket]struct{} // guarded by mu; the sockets following each server
}

func newStateGens() *stateGens {
	return &stateGens{seed: maphash.MakeSeed(), watchers: map[policy.ID]map[*socket]struct{}{}}
}

func (g *stateGens) of(server policy.ID) *atomic.Uint64 {
	return &g.gen[maphash.Bytes(g.seed, server[:])%genShards]
}

// changed is the service's OnStateChange: it must not block.
func (g *stateGens) changed(server policy.ID) {
	g.of(server).Add(1)
	g.mu.Lock()
	defer g.mu.Unlock()
	for s := range g.watchers[server] {
		select {
		case s.poke <- struct{}{}:
		default: // already poked
		}
	}
}

func (g *stateGens) watch(s *socket, server policy.ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	w := g.watchers[server]
	if w == nil {
		w = map[*socket]struct{}{}
		g.watchers[server] = w
	}
	w[s] = struct{}{}
}

func (g *stateGens) unwatch(s *socket, server policy.ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if w := g.watchers[server]; w != nil {
		delete(w, s)
		if len(w) == 0 {
			delete(g.watchers, server)
		}
	}
}

// revocation is a followed topic whose reader a check refused: it is out
// of the socket's topics already (nothing more is sent for it) and waits
// for its cut frame.
type revocation struct {
	code, msg string
	after     uint64 // the last sequence sent, to resume from
}

// Everything below runs on the socket's writer goroutine.

// current reports whether the socket checked its reader against a server's
// latest state.
func (s *socket) current(server policy.ID) bool {
	g, ok := s.seen[server]
	return ok && g == s.a.gens.of(server).Load()
}

// recheckServer checks the reader against the server's state for every
// topic of it the socket follows; the refused ones are revoked.
func (s *socket) recheckServer(server policy.ID) {
	g := s.a.gens.of(server).Load() // before the checks: a change during them is seen next time
	if _, ok := s.seen[server]; ok {
		s.seen[server] = g
	}
	for t, n := range s.topics {
		if t.Server != server {
			continue
		}
		if err := s.mayRead(t.Server, t.Channel); err != nil {
			s.revoked[t] = revocation{code: Code(err), msg: err.Error(), after: n}
			delete(s.topics, t)
		}
	}
}

// recheckStale checks again the servers whose state changed since the
// socket last checked them (after a poke).
func (s *socket) recheckStale() {
	for server := range s.seen {
		if !s.current(server) {
			s.recheckServer(server)
		}
	}
}

// recheckAll checks every followed topic again (the periodic backstop).
func (s *socket) recheckAll() {
	servers := map[policy.ID]bool{}
	for t := range s.topics {
		servers[t.Server] = true
	}
	for server := range servers {
		s.recheckServer(server)
	}
}

// applyRevoked sends the cut frames of revoked topics and drops them from
// the subscription.
func (s *socket) applyRevoked() {
	for len(s.revoked) > 0 {
		for t, rv := range s.revoked {
			s.add(wire.Frame{Op: wire.OpCut, Error: &wire.Error{Code: rv.code, Message: rv.msg},
				Topics: []wire.Topic{{Server: t.Server, Channel: t.Channel, After: rv.after}}})
		}
		s.a.metrics.revoked.Add(float64(len(s.revoked)))
		clear(s.revoked)
		keep := make(map[fanout.Topic]uint64, len(s.topics))
		for t, n := range s.topics {
			keep[t] = n
		}
		if err := s.resubscribe(keep); err != nil { // forwarding queued messages may revoke more: loop
			s.resubscribe(nil)
		}
	}
}

// syncServers keeps seen and the watch list to the servers the socket
// follows. A newly followed server takes the count s.pre recorded before
// its read check (unknown: a check is due on its first message).
func (s *socket) syncServers() {
	followed := map[policy.ID]bool{}
	for t := range s.topics {
		followed[t.Server] = true
	}
	for server := range s.seen {
		if !followed[server] {
			delete(s.seen, server)
			s.a.gens.unwatch(s, server)
		}
	}
	for server := range followed {
		if _, ok := s.seen[server]; !ok {
			g, ok := s.pre[server]
			if !ok {
				g = ^s.a.gens.of(server).Load()
			}
			s.seen[server] = g
			s.a.gens.watch(s, server)
		}
	}
}

// unwatchAll leaves every watch list, when the socket ends.
func (s *socket) unwatchAll() {
	for server := range s.seen {
		s.a.gens.unwatch(s, server)
	}
}
