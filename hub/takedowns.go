package hub

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

var (
	// ErrTakenDown refuses a read or a post of content the hub's operator
	// removed (a takedown record is kept in its place).
	ErrTakenDown = errors.New("hub: removed by the hub's operator")
	// ErrBlocked refuses every request about a server the hub's operator
	// blocked on this hub.
	ErrBlocked = errors.New("hub: server blocked by the hub's operator")
)

// blockCheck is how long a server's block state is trusted before the
// store is asked again: what another process sharing the store blocked
// takes effect here within it.
const blockCheck = 5 * time.Second

// blocks caches which servers are blocked, and whether there are any
// takedowns at all: the common case, none, costs the hot paths (every post
// batch, every server's first request) no query.
type blocks struct {
	mu      sync.Mutex
	m       map[policy.ID]blockState
	any     bool      // some takedown exists, as last read
	anyAt   time.Time // when any was read
	anyRead bool
}

type blockState struct {
	blocked bool
	at      time.Time
}

// checkBlocked returns ErrBlocked for a server its operator blocked.
func (s *Service) checkBlocked(ctx context.Context, server policy.ID) error {
	if any, err := s.anyTakedowns(ctx); err != nil || !any {
		return err
	}
	now := s.cfg.Now()
	s.blocks.mu.Lock()
	st, ok := s.blocks.m[server]
	s.blocks.mu.Unlock()
	if !ok || now.Sub(st.at) > blockCheck || now.Before(st.at) {
		found, err := s.cfg.Store.TakenDown(ctx, []policy.ID{server})
		if err != nil {
			return err
		}
		st = blockState{blocked: found[server].Kind == policy.TakedownServer, at: now}
		s.blocks.mu.Lock()
		if s.blocks.m == nil || len(s.blocks.m) > 4*s.cfg.MaxServers {
			s.blocks.m = map[policy.ID]blockState{}
		}
		s.blocks.m[server] = st
		s.blocks.mu.Unlock()
	}
	if st.blocked {
		return fmt.Errorf("%w: server %s", ErrBlocked, server)
	}
	return nil
}

func (s *Service) forgetBlock(server policy.ID) {
	s.blocks.mu.Lock()
	delete(s.blocks.m, server)
	s.blocks.mu.Unlock()
}

// anyTakedowns reports whether the store holds any takedown, read at most
// every blockCheck (what another process recorded is seen within it; what
// this one records, at once).
func (s *Service) anyTakedowns(ctx context.Context) (bool, error) {
	now := s.cfg.Now()
	s.blocks.mu.Lock()
	any, fresh := s.blocks.any, s.blocks.anyRead && now.Sub(s.blocks.anyAt) <= blockCheck && !now.Before(s.blocks.anyAt)
	s.blocks.mu.Unlock()
	if fresh {
		return any, nil
	}
	some, err := s.cfg.Store.Takedowns(ctx, policy.ID{}, 1)
	if err != nil {
		return false, err
	}
	s.blocks.mu.Lock()
	s.blocks.any, s.blocks.anyAt, s.blocks.anyRead = len(some) > 0, now, true
	s.blocks.mu.Unlock()
	return len(some) > 0, nil
}

func (s *Service) sawTakedown() {
	s.blocks.mu.Lock()
	s.blocks.any, s.blocks.anyAt, s.blocks.anyRead = true, s.cfg.Now(), true
	s.blocks.mu.Unlock()
}

// TakeDown removes content of a hosted server from this hub on its
// operator's word: an envelope's ciphertext, a blob's bytes (whichever
// servers name it), or the whole server (TakedownServer: every request
// about it is refused until Unblock). A record signed with the hub's node
// key is kept in the content's place and returned; readers are answered
// ErrTakenDown (ErrBlocked for a server), and the content is not stored
// here again.
func (s *Service) TakeDown(ctx context.Context, server policy.ID, kind string, target policy.ID, reason string) (*policy.Takedown, error) {
	if _, err := s.cfg.Store.Tenant(ctx, server); err != nil {
		return nil, err
	}
	if kind == policy.TakedownServer {
		target = server
	}
	if kind == policy.TakedownBlob && s.cfg.Blobs == nil {
		return nil, ErrNoBlobs
	}
	rec, err := policy.NewTakedown(s.node, policy.TakedownBody{Server: server, Kind: kind, Target: target, Reason: reason, Time: s.now()})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if err := s.cfg.Store.PutTakedown(ctx, storage.Takedown{Server: server, Kind: kind, Target: target, Record: rec.Raw, At: time.UnixMilli(rec.Time).UTC()}); err != nil {
		return nil, err
	}
	s.sawTakedown()
	switch kind {
	case policy.TakedownBlob:
		if _, err := s.cfg.Store.RemoveBlobRef(ctx, server, target); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return rec, err
		}
		if err := s.cfg.Blobs.DeleteBlob(ctx, target); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return rec, err
		}
	case policy.TakedownServer:
		s.forgetBlock(server)
	}
	s.metrics.takedowns.WithLabelValues(kind).Inc()
	return rec, nil
}

// Unblock lifts a server's block; ErrNotFound when it was not blocked.
func (s *Service) Unblock(ctx context.Context, server policy.ID) error {
	found, err := s.cfg.Store.TakenDown(ctx, []policy.ID{server})
	if err != nil {
		return err
	}
	if found[server].Kind != policy.TakedownServer {
		return fmt.Errorf("hub: server %s is not blocked: %w", server, storage.ErrNotFound)
	}
	if err := s.cfg.Store.DropTakedown(ctx, server); err != nil {
		return err
	}
	s.forgetBlock(server)
	return nil
}

// Takedowns lists a server's takedowns (every server's for the zero ID).
func (s *Service) Takedowns(ctx context.Context, server policy.ID, limit int) ([]storage.Takedown, error) {
	return s.cfg.Store.Takedowns(ctx, server, limit)
}

// TakedownRecords returns the takedown records of the envelopes among envs
// that have neither ciphertext nor tombstone, by ID: what a reader is shown
// in their place.
func (s *Service) TakedownRecords(ctx context.Context, envs []storage.Envelope) (map[policy.ID][]byte, error) {
	var ids []policy.ID
	for _, e := range envs {
		if e.Raw == nil && e.Tombstone == nil {
			ids = append(ids, e.ID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	found, err := s.cfg.Store.TakenDown(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[policy.ID][]byte, len(found))
	for id, t := range found {
		out[id] = t.Record
	}
	return out, nil
}

// takenDown returns which of ids the operator took down.
func (s *Service) takenDown(ctx context.Context, ids []policy.ID) (map[policy.ID]storage.Takedown, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if any, err := s.anyTakedowns(ctx); err != nil || !any {
		return nil, err
	}
	return s.cfg.Store.TakenDown(ctx, ids)
}

// Audit records an act on the operator's API, durably.
func (s *Service) Audit(ctx context.Context, e storage.AuditEntry) error {
	if e.At.IsZero() {
		e.At = s.cfg.Now()
	}
	_, err := s.cfg.Store.AppendAudit(ctx, e)
	return err
}

// AuditLog returns the audit log after a sequence number.
func (s *Service) AuditLog(ctx context.Context, after uint64, limit int) ([]storage.AuditEntry, error) {
	return s.cfg.Store.Audit(ctx, after, limit)
}
