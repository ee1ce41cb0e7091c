package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/guildhall/guildhall/policy"
)

// readerDevices returns the devices that may receive a channel's keys:
// the certified, unexpired, unrevoked devices of its readers that this
// client has seen.
func (c *Client) readerDevices(ctx context.Context, st *policy.State, channel policy.ID) ([]*policy.DeviceCert, error) {
	certs, err := c.st.devicesOf(ctx, st.Readers(channel))
	if err != nil {
		return nil, err
	}
	now := c.Now().UnixMilli()
	var out []*policy.DeviceCert
	for _, cert := range certs {
		if st.MayReceiveKey(cert, channel, now) == nil {
			out = append(out, cert)
		}
	}
	return out, nil
}

// bestEffort drops the error of a fetch made only to learn what the hubs
// know (offline, the local view is used), but never a local store failure.
func bestEffort(err error) error {
	if errors.Is(err, ErrStore) {
		return err
	}
	return nil
}

// Rekey starts a new key epoch in a channel: a fresh key sealed to every
// current reader's devices, posted as key-bundle envelopes.
func (c *Client) Rekey(ctx context.Context, server, channel policy.ID) error {
	// Learn the latest epoch number first.
	if _, err := c.Sync(ctx, server, channel, nil); bestEffort(err) != nil {
		return err
	}
	_, err := c.rekey(ctx, server, channel)
	return err
}

func (c *Client) rekey(ctx context.Context, server, channel policy.ID) (epochKey, error) {
	st, err := c.State(ctx, server)
	if err != nil {
		return epochKey{}, err
	}
	devices, err := c.readerDevices(ctx, st, channel)
	if err != nil {
		return epochKey{}, err
	}
	last, err := c.st.maxEpoch(ctx, server, channel)
	if err != nil {
		return epochKey{}, err
	}
	k := newEpochKey(last + 1)
	k.Verified = true
	for _, d := range devices {
		k.Recipients = append(k.Recipients, d.Device)
	}
	if err := c.sealAndPost(ctx, server, channel, k, devices); err != nil {
		return epochKey{}, fmt.Errorf("client: posting the new epoch's keys: %w", err)
	}
	return k, c.st.addKey(ctx, server, channel, k)
}

// currentKey returns the key to send with: the newest epoch key held for
// the channel, unless a newer epoch exists that this device cannot read,
// or the key was sealed to a device that may no longer read (revoked, or
// of an identity banned or no longer a reader). Then a new epoch starts:
// whatever order bans and re-keys reach this device in, nothing it sends
// is readable by a removed reader.
func (c *Client) currentKey(ctx context.Context, server, channel policy.ID) (epochKey, error) {
	last, err := c.st.maxEpoch(ctx, server, channel)
	if err != nil {
		return epochKey{}, err
	}
	// Sending needs the epoch's signed bundles, not only this device's
	// entry: they prove a member sealed the key and name all who hold it.
	if last > 0 {
		if err := c.fetchBundles(ctx, server, channel, last); err != nil {
			return epochKey{}, err
		}
	}
	keys, err := c.st.keys(ctx, server, channel)
	if err != nil {
		return epochKey{}, err
	}
	if len(keys) > 0 && keys[0].Epoch == last && keys[0].Verified {
		ok, err := c.keyStillSafe(ctx, server, channel, keys[0])
		if err != nil {
			return epochKey{}, err
		}
		if ok {
			if _, err := c.shareKey(ctx, server, channel, keys[0]); err != nil {
				return epochKey{}, err
			}
			return keys[0], nil
		}
	}
	return c.rekey(ctx, server, channel)
}

// shareKey seals k, the channel's current epoch key, to the reader devices
// it was not sealed to yet (readers who joined, or were given a role or an
// override, since the epoch began) and posts the bundle, so that they read
// what is sent from now on without anyone having to start a new epoch. A
// removed reader is not its business: keyStillSafe then makes the next
// send start a new epoch. It returns how many devices it sealed to.
func (c *Client) shareKey(ctx context.Context, server, channel policy.ID, k epochKey) (int, error) {
	st, err := c.State(ctx, server)
	if err != nil {
		return 0, err
	}
	devices, err := c.readerDevices(ctx, st, channel)
	if err != nil {
		return 0, err
	}
	have := make(map[policy.PublicKey]bool, len(k.Recipients))
	for _, d := range k.Recipients {
		have[d] = true
	}
	var add []*policy.DeviceCert
	var keys []policy.PublicKey
	for _, d := range devices {
		if !have[d.Device] {
			add, keys = append(add, d), append(keys, d.Device)
		}
	}
	if len(add) == 0 {
		return 0, nil
	}
	if err := c.sealAndPost(ctx, server, channel, k, add); err != nil {
		return 0, fmt.Errorf("client: sealing the channel's key to new readers: %w", err)
	}
	return len(add), c.st.addRecipients(ctx, server, channel, k.ID, keys)
}

// shareCurrentKey is shareKey for the current epoch, when this device holds
// its key and the key is still safe: what a reader's client does each time
// it syncs a channel, so a new reader gets the key from whoever is online.
func (c *Client) shareCurrentKey(ctx context.Context, server, channel policy.ID) (int, error) {
	keys, err := c.st.keys(ctx, server, channel)
	if err != nil || len(keys) == 0 {
		return 0, err
	}
	last, err := c.st.maxEpoch(ctx, server, channel)
	if err != nil || keys[0].Epoch != last || !keys[0].Verified {
		return 0, err // a reader who only holds its own entry leaves this to senders
	}
	// Bundles others posted since (sealing to newcomers) first, by ID.
	if err := c.fetchBundles(ctx, server, channel, last); err != nil {
		return 0, err
	}
	if keys, err = c.st.keys(ctx, server, channel); err != nil {
		return 0, err
	}
	if ok, err := c.keyStillSafe(ctx, server, channel, keys[0]); err != nil || !ok {
		return 0, err
	}
	return c.shareKey(ctx, server, channel, keys[0])
}

// keyStillSafe reports whether every device a key was sealed to may still
// read the channel, as far as this device knows those devices.
func (c *Client) keyStillSafe(ctx context.Context, server, channel policy.ID, k epochKey) (bool, error) {
	st, err := c.State(ctx, server)
	if err != nil {
		return false, err
	}
	for _, d := range k.Recipients {
		id, _, err := c.st.identityOf(ctx, d) // zero when this device has not seen d's certificate
		if err != nil {
			return false, err
		}
		if st.MayHoldKey(d, id, channel) != nil {
			return false, nil
		}
	}
	return true, nil
}
