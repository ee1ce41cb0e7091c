package policy

import (
	"fmt"
	"unicode/utf8"
)

// Takedown kinds: what an operator removed from its hub.
const (
	TakedownEnvelope = "envelope" // one envelope's ciphertext
	TakedownBlob     = "blob"     // one blob
	TakedownServer   = "server"   // the whole server, blocked on this hub
)

// MaxTakedownReason bounds a takedown's stated reason, in bytes.
const MaxTakedownReason = 1024

// TakedownBody is what a hub's operator signs, with the hub's node key,
// when it removes content from its hub (PROTOCOL §3.11): a record that the
// hub keeps in the content's place and shows to readers, so that they can
// tell a takedown from a loss or a member's deletion.
type TakedownBody struct {
	Hub    PublicKey `cbor:"1,keyasint"` // the hub's node key
	Server ID        `cbor:"2,keyasint"`
	Kind   string    `cbor:"3,keyasint"` // TakedownEnvelope, TakedownBlob or TakedownServer
	Target ID        `cbor:"4,keyasint"` // the envelope or blob; the server itself for TakedownServer
	Reason string    `cbor:"5,keyasint"` // shown to readers; at most MaxTakedownReason bytes of UTF-8
	Time   int64     `cbor:"6,keyasint"` // Unix ms, hub's clock
}

// Takedown is a verified takedown record.
type Takedown struct {
	TakedownBody
	Raw []byte
	ID  ID
}

const maxTakedownSize = 512 + MaxTakedownReason

// NewTakedown signs a takedown record with the hub's node key; body.Hub is
// set from it. An unknown kind, a server takedown whose target is not the
// server, or an over-long or invalid reason is refused.
func NewTakedown(node Signer, body TakedownBody) (*Takedown, error) {
	body.Hub = node.Identity
	if err := body.check(); err != nil {
		return nil, err
	}
	raw := seal(KindTakedown, body, node.Key)
	return &Takedown{TakedownBody: body, Raw: raw, ID: Sum(raw)}, nil
}

// ParseTakedown decodes a takedown record, checks its fields and verifies
// its signature under its hub key.
func ParseTakedown(b []byte) (*Takedown, error) {
	t := &Takedown{Raw: b}
	body, sig, err := decodeSigned(KindTakedown, b, maxTakedownSize, &t.TakedownBody)
	if err != nil {
		return nil, err
	}
	if err := t.check(); err != nil {
		return nil, err
	}
	if err := verifySig(KindTakedown, t.Hub, body, sig); err != nil {
		return nil, err
	}
	t.ID = Sum(b)
	return t, nil
}

func (b TakedownBody) check() error {
	switch {
	case b.Kind != TakedownEnvelope && b.Kind != TakedownBlob && b.Kind != TakedownServer:
		return fmt.Errorf("%w: takedown kind %q", ErrMalformed, b.Kind)
	case b.Kind == TakedownServer && b.Target != b.Server:
		return fmt.Errorf("%w: a server takedown names another target", ErrMalformed)
	case len(b.Reason) > MaxTakedownReason || !utf8.ValidString(b.Reason):
		return fmt.Errorf("%w: takedown reason: at most %d bytes of UTF-8", ErrMalformed, MaxTakedownReason)
	}
	return nil
}
