package hub

import (
	"context"
	"fmt"
	"io"

	"github.com/guildhall/guildhall/fanout"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/reconcile"
	"github.com/guildhall/guildhall/storage"
)

// A Peer is another hub (or home node) as replication sees it: its node
// key, and its certificate when it is a member's home node.
type Peer struct {
	Node policy.PublicKey
	Cert *policy.DeviceCert
}

// Hosted lists the servers this hub hosts.
func (s *Service) Hosted(ctx context.Context) ([]policy.ID, error) {
	ts, err := s.cfg.Store.Tenants(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]policy.ID, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.Server)
	}
	return out, nil
}

// NodeCert returns this hub's certificate as a member's home node, or nil.
func (s *Service) NodeCert() *policy.DeviceCert { return s.cfg.NodeCert }

// Eligible returns the channels of a server that a node may store, in
// this hub's view of the server's state.
func (s *Service) Eligible(ctx context.Context, server policy.ID, p Peer) ([]policy.ID, error) {
	sl, err := s.lockLog(ctx, server)
	if err != nil {
		return nil, err
	}
	defer sl.mu.Unlock()
	return sl.log.State().EligibleChannels(p.Node, p.Cert, s.now()), nil
}

// self is this hub as a Peer.
func (s *Service) self() Peer { return Peer{Node: s.node.Identity, Cert: s.cfg.NodeCert} }

// MayReplicate asks policy whether a peer may receive a channel's
// ciphertext (State.MayReplicate).
func (s *Service) MayReplicate(ctx context.Context, server, channel policy.ID, p Peer) error {
	sl, err := s.lockLog(ctx, server)
	if err != nil {
		return err
	}
	defer sl.mu.Unlock()
	return sl.log.State().MayReplicate(p.Node, p.Cert, channel, s.now())
}

// MayReplicateAny reports whether a peer may replicate some server this hub
// hosts (MayReplicate, the state log): whether it is a peer hub here at all
// or a stranger, whose requests replication refuses before reading them.
func (s *Service) MayReplicateAny(ctx context.Context, p Peer) (bool, error) {
	servers, err := s.Hosted(ctx)
	if err != nil {
		return false, err
	}
	for _, server := range servers {
		if s.MayReplicate(ctx, server, policy.ID{}, p) == nil {
			return true, nil
		}
	}
	return false, nil
}

// EventIDs lists the IDs of a hosted server's stored state events.
func (s *Service) EventIDs(ctx context.Context, server policy.ID) ([]policy.ID, error) {
	sl, err := s.lockLog(ctx, server)
	if err != nil {
		return nil, err
	}
	defer sl.mu.Unlock()
	return sl.log.Order(), nil // folded events; pending ones travel when their ancestors do
}

// EventsExcept returns a hosted server's state events whose IDs are not in
// have, at most limit.
func (s *Service) EventsExcept(ctx context.Context, server policy.ID, have map[policy.ID]bool, limit int) ([][]byte, error) {
	var out [][]byte
	for after := uint64(0); ; {
		page, err := s.cfg.Store.Events(ctx, server, after, storage.MaxPage)
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			if !have[e.ID] {
				if out = append(out, e.Raw); len(out) == limit {
					return out, nil
				}
			}
			after = e.Seq
		}
		if len(page) < storage.MaxPage {
			return out, nil
		}
	}
}

// ReplicateEvents takes state events another hub holds of a server this
// hub hosts, those that policy finds replicable (Log.Replicable).
func (s *Service) ReplicateEvents(ctx context.Context, server policy.ID, raws [][]byte) (int, error) {
	if len(raws) == 0 {
		return 0, nil
	}
	events, err := s.verifier.ParseEvents(raws)
	if err != nil {
		return 0, err
	}
	if err := policy.CheckServerEvents(server, events); err != nil {
		return 0, err
	}
	sl, err := s.lockLog(ctx, server)
	if err != nil {
		return 0, err
	}
	defer sl.mu.Unlock()
	return s.storeHistory(ctx, sl, events)
}

// ChannelSet is a channel's stored envelopes as a reconciliation set.
func (s *Service) ChannelSet(server, channel policy.ID) reconcile.Set {
	return s.channelSet(server, channel)
}

// FetchFor returns stored envelopes by ID for a peer, only of channels the
// peer may store; tombstoned ones come without ciphertext.
func (s *Service) FetchFor(ctx context.Context, server policy.ID, p Peer, ids []policy.ID) ([]storage.Envelope, error) {
	chans, err := s.Eligible(ctx, server, p)
	if err != nil {
		return nil, err
	}
	ok := map[policy.ID]bool{}
	for _, c := range chans {
		ok[c] = true
	}
	var out []storage.Envelope
	for _, id := range ids {
		e, err := s.cfg.Store.GetEnvelope(ctx, id)
		if err != nil || e.Server != server || !ok[e.Channel] || e.Raw == nil {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// PushEnvelopes takes envelopes a peer hub pushes as it stores them: as
// ReplicateEnvelopes, but only those fresh at this hub's clock
// (policy.CheckFresh). A push claims to be live; anything older is history,
// which comes by reconciliation, where it is judged as history.
func (s *Service) PushEnvelopes(ctx context.Context, raws [][]byte) (int, error) {
	return s.replicate(ctx, raws, true, nil)
}

// PushEnvelopesFrom is PushEnvelopes for envelopes a peer pushes: only
// those of channels the peer itself may hold (MayReplicate) are taken, so a
// hub nobody granted the channel cannot feed it to this one.
func (s *Service) PushEnvelopesFrom(ctx context.Context, from Peer, raws [][]byte) (int, error) {
	return s.replicate(ctx, raws, true, &from)
}

// ReplicateEnvelopesFrom is ReplicateEnvelopes for envelopes fetched from a
// peer: only those of channels the peer itself may hold are taken.
func (s *Service) ReplicateEnvelopesFrom(ctx context.Context, from Peer, raws [][]byte) (int, error) {
	return s.replicate(ctx, raws, false, &from)
}

// ReplicateEnvelopes stores envelopes another hub holds: each verified,
// acceptable in the server's current state (no freshness check: this is
// history), and of a channel this hub may store. Stored ones are fanned
// out to local subscribers. It returns how many were new.
func (s *Service) ReplicateEnvelopes(ctx context.Context, raws [][]byte) (int, error) {
	return s.replicate(ctx, raws, false, nil)
}

// replicate takes a peer's envelopes, only fresh ones when live (a push),
// and, when from is set, only of channels that peer may hold.
func (s *Service) replicate(ctx context.Context, raws [][]byte, live bool, from *Peer) (int, error) {
	now := s.now()
	var ok []storage.Envelope
	var cts [][]byte
	var blobs [][]policy.ID
	for _, raw := range raws {
		e, err := s.verifier.Envelope(raw)
		if err != nil || live && policy.CheckFresh(e.Time, now) != nil {
			continue
		}
		sl, err := s.lockLog(ctx, e.Server)
		if err != nil {
			continue
		}
		err = sl.log.State().CheckIntake(e, s.node.Identity, s.cfg.NodeCert, now)
		if err == nil && from != nil {
			err = sl.log.State().MayReplicate(from.Node, from.Cert, e.Channel, now)
		}
		sl.mu.Unlock()
		if err != nil {
			continue
		}
		ok = append(ok, storage.Envelope{ID: e.ID, Server: e.Server, Channel: e.Channel, Sender: e.Author, Time: e.Time, Raw: e.Raw})
		cts, blobs = append(cts, e.Ciphertext), append(blobs, e.Blobs)
	}
	if len(ok) == 0 {
		return 0, nil
	}
	ids := make([]policy.ID, len(ok))
	for i, e := range ok {
		ids[i] = e.ID
	}
	removed, err := s.takenDown(ctx, ids)
	if err != nil {
		return 0, err
	}
	if len(removed) > 0 { // what the operator took down does not come back from peers
		keep := 0
		for i, e := range ok {
			if _, gone := removed[e.ID]; !gone {
				ok[keep], cts[keep], blobs[keep] = ok[i], cts[i], blobs[i]
				keep++
			}
		}
		if ok, cts, blobs = ok[:keep], cts[:keep], blobs[:keep]; keep == 0 {
			return 0, nil
		}
	}
	stored, err := s.cfg.Store.PutEnvelopes(ctx, ok)
	if err != nil {
		return 0, err
	}
	s.settleEarly(ctx, ok, stored)
	s.indexStored(ctx, ok, cts, blobs, stored)
	n := 0
	var notes []Note
	for i, st := range stored {
		if st.Duplicate {
			continue
		}
		n++
		e := ok[i]
		s.publish(&fanout.Message{Topic: fanout.Topic{Server: e.Server, Channel: e.Channel}, Seq: st.Seq, Payload: e.Raw})
		notes = append(notes, Note{Server: e.Server, Channel: e.Channel, Seq: st.Seq, ID: e.ID})
	}
	s.notify(ctx, notes)
	return n, nil
}

// TombstoneOf returns the signed tombstone applied to an envelope.
func (s *Service) TombstoneOf(ctx context.Context, id policy.ID) ([]byte, error) {
	e, err := s.cfg.Store.GetEnvelope(ctx, id)
	if err != nil {
		return nil, err
	}
	if e.Tombstone == nil {
		return nil, fmt.Errorf("hub: envelope %s: %w", id, storage.ErrNotFound)
	}
	return e.Tombstone, nil
}

// ReadBlob returns a stored blob's bytes, for a peer hub (bounded by
// MaxBlob), if the server references it.
func (s *Service) ReadBlob(ctx context.Context, server, id policy.ID) ([]byte, error) {
	if s.cfg.Blobs == nil {
		return nil, ErrNoBlobs
	}
	switch ok, err := s.cfg.Store.HasBlobRef(ctx, server, id); {
	case err != nil:
		return nil, err
	case !ok:
		return nil, fmt.Errorf("hub: blob %s of server %s: %w", id, server, storage.ErrNotFound)
	}
	r, size, err := s.cfg.Blobs.GetBlob(ctx, id)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if size > s.cfg.MaxBlob {
		return nil, fmt.Errorf("%w: blob of %d bytes", ErrTooLarge, size)
	}
	return io.ReadAll(io.LimitReader(r, s.cfg.MaxBlob))
}

// InviteHints returns the hub addresses the invites of a server's applied
// joins name (the bootstrap hints members joined with): where other hubs of
// the server may be found. A stranger's or a refused join names none.
func (s *Service) InviteHints(ctx context.Context, server policy.ID) ([]string, error) {
	sl, err := s.lockLog(ctx, server)
	if err != nil {
		return nil, err
	}
	defer sl.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, e := range sl.log.Events() {
		j, ok := e.Body.(*policy.Join)
		if !ok {
			continue
		}
		if folded, reason := sl.log.Outcome(e.ID); !folded || reason != nil {
			continue // a join that did not admit anyone names no hub worth dialling
		}
		inv, err := policy.ParseInvite(j.Invite)
		if err != nil {
			continue
		}
		for _, h := range inv.Hubs {
			if !seen[h] {
				seen[h] = true
				out = append(out, h)
			}
		}
	}
	return out, nil
}
