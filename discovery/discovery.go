// Package discovery is how Guildhall nodes find each other without a
// central directory: a Kademlia DHT (libp2p's kad-dht) under its own
// protocol prefix, separate from the public IPFS DHT, holding two kinds of
// entries. Signed node records (policy.Record: a node's roles, addresses
// and capabilities, for at most 24 hours) live under their own namespace,
// validated by every DHT node: forged, expired, oversized or mismatched
// records are refused and the newest valid one wins. Provider records
// announce which nodes serve a server (SHA-256("server" || ServerID)) or a
// small chat (SHA-256("chat" || RoomID)). An Announcer keeps a node's own
// record in the DHT, republishing it before it expires.
//
// The DHT helps nodes find each other; it decides nothing about who is in
// charge and sees nothing of what is said.
package discovery

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/guildhall/guildhall/policy"
)

const (
	// ProtocolPrefix keeps Guildhall's DHT apart from the public one.
	ProtocolPrefix = "/guildhall"
	// Namespace is where node records live: /guildhall-node/<peer ID bytes>.
	Namespace = "guildhall-node"
)

// Errors of record validation.
var (
	ErrKeyMismatch = errors.New("discovery: record is stored under another node's key")
	ErrBadKey      = errors.New("discovery: not a node record key")
)

// PeerID returns the libp2p peer ID of a node key (Ed25519).
func PeerID(node policy.PublicKey) (peer.ID, error) {
	pub, err := crypto.UnmarshalEd25519PublicKey(node[:])
	if err != nil {
		return "", err
	}
	return peer.IDFromPublicKey(pub)
}

// NodeKey returns the node key behind a peer ID, if it is an Ed25519 one.
func NodeKey(id peer.ID) (policy.PublicKey, error) {
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return policy.PublicKey{}, err
	}
	raw, err := pub.Raw()
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return policy.PublicKey{}, fmt.Errorf("discovery: peer %s does not have an Ed25519 key", id)
	}
	return policy.PublicKey(raw), nil
}

// RecordKey is the DHT key of a node's record.
func RecordKey(node policy.PublicKey) (string, error) {
	id, err := PeerID(node)
	if err != nil {
		return "", err
	}
	return "/" + Namespace + "/" + string(id), nil
}

// Validator checks node records for the DHT.
type Validator struct {
	// Now is the clock; default time.Now.
	Now func() time.Time
}

var _ record.Validator = Validator{}

func (v Validator) now() int64 {
	if v.Now == nil {
		return time.Now().UnixMilli()
	}
	return v.Now().UnixMilli()
}

// Validate accepts a record only under its own node's key, well signed,
// within its size limit and not expired.
func (v Validator) Validate(key string, value []byte) error {
	rec, err := v.parse(key, value)
	if err != nil {
		return err
	}
	return rec.Check(v.now())
}

func (v Validator) parse(key string, value []byte) (*policy.Record, error) {
	ns, rest, ok := strings.Cut(strings.TrimPrefix(key, "/"), "/")
	if !ok || ns != Namespace {
		return nil, ErrBadKey
	}
	id, err := peer.IDFromBytes([]byte(rest))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	rec, err := policy.ParseRecord(value) // limits, structure, signature
	if err != nil {
		return nil, err
	}
	want, err := PeerID(rec.Node)
	if err != nil || want != id {
		return nil, ErrKeyMismatch
	}
	return rec, nil
}

// Select picks the newest valid record (policy.Record.Newer).
func (v Validator) Select(key string, values [][]byte) (int, error) {
	best, bestRec := -1, (*policy.Record)(nil)
	for i, b := range values {
		rec, err := v.parse(key, b)
		if err != nil || rec.Check(v.now()) != nil {
			continue
		}
		if bestRec == nil || rec.Newer(bestRec) {
			best, bestRec = i, rec
		}
	}
	if best < 0 {
		return 0, errors.New("discovery: no valid record")
	}
	return best, nil
}

// NewDHT starts a DHT node in server mode under Guildhall's protocol prefix,
// with the node-record validator, bootstrapped from the given peers.
func NewDHT(ctx context.Context, h host.Host, bootstrap []peer.AddrInfo, opts ...dht.Option) (*dht.IpfsDHT, error) {
	base := []dht.Option{
		dht.Mode(dht.ModeServer),
		dht.ProtocolPrefix(ProtocolPrefix),
		dht.NamespacedValidator(Namespace, Validator{}),
		dht.BootstrapPeers(bootstrap...),
	}
	d, err := dht.New(ctx, h, append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	for _, p := range bootstrap {
		h.Connect(ctx, p) // best effort; the routing table fills from whoever answers
	}
	if err := d.Bootstrap(ctx); err != nil {
		d.Close()
		return nil, err
	}
	// A lookup from an empty routing table finds nothing: give the
	// bootstrap peers a moment to be added (they are once identified).
	if len(bootstrap) > 0 {
		deadline := time.Now().Add(5 * time.Second)
		for d.RoutingTable().Size() == 0 && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
	}
	return d, nil
}

// Publish stores a node's signed record in the DHT.
func Publish(ctx context.Context, d *dht.IpfsDHT, rec *policy.Record) error {
	key, err := RecordKey(rec.Node)
	if err != nil {
		return err
	}
	return d.PutValue(ctx, key, rec.Raw)
}

// Resolve finds a node's newest valid record.
func Resolve(ctx context.Context, d *dht.IpfsDHT, node policy.PublicKey) (*policy.Record, error) {
	key, err := RecordKey(node)
	if err != nil {
		return nil, err
	}
	b, err := d.GetValue(ctx, key)
	if err != nil {
		return nil, err
	}
	rec, err := Validator{}.parse(key, b)
	if err != nil {
		return nil, err
	}
	return rec, rec.Check(time.Now().UnixMilli())
}

// ServerCID is the DHT key under which hubs announce that they serve a server.
func ServerCID(server policy.ID) cid.Cid { k := policy.ServerKey(server); return keyCID(k[:]) }

// ChatCID is the DHT key of a small chat room.
func ChatCID(room policy.ID) cid.Cid { k := policy.ChatKey(room); return keyCID(k[:]) }

func keyCID(digest []byte) cid.Cid {
	m, err := mh.Encode(digest, mh.SHA2_256)
	if err != nil {
		panic(err) // a 32-byte digest always encodes
	}
	return cid.NewCidV1(cid.Raw, m)
}

// Announce tells the DHT this node serves a key (a server's or a chat's).
func Announce(ctx context.Context, d *dht.IpfsDHT, key cid.Cid) error {
	return d.Provide(ctx, key, true)
}

// Find returns up to limit nodes that announced a key, with their addresses.
func Find(ctx context.Context, d *dht.IpfsDHT, key cid.Cid, limit int) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for p := range d.FindProvidersAsync(ctx, key, limit) {
		out = append(out, p)
	}
	if len(out) == 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
