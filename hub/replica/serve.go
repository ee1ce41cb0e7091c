package replica

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/guildhall/guildhall/discovery"
	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/p2p"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/reconcile"
	"github.com/guildhall/guildhall/wire"
)

// What a peer can hold of a hub while it is served. A stranger (a peer
// that may replicate no server hosted here, in this hub's view: hub.
// Service.MayReplicateAny) may send one request of at most
// strangerMessage bytes, enough for a hello with a home node's
// certificate, and is answered with ErrStranger; only a peer that may
// replicate some server here may send more, up to wire.MaxReplicaMessage.
// At most maxInboundPerPeer requests of one peer, and maxInbound in all,
// are served at once; more streams are reset unread. Every message buffer
// is reserved in the stream's libp2p resource scope as it grows (Limits
// gives the protocol room for the largest message twice per peer), and a
// message the resource manager refuses is not read further.
const (
	strangerMessage   = 64 << 10
	maxInboundPerPeer = 8
	maxInbound        = 64
	grantedFor        = 30 * time.Second // how long "may replicate" is believed
	strangerFor       = 2 * time.Second  // and "may not"
	maxGrants         = 4096             // answers remembered
)

// Errors of the protocol's bounds.
var (
	// ErrStranger answers a peer that may replicate no server here.
	ErrStranger = errors.New("replica: this peer may replicate no server hosted here")
	// ErrNoMemory: the resource manager refused the memory for a message.
	ErrNoMemory = errors.New("replica: no memory for the message")
	// ErrBusy: too many lazy blob fetches are in flight.
	ErrBusy = errors.New("replica: too many blob fetches in flight")
)

// Limits are the resource manager limits the replication protocol needs
// (p2p.Config.Protocols): a stream may hold one largest message, a peer
// two, all peers together eight, and as many inbound streams as the
// replicator serves at once, twice over (it resets the rest itself).
func Limits() map[protocol.ID]p2p.ProtocolLimits {
	const msg = wire.MaxReplicaMessage + 1<<20
	return map[protocol.ID]p2p.ProtocolLimits{Protocol: {
		StreamMemory: msg, PeerMemory: 2 * msg, Memory: 8 * msg,
		PeerStreams: 2 * maxInboundPerPeer, Streams: 2 * maxInbound,
	}}
}

// grant is a remembered answer of whether a peer may replicate any server.
type grant struct {
	ok bool
	at time.Time
}

// admit takes a slot for serving one stream of p, if one is free.
func (r *Replicator) admit(p peer.ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.serving >= maxInbound || r.inbound[p] >= maxInboundPerPeer {
		return false
	}
	r.serving++
	r.inbound[p]++
	return true
}

func (r *Replicator) leave(p peer.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.serving--
	if r.inbound[p]--; r.inbound[p] <= 0 {
		delete(r.inbound, p)
	}
}

// granted reports whether a peer may replicate any server hosted here,
// remembering the answer for a while.
func (r *Replicator) granted(ctx context.Context, id peer.ID, p hub.Peer) bool {
	now := time.Now()
	r.mu.Lock()
	g, ok := r.grants[id]
	r.mu.Unlock()
	if ok && (g.ok && now.Sub(g.at) < grantedFor || !g.ok && now.Sub(g.at) < strangerFor) {
		return g.ok
	}
	yes, err := r.svc.MayReplicateAny(ctx, p)
	if err != nil {
		return false // not remembered: the store failed, not the peer
	}
	r.mu.Lock()
	if len(r.grants) >= maxGrants {
		clear(r.grants)
	}
	r.grants[id] = grant{ok: yes, at: now}
	r.mu.Unlock()
	return yes
}

// serve answers one request of a peer.
func (r *Replicator) serve(s network.Stream) {
	remote := s.Conn().RemotePeer()
	if !r.admit(remote) {
		r.metrics.refuse(reasonStreams)
		s.Reset()
		return
	}
	defer r.leave(remote)
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), serveTimeout)
	defer cancel()
	dl, _ := ctx.Deadline()
	s.SetDeadline(dl)
	node, err := discovery.NodeKey(remote)
	if err != nil {
		s.Reset()
		return
	}
	r.mu.Lock()
	p := hub.Peer{Node: node, Cert: r.certs[remote]}
	r.mu.Unlock()
	granted := r.granted(ctx, remote, p)
	limit := strangerMessage
	if granted {
		limit = wire.MaxReplicaMessage
	}
	var req wire.ReplicaRequest
	release, err := r.readMessage(s, &req, limit)
	defer release() // the request is held until answered
	if err != nil {
		switch {
		case errors.Is(err, ErrNoMemory):
			r.metrics.refuse(reasonMemory)
		case !granted && errors.Is(err, wire.ErrTooLarge):
			r.metrics.refuse(reasonStranger)
		}
		s.Reset()
		return
	}
	if len(req.Cert) > 0 {
		if c := r.learnCert(remote, req.Cert); c != nil && c != p.Cert {
			p.Cert = c
			granted = granted || r.granted(ctx, remote, p)
		}
	}
	if !granted {
		r.metrics.refuse(reasonStranger)
		r.reply(s, wire.ReplicaResponse{Error: ErrStranger.Error()})
		return
	}
	res, err := r.answer(fromPeer(ctx, remote), p, req) // what it stores is not pushed back to it
	if err != nil {
		res = wire.ReplicaResponse{Error: err.Error()}
	}
	r.reply(s, res)
}

// reply writes an answer, with this hub's certificate as a home node.
func (r *Replicator) reply(s network.Stream, res wire.ReplicaResponse) {
	if cert := r.svc.NodeCert(); cert != nil {
		res.Cert = cert.Raw
	}
	r.write(s, res)
}

func (r *Replicator) answer(ctx context.Context, p hub.Peer, req wire.ReplicaRequest) (wire.ReplicaResponse, error) {
	switch req.Op {
	case wire.OpHello:
		mine, err := r.svc.Hosted(ctx)
		if err != nil {
			return wire.ReplicaResponse{}, err
		}
		// Every hosted server the requester may replicate, whether it hosts
		// it yet or not: a hub granted storage late, a home node, a hub
		// restored empty with its key learn of the server here.
		var offer []policy.ID
		for _, s := range mine {
			if len(offer) == maxOffer {
				break
			}
			if r.svc.MayReplicate(ctx, s, policy.ID{}, p) == nil {
				offer = append(offer, s)
			}
		}
		return wire.ReplicaResponse{Servers: offer}, nil
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
		set := r.svc.ChannelSet(req.Server, req.Channel)
		switch req.Set {
		case wire.SetEnvelopes:
		case wire.SetTombstones:
			set = r.svc.TombstoneSet(req.Server, req.Channel)
		default:
			return wire.ReplicaResponse{}, fmt.Errorf("replica: unknown set %q", req.Set)
		}
		out, err := reconcile.Answer(ctx, set, in, maxRanges, time.Now().UnixMilli())
		return wire.ReplicaResponse{Ranges: wire.FromRanges(out)}, err
	case wire.OpFetch:
		if len(req.IDs) > fetchBatch {
			return wire.ReplicaResponse{}, fmt.Errorf("replica: %d IDs in one fetch, limit %d", len(req.IDs), fetchBatch)
		}
		switch req.Set {
		case wire.SetEnvelopes:
		case wire.SetTombstones:
			tombs, err := r.svc.TombstonesFor(ctx, req.Server, p, req.IDs)
			return wire.ReplicaResponse{Objects: tombs}, err
		default:
			return wire.ReplicaResponse{}, fmt.Errorf("replica: unknown set %q", req.Set)
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
		if err := r.svc.MayReplicate(ctx, req.Server, policy.ID{}, p); err != nil {
			r.metrics.refuse(reasonNotGranted)
			return wire.ReplicaResponse{}, err
		}
		// each verified, fresh, judged eligible here, and of a channel the pusher may hold
		_, err := r.svc.PushEnvelopesFrom(ctx, p, req.Objects)
		return wire.ReplicaResponse{}, err
	case wire.OpTombstones:
		if len(req.Objects) > fetchBatch {
			return wire.ReplicaResponse{}, fmt.Errorf("replica: %d tombstones in one push, limit %d", len(req.Objects), fetchBatch)
		}
		r.svc.TombstonesFrom(ctx, p, req.Objects) // each judged in this hub's state, of a channel the sender may hold
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

// readMessage reads one replication message (wire's framing, as
// wire.ReadReplica) of at most limit bytes into v. Its buffer grows as
// bytes arrive, and each growth is first reserved in the stream's resource
// scope (ErrNoMemory if refused: the rest is not read); release returns the
// reservation, once the message is done with.
func (r *Replicator) readMessage(s network.Stream, v any, limit int) (release func(), err error) {
	scope := s.Scope()
	reserved := 0
	release = func() {
		if reserved > 0 {
			scope.ReleaseMemory(reserved)
			reserved = 0
		}
	}
	br := bufio.NewReaderSize(s, 4096)
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return release, err
	}
	if n > uint64(limit) {
		return release, fmt.Errorf("%w: replication message of %d bytes, limit %d", wire.ErrTooLarge, n, limit)
	}
	r.count(s, "in", int64(n)+int64(uvarintLen(n)))
	var buf []byte
	for len(buf) < int(n) {
		if len(buf) == cap(buf) {
			next := min(int(n), max(2*cap(buf), 64<<10))
			// Always: up to the limits themselves, which Limits sizes for
			// the largest message (a lower priority stops short of them).
			if err := scope.ReserveMemory(next-reserved, network.ReservationPriorityAlways); err != nil {
				return release, fmt.Errorf("%w: %d bytes: %v", ErrNoMemory, next, err)
			}
			reserved = next
			grown := make([]byte, len(buf), next)
			copy(grown, buf)
			buf = grown
		}
		m, err := br.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF && len(buf) < int(n) {
			return release, fmt.Errorf("%w: replication message cut short at %d of %d bytes", wire.ErrMalformed, len(buf), n)
		}
		if err != nil && err != io.EOF {
			return release, err
		}
	}
	return release, wire.UnmarshalReplica(buf, v)
}

// write writes one replication message to a stream, counting its bytes.
func (r *Replicator) write(s network.Stream, v any) error {
	cw := &countingWriter{w: s}
	err := wire.WriteReplica(cw, v)
	r.count(s, "out", cw.n)
	return err
}

// count adds a message's bytes to the totals and to its peer's series.
func (r *Replicator) count(s network.Stream, dir string, n int64) {
	if dir == "in" {
		r.bytesIn.Add(n)
	} else {
		r.bytesOut.Add(n)
	}
	r.metrics.bytes.WithLabelValues(r.peerLabel(s.Conn().RemotePeer()), dir).Add(float64(n))
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func uvarintLen(n uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], n)
}
