// Package replica replicates a hub's servers with other hubs over libp2p
// streams: hubs find each other (static peers, the DHT under each server's
// key), exchange the state events the other lacks, reconcile each channel
// both may store by range fingerprints (package reconcile) and fetch what
// differs, and push new envelopes as they are stored. Both sides verify
// everything with policy, and eligibility is enforced on both: a channel is
// never offered to, nor accepted by, a hub that may not store it, nor
// accepted from one. What a peer can cost is bounded (serve.go, peers.go):
// strangers are refused unread, buffers are reserved in libp2p's resource
// manager, and untrusted addresses are not dialled.
//
// A hub is identified by its libp2p peer ID, whose key is the hub's node
// key: the key storage grants name and receipts verify under.
//
// The messages, their framing and their decoding limits are package wire's
// (wire/replica.go). The replicator never decides eligibility or validity
// itself: it asks hub.Service, which asks policy.
package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"

	"github.com/guildhall/guildhall/discovery"
	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// Protocol is the replication protocol's libp2p ID.
const Protocol protocol.ID = "/guildhall/replicate/1"

// Limits of the protocol.
const (
	maxRanges   = 4096   // ranges of one reconciliation round
	fetchBatch  = 512    // envelopes fetched per request
	eventsBatch = 10_000 // events returned per request
	maxRounds   = 48
	maxOffer    = 4096 // servers one hello answer offers
	maxAdopt    = 64   // servers this hub did not host taken from one peer's hello
	// serveTimeout bounds answering one request; callTimeout, a request
	// to a configured peer (the peer gives up after serveTimeout anyway).
	serveTimeout = 2 * time.Minute
	callTimeout  = serveTimeout
)

// Config configures a Replicator.
type Config struct {
	Service *hub.Service
	// Host is the hub's libp2p host; its key must be the hub's node key.
	// Its resource manager should admit Limits() for Protocol: every
	// message buffer is reserved in it, and one it refuses is not read.
	Host host.Host
	// DHT, if set, is where the hub announces the servers it hosts and
	// finds other hubs of them.
	DHT *dht.IpfsDHT
	// Peers are hubs to replicate with whatever the DHT says: the
	// operator's, trusted with their addresses and given the long timeouts.
	Peers []peer.AddrInfo
	// Interval between full reconciliations with every peer; default 30 s.
	Interval time.Duration
	// DialPrivate lets addresses learnt from the DHT and from invite hints
	// be special-purpose ones (loopback, private, link-local...:
	// discovery.Public); by default such addresses are dropped, and only
	// Peers may be at them. A LAN deployment or a test on loopback sets it.
	// Addresses the host learns otherwise (the DHT's routing, identify) are
	// the host's gater's to refuse: cmd/hub installs discovery.DialFilter.
	DialPrivate bool
	// Logger; default discards.
	Logger *slog.Logger
}

// Replicator runs replication for one hub.
type Replicator struct {
	cfg     Config
	svc     *hub.Service
	metrics *Metrics
	blobs   chan struct{} // a slot per lazy blob fetch in flight (maxBlobFetches)

	// Lock order: mu is never held while calling the Service or a peer.
	mu        sync.Mutex
	peers     map[peer.ID]*peerState         // guarded by mu: known peer hubs
	certs     map[peer.ID]*policy.DeviceCert // guarded by mu: home nodes' certificates, as they presented them
	grants    map[peer.ID]grant              // guarded by mu: whether a peer may replicate any server here, recently asked
	inbound   map[peer.ID]int                // guarded by mu: inbound streams being served, per peer
	serving   int                            // guarded by mu: inbound streams being served in all
	pushCtx   context.Context                // guarded by mu: the pusher's, once it runs (outboxes' workers live in it)
	queueSize int                            // guarded by mu: notes an outbox holds (peerQueue; tests make it small)

	bytesIn, bytesOut atomic.Int64 // replication message bytes received and sent, framing included
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
	r := &Replicator{cfg: cfg, svc: cfg.Service, metrics: newMetrics(), blobs: make(chan struct{}, maxBlobFetches),
		peers: map[peer.ID]*peerState{}, certs: map[peer.ID]*policy.DeviceCert{}, grants: map[peer.ID]grant{}, inbound: map[peer.ID]int{}, queueSize: peerQueue}
	for _, p := range cfg.Peers {
		r.AddPeer(p)
	}
	cfg.Host.SetStreamHandler(Protocol, r.serve)
	return r, nil
}

// Metrics returns the replicator's collectors, for the binary to register.
func (r *Replicator) Metrics() *Metrics { return r.metrics }

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

// call sends one request to a peer on a new stream and reads the answer.
func (r *Replicator) call(ctx context.Context, p peer.ID, req wire.ReplicaRequest) (wire.ReplicaResponse, error) {
	var res wire.ReplicaResponse
	ctx, cancel := context.WithTimeout(ctx, r.callTimeout(p, req.Op))
	defer cancel()
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
	if err := r.write(s, req); err != nil {
		s.Reset()
		return res, err
	}
	release, err := r.readMessage(s, &res, wire.MaxReplicaMessage)
	release() // the buffer is gone once decoded
	if err != nil {
		if errors.Is(err, ErrNoMemory) {
			r.metrics.refuse(reasonMemory)
		}
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
	if old := r.certs[p]; old == nil || old.ID != c.ID {
		r.certs[p] = c
		delete(r.grants, p) // ask again with the certificate
	}
	c = r.certs[p]
	r.mu.Unlock()
	return c
}
