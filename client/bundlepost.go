package client

import (
	"context"
	"fmt"
	"time"

	"github.com/guildhall/guildhall/client/hubapi"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// bundleBatch is how many key-bundle envelopes (at most about 100 KB each)
// go in one request: well below a hub's default 4 MiB body and 1,000
// objects.
const bundleBatch = 16

// maxRateWaits bounds how often a re-key waits out a hub's rate limit
// (Retry-After, 1 s) before giving up on that hub: a re-key of 100,000
// hybrid devices is about 1,200 envelopes, 24 s at a hub's default 50/s.
const maxRateWaits = 120

// sealAndPost seals k to devices and posts the bundles to every hub of the
// server as they are sealed: a batch is on its way while the next one is
// sealed. It fails unless every envelope got a valid receipt from some hub:
// a key half posted would leave readers without it.
func (c *Client) sealAndPost(ctx context.Context, server, channel policy.ID, k epochKey, devices []*policy.DeviceCert) error {
	p, err := c.newBundlePoster(ctx, server, channel, k.Epoch)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sealed := make(chan []byte, 2*bundleBatch)
	sealErr := make(chan error, 1)
	go func() {
		defer close(sealed)
		sealErr <- sealBundlesTo(k, server, channel, devices, func(b []byte) error {
			select {
			case sealed <- b:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	var batch [][]byte
	for b := range sealed {
		if batch = append(batch, b); len(batch) < bundleBatch {
			continue
		}
		if err := p.post(ctx, batch); err != nil {
			cancel()
			for range sealed { // let the sealer stop
			}
			return err
		}
		batch = nil
	}
	if err := <-sealErr; err != nil {
		return err
	}
	return p.post(ctx, batch)
}

// postBundles posts a re-key's sealed bundles (see sealAndPost).
func (c *Client) postBundles(ctx context.Context, server, channel policy.ID, epoch uint64, payloads [][]byte) error {
	p, err := c.newBundlePoster(ctx, server, channel, epoch)
	if err != nil {
		return err
	}
	for i := 0; i < len(payloads); i += bundleBatch {
		if err := p.post(ctx, payloads[i:min(i+bundleBatch, len(payloads))]); err != nil {
			return err
		}
	}
	return nil
}

// bundlePoster signs and posts one epoch's bundle envelopes, a batch at a
// time, to every hub of the server, and keeps them here.
type bundlePoster struct {
	c               *Client
	server, channel policy.ID
	epoch           uint64
	d               *Device
	st              *policy.State
	hubs            []*bundleHub
	posted          int // envelopes accepted so far
}

// bundleHub is one hub a poster posts to, until it fails.
type bundleHub struct {
	url   string
	h     *hubapi.Client
	cert  *policy.DeviceCert // a home node's receipts are checked with its certificate
	waits int                // rate-limit waits so far
	err   error              // why this hub was given up
}

func (c *Client) newBundlePoster(ctx context.Context, server, channel policy.ID, epoch uint64) (*bundlePoster, error) {
	d, err := c.Device()
	if err != nil {
		return nil, err
	}
	st, err := c.State(ctx, server)
	if err != nil {
		return nil, err
	}
	urls, err := c.st.hubs(ctx, server)
	if err != nil {
		return nil, err
	}
	p := &bundlePoster{c: c, server: server, channel: channel, epoch: epoch, d: d, st: st}
	for _, url := range urls {
		bh := &bundleHub{url: url, h: c.hub(url)}
		if bh.cert, bh.err = bh.h.NodeCert(ctx); bh.err != nil {
			bh.err = fmt.Errorf("%s: %w", url, bh.err)
		}
		p.hubs = append(p.hubs, bh)
	}
	return p, nil
}

// post signs payloads as envelopes and posts them; each must get a valid
// receipt from some hub.
func (p *bundlePoster) post(ctx context.Context, payloads [][]byte) error {
	if len(payloads) == 0 {
		return nil
	}
	c := p.c
	envs := make([]*policy.Envelope, len(payloads))
	for i, b := range payloads {
		var err error
		if envs[i], err = policy.NewEnvelope(p.d.Signer(), policy.EnvelopeBody{Server: p.server, Channel: p.channel, Epoch: p.epoch, Time: c.Now().UnixMilli(), Ciphertext: b}); err != nil {
			return err
		}
		if err := p.st.CheckEnvelope(envs[i], c.Now().UnixMilli()); err != nil {
			return err
		}
	}
	accepted := make([]bool, len(envs))
	var errs []error
	for _, bh := range p.hubs {
		if bh.err == nil {
			if err := p.postTo(ctx, bh, envs, accepted); err != nil {
				bh.err = fmt.Errorf("%s: %w", bh.url, err)
			}
		}
		if bh.err != nil {
			errs = append(errs, bh.err)
		}
	}
	for i, ok := range accepted {
		if !ok {
			return fmt.Errorf("%w: key bundle %d: %w", ErrNotAccepted, p.posted+i+1, noHub(errs))
		}
	}
	p.posted += len(envs)
	for _, e := range envs {
		if _, err := c.record(ctx, e, nil); err != nil {
			return fmt.Errorf("client: %s was sent but is not kept here: %w", e.ID, err)
		}
	}
	return nil
}

// postTo posts envelopes to one hub, many per request, waiting out its
// rate limit, and marks in accepted those it gave a valid receipt for.
func (p *bundlePoster) postTo(ctx context.Context, bh *bundleHub, envs []*policy.Envelope, accepted []bool) error {
	for i := 0; i < len(envs); {
		batch := envs[i:min(i+bundleBatch, len(envs))]
		raws := make([][]byte, len(batch))
		for j, e := range batch {
			raws[j] = e.Raw
		}
		res, err := bh.h.Post(ctx, raws)
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
				err = p.st.CheckReceipt(r, batch[j], bh.cert, p.c.Now().UnixMilli())
			}
			if err != nil {
				return fmt.Errorf("client: hub %s answered with an invalid receipt: %w", bh.url, err)
			}
			accepted[i+j] = true
			done = j + 1
		}
		i += done
		if !limited && done < len(batch) {
			return fmt.Errorf("client: hub %s answered %d of %d envelopes", bh.url, done, len(batch))
		}
		if limited {
			if bh.waits++; bh.waits > maxRateWaits {
				return fmt.Errorf("client: hub %s kept refusing the key bundles: %w", bh.url, err)
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
