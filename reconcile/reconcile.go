// Package reconcile finds what two sets of envelope keys (time, ID) differ
// by, exchanging fingerprints of key ranges instead of the keys themselves:
// range-based set reconciliation, as negentropy does. A range whose
// fingerprints match holds the same IDs on both sides and is dropped; a
// small differing range is answered with its keys; a large one is split
// and compared again. Two sets of n keys that differ by d converge in about
// log16(n/64) rounds, with traffic proportional to d, not n.
//
// The initiator runs Run against a responder's Answer (over HTTP for
// clients, over libp2p streams between hubs). The package holds no I/O.
package reconcile

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// Key and Fingerprint are the storage contract's.
type (
	Key         = storage.Key
	Fingerprint = storage.Fingerprint
)

// Set is one side's keys.
type Set interface {
	// Fingerprint summarises the keys in [from, to).
	Fingerprint(ctx context.Context, from, to Key) (Fingerprint, error)
	// Keys returns the keys in [from, to) in order, at most limit.
	Keys(ctx context.Context, from, to Key, limit int) ([]Key, error)
}

// Range is a range [From, To) with the sender's fingerprint, or, when
// Listed, the sender's keys in it.
type Range struct {
	From, To Key
	FP       Fingerprint
	Listed   bool
	Keys     []Key
}

// Parameters of the protocol: a differing range with at most ListMax keys
// is answered with them; a larger one is split in Split.
const (
	ListMax = 64
	Split   = 16
)

// Errors of a malformed round.
var (
	ErrTooMany  = errors.New("reconcile: too many ranges in one round")
	ErrBadRange = errors.New("reconcile: empty, inverted or overlapping range")
)

// Top is the highest key: the end of the whole set.
var Top = func() Key {
	k := Key{Time: math.MaxInt64}
	for i := range k.ID {
		k.ID[i] = 0xff
	}
	return k
}()

// Answer is the responder's side of one round: for every range whose
// fingerprint differs from the responder's, its keys (small ranges) or
// fingerprints of sub-ranges (large ones). Matching ranges are left out.
// maxRanges bounds the round; now (Unix ms) bounds time splits of the
// open-ended top range.
func Answer(ctx context.Context, s Set, in []Range, maxRanges int, now int64) ([]Range, error) {
	if len(in) > maxRanges {
		return nil, fmt.Errorf("%w: %d ranges, limit %d", ErrTooMany, len(in), maxRanges)
	}
	// Ranges ascend and do not overlap (a round partitions the key space),
	// checked before any is read, so one round reads each stored key only
	// a few times however its ranges are chosen.
	for i, q := range in {
		if !q.From.Less(q.To) {
			return nil, ErrBadRange
		}
		if i > 0 && q.From.Less(in[i-1].To) {
			return nil, fmt.Errorf("%w: range %d overlaps or precedes range %d", ErrBadRange, i, i-1)
		}
	}
	var out []Range
	for _, q := range in {
		fp, err := s.Fingerprint(ctx, q.From, q.To)
		if err != nil {
			return nil, err
		}
		if fp == q.FP && !q.Listed {
			continue
		}
		if fp.Count <= ListMax {
			keys, err := s.Keys(ctx, q.From, q.To, ListMax)
			if err != nil {
				return nil, err
			}
			if q.Listed && slices.Equal(keys, q.Keys) {
				continue
			}
			out = append(out, Range{From: q.From, To: q.To, FP: fp, Listed: true, Keys: keys})
			continue
		}
		subs, err := split(ctx, s, q.From, q.To, now)
		if err != nil {
			return nil, err
		}
		out = append(out, subs...)
	}
	return out, nil
}

// split divides [from, to) into up to Split sub-ranges with fingerprints:
// by time between the first key and to (or now, for the open end), or by
// ID when all keys share one millisecond.
func split(ctx context.Context, s Set, from, to Key, now int64) ([]Range, error) {
	first, err := s.Keys(ctx, from, to, 1)
	if err != nil || len(first) == 0 {
		return nil, err
	}
	lo, hi := first[0].Time, to.Time
	if hi == math.MaxInt64 {
		hi = max(now+policy.MaxClockSkew, lo) + 1
	}
	var bounds []Key
	if hi-lo > 1 {
		step := max((hi-lo)/Split, 1)
		for t := lo + step; t < hi && len(bounds) < Split-1; t += step {
			bounds = append(bounds, Key{Time: t})
		}
	} else { // one millisecond: split the IDs between the range's ends
		a, b := uint64(0), uint64(math.MaxUint64)
		if from.Time == lo {
			a = binary.BigEndian.Uint64(from.ID[:8])
		}
		if to.Time == lo {
			b = binary.BigEndian.Uint64(to.ID[:8])
		}
		step := (b - a) / Split
		if step == 0 { // IDs sharing 8 bytes: list them, bounded
			keys, err := s.Keys(ctx, from, to, 4*ListMax)
			if err != nil {
				return nil, err
			}
			fp, err := s.Fingerprint(ctx, from, to)
			return []Range{{From: from, To: to, FP: fp, Listed: true, Keys: keys}}, err
		}
		for i := uint64(1); i < Split; i++ {
			var id policy.ID
			binary.BigEndian.PutUint64(id[:8], a+i*step)
			bounds = append(bounds, Key{Time: lo, ID: id})
		}
	}
	edges := []Key{from}
	for _, b := range bounds {
		if from.Less(b) && b.Less(to) {
			edges = append(edges, b)
		}
	}
	edges = append(edges, to)
	var out []Range
	for i := 0; i+1 < len(edges); i++ {
		fp, err := s.Fingerprint(ctx, edges[i], edges[i+1])
		if err != nil {
			return nil, err
		}
		out = append(out, Range{From: edges[i], To: edges[i+1], FP: fp})
	}
	return out, nil
}

// Exchange sends one round to the responder and returns its answer.
type Exchange func(ctx context.Context, ranges []Range) ([]Range, error)

// Stats describes a reconciliation.
type Stats struct {
	Rounds int // round trips
	Ranges int // ranges sent
}

// Run is the initiator: it reconciles local with the responder behind
// exchange and returns the keys the responder holds that local lacks. (What
// local holds that the responder lacks, the responder finds by running the
// same protocol the other way.) batch bounds the ranges per round trip,
// maxRounds the round trips.
func Run(ctx context.Context, local Set, exchange Exchange, batch, maxRounds int) (missing []Key, st Stats, err error) {
	missing, _, st, err = RunBoth(ctx, local, exchange, batch, maxRounds)
	return missing, st, err
}

// RunBoth is Run that also returns extra: keys local holds that the
// responder lacks, found in the ranges the responder listed in full (every
// differing range ends listed, except one whose keys share a millisecond
// and their first 8 ID bytes beyond the listing bound, whose extras are
// left out). A hub that knows a peer missed its pushes offers it extra.
func RunBoth(ctx context.Context, local Set, exchange Exchange, batch, maxRounds int) (missing, extra []Key, st Stats, err error) {
	queue := []Range{{From: Key{}, To: Top}}
	for len(queue) > 0 {
		for i := range queue {
			if queue[i].FP, err = local.Fingerprint(ctx, queue[i].From, queue[i].To); err != nil {
				return nil, nil, st, err
			}
		}
		var next []Range
		for len(queue) > 0 {
			if st.Rounds++; st.Rounds > maxRounds {
				return nil, nil, st, fmt.Errorf("reconcile: no convergence in %d rounds", maxRounds)
			}
			n := min(len(queue), batch)
			st.Ranges += n
			out, err := exchange(ctx, queue[:n])
			if err != nil {
				return nil, nil, st, err
			}
			queue = queue[n:]
			for _, r := range out {
				if !r.Listed { // a split: compare again where the sub-ranges differ
					fp, err := local.Fingerprint(ctx, r.From, r.To)
					if err != nil {
						return nil, nil, st, err
					}
					if fp != r.FP {
						next = append(next, Range{From: r.From, To: r.To})
					}
					continue
				}
				mine, err := local.Keys(ctx, r.From, r.To, math.MaxInt32)
				if err != nil {
					return nil, nil, st, err
				}
				for _, k := range r.Keys {
					if _, found := slices.BinarySearchFunc(mine, k, Compare); !found {
						missing = append(missing, k)
					}
				}
				if uint64(len(r.Keys)) == r.FP.Count { // the responder's keys there, all of them
					for _, k := range mine {
						if _, found := slices.BinarySearchFunc(r.Keys, k, Compare); !found {
							extra = append(extra, k)
						}
					}
				}
			}
		}
		queue = next
	}
	return missing, extra, st, nil
}

// Compare orders keys.
func Compare(a, b Key) int {
	switch {
	case a.Less(b):
		return -1
	case b.Less(a):
		return 1
	}
	return 0
}
