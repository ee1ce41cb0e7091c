package hub

import (
	"context"
	"errors"
	"fmt"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// A hub learns of a server it may host in two ways (PROTOCOL §8): a member's
// client that grants it storage, or joins through it as the owner's home
// node, publishes the whole state log to it with the act; and a peer hub
// offers, in its hello, servers whose state lets this hub replicate them.
// Either way the copy of the log is history: checked by
// policy.CheckHistoryEvents, the server admitted as the admission mode
// allows (admit), and the events taken as a peer's are (Log.Replicable).

// ErrNotOffered refuses a peer's copy of a server's state log that does not
// let both hubs replicate the server: in the log itself, this hub may store
// no channel of it, or the offering peer may not.
var ErrNotOffered = errors.New("hub: the server's state log does not let both hubs replicate it")

// HasLog reports whether this hub holds the state log of a server (a
// tenant provisioned without its genesis does not).
func (s *Service) HasLog(ctx context.Context, server policy.ID) (bool, error) {
	sl, err := s.lockLog(ctx, server)
	if errors.Is(err, storage.ErrNotHosted) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	sl.mu.Unlock()
	return true, nil
}

// adoptPublished takes a member's copy of a state log that is not all
// fresh (live: why CheckLiveEvents refused it) for a server this hub does
// not host yet. A hub that holds the log judges a live publication as
// such: it gets live back.
func (s *Service) adoptPublished(ctx context.Context, server policy.ID, genesis *policy.Event, events []*policy.Event, live error) ([]EventResult, error) {
	sl, err := s.lockLog(ctx, server)
	if err == nil {
		sl.mu.Unlock()
		return nil, live
	}
	if !errors.Is(err, storage.ErrNotHosted) {
		return nil, err
	}
	if err := policy.CheckHistoryEvents(server, events, s.now()); err != nil {
		return nil, err
	}
	if sl, err = s.admit(ctx, genesis, events); err != nil {
		return nil, err
	}
	defer sl.mu.Unlock()
	if _, err := s.storeHistory(ctx, sl, events); err != nil {
		return nil, err
	}
	out := make([]EventResult, len(events))
	for i, e := range events {
		folded, reason := sl.log.Outcome(e.ID)
		out[i] = EventResult{ID: e.ID, Folded: folded, Reason: reason}
	}
	return out, nil
}

// AdoptFrom takes a server this hub does not host from a peer's copy of its
// state log (the first page of the peer's events answer, genesis first):
// the copy is checked as history (policy.CheckHistoryEvents), and in the
// state it resolves to both this hub and the peer must be able to
// replicate the server (ErrNotOffered otherwise); then the server is
// admitted as the admission mode allows and the events are stored. A
// server already hosted is left to ReplicateEvents. It returns how many
// events were stored.
func (s *Service) AdoptFrom(ctx context.Context, server policy.ID, from Peer, raws [][]byte) (int, error) {
	events, err := s.verifier.ParseEvents(raws)
	if err != nil {
		return 0, err
	}
	now := s.now()
	if err := policy.CheckHistoryEvents(server, events, now); err != nil {
		return 0, err
	}
	var genesis *policy.Event
	for _, e := range events {
		if e.ID == server {
			genesis = e
		}
	}
	trial, err := policy.Resolve(genesis, events)
	if err != nil {
		return 0, err
	}
	st := trial.State()
	if err := st.MayReplicate(s.node.Identity, s.cfg.NodeCert, policy.ID{}, now); err != nil {
		return 0, fmt.Errorf("%w: this hub: %w", ErrNotOffered, err)
	}
	if err := st.MayReplicate(from.Node, from.Cert, policy.ID{}, now); err != nil {
		return 0, fmt.Errorf("%w: the peer: %w", ErrNotOffered, err)
	}
	switch has, err := s.HasLog(ctx, server); {
	case err != nil:
		return 0, err
	case has:
		return s.ReplicateEvents(ctx, server, raws)
	}
	sl, err := s.admit(ctx, genesis, events)
	if err != nil {
		return 0, err
	}
	defer sl.mu.Unlock()
	return s.storeHistory(ctx, sl, events)
}

// storeHistory stores the events of a hosted server's log that policy finds
// replicable (Log.Replicable) and folds them in; the caller holds sl.mu.
func (s *Service) storeHistory(ctx context.Context, sl *serverLog, events []*policy.Event) (int, error) {
	replicable, err := sl.log.Replicable(events)
	if err != nil {
		return 0, err
	}
	keep := make([]storage.Event, len(replicable))
	for i, e := range replicable {
		keep[i] = storage.Event{ID: e.ID, Raw: e.Raw}
	}
	if len(keep) == 0 {
		return 0, nil
	}
	n, err := s.cfg.Store.AppendEvents(ctx, sl.id, keep)
	if err != nil {
		return 0, err
	}
	if err := s.refresh(ctx, sl); err != nil {
		return n, err
	}
	if n > 0 {
		s.notify(ctx, []Note{{Server: sl.id}})
	}
	return n, nil
}
