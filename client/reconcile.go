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

// Reconcile compares what this client holds of a channel with what a hub
// holds, by range fingerprints over (time, ID) (package reconcile), and
// fetches exactly what it lacks. It is how a client switching hubs catches
// up without downloading what it has. It returns how many envelopes were
// fetched and how many round trips it took.
func (c *Client) Reconcile(ctx context.Context, url string, server, channel policy.ID) (fetched, rounds int, err error) {
	d, err := c.Device()
	if err != nil {
		return 0, 0, err
	}
	h := c.hub(url)
	token, err := h.Login(ctx, d)
	if err != nil {
		return 0, 0, err
	}
	held, err := c.st.heldKeys(ctx, server, channel)
	if err != nil {
		return 0, 0, err
	}
	exchange := func(ctx context.Context, in []reconcile.Range) ([]reconcile.Range, error) {
		out, err := h.Reconcile(ctx, token, server, channel, wire.FromRanges(in))
		if err != nil {
			return nil, err
		}
		return wire.ToRanges(out)
	}
	missing, st, err := reconcile.Run(ctx, reconcile.NewMemory(held), exchange, 256, maxRounds)
	if err != nil {
		return 0, st.Rounds, err
	}
	for _, k := range missing {
		e, err := h.Envelope(ctx, token, server, k.ID)
		if err != nil {
			return fetched, st.Rounds, err
		}
		if _, err := c.ingest(ctx, url, server, channel, []wire.Envelope{e}); err != nil {
			return fetched, st.Rounds, err
		}
		fetched++
	}
	return fetched, st.Rounds, nil
}
