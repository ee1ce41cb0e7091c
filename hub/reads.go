package hub

import (
	"context"
	"fmt"
	"math"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// Reader is who asks to read: an identity and the device it proved, or
// the zero Reader for an anonymous request.
type Reader struct {
	Identity policy.PublicKey
	Device   policy.PublicKey
}

// MayRead applies policy's read rule for a hosted server: a channel, or its
// state log with channel zero.
func (s *Service) MayRead(ctx context.Context, server, channel policy.ID, r Reader) error {
	sl, err := s.lockLog(ctx, server)
	if err != nil {
		return err
	}
	defer sl.mu.Unlock()
	return sl.log.State().MayRead(r.Identity, r.Device, channel)
}

// Read returns a channel's envelopes after a sequence number, to a reader
// who may read it.
func (s *Service) Read(ctx context.Context, r Reader, server, channel policy.ID, after uint64, limit int) ([]storage.Envelope, error) {
	if err := s.MayRead(ctx, server, channel, r); err != nil {
		return nil, err
	}
	return s.cfg.Store.ReadChannel(ctx, server, channel, after, limit)
}

// Events returns a hosted server's stored state events after a cursor, to
// a reader who may read its state log.
func (s *Service) Events(ctx context.Context, r Reader, server policy.ID, after uint64, limit int) ([]storage.Event, error) {
	if err := s.MayRead(ctx, server, policy.ID{}, r); err != nil {
		return nil, err
	}
	return s.cfg.Store.Events(ctx, server, after, limit)
}

// Envelope returns one stored envelope by ID to a reader who may read its
// channel; an envelope of another server is not found.
func (s *Service) Envelope(ctx context.Context, r Reader, server, id policy.ID) (storage.Envelope, error) {
	e, err := s.cfg.Store.GetEnvelope(ctx, id)
	if err != nil {
		return e, err
	}
	if e.Server != server {
		return storage.Envelope{}, fmt.Errorf("hub: envelope %s: %w", id, storage.ErrNotFound)
	}
	if err := s.MayRead(ctx, server, e.Channel, r); err != nil {
		return storage.Envelope{}, err
	}
	return e, nil
}

// Tombstone applies signed tombstones, each answered by nil or why not.
// Applying one twice is a no-op; an unknown target is storage.ErrNotFound.
func (s *Service) Tombstone(ctx context.Context, raws [][]byte) []error {
	out := make([]error, len(raws))
	for i, raw := range raws {
		out[i] = s.tombstone(ctx, raw)
	}
	return out
}

func (s *Service) tombstone(ctx context.Context, raw []byte) error {
	t, err := policy.ParseTombstone(raw)
	if err != nil {
		return err
	}
	stored, err := s.cfg.Store.GetEnvelope(ctx, t.Target)
	if err != nil {
		return fmt.Errorf("hub: tombstone target %s: %w", t.Target, err)
	}
	if stored.Server != t.Server {
		return &policy.Error{Code: policy.CodeWrongServer, Detail: fmt.Sprintf("envelope %s is not in server %s", t.Target, t.Server)}
	}
	if stored.Raw == nil {
		return nil // already deleted
	}
	target, err := s.verifier.Envelope(stored.Raw)
	if err != nil {
		return fmt.Errorf("hub: stored envelope %s: %w", t.Target, err)
	}
	sl, err := s.lockLog(ctx, t.Server)
	if err != nil {
		return err
	}
	err = sl.log.State().CheckTombstone(t, target)
	sl.mu.Unlock()
	if err != nil {
		return err
	}
	return s.cfg.Store.ApplyTombstone(ctx, t.Target, raw)
}

// Reconciliation parameters: a differing range with at most listMax
// envelopes is answered with its keys, a larger one is split in splitN.
const (
	listMax = 64
	splitN  = 16
)

// Range is a range of a reconciliation round, as in storage: [From, To)
// with a fingerprint, or the keys it holds when Listed.
type Range struct {
	From, To storage.Key
	FP       storage.Fingerprint
	Listed   bool
	Keys     []storage.Key
}

// Reconcile answers one round of range-based set reconciliation over a
// channel: for every range whose fingerprint differs from this hub's, either
// this hub's keys in it (small ranges) or its fingerprints over sub-ranges
// (large ones). Ranges that match are left out of the answer. A round is
// bounded: at most MaxRanges ranges in, and in Keys at most
// MaxRanges*listMax out.
func (s *Service) Reconcile(ctx context.Context, r Reader, server, channel policy.ID, in []Range) ([]Range, error) {
	if len(in) > MaxRanges {
		return nil, fmt.Errorf("%w: %d ranges in one round, limit %d", ErrBadRequest, len(in), MaxRanges)
	}
	if err := s.MayRead(ctx, server, channel, r); err != nil {
		return nil, err
	}
	var out []Range
	for _, q := range in {
		if !q.From.Less(q.To) {
			return nil, fmt.Errorf("%w: empty or inverted range", ErrBadRequest)
		}
		fp, err := s.cfg.Store.RangeFingerprint(ctx, server, channel, q.From, q.To)
		if err != nil {
			return nil, err
		}
		if fp == q.FP {
			continue
		}
		if fp.Count <= listMax {
			keys, err := s.cfg.Store.RangeKeys(ctx, server, channel, q.From, q.To, listMax)
			if err != nil {
				return nil, err
			}
			out = append(out, Range{From: q.From, To: q.To, FP: fp, Listed: true, Keys: keys})
			continue
		}
		subs, err := s.split(ctx, server, channel, q.From, q.To)
		if err != nil {
			return nil, err
		}
		out = append(out, subs...)
	}
	return out, nil
}

// MaxRanges bounds the ranges of one reconciliation round.
const MaxRanges = 256

// split divides [from, to) into up to splitN sub-ranges with their
// fingerprints: by time between the first key held and to (or the last
// key, when to is open-ended), or by ID when all keys share one time.
func (s *Service) split(ctx context.Context, server, channel policy.ID, from, to storage.Key) ([]Range, error) {
	first, err := s.cfg.Store.RangeKeys(ctx, server, channel, from, to, 1)
	if err != nil || len(first) == 0 {
		return nil, err
	}
	lo, hi := first[0].Time, to.Time
	if hi == math.MaxInt64 {
		hi = max(s.now()+policy.MaxClockSkew, lo) + 1
	}
	var bounds []storage.Key
	if hi-lo > 1 {
		step := max((hi-lo)/splitN, 1)
		for t := lo + step; t < hi && len(bounds) < splitN-1; t += step {
			bounds = append(bounds, storage.Key{Time: t})
		}
	} else {
		for i := 1; i < splitN; i++ {
			var id policy.ID
			id[0] = byte(i * (256 / splitN))
			bounds = append(bounds, storage.Key{Time: lo, ID: id})
		}
	}
	edges := []storage.Key{from}
	for _, b := range bounds {
		if from.Less(b) && b.Less(to) {
			edges = append(edges, b)
		}
	}
	edges = append(edges, to)
	var out []Range
	for i := 0; i+1 < len(edges); i++ {
		a, b := edges[i], edges[i+1]
		fp, err := s.cfg.Store.RangeFingerprint(ctx, server, channel, a, b)
		if err != nil {
			return nil, err
		}
		out = append(out, Range{From: a, To: b, FP: fp})
	}
	return out, nil
}
