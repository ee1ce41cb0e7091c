// Package replica replicates a hub's servers with other hubs over libp2p
// streams: hubs find each other (static peers, the DHT under each server's
// key), exchange the state events the other lacks, reconcile each channel
// both may store by range fingerprints (package reconcile) and fetch what
// differs, and push new envelopes as they are stored. Both sides verify
// everything with policy, and eligibility is enforced on both: a channel is
// never offered to, nor accepted by, a hub that may not store it.
//
// A hub is identified by its libp2p peer ID, whose key is the hub's node
// key: the key storage grants name and receipts verify under.
//
// The messages, their framing and their decoding limits are package wire's
// (wire/replica.go). The replicator never decides eligibility or validity
// itself: it asks hub.Service, which asks policy.
package replica

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"sync"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"

	"github.com/guildhall/guildhall/discovery"
	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/reconcile"
	"github.com/guildhall/guildhall/wire"
)

// Protocol is the replication protocol's libp2p ID.
const Protocol protocol.ID = "/guildhall/replicate/1"

// Limits of the protocol.
const (
	maxRanges   = 4096   // ranges of one reconciliation round
	fetchBatch  = 512    // envelopes fetched per request
	eventsBatch = 10_000 // events returned per request
	pushQueue   = 4096   // envelopes waiting to be pushed
	maxRounds   = 48
	// serveTimeout bounds answering one request; callTimeout, a request
	// whose context has no deadline of its own (the peer gives up after
	// serveTimeout anyway).
	serveTimeout = 2 * time.Minute
	callTimeout  = serveTimeout
)

// Config configures a Replicator.
type Config struct {
	Service *hub.Service
	// Host is the hub's libp2p host; its key must be the hub's node key.
	Host host.Host
	// DHT, if set, is where the hub announces the servers it hosts and
	// finds other hubs of them.
	DHT *dht.IpfsDHT
	// Peers are hubs to replicate with whatever the DHT says.
	Peers []peer.AddrInfo
	// Interval between full reconciliations with every peer; default 30 s.
	Interval time.Duration
	// Logger; default discards.
	Logger *slog.Logger
}

// Replicator runs replication for one hub.
type Replicator struct {
	cfg  Config
	svc  *hub.Service
	push chan hub.Note

	mu    sync.Mutex
	peers map[peer.ID]peer.AddrInfo      // guarded by mu: known peer hubs
	certs map[peer.ID]*policy.DeviceCert // guarded by mu: home nodes' certificates, as they presented them
}

// New returns a Replicator and starts serving the protocol.
func New(cfg Config) (*Replicator, error) {
	if cfg.Service == nil || cfg.Host == nil {
		return nil, errors.New("replica: Service and Host are required")
	}
	node, err := discovery.NodeKey(cfg.Host.ID())
	if err != nil || node != cfg.Service.NodeID() {
		return nil, errors.New("replica: the libp2p host's key must be the hub's node key")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Replicator{cfg: cfg, svc: cfg.Service, push: make(chan hub.Note, pushQueue), peers: map[peer.ID]peer.AddrInfo{}, certs: map[peer.ID]*policy.DeviceCert{}}
	for _, p := range cfg.Peers {
		r.AddPeer(p)
	}
	cfg.Host.SetStreamHandler(Protocol, r.serve)
	return r, nil
}

// MaxDiscovered bounds the peers a hub learns from the DHT and from invite
// hints (its configured peers are not counted): what others publish cannot
// grow the set of hubs it dials without end.
const MaxDiscovered = 64

// AddPeer adds a hub to replicate with.
func (r *Replicator) AddPeer(p peer.AddrInfo) {
	if len(p.Addrs) > 0 {
		r.cfg.Host.Peerstore().AddAddrs(p.ID, p.Addrs, peerstore.PermanentAddrTTL)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.peers[p.ID] = p
}

// discovered adds a peer learnt from untrusted data, while fewer than
// MaxDiscovered are known beyond the configured ones.
func (r *Replicator) discovered(p peer.AddrInfo) {
	r.mu.Lock()
	_, known := r.peers[p.ID]
	full := len(r.peers)-len(r.cfg.Peers) >= MaxDiscovered
	r.mu.Unlock()
	if known || !full {
		r.AddPeer(p)
	}
}

// Notify queues stored envelopes for pushing to peers (hub.Notifier). A
// full queue drops: the periodic reconciliation catches up.
func (r *Replicator) Notify(_ context.Context, notes []hub.Note) error {
	for _, n := range notes {
		if n.ID.IsZero() {
			continue
		}
		// envelopes and tombstones both travel
		select {
		case r.push <- n:
		default:
		}
	}
	return nil
}

// Run replicates until ctx ends: pushes as envelopes are stored, and every
// Interval announces, discovers and reconciles with every peer.
func (r *Replicator) Run(ctx context.Context) {
	go r.pusher(ctx)
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		r.round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Replicator) round(ctx context.Context) {
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
				if p.ID != r.cfg.Host.ID() {
					r.discovered(p)
				}
			}
		}
	}
	for _, s := range servers { // invites' hints that are libp2p addresses of hubs
		hints, _ := r.svc.InviteHints(ctx, s)
		for _, h := range hints {
			if ai, err := peer.AddrInfoFromString(h); err == nil && ai.ID != r.cfg.Host.ID() {
				r.discovered(*ai)
			}
		}
	}
	for _, p := range r.known() {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		if _, err := r.Sync(sctx, p); err != nil {
			r.cfg.Logger.Debug("replica: sync", "peer", p.ID, "err", err)
		}
		cancel()
	}
}

func (r *Replicator) known() []peer.AddrInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]peer.AddrInfo, 0, len(r.peers))
	for _, p := range r.peers {
		out = append(out, p)
	}
	return out
}

// call sends one request to a peer on a new stream and reads the answer.
func (r *Replicator) call(ctx context.Context, p peer.ID, req wire.ReplicaRequest) (wire.ReplicaResponse, error) {
	var res wire.ReplicaResponse
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, callTimeout)
		defer cancel()
	}
	s, err := r.cfg.Host.NewStream(ctx, p, Protocol)
	// Two hubs dialling each other at once can fail both handshakes: try
	// again, twice, after a random pause so that the two do not collide again.
	for try := 0; err != nil && try < 2; try++ {
		select {
		case <-ctx.Done():
			return res, err
		case <-time.After(time.Duration(50+mathrand.IntN(200)) * time.Millisecond):
		}
		if sw, ok := r.cfg.Host.Network().(*swarm.Swarm); ok {
			sw.Backoff().Clear(p)
		}
		s, err = r.cfg.Host.NewStream(ctx, p, Protocol)
	}
	if err != nil {
		return res, err
	}
	defer s.Close()
	dl, _ := ctx.Deadline()
	s.SetDeadline(dl)
	if cert := r.svc.NodeCert(); cert != nil {
		req.Cert = cert.Raw
	}
	if err := wire.WriteReplica(s, req); err != nil {
		s.Reset()
		return res, err
	}
	if err := wire.ReadReplica(bufio.NewReader(s), &res); err != nil {
		s.Reset()
		return res, err
	}
	r.learnCert(p, res.Cert)
	if res.Error != "" {
		return res, fmt.Errorf("replica: peer %s: %s", p, res.Error)
	}
	return res, nil
}

// learnCert remembers a peer's certificate as a home node, if it is one
// for the peer's own key.
func (r *Replicator) learnCert(p peer.ID, raw []byte) *policy.DeviceCert {
	if len(raw) == 0 {
		return nil
	}
	node, err := discovery.NodeKey(p)
	if err != nil {
		return nil
	}
	c, err := policy.ParseDeviceCert(raw)
	if err != nil || c.Device != node {
		return nil
	}
	r.mu.Lock()
	r.certs[p] = c
	r.mu.Unlock()
	return c
}

// serve answers one request of a peer.
func (r *Replicator) serve(s network.Stream) {
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), serveTimeout)
	defer cancel()
	dl, _ := ctx.Deadline()
	s.SetDeadline(dl)
	var req wire.ReplicaRequest
	if err := wire.ReadReplica(bufio.NewReader(s), &req); err != nil {
		s.Reset()
		return
	}
	node, err := discovery.NodeKey(s.Conn().RemotePeer())
	if err != nil {
		wire.WriteReplica(s, wire.ReplicaResponse{Error: err.Error()})
		return
	}
	p := hub.Peer{Node: node}
	if len(req.Cert) > 0 {
		p.Cert = r.learnCert(s.Conn().RemotePeer(), req.Cert)
	}
	res, err := r.answer(ctx, p, req)
	if err != nil {
		res = wire.ReplicaResponse{Error: err.Error()}
	}
	if cert := r.svc.NodeCert(); cert != nil {
		res.Cert = cert.Raw
	}
	wire.WriteReplica(s, res)
}

func (r *Replicator) answer(ctx context.Context, p hub.Peer, req wire.ReplicaRequest) (wire.ReplicaResponse, error) {
	switch req.Op {
	case wire.OpHello:
		mine, err := r.svc.Hosted(ctx)
		if err != nil {
			return wire.ReplicaResponse{}, err
		}
		theirs := map[policy.ID]bool{}
		for _, s := range req.Servers {
			theirs[s] = true
		}
		var common []policy.ID
		for _, s := range mine {
			if theirs[s] && r.svc.MayReplicate(ctx, s, policy.ID{}, p) == nil {
				common = append(common, s)
			}
		}
		return wire.ReplicaResponse{Servers: common}, nil
	case wire.OpEvents:
		if err := r.svc.MayReplicate(ctx, req.Server, policy.ID{}, p); err != nil {
			return wire.ReplicaResponse{}, err
		}
		have := make(map[policy.ID]bool, len(req.Have))
		for _, id := range req.Have {
			have[id] = true
		}
		evs, err := r.svc.EventsExcept(ctx, req.Server, have, eventsBatch)
		return wire.ReplicaResponse{Events: evs, More: len(evs) == eventsBatch}, err
	case wire.OpRanges:
		if err := r.svc.MayReplicate(ctx, req.Server, req.Channel, p); err != nil {
			return wire.ReplicaResponse{}, err
		}
		in, err := wire.ToRanges(req.Ranges)
		if err != nil {
			return wire.ReplicaResponse{}, err
		}
		out, err := reconcile.Answer(ctx, r.svc.ChannelSet(req.Server, req.Channel), in, maxRanges, time.Now().UnixMilli())
		return wire.ReplicaResponse{Ranges: wire.FromRanges(out)}, err
	case wire.OpFetch:
		if len(req.IDs) > fetchBatch {
			return wire.ReplicaResponse{}, fmt.Errorf("replica: %d IDs in one fetch, limit %d", len(req.IDs), fetchBatch)
		}
		envs, err := r.svc.FetchFor(ctx, req.Server, p, req.IDs)
		if err != nil {
			return wire.ReplicaResponse{}, err
		}
		out := make([][]byte, len(envs))
		for i, e := range envs {
			out[i] = e.Raw
		}
		return wire.ReplicaResponse{Objects: out}, nil
	case wire.OpPush:
		if len(req.Objects) > fetchBatch {
			return wire.ReplicaResponse{}, fmt.Errorf("replica: %d envelopes in one push, limit %d", len(req.Objects), fetchBatch)
		}
		_, err := r.svc.PushEnvelopes(ctx, req.Objects) // each verified, fresh, and judged eligible here
		return wire.ReplicaResponse{}, err
	case wire.OpTombstones:
		if len(req.Objects) > fetchBatch {
			return wire.ReplicaResponse{}, fmt.Errorf("replica: %d tombstones in one push, limit %d", len(req.Objects), fetchBatch)
		}
		r.svc.Tombstone(ctx, req.Objects) // each checked against this hub's state; unknown targets are skipped
		return wire.ReplicaResponse{}, nil
	case wire.OpBlob:
		if len(req.IDs) != 1 {
			return wire.ReplicaResponse{}, errors.New("replica: one blob per request")
		}
		if err := r.svc.MayReplicate(ctx, req.Server, policy.ID{}, p); err != nil {
			return wire.ReplicaResponse{}, err
		}
		b, err := r.svc.ReadBlob(ctx, req.Server, req.IDs[0])
		return wire.ReplicaResponse{Objects: [][]byte{b}}, err
	}
	return wire.ReplicaResponse{}, fmt.Errorf("replica: unknown operation %q", req.Op)
}

// SyncStats reports one synchronisation with a peer.
type SyncStats struct {
	Servers, Events, Envelopes, Rounds int
}

// Sync pulls from one peer everything it holds of the servers both host
// that this hub may store: state events, then every eligible channel by
// reconciliation.
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
	for _, server := range hello.Servers {
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
			n, rounds, err := r.syncChannel(ctx, p.ID, server, ch)
			st.Envelopes += n
			st.Rounds += rounds
			if err != nil {
				return st, err
			}
		}
	}
	return st, nil
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

func (r *Replicator) syncChannel(ctx context.Context, p peer.ID, server, channel policy.ID) (int, int, error) {
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
	stored := 0
	for i := 0; i < len(missing); i += fetchBatch {
		ids := make([]policy.ID, 0, fetchBatch)
		for _, k := range missing[i:min(i+fetchBatch, len(missing))] {
			ids = append(ids, k.ID)
		}
		res, err := r.call(ctx, p, wire.ReplicaRequest{Op: wire.OpFetch, Server: server, IDs: ids})
		if err != nil {
			return stored, st.Rounds, err
		}
		n, err := r.svc.ReplicateEnvelopes(ctx, res.Objects)
		stored += n
		if err != nil {
			return stored, st.Rounds, err
		}
	}
	return stored, st.Rounds, nil
}

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
	if len(tombs) > 0 {
		for _, p := range r.known() {
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			r.call(pctx, p.ID, wire.ReplicaRequest{Op: wire.OpTombstones, Objects: tombs})
			cancel()
		}
	}
	for _, p := range r.known() {
		node, err := discovery.NodeKey(p.ID)
		if err != nil {
			continue
		}
		for server, ids := range byServer {
			// Only what the peer may store is offered.
			r.mu.Lock()
			cert, known := r.certs[p.ID]
			r.mu.Unlock()
			if !known { // learn whether it is a home node (its certificate comes with any answer)
				hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				r.call(hctx, p.ID, wire.ReplicaRequest{Op: wire.OpHello})
				cancel()
				r.mu.Lock()
				cert, known = r.certs[p.ID]
				if !known {
					r.certs[p.ID] = nil // asked: not a home node
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
			if _, err := r.call(pctx, p.ID, wire.ReplicaRequest{Op: wire.OpPush, Server: server, Objects: objs}); err != nil {
				r.cfg.Logger.Debug("replica: push", "peer", p.ID, "err", err)
			}
			cancel()
		}
	}
}

// FetchBlob asks the known peers for a blob a server references (the hub's
// lazy blob replication: see hub.Config.Blobs). The bytes are checked
// against the ID by the caller.
func (r *Replicator) FetchBlob(ctx context.Context, server, id policy.ID) ([]byte, error) {
	var errs []error
	for _, p := range r.known() {
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		res, err := r.call(pctx, p.ID, wire.ReplicaRequest{Op: wire.OpBlob, Server: server, IDs: []policy.ID{id}})
		cancel()
		if err == nil && len(res.Objects) == 1 && policy.Sum(res.Objects[0]) == id {
			return res.Objects[0], nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("replica: no peer holds blob %s: %w", id, errors.Join(errs...))
}
