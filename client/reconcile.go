package client

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/guildhall/guildhall/hub/wire"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// maxRounds bounds a reconciliation: each round narrows differing ranges
// sixteen-fold, so even millions of envelopes need far fewer.
const maxRounds = 32

// Reconcile compares what this client holds of a channel with what a hub
// holds, by range fingerprints over (time, ID), and fetches exactly what
// it lacks. It is how a client switching hubs catches up without
// downloading what it has. It returns how many envelopes were fetched and
// how many rounds it took.
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
	fp := func(from, to storage.Key) storage.Fingerprint {
		i, _ := slices.BinarySearchFunc(held, from, cmpKey)
		var f storage.Fingerprint
		for ; i < len(held) && held[i].Less(to); i++ {
			f.Add(held[i].ID)
		}
		return f
	}
	top := storage.Key{Time: math.MaxInt64}
	for i := range top.ID {
		top.ID[i] = 0xff
	}
	queue := []wire.Range{{To: wire.Key(top)}}
	var missing []policy.ID
	for len(queue) > 0 {
		if rounds++; rounds > maxRounds {
			return 0, rounds, fmt.Errorf("client: reconciliation with %s did not converge", url)
		}
		for i := range queue {
			f := fp(storage.Key(queue[i].From), storage.Key(queue[i].To))
			queue[i].Count, queue[i].Sum = f.Count, f.Sum[:]
		}
		var next []wire.Range
		for len(queue) > 0 { // at most 256 ranges per round trip
			n := min(len(queue), 256)
			out, err := h.Reconcile(ctx, token, server, channel, queue[:n])
			if err != nil {
				return 0, rounds, err
			}
			queue = queue[n:]
			for _, r := range out {
				if r.Listed {
					for _, k := range r.Keys {
						if _, found := slices.BinarySearchFunc(held, storage.Key(k), cmpKey); !found {
							missing = append(missing, k.ID)
						}
					}
					continue
				}
				f := fp(storage.Key(r.From), storage.Key(r.To))
				if f.Count != r.Count || string(f.Sum[:]) != string(r.Sum) {
					next = append(next, wire.Range{From: r.From, To: r.To})
				}
			}
		}
		queue = next
	}
	for _, id := range missing {
		e, err := h.Envelope(ctx, token, server, id)
		if err != nil {
			return fetched, rounds, err
		}
		if _, err := c.ingest(ctx, server, channel, []wire.Envelope{e}); err != nil {
			return fetched, rounds, fmt.Errorf("hub %s: %w", url, err)
		}
		fetched++
	}
	return fetched, rounds, nil
}

func cmpKey(a, b storage.Key) int {
	switch {
	case a.Less(b):
		return -1
	case b.Less(a):
		return 1
	}
	return 0
}

// heldKeys returns the reconciliation keys of every envelope held of a
// channel, in order.
func (c *Client) heldKeys(ctx context.Context, server, channel policy.ID) ([]storage.Key, error) {
	rows, err := c.st.db.QueryContext(ctx, "SELECT time, id FROM messages WHERE server = ? AND channel = ? ORDER BY time, id", server[:], channel[:])
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storage.Key
	for rows.Next() {
		var k storage.Key
		var id []byte
		if err := rows.Scan(&k.Time, &id); err != nil {
			return nil, err
		}
		k.ID = policy.ID(id)
		out = append(out, k)
	}
	return out, rows.Err()
}
