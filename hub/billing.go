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

// Billing: the usage ledger, egress metering and tenant deletion.
//
// Egress is counted in memory (CountEgress, called by the HTTP handlers
// for every envelope, state event, sealed key and blob byte they serve,
// and CountPresignedGet for blob downloads the store serves itself) and
// written to the store with each sample. WebSocket deliveries and
// hub-to-hub replication are not counted. A crash loses what was
// counted since the last sample: at most one sampling interval of egress.
// A graceful stop (RunLedger's context ending) writes it first.

// DefaultSampleInterval is how often RunLedger samples when given 0.
const DefaultSampleInterval = time.Hour

// egressMeter counts bytes served per server since the last sample.
type egressMeter struct {
	mu       sync.Mutex
	bytes    map[policy.ID]uint64 // guarded by mu
	interval time.Duration        // guarded by mu; RunLedger's, 0 before it runs
}

func (m *egressMeter) add(server policy.ID, n uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bytes == nil {
		m.bytes = map[policy.ID]uint64{}
	}
	m.bytes[server] += n
}

// take returns the counts and starts afresh.
func (m *egressMeter) take() map[policy.ID]uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.bytes
	m.bytes = nil
	return out
}

// putBack returns counts a failed sample did not store.
func (m *egressMeter) putBack(counts map[policy.ID]uint64) {
	for server, n := range counts {
		m.add(server, n)
	}
}

func (m *egressMeter) sampleInterval() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.interval <= 0 {
		return DefaultSampleInterval
	}
	return m.interval
}

// CountEgress counts n bytes of server's data served to a reader.
func (s *Service) CountEgress(server policy.ID, n int) {
	if n > 0 {
		s.egress.add(server, uint64(n))
	}
}

// CountPresignedGet counts a blob's size as egress of server when a
// presigned download URL is issued for it: the bytes then flow from the
// blob store to the reader without passing through the hub, so the URL is
// counted once, whether or not it is used (or used more than once before
// it expires).
func (s *Service) CountPresignedGet(ctx context.Context, server, id policy.ID) {
	if s.cfg.Blobs == nil {
		return
	}
	if size, err := s.cfg.Blobs.StatBlob(ctx, id); err == nil {
		s.CountEgress(server, int(size))
	}
}

// nextSample returns the end of the sampling interval that t falls in: the
// time the sample covering t is recorded at (Unix ms).
func nextSample(t time.Time, interval time.Duration) int64 {
	ms, iv := t.UnixMilli(), interval.Milliseconds()
	return ms - ms%iv + iv
}

// SampleUsage records a sample of every tenant at at (Unix ms) with the
// egress counted since the last sample, and returns how many tenants it
// sampled. On failure the egress is kept for the next sample.
func (s *Service) SampleUsage(ctx context.Context, at int64) (int, error) {
	counts := s.egress.take()
	n, err := s.cfg.Store.RecordSamples(ctx, at, counts)
	if err != nil {
		s.egress.putBack(counts)
		return 0, fmt.Errorf("hub: usage sample: %w", err)
	}
	return n, nil
}

// RunLedger samples every tenant's usage and egress at each multiple of
// interval (default DefaultSampleInterval) until ctx ends, and finishes
// the blob deletions of deleted tenants. When ctx ends it records the
// egress counted so far in the sample of the interval under way (a later
// sample of that interval, after a restart, adds to it), then returns nil.
func (s *Service) RunLedger(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = DefaultSampleInterval
	}
	if interval%time.Second != 0 {
		return fmt.Errorf("hub: sample interval %v: want whole seconds (the ledger's times are)", interval)
	}
	s.egress.mu.Lock()
	s.egress.interval = interval
	s.egress.mu.Unlock()
	for {
		at := nextSample(s.cfg.Now(), interval)
		timer := time.NewTimer(time.UnixMilli(at).Sub(s.cfg.Now()))
		select {
		case <-ctx.Done():
			timer.Stop()
			fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := s.SampleUsage(fctx, at)
			cancel()
			if err != nil {
				s.cfg.Logger.Error("hub: the last usage sample before stopping failed: its egress is lost", "err", err)
			}
			return nil
		case <-timer.C:
		}
		if n, err := s.SampleUsage(ctx, at); err != nil {
			s.cfg.Logger.Error("hub: usage sample failed; its egress goes into the next", "err", err)
		} else {
			s.cfg.Logger.Debug("hub: usage sampled", "tenants", n, "at", time.UnixMilli(at).UTC())
		}
		if err := s.PurgeBlobs(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Error("hub: deleting the blobs of deleted tenants", "err", err)
		}
	}
}

// Ledger returns a page of the usage ledger: samples with from <= At < to
// (Unix ms) after the cursor, in (At, Server) order.
func (s *Service) Ledger(ctx context.Context, from, to int64, after storage.SampleCursor, limit int) ([]storage.Sample, error) {
	if from >= to {
		return nil, fmt.Errorf("%w: the ledger range must end after it starts", ErrBadRequest)
	}
	return s.cfg.Store.Samples(ctx, from, to, after, limit)
}

// DeleteTenant deletes a tenant and everything it stores: state log,
// envelopes, key entries, blob references, and the blobs no other tenant
// references, from the blob store. The egress counted so far is recorded
// first, in the sample of the interval under way. Later writes for the
// server are refused as not hosted, and admission does not take it back;
// the operator may provision it again (PutTenant). It reports whether it
// deleted anything now (false: deleted earlier); an unknown server is
// storage.ErrNotFound. If deleting the blobs fails, the tenant is deleted
// all the same and the blobs stay queued: calling DeleteTenant again, or
// RunLedger's next round, finishes the work.
func (s *Service) DeleteTenant(ctx context.Context, server policy.ID) (bool, error) {
	if server.IsZero() {
		return false, fmt.Errorf("%w: server is required", ErrBadRequest)
	}
	if _, err := s.SampleUsage(ctx, nextSample(s.cfg.Now(), s.egress.sampleInterval())); err != nil {
		return false, err
	}
	deleted, err := s.cfg.Store.DeleteTenant(ctx, server)
	if err != nil {
		return false, err
	}
	s.forgetLog(server)
	if err := s.PurgeBlobs(ctx); err != nil {
		return deleted, err
	}
	return deleted, nil
}

// forgetLog drops a server's state log from memory.
func (s *Service) forgetLog(server policy.ID) {
	s.mu.Lock()
	sl := s.logs[server]
	s.mu.Unlock()
	if sl != nil {
		sl.mu.Lock() // lock order: serverLog.mu before Service.mu (drop)
		s.drop(sl)
		sl.mu.Unlock()
	}
}

// PurgeBlobs deletes from the blob store the queued blobs of deleted
// tenants that no tenant references, and takes them off the queue.
func (s *Service) PurgeBlobs(ctx context.Context) error {
	const page = 1000
	for {
		ids, err := s.cfg.Store.PendingBlobDeletes(ctx, page)
		if err != nil {
			return err
		}
		var errs []error
		for _, id := range ids {
			if s.cfg.Blobs != nil {
				if err := s.cfg.Blobs.DeleteBlob(ctx, id); err != nil {
					errs = append(errs, fmt.Errorf("hub: delete blob %s: %w", id, err))
					continue
				}
			}
			if err := s.cfg.Store.BlobDeleted(ctx, id); err != nil {
				return err
			}
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		if len(ids) < page {
			return nil
		}
	}
}
