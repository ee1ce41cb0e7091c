package policy

import (
	"container/heap"
	"maps"
	"runtime"
	"slices"
	"sync"
)

// Log is one server's state log: the DAG of verified state events and the
// state resolved from it. Every delivery order of the same set of events
// gives the same order, the same per-event outcomes and the same State.
//
// Resolution (PROTOCOL.md "Resolution"): events whose ancestors are all known
// are folded in topological order; among the events ready at a step, the one
// whose author has the highest rank in the state folded so far goes first,
// then the smallest event ID. Each event is applied only if it is authorised
// against the state so far; events that fail stay in the log with no effect.
// Events with an unknown ancestor wait, unapplied, until it arrives.
//
// A Log is not safe for concurrent use.
type Log struct {
	genesis *Event
	events  map[ID]*Event   // every known event, pending ones included
	outcome map[ID]error    // folded events: nil if applied, else the reason
	order   []ID            // folded events in resolution order
	heads   map[ID]struct{} // folded events no folded event names as parent
	waiting map[ID][]*Event // missing parent -> events naming it
	state   *State
}

// NewLog starts a log from a genesis event.
func NewLog(genesis *Event) (*Log, error) {
	if genesis.Kind != EvGenesis {
		return nil, errf(CodeMalformed, "log must start from a genesis event, got %q", genesis.Kind)
	}
	g := genesis.Body.(*Genesis)
	if _, ok := slices.BinarySearchFunc(g.Creators, genesis.Author, PublicKey.Compare); !ok {
		return nil, errf(CodeForbidden, "genesis author %s is not among the creators", genesis.Author)
	}
	l := &Log{genesis: genesis, events: map[ID]*Event{genesis.ID: genesis}, waiting: map[ID][]*Event{}}
	l.resolve()
	return l, nil
}

// Resolve builds a log from a genesis event and any other events, in any order.
func Resolve(genesis *Event, events []*Event) (*Log, error) {
	l, err := NewLog(genesis)
	if err != nil {
		return nil, err
	}
	return l, l.AddAll(events)
}

// ServerID returns the server's ID.
func (l *Log) ServerID() ID { return l.genesis.ID }

// State returns the resolved state. It is updated in place by Add.
func (l *Log) State() *State { return l.state }

// Len returns the number of known events, pending ones included.
func (l *Log) Len() int { return len(l.events) }

// Event returns a known event by ID.
func (l *Log) Event(id ID) (*Event, bool) { e, ok := l.events[id]; return e, ok }

// Order returns the folded events' IDs in resolution order.
func (l *Log) Order() []ID { return slices.Clone(l.order) }

// Heads returns the folded events no other folded event builds on, ordered:
// the parents a new event should name.
func (l *Log) Heads() []ID { return slices.SortedFunc(maps.Keys(l.heads), ID.Compare) }

// Outcome reports how a known event fared: folded and applied (true, nil),
// folded and rejected (true, the reason), or not folded because it waits for
// an ancestor or is unknown (false, nil).
func (l *Log) Outcome(id ID) (folded bool, reason error) {
	reason, folded = l.outcome[id]
	return folded, reason
}

// Pending returns the events waiting for a missing ancestor, ordered.
func (l *Log) Pending() []ID {
	var out []ID
	for id := range l.events {
		if _, ok := l.outcome[id]; !ok {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, ID.Compare)
	return out
}

// Add adds one verified event. It returns an error only for an event that
// cannot belong to this log (another server, a second genesis); an event
// that is unauthorised is kept with its reason (see Outcome). After Add the
// state reflects every event whose ancestors are known.
//
// The common case, an event whose parents are exactly the current heads, is
// applied incrementally; anything else re-resolves the log.
func (l *Log) Add(e *Event) error {
	if err := l.admit(e); err != nil || l.events[e.ID] != nil {
		return err
	}
	l.events[e.ID] = e
	missing := false
	for _, p := range e.Parents {
		if _, ok := l.outcome[p]; !ok {
			missing = true
			if l.events[p] == nil {
				l.waiting[p] = append(l.waiting[p], e)
			}
		}
	}
	_, unblocks := l.waiting[e.ID]
	switch {
	case missing && !unblocks:
		return nil // waits for its ancestors; the state is unchanged
	case !missing && !unblocks && l.atHeads(e):
		l.fold(e)
		clear(l.heads)
		l.heads[e.ID] = struct{}{}
		return nil
	}
	l.resolve()
	return nil
}

// AddAll adds many events, verifying nothing twice and resolving once.
// It stops at the first event that cannot belong to the log.
func (l *Log) AddAll(events []*Event) error {
	changed := false
	for _, e := range events {
		if err := l.admit(e); err != nil {
			if changed {
				l.resolve()
			}
			return err
		}
		if l.events[e.ID] == nil {
			l.events[e.ID] = e
			changed = true
		}
	}
	if changed {
		l.resolve()
	}
	return nil
}

func (l *Log) admit(e *Event) error {
	if e.Kind == EvGenesis {
		if e.ID != l.genesis.ID {
			return errf(CodeWrongServer, "second genesis event %s", e.ID)
		}
		return nil
	}
	if e.Server != l.genesis.ID {
		return errf(CodeWrongServer, "event %s is for server %s, log is %s", e.ID, e.Server, l.genesis.ID)
	}
	return nil
}

// atHeads reports whether e names exactly the current heads as parents, so
// that it descends from every folded event and is necessarily folded last.
func (l *Log) atHeads(e *Event) bool {
	if len(e.Parents) != len(l.heads) {
		return false
	}
	for _, p := range e.Parents {
		if _, ok := l.heads[p]; !ok {
			return false
		}
	}
	return true
}

// fold checks e's time against its parents, then authorises and applies it.
func (l *Log) fold(e *Event) {
	var err error
	if e.Kind != EvGenesis {
		for _, p := range e.Parents {
			if pt := l.events[p].Time; e.Time < pt {
				err = errf(CodeClock, "event time %d is before its parent's %d", e.Time, pt)
				break
			}
		}
		if err == nil {
			err = l.state.apply(e)
		}
	}
	l.outcome[e.ID] = err
	l.order = append(l.order, e.ID)
}

// rankChanging lists the kinds whose application can change an author's
// rank, after which the ready queue's priorities are recomputed.
var rankChanging = map[string]bool{
	EvRoleUpdate: true, EvRoleDelete: true, EvRoleGrant: true, EvRoleRevoke: true,
	EvBan: true, EvUnban: true, EvJoin: true, EvLeave: true,
}

// resolve folds every event whose ancestors are known, from scratch.
func (l *Log) resolve() {
	l.state = newState(l.genesis)
	l.outcome = make(map[ID]error, len(l.events))
	l.order = make([]ID, 0, len(l.events))
	l.heads = make(map[ID]struct{})
	clear(l.waiting)

	indeg := make(map[ID]int, len(l.events))
	children := make(map[ID][]ID, len(l.events))
	for id, e := range l.events {
		indeg[id] = len(e.Parents)
		for _, p := range e.Parents {
			if l.events[p] == nil {
				l.waiting[p] = append(l.waiting[p], e)
			}
			children[p] = append(children[p], id)
		}
	}
	q := &readyQueue{}
	l.fold(l.genesis)
	push := func(id ID) {
		for _, c := range children[id] {
			if indeg[c]--; indeg[c] == 0 {
				e := l.events[c]
				heap.Push(q, ready{e: e, rank: l.state.Rank(e.Author)})
			}
		}
	}
	push(l.genesis.ID)
	for q.Len() > 0 {
		e := heap.Pop(q).(ready).e
		l.fold(e)
		if l.outcome[e.ID] == nil && rankChanging[e.Kind] {
			for i := range q.items {
				q.items[i].rank = l.state.Rank(q.items[i].e.Author)
			}
			heap.Init(q)
		}
		push(e.ID)
	}
	for _, id := range l.order {
		l.heads[id] = struct{}{}
	}
	for _, id := range l.order {
		for _, p := range l.events[id].Parents {
			delete(l.heads, p)
		}
	}
}

type ready struct {
	e    *Event
	rank int64
}

// readyQueue orders ready events: higher author rank first, then smaller ID.
type readyQueue struct{ items []ready }

func (q *readyQueue) Len() int { return len(q.items) }
func (q *readyQueue) Less(i, j int) bool {
	a, b := q.items[i], q.items[j]
	if a.rank != b.rank {
		return a.rank > b.rank
	}
	return a.e.ID.Compare(b.e.ID) < 0
}
func (q *readyQueue) Swap(i, j int) { q.items[i], q.items[j] = q.items[j], q.items[i] }
func (q *readyQueue) Push(x any)    { q.items = append(q.items, x.(ready)) }
func (q *readyQueue) Pop() any {
	x := q.items[len(q.items)-1]
	q.items = q.items[:len(q.items)-1]
	return x
}

// ParseEvents verifies many signed events in parallel (signature checks are
// independent of the state) and returns them in input order. It fails on the
// first invalid event, reporting its index.
func (v *Verifier) ParseEvents(raws [][]byte) ([]*Event, error) {
	out := make([]*Event, len(raws))
	errs := make([]error, len(raws))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(raws)/64))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(raws); i += workers {
				out[i], errs[i] = v.Event(raws[i])
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, errf(CodeOf(err), "event %d: %v", i, err)
		}
	}
	return out, nil
}
