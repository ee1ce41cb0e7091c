package policy

import (
	"cmp"
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
// Cost: an event on the current heads is folded directly. Any other event
// cannot be folded before its last parent, so the order up to there stands;
// the log re-folds from the latest retained checkpoint of the state at or
// before that point (one every 1024 events, the last 4 kept, and the genesis
// state), so a concurrent event near the heads costs a few thousand folds at
// most, and one that builds on old history costs up to a full re-fold.
//
// A Log is not safe for concurrent use.
type Log struct {
	genesis  *Event
	events   map[ID]*Event   // every known event, pending ones included
	children map[ID][]ID     // event (known or not) -> known events naming it as parent
	outcome  map[ID]error    // folded events: nil if applied, else the reason
	index    map[ID]int      // folded events: position in order
	latest   map[ID]int64    // folded events: the latest time among the event and its ancestors
	order    []ID            // folded events in resolution order
	heads    map[ID]struct{} // folded events no folded event names as parent
	pending  map[ID]struct{} // known events not folded: an ancestor is missing
	state    *State

	checkpoints []checkpoint // ascending pos; [0] is the genesis state
	every, keep int          // checkpoint interval and how many to keep beyond genesis
}

// checkpoint is a copy of the state after folding order[:pos].
type checkpoint struct {
	pos   int
	state *State
}

const (
	checkpointEvery = 1024
	checkpointsKept = 4
)

// NewLog starts a log from a genesis event.
func NewLog(genesis *Event) (*Log, error) {
	if genesis.Kind != EvGenesis {
		return nil, errf(CodeMalformed, "log must start from a genesis event, got %q", genesis.Kind)
	}
	g := genesis.Body.(*Genesis)
	if _, ok := slices.BinarySearchFunc(g.Creators, genesis.Author, PublicKey.Compare); !ok {
		return nil, errf(CodeForbidden, "genesis author %s is not among the creators", genesis.Author)
	}
	l := &Log{
		genesis:  genesis,
		events:   map[ID]*Event{genesis.ID: genesis},
		children: map[ID][]ID{},
		outcome:  map[ID]error{genesis.ID: nil},
		index:    map[ID]int{genesis.ID: 0},
		latest:   map[ID]int64{genesis.ID: genesis.Time},
		order:    []ID{genesis.ID},
		heads:    map[ID]struct{}{genesis.ID: {}},
		pending:  map[ID]struct{}{},
		state:    newState(genesis),
		every:    checkpointEvery,
		keep:     checkpointsKept,
	}
	l.checkpoints = []checkpoint{{pos: 1, state: l.state.clone()}}
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

// Genesis returns the log's genesis event.
func (l *Log) Genesis() *Event { return l.genesis }

// Events returns every event the log holds, folded or pending, in no
// particular order.
func (l *Log) Events() []*Event {
	out := make([]*Event, 0, len(l.events))
	for _, e := range l.events {
		out = append(out, e)
	}
	return out
}

// State returns the resolved state. It is valid until the next Add or
// AddAll, which may update it in place or replace it: call State again.
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

// ParentsAt returns the parents an honest author names for a new event at
// now (Unix ms), ordered: the heads of the part of the log whose events, and
// all their ancestors, are dated no later than now + MaxClockSkew. An event
// dated further ahead (which no hub takes live, but history may hold), and
// whatever builds on it, is left out until its time comes, so it can
// neither make the new event earlier than a parent (clock) nor push the new
// event's date beyond what hubs accept. With no such event (or with a
// genesis dated ahead, on which everything builds) it uses Heads. Of more
// than MaxParents heads it names the one folded last and the latest others
// (by time, then smallest ID), so a log of any width stays writable.
func (l *Log) ParentsAt(now int64) []ID {
	limit := now + MaxClockSkew
	// Every folded event is an ancestor of a head (or one), so when no
	// head's latest time is beyond limit nothing is: the common case costs
	// O(heads), not a walk of the log.
	anyAhead := false
	for h := range l.heads {
		anyAhead = anyAhead || l.latest[h] > limit
	}
	if !anyAhead {
		return l.fewest(l.Heads())
	}
	ahead := map[ID]bool{}       // folded events dated, or built on events dated, beyond limit
	for _, id := range l.order { // resolution order is topological
		e := l.events[id]
		ahead[id] = e.Time > limit
		for _, p := range e.Parents {
			ahead[id] = ahead[id] || ahead[p]
		}
	}
	if !slices.ContainsFunc(l.order, func(id ID) bool { return ahead[id] }) || ahead[l.genesis.ID] {
		return l.fewest(l.Heads()) // nothing ahead; or the genesis itself is, and every event is built on it
	}
	var out []ID
	for _, id := range l.order {
		if ahead[id] {
			continue
		}
		head := true
		for _, c := range l.children[id] {
			if _, folded := l.outcome[c]; folded && !ahead[c] {
				head = false
				break
			}
		}
		if head {
			out = append(out, id)
		}
	}
	return l.fewest(out)
}

// fewest keeps at most MaxParents of a set of heads, in ID order: the one
// folded last (so that the new event builds on recent history, as hubs
// require: Log.CheckPublication), then the latest others by time (then the
// smallest IDs). A log of any width stays writable, and every head left out
// stays a head for a later event to name.
func (l *Log) fewest(heads []ID) []ID {
	if len(heads) > MaxParents {
		last := slices.MaxFunc(heads, func(a, b ID) int { return cmp.Compare(l.index[a], l.index[b]) })
		slices.SortFunc(heads, func(a, b ID) int {
			switch {
			case a == last:
				return -1
			case b == last:
				return 1
			}
			if ta, tb := l.events[a].Time, l.events[b].Time; ta != tb {
				return cmp.Compare(tb, ta)
			}
			return a.Compare(b)
		})
		heads = heads[:MaxParents]
	}
	slices.SortFunc(heads, ID.Compare)
	return heads
}

// Outcome reports how a known event fared: folded and applied (true, nil),
// folded and rejected (true, the reason), or not folded because it waits for
// an ancestor or is unknown (false, nil).
func (l *Log) Outcome(id ID) (folded bool, reason error) {
	reason, folded = l.outcome[id]
	return folded, reason
}

// Pending returns the events waiting for a missing ancestor, ordered.
func (l *Log) Pending() []ID {
	return slices.SortedFunc(maps.Keys(l.pending), ID.Compare)
}

// Add adds one verified event. It returns an error only for an event that
// cannot belong to this log (another server, a second genesis); an event
// that is unauthorised is kept with its reason (see Outcome). After Add the
// state reflects every event whose ancestors are known.
func (l *Log) Add(e *Event) error { return l.AddAll([]*Event{e}) }

// AddAll adds many events and folds once. It stops at the first event that
// cannot belong to the log, keeping (and folding) the ones before it.
func (l *Log) AddAll(events []*Event) error {
	from := -1 // earliest position whose fold may change; -1: none
	var err error
	for _, e := range events {
		if err = l.admit(e); err != nil {
			break
		}
		if l.events[e.ID] != nil {
			continue
		}
		l.events[e.ID] = e
		ready := true
		at := 1 // e cannot be folded before its last folded parent
		for _, p := range e.Parents {
			l.children[p] = append(l.children[p], e.ID)
			if i, ok := l.index[p]; ok {
				at = max(at, i+1)
			} else {
				ready = false
			}
		}
		if !ready {
			l.pending[e.ID] = struct{}{}
			continue // waits for an ancestor; whoever completes it triggers the fold
		}
		l.pending[e.ID] = struct{}{} // until folded
		if len(events) == 1 && at == len(l.order) && l.atHeads(e) && len(l.children[e.ID]) == 0 {
			l.foldAtHeads(e) // the common case: descends from every folded event
			return nil
		}
		if from < 0 || at < from {
			from = at
		}
	}
	if from >= 0 {
		l.refold(from)
	}
	return err
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

func (l *Log) foldAtHeads(e *Event) {
	l.fold(e)
	clear(l.heads)
	l.heads[e.ID] = struct{}{}
}

// fold checks e's time against its parents, then authorises and applies it,
// and takes a checkpoint when one is due.
func (l *Log) fold(e *Event) {
	var err error
	for _, p := range e.Parents {
		if pt := l.events[p].Time; e.Time < pt {
			err = errf(CodeClock, "event time %d is before its parent's %d", e.Time, pt)
			break
		}
	}
	if err == nil {
		err = l.state.apply(e, l.usedBefore(e))
	}
	l.outcome[e.ID] = err
	delete(l.pending, e.ID)
	l.index[e.ID] = len(l.order)
	latest := e.Time
	for _, p := range e.Parents {
		latest = max(latest, l.latest[p])
	}
	l.latest[e.ID] = latest
	l.order = append(l.order, e.ID)
	if len(l.order)%l.every == 0 {
		l.checkpoints = append(l.checkpoints, checkpoint{pos: len(l.order), state: l.state.clone()})
		if len(l.checkpoints) > 1+l.keep {
			l.checkpoints = slices.Delete(l.checkpoints, 1, 2) // keep genesis, drop the oldest other
		}
	}
}

// rankChanging lists the kinds whose application can change an author's
// rank, after which the ready queue's priorities are recomputed.
var rankChanging = map[string]bool{
	EvRoleUpdate: true, EvRoleDelete: true, EvRoleGrant: true, EvRoleRevoke: true,
	EvBan: true, EvUnban: true, EvJoin: true, EvLeave: true,
}

// refold re-folds everything from the latest checkpoint at or before
// position from: order[:from] cannot change, because nothing new can be
// folded before from.
func (l *Log) refold(from int) {
	k := len(l.checkpoints) - 1
	for l.checkpoints[k].pos > from {
		k--
	}
	cp := l.checkpoints[k]
	l.checkpoints = l.checkpoints[:k+1]
	oldHeads := l.heads
	for _, id := range l.order[cp.pos:] {
		delete(l.outcome, id)
		delete(l.index, id)
		delete(l.latest, id)
		l.pending[id] = struct{}{}
	}
	l.order = l.order[:cp.pos]
	l.state = cp.state.clone()

	// Kahn's algorithm over the events not folded yet: the re-opened tail,
	// the new events and those that were waiting.
	indeg := make(map[ID]int, len(l.pending))
	q := &readyQueue{}
	for id := range l.pending {
		e := l.events[id]
		n := 0
		for _, p := range e.Parents {
			if _, folded := l.index[p]; !folded {
				n++
			}
		}
		indeg[id] = n
		if n == 0 {
			q.items = append(q.items, ready{e: e, rank: l.state.Rank(e.Author)})
		}
	}
	heap.Init(q)
	var folded []ID
	for q.Len() > 0 {
		e := heap.Pop(q).(ready).e
		l.fold(e)
		folded = append(folded, e.ID)
		if l.outcome[e.ID] == nil && rankChanging[e.Kind] {
			for i := range q.items {
				q.items[i].rank = l.state.Rank(q.items[i].e.Author)
			}
			heap.Init(q)
		}
		for _, c := range l.children[e.ID] {
			if indeg[c]--; indeg[c] == 0 {
				ce := l.events[c]
				heap.Push(q, ready{e: ce, rank: l.state.Rank(ce.Author)})
			}
		}
	}
	// The folded set only grows, so a head is an old head or a newly folded
	// event that no folded event builds on.
	l.heads = make(map[ID]struct{}, len(oldHeads))
	for _, cands := range [][]ID{slices.Collect(maps.Keys(oldHeads)), folded} {
		for _, id := range cands {
			if !l.hasFoldedChild(id) {
				l.heads[id] = struct{}{}
			}
		}
	}
}

// usedBefore counts, for a join, the joins through the same invite that
// were applied among its ancestors: an invite's uses are counted along
// causal history, so a join concurrent with an admitted member's never
// evicts it (PROTOCOL §4.3). The walk goes back from the join's parents and
// stops at an event whose own time and every ancestor's are before the
// invite's issue time (l.latest): an applied join through the invite is
// dated at or after it, so none can lie beyond. It is needed only when the
// state has counted as many uses in all as the invite allows, since the
// causal count is never larger: below that it returns that total, which the
// check then finds below the limit. For any other event it returns 0.
func (l *Log) usedBefore(e *Event) uint32 {
	j, ok := e.Body.(*Join)
	if !ok {
		return 0
	}
	inv := j.invite
	if total := l.state.inviteUses[inv.ID]; total < inv.Uses {
		return total
	}
	var used uint32
	seen := map[ID]bool{}
	stack := slices.Clone(e.Parents)
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		x := l.events[id]
		if seen[id] || x == nil {
			continue
		}
		seen[id] = true
		if xj, ok := x.Body.(*Join); ok && xj.invite.ID == inv.ID {
			if reason, folded := l.outcome[id]; folded && reason == nil {
				used++
			}
		}
		if l.latest[id] >= inv.Issued { // else nothing at or before x is dated late enough to be such a join
			stack = append(stack, x.Parents...)
		}
	}
	return used
}

func (l *Log) hasFoldedChild(id ID) bool {
	for _, c := range l.children[id] {
		if _, ok := l.index[c]; ok {
			return true
		}
	}
	return false
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
	return v.parseEvents(raws, v.Event)
}

// ParseStoredEvents is ParseEvents for events read back from the node's own
// store (StoredEvent): everything but the events' own signatures is checked.
func (v *Verifier) ParseStoredEvents(raws [][]byte) ([]*Event, error) {
	return v.parseEvents(raws, v.StoredEvent)
}

func (v *Verifier) parseEvents(raws [][]byte, parse func([]byte) (*Event, error)) ([]*Event, error) {
	out := make([]*Event, len(raws))
	errs := make([]error, len(raws))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(raws)/64))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(raws); i += workers {
				out[i], errs[i] = parse(raws[i])
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
