package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// Message is a message as this device knows it.
type Message struct {
	ID      policy.ID
	Server  policy.ID
	Channel policy.ID
	Sender  policy.PublicKey
	Time    time.Time
	Epoch   uint64
	Body    Body  // zero when not decrypted
	Err     error // ErrNoKey when this device cannot decrypt it
	Deleted bool
	Raw     []byte // the signed envelope
}

// Sent is the outcome of Send: the envelope and the receipts of the hubs
// that stored it (each verified: an eligible hub's signature over it).
type Sent struct {
	ID       policy.ID
	Receipts []*policy.Receipt
	Refused  map[string]error // hub URL -> why it did not store it
}

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
		if mayReceiveKey(st, cert, now) {
			out = append(out, cert)
		}
	}
	return out, nil
}

// mayReceiveKey reports whether a device of one of a channel's readers may
// be sealed the channel's key: its certificate is valid at now and the
// device is not revoked.
func mayReceiveKey(st *policy.State, cert *policy.DeviceCert, now int64) bool {
	return cert.ValidAt(now) == nil && !st.IsDeviceRevoked(cert.Device)
}

// mayStillHoldKey reports whether a device a key was sealed to may still
// hold it: it is not revoked and, if this client knows its identity
// (known), that identity is among the channel's readers.
func mayStillHoldKey(st *policy.State, readers map[policy.PublicKey]bool, device, identity policy.PublicKey, known bool) bool {
	return !st.IsDeviceRevoked(device) && (!known || readers[identity])
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
	for _, d := range devices {
		k.Recipients = append(k.Recipients, d.Device)
	}
	payloads, err := sealBundles(k, server, channel, devices)
	if err != nil {
		return epochKey{}, err
	}
	for _, p := range payloads {
		if _, err := c.post(ctx, server, channel, k.Epoch, p); err != nil {
			return epochKey{}, fmt.Errorf("client: posting the new epoch's keys: %w", err)
		}
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
	keys, err := c.st.keys(ctx, server, channel)
	if err != nil {
		return epochKey{}, err
	}
	last, err := c.st.maxEpoch(ctx, server, channel)
	if err != nil {
		return epochKey{}, err
	}
	if len(keys) > 0 && keys[0].Epoch == last {
		ok, err := c.keyStillSafe(ctx, server, channel, keys[0])
		if err != nil {
			return epochKey{}, err
		}
		if ok {
			return keys[0], nil
		}
	}
	return c.rekey(ctx, server, channel)
}

// keyStillSafe reports whether every device a key was sealed to may still
// read the channel, as far as this device knows those devices.
func (c *Client) keyStillSafe(ctx context.Context, server, channel policy.ID, k epochKey) (bool, error) {
	st, err := c.State(ctx, server)
	if err != nil {
		return false, err
	}
	readers := map[policy.PublicKey]bool{}
	for _, r := range st.Readers(channel) {
		readers[r] = true
	}
	for _, d := range k.Recipients {
		id, known, err := c.st.identityOf(ctx, d)
		if err != nil {
			return false, err
		}
		if !mayStillHoldKey(st, readers, d, id, known) {
			return false, nil
		}
	}
	return true, nil
}

// post signs and posts an envelope to every hub of the server.
func (c *Client) post(ctx context.Context, server, channel policy.ID, epoch uint64, payload []byte, blobs ...policy.ID) (*Sent, error) {
	d, err := c.Device()
	if err != nil {
		return nil, err
	}
	st, err := c.State(ctx, server)
	if err != nil {
		return nil, err
	}
	env, err := policy.NewEnvelope(d.Signer(), policy.EnvelopeBody{Server: server, Channel: channel, Epoch: epoch, Time: c.Now().UnixMilli(), Blobs: blobs, Ciphertext: payload})
	if err != nil {
		return nil, err
	}
	if err := st.CheckEnvelope(env, c.Now().UnixMilli()); err != nil {
		return nil, err // the state refuses it: no hub is asked
	}
	hubs, err := c.st.hubs(ctx, server)
	if err != nil {
		return nil, err
	}
	sent := &Sent{ID: env.ID, Refused: map[string]error{}}
	for _, url := range hubs {
		res, err := c.hub(url).Post(ctx, [][]byte{env.Raw})
		if err == nil && len(res) == 1 && res[0].Error != nil {
			err = &HubError{Code: res[0].Error.Code, Message: res[0].Error.Message}
		}
		if err != nil {
			sent.Refused[url] = err
			continue
		}
		r, err := policy.ParseReceipt(res[0].Receipt)
		if err == nil {
			err = st.CheckReceipt(r, env, nil, c.Now().UnixMilli())
		}
		if err != nil {
			sent.Refused[url] = fmt.Errorf("client: hub %s answered with an invalid receipt: %w", url, err)
			continue
		}
		sent.Receipts = append(sent.Receipts, r)
	}
	if len(sent.Receipts) == 0 {
		var errs []error
		for url, err := range sent.Refused {
			errs = append(errs, fmt.Errorf("%s: %w", url, err))
		}
		ch, _ := st.Channel(channel)
		if ch.Durability == policy.Guaranteed {
			return sent, fmt.Errorf("%w (guaranteed channel %q): %w", ErrNotDurable, ch.Name, errors.Join(append(errs, ErrNoHub)...))
		}
		return sent, fmt.Errorf("%w: %w", ErrNotAccepted, errors.Join(append(errs, ErrNoHub)...))
	}
	if _, err := c.record(ctx, env, nil); err != nil {
		return sent, fmt.Errorf("client: %s was sent but is not kept here: %w", env.ID, err)
	}
	return sent, nil
}

// Send encrypts a message with the channel's current epoch key and posts
// it. Files are encrypted and uploaded first; only readers get their keys.
// In a guaranteed channel it fails with ErrNotDurable unless an eligible
// hub returned a valid receipt.
func (c *Client) Send(ctx context.Context, server, channel policy.ID, text string, files ...File) (*Sent, error) {
	body := Body{Text: text}
	var blobs []policy.ID
	for _, f := range files {
		a, err := c.upload(ctx, server, f)
		if err != nil {
			return nil, err
		}
		body.Files = append(body.Files, a)
		blobs = append(blobs, a.Blob)
	}
	return c.sendBody(ctx, server, channel, body, blobs)
}

func (c *Client) sendBody(ctx context.Context, server, channel policy.ID, body Body, blobs []policy.ID) (*Sent, error) {
	// Learn of bans, revocations and new epochs first, so that nothing is
	// sealed to a reader who was removed. Offline, the local view is used.
	if _, err := c.SyncState(ctx, server); bestEffort(err) != nil {
		return nil, err
	}
	if _, err := c.Sync(ctx, server, channel, nil); bestEffort(err) != nil {
		return nil, err
	}
	k, err := c.currentKey(ctx, server, channel)
	if err != nil {
		return nil, err
	}
	payload, err := sealBody(k, server, channel, body)
	if err != nil {
		return nil, err
	}
	sent, err := c.post(ctx, server, channel, k.Epoch, payload, blobs...)
	if err != nil {
		return sent, err
	}
	return sent, c.storeBody(ctx, sent.ID, body)
}

// SetProfile sends this identity's display name and description to a
// channel's readers (infrastructure never sees names).
func (c *Client) SetProfile(ctx context.Context, server, channel policy.ID, p Profile) (*Sent, error) {
	return c.sendBody(ctx, server, channel, Body{Profile: &p}, nil)
}

// Profiles returns the newest profile each identity sent in a channel.
func (c *Client) Profiles(ctx context.Context, server, channel policy.ID) (map[policy.PublicKey]Profile, error) {
	msgs, err := c.History(ctx, server, channel, 0)
	if err != nil {
		return nil, err
	}
	out := map[policy.PublicKey]Profile{}
	for _, m := range msgs {
		if m.Body.Profile != nil {
			out[m.Sender] = *m.Body.Profile
		}
	}
	return out, nil
}

// File is an attachment to send.
type File struct {
	Name string
	Data []byte
}

func (c *Client) upload(ctx context.Context, server policy.ID, f File) (Attachment, error) {
	blob, key := sealFile(f.Data)
	id := policy.Sum(blob)
	d, err := c.Device()
	if err != nil {
		return Attachment{}, err
	}
	hubs, err := c.st.hubs(ctx, server)
	if err != nil {
		return Attachment{}, err
	}
	var errs []error
	for _, url := range hubs {
		h := c.hub(url)
		token, err := h.Login(ctx, d)
		if err == nil {
			err = h.PutBlob(ctx, token, server, id, blob)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", url, err))
			continue
		}
		return Attachment{Blob: id, Key: key, Name: f.Name, Size: int64(len(f.Data))}, nil
	}
	return Attachment{}, fmt.Errorf("client: uploading %q: %w", f.Name, errors.Join(append(errs, ErrNoHub)...))
}

// Decrypt opens a signed envelope with the keys this device holds.
func (c *Client) Decrypt(ctx context.Context, raw []byte) (Body, error) {
	env, err := policy.ParseEnvelope(raw)
	if err != nil {
		return Body{}, err
	}
	keys, err := c.st.keys(ctx, env.Server, env.Channel)
	if err != nil {
		return Body{}, err
	}
	return openBody(keys, env.Server, env.Channel, env.Epoch, env.Ciphertext)
}

// Download fetches and decrypts an attachment.
func (c *Client) Download(ctx context.Context, server policy.ID, a Attachment) ([]byte, error) {
	d, err := c.Device()
	if err != nil {
		return nil, err
	}
	hubs, err := c.st.hubs(ctx, server)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, url := range hubs {
		h := c.hub(url)
		token, err := h.Login(ctx, d)
		var blob []byte
		if err == nil {
			blob, err = h.GetBlob(ctx, token, server, a.Blob)
		}
		if err == nil {
			return openFile(blob, a.Key)
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(append(errs, ErrNoHub)...)
}

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
	}
	if err := c.st.addMessage(ctx, env, kind); err != nil {
		return nil, err
	}
	if kind == payloadKeys {
		if c.keys != nil {
			if k, ok, err := openBundle(*c.keys, env.Server, env.Channel, env.Ciphertext); err == nil && ok {
				if err := c.st.addKey(ctx, env.Server, env.Channel, k); err != nil {
					return nil, err
				}
				if err := c.retry(ctx, env.Server, env.Channel, k.Epoch); err != nil {
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

// Sync fetches a channel's new envelopes from each of the server's hubs by
// cursor, verifies and decrypts them, and returns how many were new here.
// progress, if set, is told how many envelopes each page brought.
func (c *Client) Sync(ctx context.Context, server, channel policy.ID, progress func(n int)) (int, error) {
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
		after, err := c.st.cursor(ctx, url, server, channel)
		if err != nil {
			return fresh, err
		}
		for {
			page, err := h.Read(ctx, token, server, channel, after, 1000)
			if err != nil {
				errs = append(errs, err)
				break
			}
			n, err := c.ingest(ctx, url, server, channel, page.Envelopes)
			fresh += n
			if err != nil {
				return fresh, err
			}
			if progress != nil {
				progress(len(page.Envelopes))
			}
			after = page.Next
			if err := c.st.setCursor(ctx, url, server, channel, after); err != nil {
				return fresh, err
			}
			if !page.More {
				ok = true
				break
			}
		}
	}
	if !ok {
		return fresh, errors.Join(errs...)
	}
	return fresh, nil
}

// ingest verifies and records envelopes a hub served; it returns how many
// were new and kept.
func (c *Client) ingest(ctx context.Context, url string, server, channel policy.ID, envs []wire.Envelope) (int, error) {
	n := 0
	for _, e := range envs {
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
		if _, err := c.record(ctx, env, e.Tombstone); err != nil {
			return n, err
		}
		if !known {
			n++
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
		after, err := c.st.cursor(ctx, url, server, channel)
		if err != nil {
			return err
		}
		// Replay needs a cursor above 0; from 0, read history first.
		if after == 0 {
			if _, err := c.Sync(ctx, server, channel, nil); err != nil {
				errs = append(errs, err)
				continue
			}
			if after, err = c.st.cursor(ctx, url, server, channel); err != nil {
				return err
			}
		}
		sub, err := h.Subscribe(ctx, token, []wire.Topic{{Server: server, Channel: channel, After: after}})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		defer sub.Close()
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case f, ok := <-sub.C:
				if !ok {
					return sub.Err()
				}
				if f.Op == wire.OpCut {
					return &HubError{Code: f.Error.Code, Message: f.Error.Message}
				}
				env, err := policy.ParseEnvelope(f.Raw)
				if err != nil || env.Server != server || env.Channel != channel {
					return fmt.Errorf("hub %s pushed an invalid envelope: %v", url, err)
				}
				m, err := c.record(ctx, env, nil)
				if err != nil {
					return err
				}
				if m != nil {
					fn(*m)
				}
				if err := c.st.setCursor(ctx, url, server, channel, f.Seq); err != nil {
					return err
				}
			}
		}
	}
	return errors.Join(append(errs, ErrNoHub)...)
}

// Delete tombstones one of this identity's messages (or, for a moderator,
// anyone's) at every hub of its server.
func (c *Client) Delete(ctx context.Context, server, id policy.ID) error {
	d, err := c.Device()
	if err != nil {
		return err
	}
	channel, found, err := c.st.messageChannel(ctx, server, id)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%w: message %s", ErrUnknown, id)
	}
	t, err := policy.NewTombstone(d.Signer(), policy.TombstoneBody{Server: server, Channel: channel, Target: id, Time: c.Now().UnixMilli()})
	if err != nil {
		return err
	}
	hubs, err := c.st.hubs(ctx, server)
	if err != nil {
		return err
	}
	var errs []error
	done := 0
	for _, url := range hubs {
		res, err := c.hub(url).Tombstone(ctx, [][]byte{t.Raw})
		if err == nil && res[0].Error != nil {
			err = &HubError{Code: res[0].Error.Code, Message: res[0].Error.Message}
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		done++
	}
	if done == 0 {
		return errors.Join(append(errs, ErrNotAccepted)...)
	}
	return c.st.erase(ctx, id)
}
