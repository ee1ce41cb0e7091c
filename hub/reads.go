package hub

import (
	"context"
	"errors"
	"fmt"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/reconcile"
	"github.com/guildhall/guildhall/storage"
)

// Caller is who makes a request: an identity and the device it proved, or
// the zero Caller for an anonymous request.
type Caller struct {
	Identity policy.PublicKey
	Device   policy.PublicKey
	// Invite, when set, is an invite the caller holds: it opens the state
	// log's events (Events) to a newcomer, and nothing else
	// (policy.State.MayReadLogWith).
	Invite *policy.Invite
}

// MayRead applies policy's read rule for a hosted server: a channel, or its
// state log with channel zero. An invite opens nothing here: only Events.
func (s *Service) MayRead(ctx context.Context, server, channel policy.ID, r Caller) error {
	sl, err := s.lockLog(ctx, server)
	if err != nil {
		return err
	}
	defer sl.mu.Unlock()
	st := sl.log.State()
	if err := st.MayRead(r.Identity, r.Device, channel); err != nil {
		return err
	}
	if !channel.IsZero() && st.MustPurge(s.node.Identity, s.cfg.NodeCert, channel) {
		// What this hub may no longer store it no longer serves (and
		// purges at the next sweep): the reader asks a hub that may.
		return st.MayStore(s.node.Identity, s.cfg.NodeCert, channel, s.now())
	}
	return nil
}

// Read returns a channel's envelopes after a sequence number, to a reader
// who may read it.
func (s *Service) Read(ctx context.Context, r Caller, server, channel policy.ID, after uint64, limit int) ([]storage.Envelope, error) {
	if err := s.MayRead(ctx, server, channel, r); err != nil {
		return nil, err
	}
	return s.cfg.Store.ReadChannel(ctx, server, channel, after, limit)
}

// Events returns a hosted server's stored state events after a cursor, to
// a reader who may read its state log.
func (s *Service) Events(ctx context.Context, r Caller, server policy.ID, after uint64, limit int) ([]storage.Event, error) {
	err := s.MayRead(ctx, server, policy.ID{}, r)
	if err != nil && r.Invite != nil {
		err = s.mayReadLogWith(ctx, server, r.Invite) // the newcomer's way in, and why not
	}
	if err != nil {
		return nil, err
	}
	return s.cfg.Store.Events(ctx, server, after, limit)
}

// mayReadLogWith applies policy's rule for reading a state log with an
// invite (State.MayReadLogWith).
func (s *Service) mayReadLogWith(ctx context.Context, server policy.ID, inv *policy.Invite) error {
	sl, err := s.lockLog(ctx, server)
	if err != nil {
		return err
	}
	defer sl.mu.Unlock()
	return sl.log.State().MayReadLogWith(inv, s.now())
}

// Envelope returns one stored envelope by ID to a reader who may read its
// channel; an envelope of another server is not found.
func (s *Service) Envelope(ctx context.Context, r Caller, server, id policy.ID) (storage.Envelope, error) {
	e, err := s.cfg.Store.GetEnvelope(ctx, id)
	if err != nil {
		return e, err
	}
	if e.Server != server {
		return storage.Envelope{}, fmt.Errorf("hub: envelope %s: %w", id, storage.ErrNotFound)
	}
	if err := s.MayRead(ctx, server, e.Channel, r); err != nil {
		return storage.Envelope{}, err
	}
	if e.Raw == nil && e.Tombstone == nil {
		if found, err := s.takenDown(ctx, []policy.ID{id}); err != nil {
			return storage.Envelope{}, err
		} else if _, gone := found[id]; gone {
			return storage.Envelope{}, fmt.Errorf("%w: envelope %s", ErrTakenDown, id)
		}
	}
	return e, nil
}

// MaxRanges bounds the ranges of one reconciliation round from a client.
const MaxRanges = 256

// Range is a range of a reconciliation round (package reconcile).
type Range = reconcile.Range

// Reconcile answers one round of range-based set reconciliation over a
// channel (package reconcile) to a reader who may read it: for every range
// whose fingerprint differs from this hub's, its keys (small ranges) or
// fingerprints over sub-ranges. Matching ranges are left out.
func (s *Service) Reconcile(ctx context.Context, r Caller, server, channel policy.ID, in []Range) ([]Range, error) {
	if len(in) > MaxRanges {
		return nil, fmt.Errorf("%w: %d ranges in one round, limit %d", ErrBadRequest, len(in), MaxRanges)
	}
	if err := s.MayRead(ctx, server, channel, r); err != nil {
		return nil, err
	}
	out, err := reconcile.Answer(ctx, s.channelSet(server, channel), in, MaxRanges, s.now())
	if errors.Is(err, reconcile.ErrTooMany) || errors.Is(err, reconcile.ErrBadRange) {
		return nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	return out, err
}

// channelSet is a channel's stored envelopes as a reconciliation set.
type channelSet struct {
	st              Store
	server, channel policy.ID
}

func (s *Service) channelSet(server, channel policy.ID) channelSet {
	return channelSet{st: s.cfg.Store, server: server, channel: channel}
}

func (c channelSet) Fingerprint(ctx context.Context, from, to storage.Key) (storage.Fingerprint, error) {
	return c.st.RangeFingerprint(ctx, c.server, c.channel, from, to)
}

func (c channelSet) Keys(ctx context.Context, from, to storage.Key, limit int) ([]storage.Key, error) {
	return c.st.RangeKeys(ctx, c.server, c.channel, from, to, min(limit, storage.MaxPage))
}
