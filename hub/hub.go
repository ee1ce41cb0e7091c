// Package hub is the hosted node's service: it stores the ciphertext and
// state logs of the servers it hosts, helps clients sync, and signs storage
// receipts. Every decision about validity comes from policy; every byte
// goes through storage.
//
// The hub never reads content and never holds authority: it refuses what
// policy says is invalid or what it may not store, and it can be replaced by
// any other hub holding the same signed data.
//
// The Service is the hub's API in Go types: ingest, reads, blobs,
// replication intake, retention, tenants and sessions. It never speaks HTTP
// or encodes a wire message: package hub/httpapi serves it over HTTP and
// WebSocket (and maps its errors to wire codes), package hub/replica to
// other hubs.
//
// The state logs of hosted servers are cached in memory, at most
// Config.MaxServers of them (least recently used go first). Known limits: an envelope checked against a state is stored a moment
// later, so a ban that lands in between admits that one envelope; and a
// process sharing its store with others learns of their state events
// through its Notifier, a few milliseconds late.
package hub

import (
	"container/list"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/guildhall/guildhall/fanout"
	"github.com/guildhall/guildhall/internal/ratelimit"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// Store is what the hub needs from its metadata backend: all of
// storage.Meta.
type Store = storage.Meta

// Notifier tells the other hub processes that share this hub's Store what
// it stored, so they fan envelopes out to their own subscribers and refresh
// their copy of a server's state. It must not block for long: Post calls it
// after the durable commit, before answering.
type Notifier interface {
	Notify(ctx context.Context, notes []Note) error
}

// Note announces a stored envelope or new state events to the other
// processes sharing the store.
type Note = fanout.Note

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
	// Home: a member's home node: the servers its owner (the identity of
	// NodeCert) creates or joins, admitted when the owner's genesis or join
	// arrives, with the default quota.
	Home
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
	Admission Admission
	Allowed   []policy.ID
	// AllowedCreators pre-admits, on an allow-list hub, every server whose
	// genesis is signed by one of these identities: an operator lists the
	// community admin's key before the server exists.
	AllowedCreators []policy.PublicKey
	DefaultQuota    storage.Quota
	// Blobs stores attachments; nil disables the blob endpoints.
	Blobs storage.BlobStore
	// MaxBlob bounds one blob; default 64 MiB.
	MaxBlob int64
	// MaxServers bounds the state logs kept in memory; default 1024.
	MaxServers int
	// Broker receives every newly stored envelope for local subscribers;
	// optional.
	Broker *fanout.Broker
	// Notifier announces stored data to processes sharing Store; optional.
	Notifier Notifier
	// PostRate and PostBurst limit envelopes per sender identity
	// (token bucket); defaults 50/s and 200. A negative PostRate disables it.
	PostRate  float64
	PostBurst int
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
	if c.Admission == Home && c.NodeCert == nil {
		return errors.New("hub: a home node needs NodeCert, its owner's certificate of the node key")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MaxBlob <= 0 {
		c.MaxBlob = 64 << 20
	}
	if c.MaxServers <= 0 {
		c.MaxServers = 1024
	}
	if c.PostRate == 0 {
		c.PostRate = 50
	}
	if c.PostBurst <= 0 {
		c.PostBurst = 200
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Service is the hub's core. It is safe for concurrent use.
type Service struct {
	cfg         Config
	node        policy.Signer
	verifier    *policy.Verifier
	allowed     atomic.Pointer[map[policy.ID]bool]                  // replaced whole by SetLimits
	creators    atomic.Pointer[map[policy.PublicKey]bool]           // likewise
	senders     atomic.Pointer[ratelimit.Limiter[policy.PublicKey]] // nil when unlimited
	quota       atomic.Pointer[storage.Quota]                       // the default quota
	metrics     *Metrics
	incarnation string // the store's, read at start
	macKey      []byte // authenticates challenges and session tokens
	spent       spentChallenges
	blobSource  BlobSource
	loading     chan struct{}            // a slot per state log being read from the store
	sequence    sequencer                // live delivery in each channel's sequence order
	watchers    []func(server policy.ID) // OnStateChange's; set before serving
	purges      chan policy.ID           // servers whose state changed, for RunRetention to purge
	blocks      blocks                   // servers blocked by the operator, as last read
	egress      egressMeter              // bytes served per server, for the usage ledger (billing.go)

	mu   sync.Mutex               // guards logs and lru
	logs map[policy.ID]*serverLog // loaded state logs of hosted servers
	lru  list.List                // of *serverLog, most recently used first
}

// serverLog is one server's state log as loaded from the store. Lock order:
// serverLog.mu before Service.mu.
type serverLog struct {
	mu   sync.Mutex
	log  *policy.Log   // guarded by mu
	seq  uint64        // guarded by mu; last stored event folded in
	gone bool          // guarded by mu; evicted: whoever holds it loads again
	elem *list.Element // guarded by Service.mu
	id   policy.ID
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, node: policy.IdentitySigner(cfg.NodeKey), verifier: policy.NewVerifier(0),
		logs: map[policy.ID]*serverLog{}, metrics: newMetrics(),
		spent: newSpentChallenges(), loading: make(chan struct{}, max(1, runtime.GOMAXPROCS(0))), purges: make(chan policy.ID, 256)}
	s.OnStateChange(func(server policy.ID) {
		select {
		case s.purges <- server:
		default: // the next periodic sweep purges it
		}
	})
	m := hmac.New(sha256.New, cfg.NodeKey.Seed())
	m.Write([]byte(macDomain))
	s.macKey = m.Sum(nil)
	s.SetLimits(Limits{Allowed: cfg.Allowed, AllowedCreators: cfg.AllowedCreators, DefaultQuota: cfg.DefaultQuota, PostRate: cfg.PostRate, PostBurst: cfg.PostBurst})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inc, err := cfg.Store.Incarnation(ctx)
	if err != nil {
		return nil, fmt.Errorf("hub: the store's incarnation: %w", err)
	}
	s.incarnation = inc
	return s, nil
}

// Incarnation is the store's incarnation, read at start (a restore is done
// with the hub stopped): every cursor this hub hands out belongs to it.
func (s *Service) Incarnation() string { return s.incarnation }

// BlobSource fetches blobs this hub lacks from elsewhere (peer hubs): lazy
// blob replication.
type BlobSource interface {
	FetchBlob(ctx context.Context, server, id policy.ID) ([]byte, error)
}

// SetBlobSource sets where missing blobs are fetched from. Call it before
// serving.
func (s *Service) SetBlobSource(b BlobSource) { s.blobSource = b }

// SetNotifier sets the Notifier after construction (it may need the
// Service itself, as replication does). Call it before serving.
func (s *Service) SetNotifier(n Notifier) { s.cfg.Notifier = n }

// OnStateChange adds fn to what is called each time new state events of a
// server are folded into this process's copy of its state (published here,
// replicated from a peer, or announced by another process sharing the
// store): read permissions may have changed. It is called before the
// publication that brought them is answered, with the server's state
// locked: a read check that starts after the call sees the new state. fn
// must return quickly and must not call the Service. Call it before serving.
func (s *Service) OnStateChange(fn func(server policy.ID)) { s.watchers = append(s.watchers, fn) }

// stateChanged tells OnStateChange's functions that server's state changed.
func (s *Service) stateChanged(server policy.ID) {
	for _, fn := range s.watchers {
		fn(server)
	}
}

// MultiNotifier tells several Notifiers.
type MultiNotifier []Notifier

// Notify implements Notifier: every one is told; the first error returns.
func (m MultiNotifier) Notify(ctx context.Context, notes []Note) error {
	var first error
	for _, n := range m {
		if err := n.Notify(ctx, notes); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// NodeID returns the hub's node key.
func (s *Service) NodeID() policy.PublicKey { return s.node.Identity }

// Broker returns the broker local subscribers follow, or nil.
func (s *Service) Broker() *fanout.Broker { return s.cfg.Broker }

// Metrics returns the service's collectors, for the binary to register.
func (s *Service) Metrics() *Metrics { return s.metrics }

func (s *Service) now() int64 { return s.cfg.Now().UnixMilli() }

// lockLog returns a hosted server's log, locked, loading it from the store
// on first use. A server with no tenant, or no stored genesis, is not
// hosted; one its operator blocked is refused (ErrBlocked). The caller
// unlocks sl.mu.
func (s *Service) lockLog(ctx context.Context, server policy.ID) (*serverLog, error) {
	if err := s.checkBlocked(ctx, server); err != nil {
		return nil, err
	}
	for {
		s.mu.Lock()
		sl, ok := s.logs[server]
		if !ok {
			sl = &serverLog{id: server}
			sl.elem = s.lru.PushFront(sl)
			s.logs[server] = sl
		} else {
			s.lru.MoveToFront(sl.elem)
		}
		over := s.lru.Len() > s.cfg.MaxServers
		s.mu.Unlock()
		sl.mu.Lock()
		if sl.gone {
			sl.mu.Unlock()
			continue
		}
		if sl.log != nil {
			if over { // an earlier eviction skipped logs in use
				s.evict()
			}
			return sl, nil
		}
		if err := s.load(ctx, sl); err != nil {
			s.drop(sl)
			sl.mu.Unlock()
			return nil, err
		}
		s.evict()
		return sl, nil
	}
}

// drop removes a log from the cache; the caller holds sl.mu.
func (s *Service) drop(sl *serverLog) {
	sl.gone = true
	s.mu.Lock()
	if s.logs[sl.id] == sl {
		delete(s.logs, sl.id)
		s.lru.Remove(sl.elem)
	}
	s.mu.Unlock()
}

// evict drops least recently used logs beyond MaxServers, skipping logs in
// use: the bound is exceeded only while more logs than it are in use, and
// the next access after that evicts again.
func (s *Service) evict() {
	s.mu.Lock()
	var victims []*serverLog
	for e := s.lru.Back(); e != nil && s.lru.Len()-len(victims) > s.cfg.MaxServers; e = e.Prev() {
		victims = append(victims, e.Value.(*serverLog))
	}
	s.mu.Unlock()
	for _, v := range victims {
		if v.mu.TryLock() {
			s.drop(v)
			v.mu.Unlock()
		}
	}
}

// load reads a server's whole state log; the caller holds sl.mu. Any
// request may make the hub load a log it does not hold in memory (the read
// rule needs the state), so loads are made cheap and bounded: events read
// back from the store were verified when stored and are not verified again
// (policy.Verifier.StoredEvent), and at most one load per core runs at a
// time; the others wait, or give up with their request's context.
func (s *Service) load(ctx context.Context, sl *serverLog) error {
	if _, err := s.cfg.Store.Tenant(ctx, sl.id); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("hub: server %s: %w", sl.id, storage.ErrNotHosted)
		}
		return err
	}
	select {
	case s.loading <- struct{}{}:
	default:
		s.metrics.loadWaits.Inc()
		select {
		case s.loading <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("hub: waiting to load the state log of %s: %w", sl.id, ctx.Err())
		}
	}
	defer func() { <-s.loading }()
	raws, seq, err := s.storedEvents(ctx, sl.id, 0)
	if err != nil {
		return err
	}
	s.metrics.loads.Inc()
	s.metrics.loadedEvents.Add(float64(len(raws)))
	events, err := s.verifier.ParseStoredEvents(raws)
	if err != nil {
		return fmt.Errorf("hub: stored state log of %s: %w", sl.id, err)
	}
	var genesis *policy.Event
	for _, e := range events {
		if e.ID == sl.id {
			genesis = e
		}
	}
	if genesis == nil {
		return fmt.Errorf("hub: server %s has no stored genesis: %w", sl.id, storage.ErrNotHosted)
	}
	log, err := policy.Resolve(genesis, events)
	if err != nil {
		return fmt.Errorf("hub: stored state log of %s: %w", sl.id, err)
	}
	sl.log, sl.seq = log, seq
	return nil
}

// refresh folds in the events stored since the log was read (by this
// process or another sharing the store); the caller holds sl.mu.
func (s *Service) refresh(ctx context.Context, sl *serverLog) error {
	raws, seq, err := s.storedEvents(ctx, sl.id, sl.seq)
	if err != nil || len(raws) == 0 {
		return err
	}
	events, err := s.verifier.ParseStoredEvents(raws)
	if err != nil {
		return fmt.Errorf("hub: stored state log of %s: %w", sl.id, err)
	}
	err = sl.log.AddAll(events)
	s.stateChanged(sl.id) // even on an error: some events may have been folded
	if err != nil {
		return err
	}
	sl.seq = seq
	return nil
}

func (s *Service) storedEvents(ctx context.Context, server policy.ID, after uint64) (raws [][]byte, seq uint64, err error) {
	seq = after
	for {
		page, err := s.cfg.Store.Events(ctx, server, seq, storage.MaxPage)
		if err != nil {
			return nil, 0, err
		}
		for _, e := range page {
			raws = append(raws, e.Raw)
			seq = e.Seq
		}
		if len(page) < storage.MaxPage {
			return raws, seq, nil
		}
	}
}

// Loaded reports how many state logs are in memory.
func (s *Service) Loaded() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.logs)
}
