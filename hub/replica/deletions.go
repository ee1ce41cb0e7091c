package replica

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/reconcile"
	"github.com/guildhall/guildhall/wire"
)

// syncDeletions reconciles a channel's deletions with a peer both ways,
// after its envelopes: the set of rows holding a tombstone
// (hub.Service.TombstoneSet). Tombstones the peer holds and this hub lacks
// are fetched and judged here (hub.Service.TombstonesFrom: applied, or kept
// early when the envelope is not here); those this hub holds and the peer
// lacks are sent to it. Then, for the latter, the peer's envelopes of those
// IDs are fetched: a peer that refused a tombstone (not authorised for the
// envelope it holds) answers with the envelope, which settles an early
// tombstone of this hub's that was not authorised either. from is the
// peer as a source, to as a destination (the same peer; both views are
// this hub's). It returns how many tombstones it took.
func (r *Replicator) syncDeletions(ctx context.Context, p peer.ID, peerAsHub hub.Peer, server, channel policy.ID) (int, error) {
	exchange := func(ctx context.Context, in []reconcile.Range) ([]reconcile.Range, error) {
		res, err := r.call(ctx, p, wire.ReplicaRequest{Op: wire.OpRanges, Server: server, Channel: channel, Set: wire.SetTombstones, Ranges: wire.FromRanges(in)})
		if err != nil {
			return nil, err
		}
		return wire.ToRanges(res.Ranges)
	}
	missing, extra, _, err := reconcile.RunBoth(ctx, r.svc.TombstoneSet(server, channel), exchange, maxRanges, maxRounds)
	if err != nil {
		return 0, err
	}
	taken := 0
	for _, ids := range idBatches(missing) {
		res, err := r.call(ctx, p, wire.ReplicaRequest{Op: wire.OpFetch, Server: server, Set: wire.SetTombstones, IDs: ids})
		if err != nil {
			return taken, err
		}
		for _, err := range r.svc.TombstonesFrom(ctx, peerAsHub, res.Objects) {
			if err == nil {
				taken++
			}
		}
	}
	for _, ids := range idBatches(extra) {
		tombs, err := r.svc.TombstonesFor(ctx, server, peerAsHub, ids)
		if err != nil {
			return taken, err
		}
		if len(tombs) > 0 {
			if _, err := r.call(ctx, p, wire.ReplicaRequest{Op: wire.OpTombstones, Objects: tombs}); err != nil {
				return taken, err
			}
		}
	}
	if len(extra) > 0 {
		if _, err := r.fetch(ctx, p, peerAsHub, server, extra); err != nil {
			return taken, err
		}
	}
	return taken, nil
}

// idBatches splits keys into batches of IDs of at most fetchBatch.
func idBatches(keys []reconcile.Key) [][]policy.ID {
	var out [][]policy.ID
	for i := 0; i < len(keys); i += fetchBatch {
		ids := make([]policy.ID, 0, fetchBatch)
		for _, k := range keys[i:min(i+fetchBatch, len(keys))] {
			ids = append(ids, k.ID)
		}
		out = append(out, ids)
	}
	return out
}
