package hub

import (
	"context"
	"errors"
	"fmt"

	"github.com/guildhall/guildhall/fanout"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// EventResult is the outcome of one published state event.
type EventResult struct {
	ID policy.ID
	// Folded is true once the event's ancestors are all known; Reason is
	// then nil if it was applied, else why it has no effect.
	Folded bool
	Reason error
}

// PublishEvents verifies and stores state events of one server, creating
// the server (subject to admission) when its genesis is among them. The
// whole call is refused, storing nothing, if any event fails verification
// or policy refuses the publication (policy.CheckLiveEvents, then
// Log.CheckPublication: hubs take only fresh events of the server, and do
// not store what can never take effect). A publication that brings a
// server this hub does not host, genesis included, with events too old to
// be live is a member's copy of the log: it is taken as history
// (adoptPublished), subject to admission.
func (s *Service) PublishEvents(ctx context.Context, server policy.ID, raws [][]byte) ([]EventResult, error) {
	if len(raws) == 0 {
		return nil, nil
	}
	events, err := s.verifier.ParseEvents(raws)
	if err != nil {
		return nil, err
	}
	if err := policy.CheckLiveEvents(server, events, s.now()); err != nil {
		if g := genesisOf(server, events); g != nil && policy.CodeOf(err) == policy.CodeClock {
			return s.adoptPublished(ctx, server, g, events, err) // a member's copy of the log, to a hub new to it
		}
		return nil, err
	}
	sl, err := s.lockLog(ctx, server)
	if err != nil {
		genesis := genesisOf(server, events)
		if genesis == nil || !errors.Is(err, storage.ErrNotHosted) {
			return nil, err
		}
		if sl, err = s.admit(ctx, genesis, events); err != nil {
			return nil, err
		}
	}
	defer sl.mu.Unlock()
	if err := sl.log.CheckPublication(events); err != nil {
		return nil, err
	}
	stored := make([]storage.Event, len(events))
	for i, e := range events {
		stored[i] = storage.Event{ID: e.ID, Raw: e.Raw}
	}
	n, err := s.cfg.Store.AppendEvents(ctx, server, stored)
	if err != nil {
		return nil, err
	}
	if err := s.refresh(ctx, sl); err != nil {
		return nil, err
	}
	if n > 0 {
		s.notify(ctx, []Note{{Server: server}})
	}
	out := make([]EventResult, len(events))
	for i, e := range events {
		folded, reason := sl.log.Outcome(e.ID)
		out[i] = EventResult{ID: e.ID, Folded: folded, Reason: reason}
	}
	return out, nil
}

// genesisOf returns the genesis of server among events, or nil.
func genesisOf(server policy.ID, events []*policy.Event) *policy.Event {
	for _, e := range events {
		if e.ID == server {
			return e
		}
	}
	return nil
}

// admit makes a server a tenant when its genesis arrives, as the admission
// mode allows, and returns its new log.
func (s *Service) admit(ctx context.Context, genesis *policy.Event, with []*policy.Event) (*serverLog, error) {
	server := genesis.ID
	switch _, err := s.cfg.Store.Tenant(ctx, server); {
	case err == nil: // provisioned by the operator: its genesis is welcome
	case !errors.Is(err, storage.ErrNotFound):
		return nil, err
	case s.cfg.Admission == Open || s.cfg.Admission == AllowList && ((*s.allowed.Load())[server] || (*s.creators.Load())[genesis.Author]) ||
		s.cfg.Admission == Home && policy.OwnerActs(s.cfg.NodeCert.Identity, with):
		if err := s.cfg.Store.PutTenant(ctx, server, *s.quota.Load()); err != nil {
			return nil, err
		}
	case s.cfg.Admission == AllowList:
		return nil, fmt.Errorf("hub: server %s, created by %s, is not on this hub's allow-list (the operator lists the server's ID or its creator's identity key): %w", server, genesis.Author, storage.ErrNotHosted)
	case s.cfg.Admission == Home:
		return nil, fmt.Errorf("hub: this home node hosts only its owner's servers, and %s brings no event of the owner: %w", server, storage.ErrNotHosted)
	default:
		return nil, fmt.Errorf("hub: server %s was not provisioned on this hub: %w", server, storage.ErrNotHosted)
	}
	if _, err := s.cfg.Store.AppendEvents(ctx, server, []storage.Event{{ID: genesis.ID, Raw: genesis.Raw}}); err != nil {
		return nil, err
	}
	s.metrics.admitted.Inc()
	return s.lockLog(ctx, server)
}

// Posted is the outcome of one posted envelope: a receipt, or why not.
type Posted struct {
	Receipt *policy.Receipt
	Err     error
}

// Post verifies envelopes as live posts and stores those that pass, each
// answered with a signed receipt once durable. An envelope is refused, with
// its typed error and nothing stored, when it fails verification, is not
// fresh, is invalid in its server's state (sender, ban, device, channel,
// permission, size), or belongs to a channel this hub may not store.
func (s *Service) Post(ctx context.Context, raws [][]byte) []Posted {
	out := make([]Posted, len(raws))
	now := s.now()
	var ok []storage.Envelope
	var cts [][]byte        // their ciphertexts, for the key index
	var blobs [][]policy.ID // the blobs each names
	var idx []int
	// The sender's rate is judged before storing and paid after, only for
	// envelopes newly stored: a replay of someone's envelopes costs them
	// nothing, so nobody can mute a sender by replaying its posts.
	pending := map[policy.PublicKey]float64{}
	senders := s.senders.Load()
	for i, raw := range raws {
		e, err := s.verifier.Envelope(raw)
		if err == nil {
			err = policy.CheckFresh(e.Time, now)
		}
		if err == nil && senders != nil {
			if senders.Available(e.Author)-pending[e.Author] < 1 {
				err = fmt.Errorf("hub: sender %s: %w", e.Author, ErrRateLimited)
			} else {
				pending[e.Author]++
			}
		}
		if err == nil {
			err = s.accept(ctx, e, now)
		}
		if err != nil {
			out[i].Err = err
			continue
		}
		ok = append(ok, storage.Envelope{ID: e.ID, Server: e.Server, Channel: e.Channel, Sender: e.Author, Time: e.Time, Raw: e.Raw})
		cts, blobs = append(cts, e.Ciphertext), append(blobs, e.Blobs)
		idx = append(idx, i)
	}
	if len(ok) == 0 {
		return out
	}
	// What the operator took down is neither stored again nor receipted.
	ids := make([]policy.ID, len(ok))
	for j, e := range ok {
		ids[j] = e.ID
	}
	removed, err := s.takenDown(ctx, ids)
	if err != nil {
		for _, i := range idx {
			out[i].Err = err
		}
		return out
	}
	if len(removed) > 0 {
		keep := 0
		for j, e := range ok {
			if _, gone := removed[e.ID]; gone {
				out[idx[j]].Err = fmt.Errorf("%w: envelope %s", ErrTakenDown, e.ID)
				continue
			}
			ok[keep], cts[keep], blobs[keep], idx[keep] = ok[j], cts[j], blobs[j], idx[j]
			keep++
		}
		ok, cts, blobs, idx = ok[:keep], cts[:keep], blobs[:keep], idx[:keep]
		if keep == 0 {
			return out
		}
	}
	stored, err := s.cfg.Store.PutEnvelopes(ctx, ok)
	if err == nil {
		s.settleEarly(ctx, ok, stored)
		s.indexStored(ctx, ok, cts, blobs, stored)
	}
	var notes []Note
	for j, i := range idx {
		if err != nil {
			out[i].Err = err
			continue
		}
		e := ok[j]
		out[i].Receipt = policy.NewReceipt(s.node, policy.ReceiptBody{Envelope: e.ID, Server: e.Server, Channel: e.Channel, Seq: stored[j].Seq, StoredAt: stored[j].StoredAt})
		if !stored[j].Duplicate {
			if senders != nil {
				senders.Charge(e.Sender, 1)
			}
			s.publish(&fanout.Message{Topic: fanout.Topic{Server: e.Server, Channel: e.Channel}, Seq: stored[j].Seq, Payload: e.Raw})
			notes = append(notes, Note{Server: e.Server, Channel: e.Channel, Seq: stored[j].Seq, ID: e.ID})
		}
	}
	s.notify(ctx, notes)
	return out
}

// notify tells processes sharing the store; a failure is logged, not
// returned: the data is durable and their subscribers catch up by cursor.
func (s *Service) notify(ctx context.Context, notes []Note) {
	if s.cfg.Notifier == nil || len(notes) == 0 {
		return
	}
	if err := s.cfg.Notifier.Notify(ctx, notes); err != nil {
		s.metrics.notifyErrors.Inc()
		s.cfg.Logger.Warn("hub: notifying other processes", "err", err)
	}
}

// Remote takes a note from another process sharing the store: a stored
// envelope is fanned out to local subscribers; new state events are folded
// into the server's log if it is loaded.
func (s *Service) Remote(ctx context.Context, n Note) error {
	if n.Deleted {
		return nil // the tombstone is in the shared store already
	}
	if n.ID.IsZero() {
		s.mu.Lock()
		_, loaded := s.logs[n.Server]
		s.mu.Unlock()
		if !loaded {
			s.stateChanged(n.Server) // read checks load the new state
			return nil
		}
		sl, err := s.lockLog(ctx, n.Server)
		if err != nil {
			return err
		}
		defer sl.mu.Unlock()
		return s.refresh(ctx, sl)
	}
	if s.cfg.Broker == nil {
		return nil
	}
	e, err := s.cfg.Store.GetEnvelope(ctx, n.ID)
	if err != nil {
		return err
	}
	if e.Raw != nil {
		s.publish(&fanout.Message{Topic: fanout.Topic{Server: e.Server, Channel: e.Channel}, Seq: e.Seq, Payload: e.Raw})
	}
	return nil
}

// accept checks an envelope against its server's state and this hub's
// storage eligibility.
func (s *Service) accept(ctx context.Context, e *policy.Envelope, now int64) error {
	sl, err := s.lockLog(ctx, e.Server)
	if err != nil {
		return err
	}
	defer sl.mu.Unlock()
	return sl.log.State().CheckIntake(e, s.node.Identity, s.cfg.NodeCert, now)
}

// Resync refreshes every loaded state log from the store, after notes from
// other processes may have been missed.
func (s *Service) Resync(ctx context.Context) {
	s.mu.Lock()
	ids := make([]policy.ID, 0, len(s.logs))
	for id := range s.logs {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		if err := s.Remote(ctx, Note{Server: id}); err != nil {
			s.cfg.Logger.Warn("hub: resync", "server", id, "err", err)
		}
	}
}
