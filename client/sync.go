package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/guildhall/guildhall/client/hubapi"
	"github.com/guildhall/guildhall/payload"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// record stores an envelope seen in a channel, decrypting what it can:
// key bundles give this device new epoch keys (and then the messages of
// that epoch that waited for them open too). It returns the message, if
// the envelope was one.
func (c *Client) record(ctx context.Context, env *policy.Envelope, tombstone []byte) (*Message, error) {
	if err := c.learnCerts(ctx, env.Cert); err != nil {
		return nil, err
	}
	if err := c.st.sawEpoch(ctx, env.Server, env.Channel, env.Epoch); err != nil {
		return nil, err
	}
	kind := byte(0)
	if len(env.Ciphertext) > 0 {
		kind = env.Ciphertext[0]
		if kind == payload.Message { // kept as a message, whichever way it was sealed
			kind = payloadMessage
		}
	}
	if err := c.st.addMessage(ctx, env, kind); err != nil {
		return nil, err
	}
	if kind == payloadKeys {
		if c.keys != nil {
			k, ok, err := openBundle(*c.keys, env.Server, env.Channel, env.Ciphertext)
			if err == nil && ok {
				if err := c.st.addKey(ctx, env.Server, env.Channel, k); err != nil {
					return nil, err
				}
				if err := c.learnRecipients(ctx, env.Server, env.Channel, k); err != nil {
					return nil, err
				}
				if err := c.retry(ctx, env.Server, env.Channel, k.Epoch); err != nil {
					return nil, err
				}
			}
			// A bundle may seal a key already held to further devices (new
			// readers): they hold it too, which keyStillSafe must know.
			if err == nil {
				if err := c.st.addRecipients(ctx, env.Server, env.Channel, k.ID, k.Recipients); err != nil {
					return nil, err
				}
			}
		}
		return nil, nil
	}
	if tombstone != nil {
		if err := c.st.markDeleted(ctx, env.ID); err != nil {
			return nil, err
		}
	}
	m := &Message{ID: env.ID, Server: env.Server, Channel: env.Channel, Sender: env.Author, Time: time.UnixMilli(env.Time), Epoch: env.Epoch, Deleted: tombstone != nil}
	keys, err := c.st.keys(ctx, env.Server, env.Channel)
	if err != nil {
		return nil, err
	}
	m.Body, m.Err = openBody(keys, env.Server, env.Channel, env.Epoch, env.Ciphertext)
	if m.Err == nil {
		if err := c.storeBody(ctx, env.ID, m.Body); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// learnRecipients records, for a key just learned, the devices that the
// epoch's bundles this device saw before it held the key seal it to.
func (c *Client) learnRecipients(ctx context.Context, server, channel policy.ID, k epochKey) error {
	raws, err := c.st.bundles(ctx, server, channel, k.Epoch)
	if err != nil {
		return err
	}
	for _, raw := range raws {
		env, err := policy.ParseEnvelope(raw)
		if err != nil {
			continue
		}
		if _, id, recipients, err := parseBundle(env.Ciphertext); err == nil && id == k.ID {
			if err := c.st.addRecipients(ctx, server, channel, k.ID, recipients); err != nil {
				return err
			}
		}
	}
	return nil
}

// storeBody keeps a decrypted body beside its envelope.
func (c *Client) storeBody(ctx context.Context, id policy.ID, b Body) error {
	enc, err := cbor.Marshal(b)
	if err != nil {
		return fmt.Errorf("client: encoding a message body: %w", err)
	}
	return c.st.setBody(ctx, id, enc)
}

// retry decrypts the stored messages of an epoch that waited for its key.
func (c *Client) retry(ctx context.Context, server, channel policy.ID, epoch uint64) error {
	raws, err := c.st.undecrypted(ctx, server, channel, epoch)
	if err != nil {
		return err
	}
	keys, err := c.st.keys(ctx, server, channel)
	if err != nil {
		return err
	}
	for _, raw := range raws {
		env, err := policy.ParseEnvelope(raw)
		if err != nil {
			continue
		}
		if b, err := openBody(keys, server, channel, epoch, env.Ciphertext); err == nil {
			if err := c.storeBody(ctx, env.ID, b); err != nil {
				return err
			}
		}
	}
	return nil
}

// ShareEvery is how often a tailing client looks for new readers of its
// channel and seals them the current key (shareCurrentKey).
var ShareEvery = 30 * time.Second

// Sync fetches a channel's new envelopes from each of the server's hubs by
// cursor, verifies and decrypts them, and returns how many were new here.
// progress, if set, is told how many envelopes each page brought.
func (c *Client) Sync(ctx context.Context, server, channel policy.ID, progress func(n int)) (int, error) {
	return c.sync(ctx, server, channel, progress, nil)
}

// sync is Sync, calling onNew (if set) for each message new here.
func (c *Client) sync(ctx context.Context, server, channel policy.ID, progress func(n int), onNew func(Message)) (int, error) {
	d, err := c.Device()
	if err != nil {
		return 0, err
	}
	hubs, err := c.st.hubs(ctx, server)
	if err != nil {
		return 0, err
	}
	if len(hubs) == 0 {
		return 0, ErrNoHub
	}
	// Key bundles first if they come later in a page: handled by retry.
	fresh := 0
	var errs []error
	ok := false
	for _, url := range hubs {
		h := c.hub(url)
		token, err := h.Login(ctx, d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		after, inc, err := c.st.cursor(ctx, url, server, channel)
		if err != nil {
			return fresh, err
		}
		restored := false
		for {
			page, err := h.ReadOmittingBundles(ctx, token, server, channel, after, 1000)
			if err != nil {
				errs = append(errs, err)
				break
			}
			if inc != "" && page.Incarnation != inc && after > 0 {
				// The hub was restored from a backup: its sequence numbers
				// are not the ones the cursor counted. Read it all again
				// (known envelopes cost nothing), then give it back what it
				// lost.
				after, inc, restored = 0, page.Incarnation, true
				continue
			}
			inc = page.Incarnation
			n, err := c.ingest(ctx, url, server, channel, page.Envelopes, onNew)
			fresh += n
			if err != nil {
				return fresh, err
			}
			if progress != nil {
				progress(len(page.Envelopes))
			}
			after = page.Next
			if err := c.st.setCursor(ctx, url, server, channel, after, inc); err != nil {
				return fresh, err
			}
			if !page.More {
				ok = true
				break
			}
		}
		if restored {
			if _, err := c.Reconcile(ctx, url, server, channel); err != nil {
				errs = append(errs, err)
			}
		}
		if err := c.syncKeys(ctx, h, token, url, server, channel); err != nil {
			if errors.Is(err, ErrStore) {
				return fresh, err
			}
			errs = append(errs, err)
		}
	}
	if !ok {
		return fresh, noHub(errs)
	}
	// Synced: seal the channel's key to any reader who lacks it.
	if _, err := c.shareCurrentKey(ctx, server, channel); bestEffort(err) != nil {
		return fresh, err
	}
	return fresh, nil
}

// ingest verifies and records envelopes a hub served; it returns how many
// were new and kept, and calls onNew (if set) with each new message.
func (c *Client) ingest(ctx context.Context, url string, server, channel policy.ID, envs []wire.Envelope, onNew func(Message)) (int, error) {
	n := 0
	for _, e := range envs {
		if e.Raw == nil && e.BundleEpoch > 0 { // a key bundle left out: this device's entry comes from syncKeys
			if err := c.st.addBundleRef(ctx, server, channel, e.BundleEpoch, e.ID); err != nil {
				return n, err
			}
			continue
		}
		known, err := c.st.hasMessage(ctx, e.ID)
		if err != nil {
			return n, err
		}
		if e.Raw == nil {
			if e.Tombstone != nil {
				if err := c.st.markDeleted(ctx, e.ID); err != nil {
					return n, err
				}
			}
			continue
		}
		env, err := policy.ParseEnvelope(e.Raw)
		if err != nil {
			return n, fmt.Errorf("hub %s: served an invalid envelope %s: %w", url, e.ID, err)
		}
		if env.Server != server || env.Channel != channel {
			return n, fmt.Errorf("hub %s: served envelope %s of another channel", url, e.ID)
		}
		m, err := c.record(ctx, env, e.Tombstone)
		if err != nil {
			return n, err
		}
		if !known {
			n++
			if m != nil && onNew != nil {
				onNew(*m)
			}
		}
	}
	return n, nil
}

// History returns a channel's messages from the local store, oldest first
// (limit 0: all).
func (c *Client) History(ctx context.Context, server, channel policy.ID, limit int) ([]Message, error) {
	rows, err := c.st.history(ctx, server, channel, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Message, 0, len(rows))
	for _, r := range rows {
		m := Message{ID: r.ID, Server: server, Channel: channel, Sender: r.Sender, Time: time.UnixMilli(r.Time), Epoch: r.Epoch, Deleted: r.Deleted, Raw: r.Raw}
		switch {
		case r.Body != nil:
			m.Err = cbor.Unmarshal(r.Body, &m.Body)
		case !r.Deleted:
			m.Err = ErrNoKey
		}
		out = append(out, m)
	}
	return out, nil
}

// Tail follows a channel live over the first hub that answers, from this
// client's cursor there, calling fn for each new message until ctx ends or
// the hub cuts the subscription (its error is returned; call Tail again to
// resume from the cursor).
func (c *Client) Tail(ctx context.Context, server, channel policy.ID, fn func(Message)) error {
	return c.tail(ctx, server, channel, fn, nil, false)
}

// tail is Tail, calling live with the hub's URL once subscribed there and,
// given catchUp, fn with what the catch-up read brought too (what was
// posted while a follower was away).
func (c *Client) tail(ctx context.Context, server, channel policy.ID, fn func(Message), live func(hub string), catchUp bool) error {
	d, err := c.Device()
	if err != nil {
		return err
	}
	hubs, err := c.st.hubs(ctx, server)
	if err != nil {
		return err
	}
	var errs []error
	for _, url := range hubs {
		h := c.hub(url)
		token, err := h.Login(ctx, d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// Bring the cursor up to date first: replay needs one above 0, and
		// Sync notices a hub restored since the cursor was taken.
		var onNew func(Message)
		if catchUp {
			onNew = fn
		}
		if _, err := c.sync(ctx, server, channel, nil, onNew); err != nil {
			errs = append(errs, err)
			continue
		}
		after, _, err := c.st.cursor(ctx, url, server, channel)
		if err != nil {
			return err
		}
		sub, err := h.Subscribe(ctx, token, []wire.Topic{{Server: server, Channel: channel, After: after}})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		defer sub.Close()
		if live != nil {
			live(url)
		}
		// keep records one envelope and moves the cursor to it: the cursor
		// never passes an envelope this client has not stored.
		keep := func(env *policy.Envelope, seq uint64) error {
			m, err := c.record(ctx, env, nil)
			if err != nil {
				return err
			}
			if m != nil {
				fn(*m)
			}
			after = seq
			return c.st.setCursor(ctx, url, server, channel, seq, "")
		}
		share := time.NewTicker(ShareEvery)
		defer share.Stop()
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-share.C:
				// An online reader seals the key to readers who came since.
				if _, err := c.Refresh(ctx, server); bestEffort(err) != nil {
					return err
				}
				if _, err := c.shareCurrentKey(ctx, server, channel); bestEffort(err) != nil {
					return err
				}
			case f, ok := <-sub.C:
				if !ok {
					if err := sub.Err(); err != nil {
						return fmt.Errorf("hub %s: the connection dropped: %w", url, err)
					}
					return fmt.Errorf("hub %s closed the subscription", url)
				}
				if f.Op == wire.OpCut {
					return &HubError{Code: f.Error.Code, Message: f.Error.Message}
				}
				if f.Seq <= after {
					continue // held already
				}
				if f.Seq > after+1 { // a gap: read what lies between from the hub first
					if err := c.fill(ctx, h, token, server, channel, after, f.Seq, keep); err != nil {
						return err
					}
				}
				env, err := policy.ParseEnvelope(f.Raw)
				if err != nil || env.Server != server || env.Channel != channel {
					return fmt.Errorf("hub %s pushed an invalid envelope: %v", url, err)
				}
				if err := keep(env, f.Seq); err != nil {
					return err
				}
			}
		}
	}
	return noHub(errs)
}

// fill reads a channel's envelopes after seq after and before seq before
// from a hub and keeps each, in order (Tail, when the live stream skips).
func (c *Client) fill(ctx context.Context, h *hubapi.Client, token string, server, channel policy.ID, after, before uint64, keep func(*policy.Envelope, uint64) error) error {
	for after+1 < before {
		page, err := h.Read(ctx, token, server, channel, after, int(min(before-after-1, 1000)))
		if err != nil {
			return err
		}
		for _, e := range page.Envelopes {
			if e.Seq >= before {
				return nil
			}
			after = e.Seq
			if e.Raw == nil { // deleted
				continue
			}
			env, err := policy.ParseEnvelope(e.Raw)
			if err != nil || env.Server != server || env.Channel != channel {
				return fmt.Errorf("hub %s served an invalid envelope %s: %v", h.URL, e.ID, err)
			}
			if err := keep(env, e.Seq); err != nil {
				return err
			}
		}
		if !page.More {
			return nil
		}
	}
	return nil
}
