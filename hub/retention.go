package hub

import (
	"context"
	"errors"
	"fmt"

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
