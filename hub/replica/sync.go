package replica

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/guildhall/guildhall/discovery"
	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/reconcile"
	"github.com/guildhall/guildhall/wire"
)

// SyncStats reports one synchronisation with a peer.
type SyncStats struct {
	Servers, Events, Envelopes, Rounds int
	// Refused counts the servers and channels the peer offered but may not
	// replicate, in this hub's view: nothing of them was taken.
	Refused int
	// Adopted counts the servers this hub did not host that it took from
	// the peer's state log (hub.Service.AdoptFrom).
	Adopted int
}

// Sync pulls from one peer everything it holds of the servers it offers
// (those both host, and those this hub does not host yet but may replicate
// by the peer's state log, which it then adopts, at most maxAdopt a sync)
// that this hub may store: state events, then every eligible channel by
// reconciliation. It takes them only from a peer that may replicate them
// in this hub's view (hub.Service.MayReplicate, as the serving side asks of
// its requester): the state log of a server only from a peer that may
// replicate the server, a channel only from one that may hold the channel.
// Anyone else answering at a peer's address offers nothing this hub takes;
// Refused counts the servers and channels skipped so.
func (r *Replicator) Sync(ctx context.Context, p peer.AddrInfo) (SyncStats, error) {
	var st SyncStats
	if len(p.Addrs) > 0 {
		r.cfg.Host.Peerstore().AddAddrs(p.ID, p.Addrs, time.Hour)
	}
	servers, err := r.svc.Hosted(ctx)
	if err != nil {
		return st, err
	}
	hello, err := r.call(ctx, p.ID, wire.ReplicaRequest{Op: wire.OpHello, Servers: servers})
	if err != nil {
		return st, err
	}
	from, err := r.hubPeer(p.ID)
	if err != nil {
		return st, err
	}
	adopted := 0
	for _, server := range hello.Servers {
		switch has, err := r.svc.HasLog(ctx, server); {
		case err != nil:
			return st, err
		case !has: // a server this hub may host, by the peer's state log: checked against the log itself
			if adopted >= maxAdopt {
				r.metrics.refuse(reasonAdoptLimit)
				continue
			}
			adopted++
			n, err := r.adopt(ctx, p.ID, from, server)
			if err != nil {
				r.metrics.refuse(reasonNotOffered)
				r.cfg.Logger.Warn("replica: not taking a server a peer offered", "peer", p.ID, "server", server, "err", err)
				st.Refused++
				continue
			}
			st.Adopted++
			st.Events += n
		}
		if err := r.svc.MayReplicate(ctx, server, policy.ID{}, from); err != nil {
			r.metrics.refuse(reasonNotGranted)
			st.Refused++
			continue
		}
		st.Servers++
		n, err := r.syncEvents(ctx, p.ID, server)
		st.Events += n
		if err != nil {
			return st, err
		}
		chans, err := r.svc.Eligible(ctx, server, hub.Peer{Node: r.svc.NodeID(), Cert: r.svc.NodeCert()})
		if err != nil {
			return st, err
		}
		for _, ch := range chans {
			if err := r.svc.MayReplicate(ctx, server, ch, from); err != nil {
				r.metrics.refuse(reasonNotGranted)
				st.Refused++
				continue
			}
			n, rounds, err := r.syncChannel(ctx, p.ID, from, server, ch)
			st.Envelopes += n
			st.Rounds += rounds
			if err != nil {
				return st, err
			}
		}
	}
	return st, nil
}

// adopt takes a server this hub does not host from a peer's state log
// (hub.Service.AdoptFrom judges it), the first page of it: syncEvents
// brings the rest.
func (r *Replicator) adopt(ctx context.Context, p peer.ID, from hub.Peer, server policy.ID) (int, error) {
	res, err := r.call(ctx, p, wire.ReplicaRequest{Op: wire.OpEvents, Server: server})
	if err != nil {
		return 0, err
	}
	n, err := r.svc.AdoptFrom(ctx, server, from, res.Events)
	if err == nil && n > 0 { // else a client's publication admitted it meanwhile
		r.metrics.adopted.Inc()
		r.cfg.Logger.Info("replica: hosting a server a peer offered", "peer", p, "server", server, "events", n)
	}
	return n, err
}

func (r *Replicator) syncEvents(ctx context.Context, p peer.ID, server policy.ID) (int, error) {
	total := 0
	for {
		have, err := r.svc.EventIDs(ctx, server)
		if err != nil {
			return total, err
		}
		res, err := r.call(ctx, p, wire.ReplicaRequest{Op: wire.OpEvents, Server: server, Have: have})
		if err != nil {
			return total, err
		}
		n, err := r.svc.ReplicateEvents(ctx, server, res.Events)
		total += n
		if err != nil || !res.More || n == 0 {
			return total, err
		}
	}
}

func (r *Replicator) syncChannel(ctx context.Context, p peer.ID, from hub.Peer, server, channel policy.ID) (int, int, error) {
	exchange := func(ctx context.Context, in []reconcile.Range) ([]reconcile.Range, error) {
		res, err := r.call(ctx, p, wire.ReplicaRequest{Op: wire.OpRanges, Server: server, Channel: channel, Ranges: wire.FromRanges(in)})
		if err != nil {
			return nil, err
		}
		return wire.ToRanges(res.Ranges)
	}
	missing, st, err := reconcile.Run(ctx, r.svc.ChannelSet(server, channel), exchange, maxRanges, maxRounds)
	if err != nil {
		return 0, st.Rounds, err
	}
	n, err := r.fetch(fromPeer(ctx, p), p, from, server, missing)
	if err != nil {
		return n, st.Rounds, err
	}
	_, err = r.syncDeletions(fromPeer(ctx, p), p, from, server, channel)
	return n, st.Rounds, err
}

// fetch fetches envelopes by key from a peer, fetchBatch at a time, and
// takes those of channels the peer may hold; it returns how many were new.
func (r *Replicator) fetch(ctx context.Context, p peer.ID, from hub.Peer, server policy.ID, missing []reconcile.Key) (int, error) {
	stored := 0
	for i := 0; i < len(missing); i += fetchBatch {
		ids := make([]policy.ID, 0, fetchBatch)
		for _, k := range missing[i:min(i+fetchBatch, len(missing))] {
			ids = append(ids, k.ID)
		}
		res, err := r.call(ctx, p, wire.ReplicaRequest{Op: wire.OpFetch, Server: server, IDs: ids})
		if err != nil {
			return stored, err
		}
		n, err := r.svc.ReplicateEnvelopesFrom(ctx, from, res.Objects)
		stored += n
		if err != nil {
			return stored, err
		}
	}
	return stored, nil
}

// hubPeer is a peer as policy sees it: its node key, and its certificate
// as a home node if it presented one.
func (r *Replicator) hubPeer(p peer.ID) (hub.Peer, error) {
	node, err := discovery.NodeKey(p)
	if err != nil {
		return hub.Peer{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return hub.Peer{Node: node, Cert: r.certs[p]}, nil
}
