package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
	"github.com/guildhall/guildhall/policy"
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
		var cert *policy.DeviceCert // a home node's receipt is checked with its certificate
		if err == nil {
			cert, err = c.hub(url).NodeCert(ctx)
		}
		if err == nil {
			err = st.CheckReceipt(r, env, cert, c.Now().UnixMilli())
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
			return sent, fmt.Errorf("%w (guaranteed channel %q): %w", ErrNotDurable, ch.Name, noHub(errs))
		}
		return sent, fmt.Errorf("%w: %w", ErrNotAccepted, noHub(errs))
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
	if strings.TrimSpace(text) == "" && len(files) == 0 {
		return nil, ErrEmptyMessage
	}
	if len(text) > MaxText {
		return nil, fmt.Errorf("%w: %d bytes of text, at most %d in one message: send it as a file instead (guild send --file)", ErrTooLong, len(text), MaxText)
	}
	if !utf8.ValidString(text) {
		return nil, fmt.Errorf("%w: the text is not valid UTF-8", ErrEmptyMessage)
	}
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

// MaxText bounds a message's text: what fits one envelope (policy's
// MaxEnvelopeSize) with its header, signature, device certificate and
// encryption; longer text goes in an attachment.
const MaxText = policy.MaxEnvelopeSize - 8<<10

var (
	// ErrEmptyMessage refuses a message with no text (or only white space)
	// and no file, or text that is not UTF-8.
	ErrEmptyMessage = errors.New("client: nothing to send: write some text or attach a file")
	// ErrTooLong refuses a text over MaxText.
	ErrTooLong = errors.New("client: the message is too long for one envelope")
)

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

// Profiles returns the newest profile each identity sent in any channel of
// a server: a profile is the member's in the whole server, wherever sent.
func (c *Client) Profiles(ctx context.Context, server policy.ID) (map[policy.PublicKey]Profile, error) {
	rows, err := c.st.profileBodies(ctx, server)
	if err != nil {
		return nil, err
	}
	out := map[policy.PublicKey]Profile{}
	for _, r := range rows { // oldest first: the newest wins
		var b Body
		if cbor.Unmarshal(r.Body, &b) == nil && b.Profile != nil {
			out[r.Sender] = *b.Profile
		}
	}
	return out, nil
}

// Names returns what to call each member of a server who sent a profile:
// the display name, and, when another member shows the same name (or a
// name that differs only in case or surrounding space), a short fingerprint
// of the identity key beside it ("Alice (b5uaqsnu)"), so that nobody can
// pass for someone else by taking their name.
func (c *Client) Names(ctx context.Context, server policy.ID) (map[policy.PublicKey]string, error) {
	profiles, err := c.Profiles(ctx, server)
	if err != nil {
		return nil, err
	}
	holders := map[string]int{}
	for _, p := range profiles {
		holders[foldName(p.Name)]++
	}
	out := make(map[policy.PublicKey]string, len(profiles))
	for id, p := range profiles {
		name := strings.TrimSpace(p.Name)
		if name == "" || holders[foldName(p.Name)] > 1 {
			name = strings.TrimSpace(name + " (" + Fingerprint(id) + ")")
		}
		out[id] = name
	}
	return out, nil
}

func foldName(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// Fingerprint is a short, stable rendering of an identity key for people
// to compare: the first 8 characters of its text form after the common
// prefix.
func Fingerprint(id policy.PublicKey) string {
	s := id.String()
	if len(s) > 12 {
		return s[4:12]
	}
	return s
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
	return Attachment{}, fmt.Errorf("client: uploading %q: %w", f.Name, noHub(errs))
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
	return nil, noHub(errs)
}

// Delete tombstones one of this identity's messages (or, for a moderator,
// anyone's) at every hub of its server.
func (c *Client) Delete(ctx context.Context, server, id policy.ID) error {
	d, err := c.Device()
	if err != nil {
		return err
	}
	channel, at, found, err := c.st.messageChannel(ctx, server, id)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%w: message %s", ErrUnknown, id)
	}
	t, err := policy.NewTombstone(d.Signer(), policy.TombstoneBody{Server: server, Channel: channel, Target: id, TargetTime: at, Time: c.Now().UnixMilli()})
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
