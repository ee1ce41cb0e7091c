package policy

// Limits on envelopes.
const (
	MaxEnvelopeSize = 128 << 10 // signed bytes; larger content goes in blobs
	MaxBlobRefs     = 16        // blob references one envelope may carry
)

// EnvelopeBody is a message as infrastructure sees it: a visible header and
// opaque ciphertext, signed by the sender's device. Epoch names the channel
// key epoch the ciphertext was sealed under; hubs never interpret it.
type EnvelopeBody struct {
	Server     ID        `cbor:"1,keyasint"`
	Channel    ID        `cbor:"2,keyasint"`
	Epoch      uint64    `cbor:"3,keyasint"`
	Author     PublicKey `cbor:"4,keyasint"` // sender identity
	Cert       []byte    `cbor:"5,keyasint"` // sender device certificate (required)
	Time       int64     `cbor:"6,keyasint"` // Unix ms, sender's clock
	Blobs      []ID      `cbor:"7,keyasint,omitempty"`
	Ciphertext []byte    `cbor:"8,keyasint"`
}

// Envelope is a verified envelope. Its ID is the content ID of its signed
// bytes; whether it is acceptable is State.CheckEnvelope's decision.
type Envelope struct {
	EnvelopeBody
	Raw  []byte
	ID   ID
	cert *DeviceCert
}

// Device returns the sender's device key.
func (e *Envelope) Device() PublicKey { return e.cert.Device }

// NewEnvelope signs an envelope with a device signer (a Signer with a Cert).
func NewEnvelope(s Signer, body EnvelopeBody) (*Envelope, error) {
	if s.Cert == nil {
		return nil, errf(CodeCertInvalid, "envelopes are signed by a device: signer has no certificate")
	}
	body.Author, body.Cert = s.Identity, s.Cert.Raw
	return ParseEnvelope(seal(KindEnvelope, body, s.Key))
}

// ParseEnvelope decodes and verifies an envelope with no certificate cache.
func ParseEnvelope(b []byte) (*Envelope, error) { return (*Verifier)(nil).Envelope(b) }

// Envelope decodes and verifies an envelope: limits, canonical form, the
// device certificate (valid at the envelope's time) and the signature.
func (v *Verifier) Envelope(b []byte) (*Envelope, error) {
	e := &Envelope{Raw: b}
	body, sig, err := decodeSigned(KindEnvelope, b, MaxEnvelopeSize, &e.EnvelopeBody)
	if err != nil {
		return nil, err
	}
	if len(e.Blobs) > MaxBlobRefs {
		return nil, errf(CodeTooLarge, "envelope references %d blobs, limit %d", len(e.Blobs), MaxBlobRefs)
	}
	if len(e.Cert) == 0 {
		return nil, errf(CodeCertInvalid, "envelope carries no device certificate")
	}
	if e.cert, err = v.verifySigner(KindEnvelope, e.Author, e.Cert, e.Time, body, sig); err != nil {
		return nil, err
	}
	e.ID = Sum(b)
	return e, nil
}

// TombstoneBody is a signed request to delete an envelope's ciphertext,
// by its sender or by a member who may moderate the channel.
type TombstoneBody struct {
	Server  ID        `cbor:"1,keyasint"`
	Channel ID        `cbor:"2,keyasint"`
	Target  ID        `cbor:"3,keyasint"` // envelope ID
	Author  PublicKey `cbor:"4,keyasint"`
	Cert    []byte    `cbor:"5,keyasint,omitempty"`
	Time    int64     `cbor:"6,keyasint"`
	// TargetTime is the target envelope's own time. With Target it is the
	// envelope's reconciliation key, so a hub that receives the tombstone
	// before the envelope can keep it in the envelope's place.
	TargetTime int64 `cbor:"7,keyasint"`
}

// Tombstone is a verified tombstone.
type Tombstone struct {
	TombstoneBody
	Raw  []byte
	ID   ID
	cert *DeviceCert
}

// NewTombstone signs a tombstone.
func NewTombstone(s Signer, body TombstoneBody) (*Tombstone, error) {
	body.Author, body.Cert = s.Identity, s.certRaw()
	return ParseTombstone(seal(KindTombstone, body, s.Key))
}

// ParseTombstone decodes and verifies a tombstone.
func ParseTombstone(b []byte) (*Tombstone, error) {
	t := &Tombstone{Raw: b}
	body, sig, err := decodeSigned(KindTombstone, b, MaxCertSize+512, &t.TombstoneBody)
	if err != nil {
		return nil, err
	}
	if t.cert, err = (*Verifier)(nil).verifySigner(KindTombstone, t.Author, t.Cert, t.Time, body, sig); err != nil {
		return nil, err
	}
	t.ID = Sum(b)
	return t, nil
}

// ReceiptBody is what a hub signs once an envelope is durably stored.
type ReceiptBody struct {
	Hub      PublicKey `cbor:"1,keyasint"` // the hub's node key
	Envelope ID        `cbor:"2,keyasint"`
	Server   ID        `cbor:"3,keyasint"`
	Channel  ID        `cbor:"4,keyasint"`
	Seq      uint64    `cbor:"5,keyasint"` // the hub's per-channel sequence number
	StoredAt int64     `cbor:"6,keyasint"` // Unix ms, hub's clock
}

// Receipt is a verified storage receipt.
type Receipt struct {
	ReceiptBody
	Raw []byte
	ID  ID
}

// maxReceiptSize bounds a receipt: six fixed-size fields and a signature.
const maxReceiptSize = 512

// NewReceipt signs a receipt with the hub's node key; body.Hub is set from it.
func NewReceipt(node Signer, body ReceiptBody) *Receipt {
	body.Hub = node.Identity
	raw := seal(KindReceipt, body, node.Key)
	return &Receipt{ReceiptBody: body, Raw: raw, ID: Sum(raw)}
}

// ParseReceipt decodes and verifies a receipt's signature under its hub key.
func ParseReceipt(b []byte) (*Receipt, error) {
	r := &Receipt{Raw: b}
	body, sig, err := decodeSigned(KindReceipt, b, maxReceiptSize, &r.ReceiptBody)
	if err != nil {
		return nil, err
	}
	if err := verifySig(KindReceipt, r.Hub, body, sig); err != nil {
		return nil, err
	}
	r.ID = Sum(b)
	return r, nil
}
