package client

import (
	"context"
	"fmt"

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
	held, err := c.heldKeys(ctx, server, channel)
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
		if _, err := c.ingest(ctx, server, channel, []wire.Envelope{e}); err != nil {
			return fetched, st.Rounds, fmt.Errorf("hub %s: %w", url, err)
		}
		fetched++
	}
	return fetched, st.Rounds, nil
}

// heldKeys returns the reconciliation keys of every envelope held of a
// channel.
func (c *Client) heldKeys(ctx context.Context, server, channel policy.ID) ([]reconcile.Key, error) {
	rows, err := c.st.db.QueryContext(ctx, "SELECT time, id FROM messages WHERE server = ? AND channel = ?", server[:], channel[:])
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []reconcile.Key
	for rows.Next() {
		var k reconcile.Key
		var id []byte
		if err := rows.Scan(&k.Time, &id); err != nil {
			return nil, err
		}
		k.ID = policy.ID(id)
		out = append(out, k)
	}
	return out, rows.Err()
}
