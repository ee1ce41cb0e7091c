// Package hub is the hosted node's service: it stores the ciphertext and
// state logs of the servers it hosts, helps clients sync, and signs storage
// receipts. Every decision about validity comes from policy; every byte
// goes through storage.
//
// The hub never reads content and never holds authority: it refuses what
// policy says is invalid or what it may not store, and it can be replaced by
// any other hub holding the same signed data.
//
// The Service is the core (ingest and reads); the network API, client
// authentication, rate limits, subscription fanout and replication are built
// on it. Known limits of the core as it stands: the state logs of hosted
// servers stay in memory once loaded (one per tenant; bounding them belongs
// with the hub's limits), and an envelope checked against a state is stored
// a moment later, so a ban that lands in between admits that one envelope.
package hub

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// Store is what the hub needs from its metadata backend.
type Store interface {
	storage.Tenants
	storage.EventLog
	storage.EnvelopeStore
}

// Admission decides which servers a hub takes on when their genesis arrives.
type Admission int

// Admission modes.
const (
	// Provisioned: only servers an operator created as tenants (admin API).
	Provisioned Admission = iota
	// AllowList: the servers listed in Config.Allowed, admitted on first use.
	AllowList
	// Open: any server, admitted on first use with the default quota.
	Open
)

// Config configures a Service.
type Config struct {
	// NodeKey signs receipts; its public key is the hub's node ID.
	NodeKey ed25519.PrivateKey
	// NodeCert, for a member's home node, certifies NodeKey as a device of
	// the owner's identity (see policy.State.MayStore); nil for a hub.
	NodeCert *policy.DeviceCert
	// Store holds tenants, state logs and envelopes.
	Store Store
	// Admission, Allowed and DefaultQuota govern which servers are hosted.
	Admission    Admission
	Allowed      []policy.ID
	DefaultQuota storage.Quota
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger; default discards.
	Logger *slog.Logger
}

func (c *Config) validate() error {
	if len(c.NodeKey) != ed25519.PrivateKeySize {
		return errors.New("hub: NodeKey is required")
	}
	if c.Store == nil {
		return errors.New("hub: Store is required")
	}
	if c.NodeCert != nil && c.NodeCert.Device != policy.KeyOf(c.NodeKey) {
		return errors.New("hub: NodeCert does not certify NodeKey")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Service is the hub's core. It is safe for concurrent use.
type Service struct {
	cfg      Config
	node     policy.Signer
	verifier *policy.Verifier
	allowed  map[policy.ID]bool

	mu   sync.Mutex               // guards logs
	logs map[policy.ID]*serverLog // loaded state logs of hosted servers
}

// serverLog is one server's state log; mu guards log and its State.
type serverLog struct {
	mu  sync.Mutex
	log *policy.Log
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, node: policy.IdentitySigner(cfg.NodeKey), verifier: policy.NewVerifier(0),
		allowed: map[policy.ID]bool{}, logs: map[policy.ID]*serverLog{}}
	for _, id := range cfg.Allowed {
		s.allowed[id] = true
	}
	return s, nil
}

// NodeID returns the hub's node key.
func (s *Service) NodeID() policy.PublicKey { return s.node.Identity }

func (s *Service) now() int64 { return s.cfg.Now().UnixMilli() }

// serverLog returns a hosted server's log, loading it from the store on
// first use. A server with no tenant, or no stored genesis, is not hosted.
func (s *Service) serverLog(ctx context.Context, server policy.ID) (*serverLog, error) {
	s.mu.Lock()
	sl, ok := s.logs[server]
	s.mu.Unlock()
	if ok {
		return sl, nil
	}
	if _, err := s.cfg.Store.Tenant(ctx, server); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("hub: server %s: %w", server, storage.ErrNotHosted)
		}
		return nil, err
	}
	var raws [][]byte
	for after := uint64(0); ; {
		page, err := s.cfg.Store.Events(ctx, server, after, storage.MaxPage)
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			raws = append(raws, e.Raw)
			after = e.Seq
		}
		if len(page) < storage.MaxPage {
			break
		}
	}
	events, err := s.verifier.ParseEvents(raws)
	if err != nil {
		return nil, fmt.Errorf("hub: stored state log of %s: %w", server, err)
	}
	var genesis *policy.Event
	for _, e := range events {
		if e.ID == server {
			genesis = e
		}
	}
	if genesis == nil {
		return nil, fmt.Errorf("hub: server %s has no stored genesis: %w", server, storage.ErrNotHosted)
	}
	log, err := policy.Resolve(genesis, events)
	if err != nil {
		return nil, fmt.Errorf("hub: stored state log of %s: %w", server, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sl, ok := s.logs[server]; ok { // loaded concurrently
		return sl, nil
	}
	sl = &serverLog{log: log}
	s.logs[server] = sl
	return sl, nil
}
