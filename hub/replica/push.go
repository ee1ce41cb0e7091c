package replica

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/guildhall/guildhall/discovery"
	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// pusher sends newly stored envelopes to every known peer, in batches.
func (r *Replicator) pusher(ctx context.Context) {
	for {
		var batch []hub.Note
		select {
		case <-ctx.Done():
			return
		case n := <-r.push:
			batch = append(batch, n)
		}
		for len(batch) < fetchBatch {
			select {
			case n := <-r.push:
				batch = append(batch, n)
				continue
			default:
			}
			break
		}
		r.pushBatch(ctx, batch)
	}
}

func (r *Replicator) pushBatch(ctx context.Context, notes []hub.Note) {
	byServer := map[policy.ID][]policy.ID{}
	var tombs [][]byte
	for _, n := range notes {
		if n.Deleted {
			if t, err := r.svc.TombstoneOf(ctx, n.ID); err == nil {
				tombs = append(tombs, t)
			}
			continue
		}
		byServer[n.Server] = append(byServer[n.Server], n.ID)
	}
	// To every peer that is due (a discovered one that failed waits for
	// its backoff), syncWorkers at a time: a stalling peer holds up no
	// other for more than its timeouts.
	configured, discovered := r.due(time.Now())
	var wg sync.WaitGroup
	sem := make(chan struct{}, syncWorkers)
	for _, p := range append(configured, discovered...) {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			r.pushTo(ctx, p.ID, byServer, tombs)
		})
	}
	wg.Wait()
}

// pushTo pushes tombstones and envelopes to one peer, only what it may store.
func (r *Replicator) pushTo(ctx context.Context, p peer.ID, byServer map[policy.ID][]policy.ID, tombs [][]byte) {
	if len(tombs) > 0 {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		r.call(pctx, p, wire.ReplicaRequest{Op: wire.OpTombstones, Objects: tombs})
		cancel()
	}
	node, err := discovery.NodeKey(p)
	if err != nil {
		return
	}
	for server, ids := range byServer {
		// Only what the peer may store is offered.
		r.mu.Lock()
		cert, known := r.certs[p]
		r.mu.Unlock()
		if !known { // learn whether it is a home node (its certificate comes with any answer)
			hctx, cancel := context.WithTimeout(ctx, helloTimeout)
			_, err := r.call(hctx, p, wire.ReplicaRequest{Op: wire.OpHello})
			cancel()
			if err != nil {
				r.outcome(p, err)
				return
			}
			r.mu.Lock()
			cert, known = r.certs[p]
			if !known {
				r.certs[p] = nil // asked: not a home node
			}
			r.mu.Unlock()
		}
		envs, err := r.svc.FetchFor(ctx, server, hub.Peer{Node: node, Cert: cert}, ids)
		if err != nil || len(envs) == 0 {
			continue
		}
		objs := make([][]byte, len(envs))
		for i, e := range envs {
			objs[i] = e.Raw
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if _, err := r.call(pctx, p, wire.ReplicaRequest{Op: wire.OpPush, Server: server, Objects: objs}); err != nil {
			r.cfg.Logger.Debug("replica: push", "peer", p, "err", err)
		}
		cancel()
	}
}

// maxBlobFetches bounds the lazy blob fetches in flight, blobTimeout each
// peer's answer.
const (
	maxBlobFetches = 8
	blobTimeout    = 10 * time.Second
)

// FetchBlob asks peers for a blob a server references (the hub's lazy blob
// replication: see hub.Config.Blobs). A reader's request makes the hub
// dial nothing: only peers already connected that may replicate the
// server, in this hub's view, are asked, each for at most blobTimeout, and
// at most maxBlobFetches fetches run at once (ErrBusy beyond). The bytes
// are checked against the ID by the caller.
func (r *Replicator) FetchBlob(ctx context.Context, server, id policy.ID) ([]byte, error) {
	select {
	case r.blobs <- struct{}{}:
		defer func() { <-r.blobs }()
	default:
		r.metrics.refuse(reasonBlobBusy)
		return nil, ErrBusy
	}
	ctx = network.WithNoDial(ctx, "lazy blob replication asks connected peers only")
	var errs []error
	asked := 0
	for _, p := range r.known() {
		if r.cfg.Host.Network().Connectedness(p.ID) != network.Connected {
			continue
		}
		from, err := r.hubPeer(p.ID)
		if err != nil || r.svc.MayReplicate(ctx, server, policy.ID{}, from) != nil {
			continue
		}
		asked++
		pctx, cancel := context.WithTimeout(ctx, blobTimeout)
		res, err := r.call(pctx, p.ID, wire.ReplicaRequest{Op: wire.OpBlob, Server: server, IDs: []policy.ID{id}})
		cancel()
		if err == nil && len(res.Objects) == 1 && policy.Sum(res.Objects[0]) == id {
			return res.Objects[0], nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("replica: none of %d connected peers holds blob %s: %w", asked, id, errors.Join(errs...))
}
