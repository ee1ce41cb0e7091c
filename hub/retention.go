package hub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// Sweep applies every hosted channel's retention (its retention_ms and
// retention_bytes in the server's state): envelopes older than the
// channel's age limit, then the oldest beyond its size limit, are deleted
// and leave the tenant's usage. A hub runs it periodically; it returns
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
		sw, err := s.sweepServer(ctx, server)
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

func (s *Service) sweepServer(ctx context.Context, server policy.ID) (storage.Swept, error) {
	var total storage.Swept
	sl, err := s.lockLog(ctx, server)
	if err != nil {
		return total, err
	}
	channels := sl.log.State().Channels()
	sl.mu.Unlock() // the state is a snapshot; sweeping does not hold the log
	now := s.now()
	for _, ch := range channels {
		r := storage.Retention{MaxBytes: ch.RetentionBytes}
		if ch.RetentionMs > 0 {
			r.OlderThan = now - ch.RetentionMs
		}
		if r.OlderThan == 0 && r.MaxBytes == 0 {
			continue
		}
		sw, err := s.cfg.Store.Sweep(ctx, server, ch.ID, r)
		total.Envelopes += sw.Envelopes
		total.Bytes += sw.Bytes
		if err != nil {
			return total, err
		}
	}
	return total, nil
}
