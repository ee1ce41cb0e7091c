package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/reconcile"
	"github.com/guildhall/guildhall/wire"
)

// Pushing. Every known peer has an outbox: a queue of at most peerQueue
// notes and a worker that takes up to fetchBatch of them at a time and
// keeps up to pushInFlight batches in flight (a pipeline, not one request
// after another). A batch that fails is tried again pushRetries times,
// pushBackoff apart and doubling; one that still fails, and a note that
// finds the queue full, is counted and leaves its channel dirty: within
// repairEvery the channel is reconciled with the peer, both ways, and what
// the peer lacks is pushed (repair). A peer whose repairs fail waits, from
// repairEvery doubling up to Interval, and its own round pulls anyway. A
// note never goes back to the peer it came from.
const (
	peerQueue    = 16_384
	pushInFlight = 4
	pushRetries  = 3
	pushBackoff  = 200 * time.Millisecond
	pushTimeout  = 10 * time.Second
	repairEvery  = 500 * time.Millisecond
	maxDirty     = 1024 // dirty channels remembered per peer; beyond, every channel is
)

// queued is a note waiting for one peer, with when it was queued.
type queued struct {
	note hub.Note
	at   time.Time
}

type channelKey struct{ server, channel policy.ID }

// outbox is what waits to be pushed to one peer.
type outbox struct {
	id    peer.ID
	label string
	ch    chan queued
	gone  chan struct{} // closed when the peer leaves the table
	// guarded by Replicator.mu:
	dirty    map[channelKey]bool // channels to reconcile with the peer
	all      bool                // dirty overflowed: every channel
	failures int                 // repairs failed in a row
	retryAt  time.Time           // no repair before
}

type sourceKey struct{}

// fromPeer marks a context as handling what peer p sent, so that what is
// stored there is not pushed back to p.
func fromPeer(ctx context.Context, p peer.ID) context.Context {
	return context.WithValue(ctx, sourceKey{}, p)
}

// Notify queues stored envelopes and tombstones for pushing to every peer
// but the one they came from (hub.Notifier). It never blocks: a full
// outbox counts the note as dropped and marks its channel for repair.
func (r *Replicator) Notify(ctx context.Context, notes []hub.Note) error {
	src, _ := ctx.Value(sourceKey{}).(peer.ID)
	now := time.Now()
	for _, b := range r.outboxes() {
		if b.id == src {
			continue
		}
		dropped := 0
		for _, n := range notes {
			if n.ID.IsZero() {
				continue
			}
			select {
			case b.ch <- queued{note: n, at: now}:
			default:
				dropped++
				r.markDirty(b, n.Server, n.Channel)
			}
		}
		if dropped > 0 {
			r.metrics.dropped.WithLabelValues(b.label).Add(float64(dropped))
			r.cfg.Logger.Warn("replica: push queue full, the channel will be reconciled", "peer", b.id, "dropped", dropped, "queue", cap(b.ch))
		}
		r.metrics.queue.WithLabelValues(b.label).Set(float64(len(b.ch)))
	}
	return nil
}

// outboxes returns every known peer's outbox, making those missing once
// the pusher runs (each with its worker).
func (r *Replicator) outboxes() []*outbox {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pushCtx == nil {
		return nil
	}
	out := make([]*outbox, 0, len(r.peers))
	for id, p := range r.peers {
		if p.out == nil {
			p.out = &outbox{id: id, label: id.String(), ch: make(chan queued, r.queueSize), gone: make(chan struct{}), dirty: map[channelKey]bool{}}
			go r.worker(r.pushCtx, p.out)
		}
		out = append(out, p.out)
	}
	return out
}

// current reports whether b is still its peer's outbox (a discovered peer
// dropped from the table loses it).
func (r *Replicator) current(b *outbox) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.peers[b.id]
	return ok && p.out == b
}

func (r *Replicator) markDirty(b *outbox, server, channel policy.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(b.dirty) >= maxDirty {
		b.all = true
		return
	}
	b.dirty[channelKey{server, channel}] = true
}

// peerLabel is a peer's label in the per-peer series: its ID if it is a
// known peer (so the series are bounded), else "other".
func (r *Replicator) peerLabel(p peer.ID) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.peers[p]; ok {
		return p.String()
	}
	return "other"
}

// pusher runs the outboxes until ctx ends, and repairs dirty channels.
func (r *Replicator) pusher(ctx context.Context) {
	r.mu.Lock()
	r.pushCtx = ctx
	r.mu.Unlock()
	r.outboxes()
	t := time.NewTicker(repairEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, b := range r.outboxes() {
			r.repair(ctx, b)
		}
	}
}

// worker pushes one peer's outbox, pushInFlight batches at a time.
func (r *Replicator) worker(ctx context.Context, b *outbox) {
	sem := make(chan struct{}, pushInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer r.metrics.forget(b.label)
	for {
		var batch []queued
		select {
		case <-ctx.Done():
			return
		case <-b.gone:
			return
		case q := <-b.ch:
			batch = append(batch, q)
		}
	fill:
		for len(batch) < fetchBatch {
			select {
			case q := <-b.ch:
				batch = append(batch, q)
			default:
				break fill
			}
		}
		r.metrics.queue.WithLabelValues(b.label).Set(float64(len(b.ch)))
		if !r.current(b) {
			return
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			r.deliver(ctx, b, batch)
		})
	}
}

// deliver pushes one batch to its peer: tombstones, then each server's
// envelopes the peer may store. What fails for good leaves its channels
// dirty.
func (r *Replicator) deliver(ctx context.Context, b *outbox, batch []queued) {
	if _, discovered := r.due(time.Now()); !r.isConfigured(b.id) && !containsPeer(discovered, b.id) {
		r.metrics.dropped.WithLabelValues(b.label).Add(float64(len(batch))) // backing off: its round pulls when due
		return
	}
	to, err := r.peerView(ctx, b.id)
	if err != nil {
		r.failBatch(b, batch, "learning whether the peer is a home node", err)
		return
	}
	oldest := batch[0].at
	byServer := map[policy.ID][]policy.ID{}
	var tombs [][]byte
	var tombNotes []queued
	for _, q := range batch {
		oldest = minTime(oldest, q.at)
		if q.note.Deleted {
			if r.svc.MayReplicate(ctx, q.note.Server, q.note.Channel, to) != nil {
				continue // a peer that may not hold the channel is not told what was deleted in it
			}
			if t, err := r.svc.TombstoneOf(ctx, q.note.ID); err == nil {
				tombs, tombNotes = append(tombs, t), append(tombNotes, q)
			}
			continue
		}
		byServer[q.note.Server] = append(byServer[q.note.Server], q.note.ID)
	}
	if len(tombs) > 0 {
		if err := r.pushObjects(ctx, b, wire.ReplicaRequest{Op: wire.OpTombstones, Objects: tombs}); err != nil {
			r.failBatch(b, tombNotes, "pushing tombstones", err)
		}
	}
	for server, ids := range byServer {
		envs, err := r.svc.FetchFor(ctx, server, to, ids)
		if err != nil || len(envs) == 0 {
			continue // nothing the peer may store
		}
		objs := make([][]byte, len(envs))
		for i, e := range envs {
			objs[i] = e.Raw
		}
		if err := r.pushObjects(ctx, b, wire.ReplicaRequest{Op: wire.OpPush, Server: server, Objects: objs}); err != nil {
			var failed []queued
			for _, q := range batch {
				if q.note.Server == server && !q.note.Deleted {
					failed = append(failed, q)
				}
			}
			r.failBatch(b, failed, "pushing envelopes", err)
		}
	}
	lag := time.Since(oldest).Seconds()
	r.metrics.lag.WithLabelValues(b.label).Set(lag)
	r.metrics.lags.Observe(lag)
}

// pushObjects sends one push or tombstones request, with retries.
func (r *Replicator) pushObjects(ctx context.Context, b *outbox, req wire.ReplicaRequest) error {
	wait := pushBackoff
	var err error
	for try := 0; try <= pushRetries; try++ {
		if try > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
			wait *= 2
		}
		pctx, cancel := context.WithTimeout(ctx, pushTimeout)
		_, err = r.call(pctx, b.id, req)
		cancel()
		if err == nil {
			r.metrics.pushed.WithLabelValues(b.label).Add(float64(len(req.Objects)))
			return nil
		}
		r.cfg.Logger.Debug("replica: push failed, retrying", "peer", b.id, "op", req.Op, "try", try+1, "err", err)
	}
	return err
}

func (r *Replicator) failBatch(b *outbox, batch []queued, what string, err error) {
	if len(batch) == 0 {
		return
	}
	r.metrics.failed.WithLabelValues(b.label).Inc()
	level := slog.LevelWarn
	if errors.Is(err, context.Canceled) {
		level = slog.LevelDebug // shutting down
	}
	r.cfg.Logger.Log(context.Background(), level, "replica: "+what+" failed after retries; the channels will be reconciled", "peer", b.id, "notes", len(batch), "err", err)
	for _, q := range batch {
		r.markDirty(b, q.note.Server, q.note.Channel)
	}
}

// peerView is a peer as policy sees it, having asked it once whether it
// is a home node (its certificate comes with any answer).
func (r *Replicator) peerView(ctx context.Context, p peer.ID) (hub.Peer, error) {
	r.mu.Lock()
	_, known := r.certs[p]
	r.mu.Unlock()
	if !known {
		hctx, cancel := context.WithTimeout(ctx, helloTimeout)
		_, err := r.call(hctx, p, wire.ReplicaRequest{Op: wire.OpHello})
		cancel()
		if err != nil {
			r.outcome(p, err)
			return hub.Peer{}, err
		}
		r.mu.Lock()
		if _, known = r.certs[p]; !known {
			r.certs[p] = nil // asked: not a home node
		}
		r.mu.Unlock()
	}
	return r.hubPeer(p)
}

// repair reconciles a peer's dirty channels with it, both ways: what this
// hub lacks is fetched, what the peer lacks pushed.
func (r *Replicator) repair(ctx context.Context, b *outbox) {
	r.mu.Lock()
	if len(b.dirty) == 0 && !b.all || time.Now().Before(b.retryAt) {
		r.mu.Unlock()
		return
	}
	dirty, all := b.dirty, b.all
	b.dirty, b.all = map[channelKey]bool{}, false
	r.mu.Unlock()
	if all {
		servers, err := r.svc.Hosted(ctx)
		if err != nil {
			return
		}
		for _, s := range servers {
			chans, _ := r.svc.Eligible(ctx, s, hub.Peer{Node: r.svc.NodeID(), Cert: r.svc.NodeCert()})
			for _, ch := range chans {
				dirty[channelKey{s, ch}] = true
			}
		}
	}
	var failed error
	for k := range dirty {
		if failed != nil {
			r.markDirty(b, k.server, k.channel)
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, discoveredSync)
		err := r.repairChannel(rctx, b, k.server, k.channel)
		cancel()
		r.metrics.repairs.WithLabelValues(b.label).Inc()
		if err != nil {
			failed = err
			r.markDirty(b, k.server, k.channel)
		}
	}
	r.mu.Lock()
	if failed != nil {
		b.failures++
		b.retryAt = time.Now().Add(min(repairEvery<<min(b.failures, 16), r.cfg.Interval))
	} else {
		b.failures, b.retryAt = 0, time.Time{}
	}
	r.mu.Unlock()
	if failed != nil && !errors.Is(failed, context.Canceled) {
		r.cfg.Logger.Warn("replica: reconciling channels with a peer after missed pushes", "peer", b.id, "err", failed)
	}
}

// repairChannel reconciles one channel with a peer both ways. Only a peer
// that may hold the channel, in this hub's view, is offered or asked anything.
func (r *Replicator) repairChannel(ctx context.Context, b *outbox, server, channel policy.ID) error {
	to, err := r.peerView(ctx, b.id)
	if err != nil {
		return err
	}
	if r.svc.MayReplicate(ctx, server, channel, to) != nil {
		return nil
	}
	exchange := func(ctx context.Context, in []reconcile.Range) ([]reconcile.Range, error) {
		res, err := r.call(ctx, b.id, wire.ReplicaRequest{Op: wire.OpRanges, Server: server, Channel: channel, Ranges: wire.FromRanges(in)})
		if err != nil {
			return nil, err
		}
		return wire.ToRanges(res.Ranges)
	}
	missing, extra, _, err := reconcile.RunBoth(ctx, r.svc.ChannelSet(server, channel), exchange, maxRanges, maxRounds)
	if err != nil {
		return err
	}
	if _, err := r.fetch(fromPeer(ctx, b.id), b.id, to, server, missing); err != nil {
		return err
	}
	for i := 0; i < len(extra); i += fetchBatch {
		ids := make([]policy.ID, 0, fetchBatch)
		for _, k := range extra[i:min(i+fetchBatch, len(extra))] {
			ids = append(ids, k.ID)
		}
		envs, err := r.svc.FetchFor(ctx, server, to, ids)
		if err != nil {
			return err
		}
		objs := make([][]byte, 0, len(envs))
		for _, e := range envs {
			objs = append(objs, e.Raw)
		}
		if len(objs) == 0 {
			continue
		}
		if err := r.pushObjects(ctx, b, wire.ReplicaRequest{Op: wire.OpPush, Server: server, Objects: objs}); err != nil {
			return err
		}
	}
	_, err = r.syncDeletions(fromPeer(ctx, b.id), b.id, to, server, channel)
	return err
}

func containsPeer(ps []peer.AddrInfo, id peer.ID) bool {
	for _, p := range ps {
		if p.ID == id {
			return true
		}
	}
	return false
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
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
