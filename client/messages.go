package client

import (
	"context"
	"database/sql"
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

// readers returns the devices that may receive a channel's keys: the
// certified, unexpired, unrevoked devices of its readers that this client
// has seen.
func (c *Client) readerDevices(ctx context.Context, st *policy.State, channel policy.ID) ([]*policy.DeviceCert, error) {
	certs, err := c.st.devicesOf(ctx, st.Readers(channel))
	if err != nil {
		return nil, err
	}
	now := c.Now().UnixMilli()
	var out []*policy.DeviceCert
	for _, cert := range certs {
		if cert.ValidAt(now) == nil && !st.IsDeviceRevoked(cert.Device) {
			out = append(out, cert)
		}
	}
	return out, nil
}

// Rekey starts a new key epoch in a channel: a fresh key sealed to every
// current reader's devices, posted as key-bundle envelopes.
func (c *Client) Rekey(ctx context.Context, server, channel policy.ID) error {
	c.Sync(ctx, server, channel, nil) // learn the latest epoch number (best effort)
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
		if st.IsDeviceRevoked(d) {
			return false, nil
		}
		var idb []byte
		err := c.st.db.QueryRowContext(ctx, "SELECT identity FROM devices WHERE device = ?", d[:]).Scan(&idb)
		if err == nil && !readers[policy.PublicKey(idb)] {
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
	c.record(ctx, env, nil)
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
	c.SyncState(ctx, server)
	c.Sync(ctx, server, channel, nil)
	k, err := c.currentKey(ctx, server, channel)
	if err != nil {
		return nil, err
	}
	payload, err := sealBody(k, server, channel, body)
	if err != nil {
		return nil, err
	}
	sent, err := c.post(ctx, server, channel, k.Epoch, payload, blobs...)
	if err == nil {
		c.storeBody(ctx, sent.ID, body)
	}
	return sent, err
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
func (c *Client) record(ctx context.Context, env *policy.Envelope, tombstone []byte) *Message {
	c.learnCerts(ctx, env.Cert)
	c.st.sawEpoch(ctx, env.Server, env.Channel, env.Epoch)
	kind := byte(0)
	if len(env.Ciphertext) > 0 {
		kind = env.Ciphertext[0]
	}
	c.st.db.ExecContext(ctx, `INSERT OR IGNORE INTO messages (id, server, channel, sender, time, epoch, kind, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		env.ID[:], env.Server[:], env.Channel[:], env.Author[:], env.Time, int64(env.Epoch), int(kind), env.Raw)
	if kind == payloadKeys {
		if c.keys != nil {
			if k, ok, err := openBundle(*c.keys, env.Server, env.Channel, env.Ciphertext); err == nil && ok {
				c.st.addKey(ctx, env.Server, env.Channel, k)
				c.retry(ctx, env.Server, env.Channel, k.Epoch)
			}
		}
		return nil
	}
	if tombstone != nil {
		c.st.db.ExecContext(ctx, "UPDATE messages SET deleted = 1 WHERE id = ?", env.ID[:])
	}
	m := &Message{ID: env.ID, Server: env.Server, Channel: env.Channel, Sender: env.Author, Time: time.UnixMilli(env.Time), Epoch: env.Epoch, Deleted: tombstone != nil}
	keys, err := c.st.keys(ctx, env.Server, env.Channel)
	if err == nil {
		m.Body, m.Err = openBody(keys, env.Server, env.Channel, env.Epoch, env.Ciphertext)
		if m.Err == nil {
			c.storeBody(ctx, env.ID, m.Body)
		}
	}
	return m
}

func (c *Client) storeBody(ctx context.Context, id policy.ID, b Body) {
	enc, err := cbor.Marshal(b)
	if err == nil {
		c.st.db.ExecContext(ctx, "UPDATE messages SET body = ? WHERE id = ?", enc, id[:])
	}
}

// retry decrypts the stored messages of an epoch that waited for its key.
func (c *Client) retry(ctx context.Context, server, channel policy.ID, epoch uint64) {
	rows, err := c.st.db.QueryContext(ctx, "SELECT raw FROM messages WHERE server = ? AND channel = ? AND epoch = ? AND kind = 1 AND body IS NULL AND deleted = 0", server[:], channel[:], int64(epoch))
	if err != nil {
		return
	}
	var raws [][]byte
	for rows.Next() {
		var b []byte
		if rows.Scan(&b) == nil {
			raws = append(raws, b)
		}
	}
	rows.Close()
	keys, err := c.st.keys(ctx, server, channel)
	if err != nil {
		return
	}
	for _, raw := range raws {
		env, err := policy.ParseEnvelope(raw)
		if err != nil {
			continue
		}
		if b, err := openBody(keys, server, channel, epoch, env.Ciphertext); err == nil {
			c.storeBody(ctx, env.ID, b)
		}
	}
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
			n, err := c.ingest(ctx, server, channel, page.Envelopes)
			if err != nil {
				return fresh, fmt.Errorf("hub %s: %w", url, err)
			}
			fresh += n
			if progress != nil {
				progress(len(page.Envelopes))
			}
			after = page.Next
			c.st.setCursor(ctx, url, server, channel, after)
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

// ingest verifies and records stored envelopes; it returns how many were new.
func (c *Client) ingest(ctx context.Context, server, channel policy.ID, envs []wire.Envelope) (int, error) {
	n := 0
	for _, e := range envs {
		var known int
		c.st.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM messages WHERE id = ?", e.ID[:]).Scan(&known)
		if e.Raw == nil {
			if e.Tombstone != nil {
				c.st.db.ExecContext(ctx, "UPDATE messages SET deleted = 1 WHERE id = ?", e.ID[:])
			}
			continue
		}
		env, err := policy.ParseEnvelope(e.Raw)
		if err != nil {
			return n, fmt.Errorf("served an invalid envelope %s: %w", e.ID, err)
		}
		if env.Server != server || env.Channel != channel {
			return n, fmt.Errorf("served envelope %s of another channel", e.ID)
		}
		if known == 0 {
			n++
		}
		c.record(ctx, env, e.Tombstone)
	}
	return n, nil
}

// History returns a channel's messages from the local store, oldest first
// (limit 0: all).
func (c *Client) History(ctx context.Context, server, channel policy.ID, limit int) ([]Message, error) {
	q := "SELECT id, sender, time, epoch, body, deleted, raw FROM messages WHERE server = ? AND channel = ? AND kind = 1 ORDER BY time, id"
	args := []any{server[:], channel[:]}
	if limit > 0 {
		q = "SELECT * FROM (SELECT id, sender, time, epoch, body, deleted, raw FROM messages WHERE server = ? AND channel = ? AND kind = 1 ORDER BY time DESC, id DESC LIMIT ?) ORDER BY time, id"
		args = append(args, limit)
	}
	rows, err := c.st.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		var id, sender, body, raw []byte
		var t, epoch int64
		var deleted bool
		if err := rows.Scan(&id, &sender, &t, &epoch, &body, &deleted, &raw); err != nil {
			return nil, err
		}
		m := Message{ID: policy.ID(id), Server: server, Channel: channel, Sender: policy.PublicKey(sender), Time: time.UnixMilli(t), Epoch: uint64(epoch), Deleted: deleted, Raw: raw}
		switch {
		case body != nil:
			m.Err = cbor.Unmarshal(body, &m.Body)
		case !deleted:
			m.Err = ErrNoKey
		}
		out = append(out, m)
	}
	return out, rows.Err()
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
				if m := c.record(ctx, env, nil); m != nil {
					fn(*m)
				}
				c.st.setCursor(ctx, url, server, channel, f.Seq)
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
	var channel []byte
	if err := c.st.db.QueryRowContext(ctx, "SELECT channel FROM messages WHERE id = ? AND server = ?", id[:], server[:]).Scan(&channel); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: message %s", ErrUnknown, id)
		}
		return err
	}
	t, err := policy.NewTombstone(d.Signer(), policy.TombstoneBody{Server: server, Channel: policy.ID(channel), Target: id, Time: c.Now().UnixMilli()})
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
	_, err = c.st.db.ExecContext(ctx, "UPDATE messages SET deleted = 1, body = NULL WHERE id = ?", id[:])
	return err
}
