package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// bundleBatch is how many key-bundle envelopes (at most about 100 KB each)
// go in one request: well below a hub's default 4 MiB body and 1,000
// objects.
const bundleBatch = 16

// maxRateWaits bounds how often postBundles waits out a hub's rate limit
// (Retry-After, 1 s) before giving up on that hub: a re-key of 100,000
// hybrid devices is about 1,200 envelopes, 24 s at a hub's default 50/s.
const maxRateWaits = 120

// postBundles signs and posts a re-key's bundle envelopes to every hub of
// the server, many per request, waiting out rate limits, and keeps them
// here. It fails unless every envelope got a valid receipt from some hub:
// a key half posted would leave readers without it.
func (c *Client) postBundles(ctx context.Context, server, channel policy.ID, epoch uint64, payloads [][]byte) error {
	d, err := c.Device()
	if err != nil {
		return err
	}
	st, err := c.State(ctx, server)
	if err != nil {
		return err
	}
	envs := make([]*policy.Envelope, len(payloads))
	for i, p := range payloads {
		if envs[i], err = policy.NewEnvelope(d.Signer(), policy.EnvelopeBody{Server: server, Channel: channel, Epoch: epoch, Time: c.Now().UnixMilli(), Ciphertext: p}); err != nil {
			return err
		}
		if err := st.CheckEnvelope(envs[i], c.Now().UnixMilli()); err != nil {
			return err
		}
	}
	hubs, err := c.st.hubs(ctx, server)
	if err != nil {
		return err
	}
	accepted := make([]bool, len(envs))
	var errs []error
	for _, url := range hubs {
		if err := c.postBundlesTo(ctx, url, st, envs, accepted); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", url, err))
		}
	}
	for i, ok := range accepted {
		if !ok {
			return fmt.Errorf("%w: key bundle %d of %d: %w", ErrNotAccepted, i+1, len(envs), errors.Join(append(errs, ErrNoHub)...))
		}
	}
	for _, e := range envs {
		if _, err := c.record(ctx, e, nil); err != nil {
			return fmt.Errorf("client: %s was sent but is not kept here: %w", e.ID, err)
		}
	}
	return nil
}

// postBundlesTo posts envelopes to one hub, marking in accepted those it
// gave a valid receipt for.
func (c *Client) postBundlesTo(ctx context.Context, url string, st *policy.State, envs []*policy.Envelope, accepted []bool) error {
	h := c.hub(url)
	cert, err := h.NodeCert(ctx) // a home node's receipts are checked with its certificate
	if err != nil {
		return err
	}
	waits := 0
	for i := 0; i < len(envs); {
		batch := envs[i:min(i+bundleBatch, len(envs))]
		raws := make([][]byte, len(batch))
		for j, e := range batch {
			raws[j] = e.Raw
		}
		res, err := h.Post(ctx, raws)
		limited := IsCode(err, wire.CodeRateLimited)
		if err != nil && !limited {
			return err
		}
		done := 0 // the batch's prefix the hub answered (a rate limit stops a sender's batch part way)
		for j := range res {
			if res[j].Error != nil {
				if res[j].Error.Code == wire.CodeRateLimited {
					limited = true
					break
				}
				return &HubError{Code: res[j].Error.Code, Message: res[j].Error.Message}
			}
			r, err := policy.ParseReceipt(res[j].Receipt)
			if err == nil {
				err = st.CheckReceipt(r, batch[j], cert, c.Now().UnixMilli())
			}
			if err != nil {
				return fmt.Errorf("client: hub %s answered with an invalid receipt: %w", url, err)
			}
			accepted[i+j] = true
			done = j + 1
		}
		i += done
		if !limited && done < len(batch) {
			return fmt.Errorf("client: hub %s answered %d of %d envelopes", url, done, len(batch))
		}
		if limited {
			if waits++; waits > maxRateWaits {
				return fmt.Errorf("client: hub %s kept refusing the key bundles: %w", url, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}
