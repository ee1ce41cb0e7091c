package client

import (
	"context"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/reconcile"
	"github.com/guildhall/guildhall/wire"
)

// maxRounds bounds a reconciliation: each round narrows differing ranges
// sixteen-fold, so even millions of envelopes need far fewer.
const maxRounds = 32

// ReconcileStats says what a reconciliation with a hub did.
type ReconcileStats struct {
	Fetched int // envelopes this client lacked, fetched from the hub
	Posted  int // envelopes the hub lacked, posted back and stored there
	// Refused counts envelopes the hub lacked and refused when posted back:
	// a hub takes only fresh envelopes from clients (within 5 minutes of its
	// clock), so older ones come back to it from its peer hubs instead.
	Refused int
	Rounds  int // round trips
}

// Reconcile compares what this client holds of a channel with what a hub
// holds, by range fingerprints over (time, ID) (package reconcile): it
// fetches exactly what it lacks, and posts back what the hub lacks (a hub
// restored from an older backup, a hub added later). It is how a client
// switching hubs catches up without downloading what it has.
func (c *Client) Reconcile(ctx context.Context, url string, server, channel policy.ID) (ReconcileStats, error) {
	var rs ReconcileStats
	d, err := c.Device()
	if err != nil {
		return rs, err
	}
	h := c.hub(url)
	token, err := h.Login(ctx, d)
	if err != nil {
		return rs, err
	}
	held, err := c.st.heldKeys(ctx, server, channel)
	if err != nil {
		return rs, err
	}
	exchange := func(ctx context.Context, in []reconcile.Range) ([]reconcile.Range, error) {
		out, err := h.Reconcile(ctx, token, server, channel, wire.FromRanges(in))
		if err != nil {
			return nil, err
		}
		return wire.ToRanges(out)
	}
	missing, extra, st, err := reconcile.RunBoth(ctx, reconcile.NewMemory(held), exchange, 256, maxRounds)
	rs.Rounds = st.Rounds
	if err != nil {
		return rs, err
	}
	for _, k := range missing {
		e, err := h.Envelope(ctx, token, server, k.ID)
		if err != nil {
			return rs, err
		}
		if _, err := c.ingest(ctx, url, server, channel, []wire.Envelope{e}, nil); err != nil {
			return rs, err
		}
		rs.Fetched++
	}
	for i := 0; i < len(extra); i += postBackBatch {
		var raws [][]byte
		for _, k := range extra[i:min(i+postBackBatch, len(extra))] {
			raw, err := c.st.messageRaw(ctx, k.ID)
			if err != nil {
				return rs, err
			}
			if raw != nil {
				raws = append(raws, raw)
			}
		}
		if len(raws) == 0 {
			continue
		}
		res, err := h.Post(ctx, raws)
		if err != nil {
			return rs, err
		}
		for _, r := range res {
			if r.Error == nil {
				rs.Posted++
			} else {
				rs.Refused++
			}
		}
	}
	return rs, nil
}

// postBackBatch bounds the envelopes of one post-back request (below any
// hub's max_batch).
const postBackBatch = 100
