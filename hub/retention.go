package hub

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// Sweep applies every hosted channel's retention (its retention_ms and
// retention_bytes in the server's state): envelopes older than the
// channel's age limit, then the oldest beyond its size limit, are deleted
// and leave the tenant's usage. A channel the hub may no longer store
// (policy.State.MustPurge: made strict, a grant revoked) is emptied. A hub runs it periodically; it returns
// what it freed. A server whose state cannot be loaded is skipped and
// reported in the error; the others are still swept.
func (s *Service) Sweep(ctx context.Context) (storage.Swept, error) {
	var total storage.Swept
	servers, err := s.Hosted(ctx)
	if err != nil {
		return total, err
	}
	var errs []error
	for _, server := range servers {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		sw, err := s.sweepServer(ctx, server, true)
		total.Envelopes += sw.Envelopes
		total.Bytes += sw.Bytes
		if err != nil {
			errs = append(errs, fmt.Errorf("server %s: %w", server, err))
		}
	}
	s.metrics.swept.WithLabelValues("envelopes").Add(float64(total.Envelopes))
	s.metrics.swept.WithLabelValues("bytes").Add(float64(total.Bytes))
	return total, errors.Join(errs...)
}

// RunRetention sweeps (Sweep) every interval until ctx ends, logging what
// each sweep freed and what it could not sweep; a server that failed is
// tried again at the next interval. It returns once ctx is done and no
// sweep is running, so a caller that waits for it may then close the
// store. An interval that is not positive is an error.
func (s *Service) RunRetention(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("hub: retention interval %v: must be positive", interval)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case server := <-s.purges:
			// A state change may have taken channels from this hub.
			if _, err := s.sweepServer(ctx, server, false); err != nil && ctx.Err() == nil {
				s.cfg.Logger.Warn("purging channels after a state change", "server", server, "err", err)
			}
			continue
		case <-t.C:
		}
		sw, err := s.Sweep(ctx)
		if err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("retention sweep", "err", err)
		}
		if sw.Envelopes > 0 {
			s.cfg.Logger.Info("retention sweep", "envelopes", sw.Envelopes, "bytes", sw.Bytes)
		}
	}
}

// sweepServer empties the channels of server this hub may no longer store
// and, with retention, applies the others' retention.
func (s *Service) sweepServer(ctx context.Context, server policy.ID, retention bool) (storage.Swept, error) {
	var total storage.Swept
	sl, err := s.lockLog(ctx, server)
	if err != nil {
		return total, err
	}
	// Purging deletes what this hub holds, so it is judged on everything
	// stored, not on a copy another process sharing the store has moved on
	// from.
	if err := s.refresh(ctx, sl); err != nil {
		sl.mu.Unlock()
		return total, err
	}
	st := sl.log.State()
	channels := st.Channels()
	purge := map[policy.ID]bool{}
	for _, ch := range channels {
		purge[ch.ID] = st.MustPurge(s.node.Identity, s.cfg.NodeCert, ch.ID)
	}
	sl.mu.Unlock() // the state is a snapshot; sweeping does not hold the log
	now := s.now()
	for _, ch := range channels {
		r := storage.Retention{MaxBytes: ch.RetentionBytes}
		if ch.RetentionMs > 0 {
			r.OlderThan = now - ch.RetentionMs
		}
		switch {
		case purge[ch.ID]: // no longer this hub's to hold (made strict, grant revoked)
			r = storage.Retention{OlderThan: math.MaxInt64}
		case !retention:
			continue
		}
		if r.OlderThan == 0 && r.MaxBytes == 0 {
			continue
		}
		sw, err := s.cfg.Store.Sweep(ctx, server, ch.ID, r)
		total.Envelopes += sw.Envelopes
		total.Bytes += sw.Bytes
		if purge[ch.ID] && sw.Envelopes > 0 {
			s.cfg.Logger.Info("purged a channel this hub may no longer store", "server", server, "channel", ch.ID, "name", ch.Name, "envelopes", sw.Envelopes)
		}
		if err != nil {
			return total, err
		}
	}
	if total.Envelopes > 0 { // what the swept envelopes named is released as a deletion's is
		orphans, err := s.cfg.Store.DropSweptBlobs(ctx, server)
		if err != nil {
			return total, err
		}
		s.releaseOrphans(ctx, server, orphans)
	}
	return total, nil
}
