package client

import (
	"context"
	"crypto/hpke"
	"fmt"

	"github.com/guildhall/guildhall/client/hubapi"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// syncKeys fetches the key-bundle entries sealed to this device in a
// channel (the hub's keys endpoint: one entry per key, whatever the number
// of readers), opens them, and decrypts the messages that waited for them.
// Such a key is read with at once; before this device sends with one,
// fetchBundles checks the signed bundles it came in.
func (c *Client) syncKeys(ctx context.Context, h *hubapi.Client, token, url string, server, channel policy.ID) error {
	if c.keys == nil {
		return nil
	}
	cursor := url + "#keys"
	after, _, err := c.st.cursor(ctx, cursor, server, channel)
	if err != nil {
		return err
	}
	me := policy.KeyOf(c.keys.Sign)
	for {
		page, err := h.Keys(ctx, token, server, channel, after, 1000)
		if err != nil {
			return err
		}
		for _, sk := range page.Keys {
			if len(sk.KeyID) != 8 {
				continue
			}
			var id [8]byte
			copy(id[:], sk.KeyID)
			key, err := hpke.Open(c.keys.Enc, hpke.HKDFSHA256(), hpke.AES256GCM(), bundleInfo(server, channel, sk.Epoch, id), sk.Sealed)
			if err != nil || keyID(key) != id {
				continue // not a key for this device: whoever served it, it opens nothing
			}
			if err := c.st.addKey(ctx, server, channel, epochKey{Epoch: sk.Epoch, ID: id, Key: key, Recipients: []policy.PublicKey{me}}); err != nil {
				return err
			}
			if err := c.st.addBundleRef(ctx, server, channel, sk.Epoch, sk.Envelope); err != nil {
				return err
			}
			if err := c.retry(ctx, server, channel, sk.Epoch); err != nil {
				return err
			}
		}
		after = page.Next
		if err := c.st.setCursor(ctx, cursor, server, channel, after, ""); err != nil {
			return err
		}
		if !page.More {
			return nil
		}
	}
}

// fetchBundles fetches and checks the signed bundles of an epoch that this
// device knows only by reference, so that a key it sends with is one a
// member sealed (not merely one a hub served) and its recipients are all
// known (keyStillSafe). A sender pays this once per epoch: every bundle of
// the epoch, O(readers) bytes.
func (c *Client) fetchBundles(ctx context.Context, server, channel policy.ID, epoch uint64) error {
	ids, err := c.st.missingBundles(ctx, server, channel, epoch)
	if err != nil || len(ids) == 0 {
		return err
	}
	d, err := c.Device()
	if err != nil {
		return err
	}
	hubs, err := c.st.hubs(ctx, server)
	if err != nil {
		return err
	}
	var last error
	answered := false
	for _, url := range hubs {
		h := c.hub(url)
		token, err := h.Login(ctx, d)
		if err != nil {
			last = err
			continue
		}
		ok := true
		for _, id := range ids {
			e, err := h.Envelope(ctx, token, server, id)
			if hubapi.IsCode(err, wire.CodeNotFound) {
				continue // not at this hub (deleted, or a hub added later): another may have it
			}
			if err != nil {
				last, ok = err, false
				break
			}
			if _, err := c.ingest(ctx, url, server, channel, []wire.Envelope{e}, nil); err != nil {
				return err
			}
		}
		answered = answered || ok
		if ids, err = c.st.missingBundles(ctx, server, channel, epoch); err != nil || len(ids) == 0 {
			return err
		}
	}
	if answered {
		// What no hub has cannot be checked: the key it sealed stays
		// unverified here, and a send starts a new epoch instead.
		return nil
	}
	return fmt.Errorf("client: fetching the key bundles of epoch %d: %w", epoch, last)
}
