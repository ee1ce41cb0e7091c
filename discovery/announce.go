package discovery

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"

	"github.com/guildhall/guildhall/policy"
)

// maxHostAddrs bounds the host's addresses in a record, leaving room for
// Extra within the record's limit.
const maxHostAddrs = 12

// AnnouncerConfig configures an Announcer.
type AnnouncerConfig struct {
	// DHT is where the record is published. Required.
	DHT *dht.IpfsDHT
	// Host's addresses, as of each publication, are announced as
	// /p2p/ multiaddrs (at most 12). Required.
	Host host.Host
	// Key is the node key that signs the record (Host's identity).
	// Required.
	Key ed25519.PrivateKey
	// Roles and Caps are the node's roles (policy.RoleRelay...; at least
	// one, in ascending order) and capabilities.
	Roles, Caps []string
	// Extra are further addresses, after the host's (a TURN URL).
	Extra []string
	// Interval between publications; default 1 hour.
	Interval time.Duration
	// TTL is each record's lifetime; default and limit 24 hours
	// (policy.MaxRecordTTL). It must exceed Interval, or the node would
	// vanish between publications.
	TTL time.Duration
	// Logger receives failed publications; default discards.
	Logger *slog.Logger

	now     func() time.Time                            // default time.Now
	publish func(context.Context, *policy.Record) error // default Publish to DHT
}

func (c *AnnouncerConfig) validate() error {
	if c.DHT == nil && c.publish == nil || c.Host == nil || len(c.Key) != ed25519.PrivateKeySize {
		return errors.New("discovery: announcer needs a DHT, a host and the node key")
	}
	if len(c.Roles) == 0 {
		return errors.New("discovery: announcer needs the node's roles")
	}
	if c.Interval == 0 {
		c.Interval = time.Hour
	}
	if c.TTL == 0 {
		c.TTL = policy.MaxRecordTTL * time.Millisecond
	}
	if c.Interval < 0 || c.TTL <= c.Interval || c.TTL > policy.MaxRecordTTL*time.Millisecond {
		return fmt.Errorf("discovery: announcer interval %v and TTL %v: want 0 < interval < TTL <= 24h", c.Interval, c.TTL)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.publish == nil {
		c.publish = func(ctx context.Context, r *policy.Record) error { return Publish(ctx, c.DHT, r) }
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Announcer keeps a node's signed record in the DHT: it publishes a fresh
// one every Interval, each valid for TTL, so the record outlives a missed
// publication or two but not the node.
type Announcer struct {
	cfg     AnnouncerConfig
	lastSeq uint64 // only Run's goroutine uses it
}

// NewAnnouncer checks c and returns an Announcer; Run starts it.
func NewAnnouncer(c AnnouncerConfig) (*Announcer, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &Announcer{cfg: c}, nil
}

// Run publishes at once and then every Interval until ctx ends. A failed
// publication is logged and tried again at the next interval.
func (a *Announcer) Run(ctx context.Context) {
	for {
		rec, err := a.record()
		if err == nil {
			pctx, cancel := context.WithTimeout(ctx, time.Minute)
			err = a.cfg.publish(pctx, rec)
			cancel()
		}
		if err != nil && ctx.Err() == nil {
			a.cfg.Logger.Warn("publishing the discovery record", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(a.cfg.Interval):
		}
	}
}

// record signs the node's record as of now. Its sequence number is the
// time in seconds, and always above the previous one's, so the newest
// record wins everywhere.
func (a *Announcer) record() (*policy.Record, error) {
	now := a.cfg.now()
	seq := max(uint64(now.Unix()), a.lastSeq+1)
	a.lastSeq = seq
	id := a.cfg.Host.ID().String()
	var addrs []string
	for _, m := range a.cfg.Host.Addrs() {
		if len(addrs) < maxHostAddrs {
			addrs = append(addrs, m.String()+"/p2p/"+id)
		}
	}
	addrs = append(addrs, a.cfg.Extra...)
	return policy.NewRecord(policy.IdentitySigner(a.cfg.Key), policy.RecordBody{Seq: seq, Roles: a.cfg.Roles, Addrs: addrs,
		Caps: a.cfg.Caps, Issued: now.UnixMilli(), Expires: now.Add(a.cfg.TTL).UnixMilli()})
}
