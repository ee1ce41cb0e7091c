package replica

import (
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/guildhall/guildhall/discovery"
	"github.com/guildhall/guildhall/wire"
)

// MaxDiscovered bounds the peers a hub learns from the DHT and from invite
// hints (its configured peers are not counted): what others publish cannot
// grow the set of hubs it dials without end.
const MaxDiscovered = 64

// Bounds on what a discovered peer (one the operator did not configure)
// can hold up. A round syncs the configured peers at once, beside the
// discovery, each on its own. It then greets every discovered peer at
// once (at most MaxDiscovered), each given helloTimeout to answer, and
// syncs those that answered syncWorkers at a time, each request after the
// hello given discoveredCall. So peers that stall delay no real peer's
// sync, configured or discovered, and hold the round up by helloTimeout
// (5 s) at most. A peer that fails is not tried again for a backoff that
// doubles from Interval up to maxBackoff, and it is the first to make room
// when the table is full.
const (
	syncWorkers    = 8
	helloTimeout   = 5 * time.Second
	discoveredCall = 15 * time.Second
	discoveredSync = 2 * time.Minute
	configuredSync = 5 * time.Minute
	maxBackoff     = time.Hour
)

// peerState is one known peer hub.
type peerState struct {
	info       peer.AddrInfo
	configured bool      // the operator's (Config.Peers, AddPeer), else discovered
	failures   int       // syncs failed in a row
	retryAt    time.Time // a failed discovered peer is not tried before
	out        *outbox   // what waits to be pushed to it, once the pusher runs
}

// AddPeer adds a hub to replicate with, as the operator's: its addresses
// are trusted, whatever range they are in, and it is never dropped.
func (r *Replicator) AddPeer(p peer.AddrInfo) {
	if len(p.Addrs) > 0 {
		r.cfg.Host.Peerstore().AddAddrs(p.ID, p.Addrs, peerstore.PermanentAddrTTL)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.peers[p.ID] = &peerState{info: p, configured: true}
}

// discovered adds a peer learnt from untrusted data: its special-purpose
// addresses dropped (unless Config.DialPrivate), and none at all if that
// leaves it none; while fewer than MaxDiscovered are known beyond the
// configured ones, or in the place of one that has failed.
func (r *Replicator) discovered(p peer.AddrInfo) {
	if p.ID == r.cfg.Host.ID() {
		return
	}
	if !r.cfg.DialPrivate && len(p.Addrs) > 0 {
		public := discovery.PublicAddrs(p.Addrs)
		for range len(p.Addrs) - len(public) {
			r.metrics.refuse(reasonPrivateAddress)
		}
		if len(public) == 0 {
			return
		}
		p.Addrs = public
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, known := r.peers[p.ID]; known {
		if !old.configured && len(p.Addrs) > 0 {
			old.info = p
			r.cfg.Host.Peerstore().AddAddrs(p.ID, p.Addrs, time.Hour)
		}
		return
	}
	n := 0
	var worst *peerState
	for _, s := range r.peers {
		if s.configured {
			continue
		}
		n++
		if s.failures > 0 && (worst == nil || s.failures > worst.failures) {
			worst = s
		}
	}
	if n >= MaxDiscovered {
		if worst == nil {
			r.metrics.refuse(reasonTableFull)
			return
		}
		delete(r.peers, worst.info.ID)
		if worst.out != nil {
			close(worst.out.gone) // its worker ends
		}
	}
	if len(p.Addrs) > 0 {
		r.cfg.Host.Peerstore().AddAddrs(p.ID, p.Addrs, time.Hour)
	}
	r.peers[p.ID] = &peerState{info: p}
}

// known lists the known peers.
func (r *Replicator) known() []peer.AddrInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]peer.AddrInfo, 0, len(r.peers))
	for _, p := range r.peers {
		out = append(out, p.info)
	}
	return out
}

// due lists the configured peers, and the discovered ones not backing off.
func (r *Replicator) due(now time.Time) (configured, discovered []peer.AddrInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.peers {
		switch {
		case p.configured:
			configured = append(configured, p.info)
		case !now.Before(p.retryAt):
			discovered = append(discovered, p.info)
		}
	}
	return configured, discovered
}

// outcome records how a sync with a peer went.
func (r *Replicator) outcome(p peer.ID, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.peers[p]
	if !ok {
		return
	}
	if err == nil {
		s.failures, s.retryAt = 0, time.Time{}
		return
	}
	s.failures++
	if !s.configured {
		s.retryAt = time.Now().Add(min(r.cfg.Interval<<min(s.failures, 16), maxBackoff))
	}
}

// isConfigured reports whether p is one of the operator's peers.
func (r *Replicator) isConfigured(p peer.ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.peers[p]
	return ok && s.configured
}

// callTimeout bounds one request to p: the operator's peers get long
// ones, others a short first contact and short requests after it.
func (r *Replicator) callTimeout(p peer.ID, op string) time.Duration {
	switch {
	case r.isConfigured(p):
		return callTimeout
	case op == wire.OpHello:
		return helloTimeout
	}
	return discoveredCall
}

// round discovers peers and syncs with every one that is due: the
// configured ones at once, while the DHT and invite hints are read; then
// the discovered ones that answer a hello, syncWorkers at a time.
func (r *Replicator) round(ctx context.Context) {
	configured, _ := r.due(time.Now())
	var wg sync.WaitGroup
	for _, p := range configured {
		wg.Go(func() { r.syncOne(ctx, p, configuredSync) })
	}
	r.discover(ctx)
	_, discovered := r.due(time.Now())
	alive := make(chan peer.AddrInfo, len(discovered))
	var greet sync.WaitGroup
	for _, p := range discovered {
		greet.Go(func() {
			if _, err := r.call(ctx, p.ID, wire.ReplicaRequest{Op: wire.OpHello}); err != nil { // within helloTimeout
				r.outcome(p.ID, err)
				return
			}
			alive <- p
		})
	}
	go func() { greet.Wait(); close(alive) }()
	sem := make(chan struct{}, syncWorkers)
	for p := range alive {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			r.syncOne(ctx, p, discoveredSync)
		})
	}
	wg.Wait()
}

func (r *Replicator) syncOne(ctx context.Context, p peer.AddrInfo, limit time.Duration) {
	sctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	_, err := r.Sync(sctx, p)
	if err != nil && ctx.Err() == nil {
		r.cfg.Logger.Warn("replica: sync with a peer failed", "peer", p.ID, "err", err)
	}
	r.outcome(p.ID, err)
}

// discover announces the hosted servers in the DHT and learns peers from
// it and from the hub addresses of applied joins' invites.
func (r *Replicator) discover(ctx context.Context) {
	servers, err := r.svc.Hosted(ctx)
	if err != nil {
		r.cfg.Logger.Warn("replica: listing hosted servers", "err", err)
		return
	}
	if r.cfg.DHT != nil {
		for _, s := range servers {
			actx, cancel := context.WithTimeout(ctx, 30*time.Second)
			if err := discovery.Announce(actx, r.cfg.DHT, discovery.ServerCID(s)); err != nil {
				r.cfg.Logger.Debug("replica: announcing", "server", s, "err", err)
			}
			found, _ := discovery.Find(actx, r.cfg.DHT, discovery.ServerCID(s), 20)
			cancel()
			for _, p := range found {
				r.discovered(p)
			}
		}
	}
	for _, s := range servers { // invites' hints that are libp2p addresses of hubs
		hints, _ := r.svc.InviteHints(ctx, s)
		for _, h := range hints {
			if ai, err := peer.AddrInfoFromString(h); err == nil {
				r.discovered(*ai)
			}
		}
	}
}
