package hub

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/guildhall/guildhall/payload"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// MaxReportReason bounds the reason a member gives for a report, in bytes.
const MaxReportReason = 1024

// Report files a member's abuse report of one message with the hub's
// operator. The evidence is the message's envelope (its sender's signature
// on it) and the message's own key (payload.MessageKey), which opens that
// message and no other: the hub checks both, so what the operator reads is
// what the sender wrote, and nobody else's messages are exposed. The
// reporter must be a reader of the message's channel; reports count
// against its sending rate. It returns the report as kept.
func (s *Service) Report(ctx context.Context, r Caller, server policy.ID, raw, key []byte, reason string) (storage.Report, error) {
	if r.Identity.IsZero() || r.Invite != nil {
		return storage.Report{}, fmt.Errorf("%w: a report is filed by a member's session", ErrUnauthenticated)
	}
	if len(reason) > MaxReportReason || !utf8.ValidString(reason) {
		return storage.Report{}, fmt.Errorf("%w: a report's reason is at most %d bytes of UTF-8", ErrBadRequest, MaxReportReason)
	}
	e, err := s.verifier.Envelope(raw)
	if err != nil {
		return storage.Report{}, err
	}
	if e.Server != server {
		return storage.Report{}, fmt.Errorf("%w: the envelope is of another server", ErrBadRequest)
	}
	if err := s.MayRead(ctx, server, e.Channel, r); err != nil {
		return storage.Report{}, err
	}
	if _, err := payload.Open(key, e.Ciphertext, payload.AAD(server, e.Channel, e.Epoch)); err != nil {
		s.metrics.reports.WithLabelValues("refused").Inc()
		return storage.Report{}, fmt.Errorf("%w: the evidence does not open the message: %w", ErrBadRequest, err)
	}
	if senders := s.senders.Load(); senders != nil {
		if senders.Available(r.Identity) < 1 {
			return storage.Report{}, fmt.Errorf("hub: reporter %s: %w", r.Identity, ErrRateLimited)
		}
		senders.Charge(r.Identity, 1)
	}
	rep := storage.Report{Server: server, Channel: e.Channel, Envelope: e.ID, Author: e.Author, Reporter: r.Identity, Reason: reason,
		Evidence: e.Raw, Key: key, At: time.UnixMilli(s.now()).UTC()}
	if rep.Seq, err = s.cfg.Store.PutReport(ctx, rep); err != nil {
		return storage.Report{}, err
	}
	s.metrics.reports.WithLabelValues("filed").Inc()
	return rep, nil
}

// Reports returns abuse reports (of one server, or all for the zero ID)
// after a sequence number, each with the message body its evidence opens.
func (s *Service) Reports(ctx context.Context, server policy.ID, after uint64, limit int) ([]storage.Report, [][]byte, error) {
	rs, err := s.cfg.Store.Reports(ctx, server, after, limit)
	if err != nil {
		return nil, nil, err
	}
	bodies := make([][]byte, len(rs))
	for i, r := range rs {
		if e, err := policy.ParseEnvelope(r.Evidence); err == nil {
			bodies[i], _ = payload.Open(r.Key, e.Ciphertext, payload.AAD(r.Server, e.Channel, e.Epoch))
		}
	}
	return rs, bodies, nil
}
