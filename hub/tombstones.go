package hub

import (
	"context"
	"errors"
	"fmt"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/reconcile"
	"github.com/guildhall/guildhall/storage"
)

// Tombstone applies signed tombstones, each answered by nil or why not.
// Applying one twice is a no-op. A tombstone whose target this hub does not
// hold (yet: it may be on its way from a peer) is kept in the target's
// place when its author is in standing and this hub may store the channel
// (policy.State.CheckEarlyTombstone): an early tombstone, judged against
// the envelope when that arrives (settleEarly).
func (s *Service) Tombstone(ctx context.Context, raws [][]byte) []error {
	out := make([]error, len(raws))
	for i, raw := range raws {
		out[i] = s.tombstone(ctx, raw, nil)
	}
	return out
}

// TombstonesFrom is Tombstone for tombstones a peer hub sends: only those
// of channels the peer itself may hold are taken.
func (s *Service) TombstonesFrom(ctx context.Context, from Peer, raws [][]byte) []error {
	out := make([]error, len(raws))
	for i, raw := range raws {
		out[i] = s.tombstone(ctx, raw, &from)
	}
	return out
}

func (s *Service) tombstone(ctx context.Context, raw []byte, from *Peer) error {
	t, err := policy.ParseTombstone(raw)
	if err != nil {
		return err
	}
	if from != nil {
		if err := s.MayReplicate(ctx, t.Server, t.Channel, *from); err != nil {
			return err
		}
	}
	stored, err := s.cfg.Store.GetEnvelope(ctx, t.Target)
	if errors.Is(err, storage.ErrNotFound) {
		return s.earlyTombstone(ctx, t)
	}
	if err != nil {
		return fmt.Errorf("hub: tombstone target %s: %w", t.Target, err)
	}
	if stored.Server != t.Server {
		return &policy.Error{Code: policy.CodeWrongServer, Detail: fmt.Sprintf("envelope %s is not in server %s", t.Target, t.Server)}
	}
	if stored.Raw == nil {
		return nil // already deleted
	}
	target, err := s.verifier.Envelope(stored.Raw)
	if err != nil {
		return fmt.Errorf("hub: stored envelope %s: %w", t.Target, err)
	}
	sl, err := s.lockLog(ctx, t.Server)
	if err != nil {
		return err
	}
	err = sl.log.State().CheckTombstone(t, target)
	sl.mu.Unlock()
	if err != nil {
		return err
	}
	if err := s.cfg.Store.ApplyTombstone(ctx, t.Target, raw); err != nil {
		return err
	}
	s.releaseBlobs(ctx, t.Server, t.Target)
	s.notify(ctx, []Note{{Server: t.Server, Channel: t.Channel, ID: t.Target, Deleted: true}})
	return nil
}

// releaseBlobs lets go of the blobs a deleted envelope named that no other
// envelope of its server names: the server's reference and its charge,
// and the bytes when no server references them any more. The deletion
// stands whatever fails here; a failure is logged.
func (s *Service) releaseBlobs(ctx context.Context, server, envelope policy.ID) {
	orphans, err := s.cfg.Store.DropEnvelopeBlobs(ctx, server, envelope)
	if err != nil {
		s.cfg.Logger.Warn("hub: releasing a deleted envelope's blobs", "envelope", envelope, "err", err)
		return
	}
	s.releaseOrphans(ctx, server, orphans)
}

// releaseOrphans drops the server's reference to blobs no envelope of it
// names any more, and their bytes when no server references them.
func (s *Service) releaseOrphans(ctx context.Context, server policy.ID, orphans []policy.ID) {
	for _, id := range orphans {
		still, err := s.cfg.Store.RemoveBlobRef(ctx, server, id)
		if err != nil {
			s.cfg.Logger.Warn("hub: releasing a blob", "blob", id, "err", err)
			continue
		}
		if !still && s.cfg.Blobs != nil {
			if err := s.cfg.Blobs.DeleteBlob(ctx, id); err != nil {
				s.cfg.Logger.Warn("hub: deleting a released blob", "blob", id, "err", err)
			}
		}
	}
}

// earlyTombstone keeps a tombstone whose target is not stored here.
func (s *Service) earlyTombstone(ctx context.Context, t *policy.Tombstone) error {
	sl, err := s.lockLog(ctx, t.Server)
	if err != nil {
		return err
	}
	st := sl.log.State()
	err = st.CheckEarlyTombstone(t)
	if err == nil {
		err = st.MayStore(s.node.Identity, s.cfg.NodeCert, t.Channel, s.now())
	}
	sl.mu.Unlock()
	if err != nil {
		return err
	}
	kept, err := s.cfg.Store.PutEarlyTombstone(ctx, storage.Envelope{ID: t.Target, Server: t.Server, Channel: t.Channel, Time: t.TargetTime, Tombstone: t.Raw})
	if err != nil || !kept { // not kept: the envelope was stored meanwhile; the caller may send it again
		return err
	}
	s.metrics.earlyTombstones.WithLabelValues("kept").Inc()
	s.notify(ctx, []Note{{Server: t.Server, Channel: t.Channel, ID: t.Target, Deleted: true}})
	return nil
}

// settleEarly judges, for each envelope just put whose place held an early
// tombstone, that tombstone against it (policy.State.CheckTombstone). An
// authorised one stays: the envelope is deleted on arrival. Otherwise the
// tombstone is dropped and the envelope stored in its place; its result
// in stored is replaced by the new one (not a duplicate), so the caller
// delivers it as any new envelope.
func (s *Service) settleEarly(ctx context.Context, envs []storage.Envelope, stored []storage.Stored) {
	for i, st := range stored {
		if !st.Early {
			continue
		}
		if fresh, ok := s.settle(ctx, envs[i]); ok {
			stored[i] = fresh
		}
	}
}

func (s *Service) settle(ctx context.Context, e storage.Envelope) (storage.Stored, bool) {
	row, err := s.cfg.Store.GetEnvelope(ctx, e.ID)
	if err != nil || row.Raw != nil || row.Tombstone == nil {
		return storage.Stored{}, false
	}
	target, err := s.verifier.Envelope(e.Raw)
	if err != nil {
		return storage.Stored{}, false
	}
	t, err := policy.ParseTombstone(row.Tombstone)
	if err == nil {
		var sl *serverLog
		if sl, err = s.lockLog(ctx, e.Server); err != nil {
			return storage.Stored{}, false
		}
		err = sl.log.State().CheckTombstone(t, target)
		sl.mu.Unlock()
	}
	if err == nil {
		s.metrics.earlyTombstones.WithLabelValues("upheld").Inc()
		return storage.Stored{}, false
	}
	s.metrics.earlyTombstones.WithLabelValues("refused").Inc()
	s.cfg.Logger.Warn("hub: an early tombstone was not authorised for its envelope; storing the envelope", "server", e.Server, "envelope", e.ID, "err", err)
	if err := s.cfg.Store.DropEarlyTombstone(ctx, e.ID); err != nil {
		s.cfg.Logger.Warn("hub: dropping an early tombstone", "envelope", e.ID, "err", err)
		return storage.Stored{}, false
	}
	out, err := s.cfg.Store.PutEnvelopes(ctx, []storage.Envelope{e})
	if err != nil || out[0].Duplicate {
		return storage.Stored{}, false
	}
	return out[0], true
}

// TombstonesFor returns the signed tombstones of deleted envelopes by ID
// for a peer, only of channels the peer may store.
func (s *Service) TombstonesFor(ctx context.Context, server policy.ID, p Peer, ids []policy.ID) ([][]byte, error) {
	chans, err := s.Eligible(ctx, server, p)
	if err != nil {
		return nil, err
	}
	ok := map[policy.ID]bool{}
	for _, c := range chans {
		ok[c] = true
	}
	var out [][]byte
	for _, id := range ids {
		e, err := s.cfg.Store.GetEnvelope(ctx, id)
		if err != nil || e.Server != server || !ok[e.Channel] || e.Tombstone == nil {
			continue
		}
		out = append(out, e.Tombstone)
	}
	return out, nil
}

// TombstoneSet is a channel's deletions (tombstoned envelopes and early
// tombstones) as a reconciliation set, which hubs reconcile beside the
// channel's envelopes so that deletions converge as envelopes do.
func (s *Service) TombstoneSet(server, channel policy.ID) reconcile.Set {
	return tombstoneSet{st: s.cfg.Store, server: server, channel: channel}
}

type tombstoneSet channelSet

func (c tombstoneSet) Fingerprint(ctx context.Context, from, to storage.Key) (storage.Fingerprint, error) {
	return c.st.TombstoneRangeFingerprint(ctx, c.server, c.channel, from, to)
}

func (c tombstoneSet) Keys(ctx context.Context, from, to storage.Key, limit int) ([]storage.Key, error) {
	return c.st.TombstoneRangeKeys(ctx, c.server, c.channel, from, to, min(limit, storage.MaxPage))
}
