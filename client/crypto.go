package client

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/fxamacker/cbor/v2"

	"github.com/guildhall/guildhall/payload"
	"github.com/guildhall/guildhall/policy"
)

// What an envelope's ciphertext carries, told by its first byte. Hubs see
// this byte (they learn that a channel was re-keyed, which its pattern of
// envelopes would tell them anyway) and nothing else.
const (
	payloadMessage byte = 1 // a message sealed with an epoch key itself (read, no longer sent: payload.Message)
	payloadKeys    byte = 2 // an epoch key sealed to readers' devices
)

// ErrNoKey is returned for a message sealed with an epoch key this device
// does not hold: it was not a reader when the epoch began.
var ErrNoKey = errors.New("client: no key for this message's epoch")

// Body is what a message says; only its channel's readers ever see it.
type Body struct {
	Text    string       `cbor:"1,keyasint,omitempty"`
	Files   []Attachment `cbor:"2,keyasint,omitempty"`
	Profile *Profile     `cbor:"3,keyasint,omitempty"`
}

// Attachment is an encrypted blob a message refers to, with the key that
// opens it (so only the message's readers can).
type Attachment struct {
	Blob policy.ID `cbor:"1,keyasint"`
	Key  []byte    `cbor:"2,keyasint"`
	Name string    `cbor:"3,keyasint,omitempty"`
	Size int64     `cbor:"4,keyasint"`
}

// Profile is a member's display name and description, signed by them and
// sent inside a message, so infrastructure never learns names.
type Profile struct {
	Name  string `cbor:"1,keyasint"`
	About string `cbor:"2,keyasint,omitempty"`
}

func keyID(key []byte) (id [8]byte) {
	h := sha256.Sum256(append([]byte("guildhall/v1/key-id"), key...))
	copy(id[:], h[:8])
	return id
}

func newEpochKey(epoch uint64) epochKey {
	k := make([]byte, 32)
	rand.Read(k)
	return epochKey{Epoch: epoch, ID: keyID(k), Key: k}
}

func gcm(key []byte) cipher.AEAD {
	b, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // keys are always 32 bytes
	}
	a, _ := cipher.NewGCM(b)
	return a
}

// sealBody encrypts a message body under its own key, derived from the
// epoch key and committed to (payload.Seal, PROTOCOL §7 `0x03`), so that a
// reader can reveal this message alone in an abuse report.
func sealBody(k epochKey, server, channel policy.ID, body Body) ([]byte, error) {
	plain, err := cbor.Marshal(body)
	if err != nil {
		return nil, err
	}
	return payload.Seal(k.Key, k.ID, payload.AAD(server, channel, k.Epoch), plain), nil
}

// openBody decrypts a message with whichever held key matches: a committed
// message (0x03), or one sealed directly with the epoch key (0x01, as
// clients before committed messages sent).
func openBody(keys []epochKey, server, channel policy.ID, epoch uint64, ct []byte) (Body, error) {
	var b Body
	var id [8]byte
	switch {
	case len(ct) >= payload.MinSize && ct[0] == payload.Message:
		id = [8]byte(ct[1:9])
	case len(ct) >= 1+8+12+16 && ct[0] == payloadMessage:
		id = [8]byte(ct[1:9])
	default:
		return b, errors.New("client: not a sealed message")
	}
	for _, k := range keys {
		if k.Epoch != epoch || k.ID != id {
			continue
		}
		var plain []byte
		var err error
		if ct[0] == payload.Message {
			var mk []byte
			if mk, err = payload.MessageKey(k.Key, ct); err == nil {
				plain, err = payload.Open(mk, ct, payload.AAD(server, channel, epoch))
			}
		} else {
			plain, err = gcm(k.Key).Open(nil, ct[9:21], ct[21:], payload.AAD(server, channel, epoch))
		}
		if err != nil {
			return b, fmt.Errorf("client: message does not open with its epoch key: %w", err)
		}
		return b, cbor.Unmarshal(plain, &b)
	}
	return b, ErrNoKey
}

// messageKeyOf returns the key that opens one committed message, and only
// it: the evidence of an abuse report.
func messageKeyOf(keys []epochKey, epoch uint64, ct []byte) ([]byte, error) {
	id, err := payload.KeyID(ct)
	if err != nil {
		return nil, fmt.Errorf("client: only messages sealed with their own key can be reported: %w", err)
	}
	for _, k := range keys {
		if k.Epoch == epoch && k.ID == id {
			return payload.MessageKey(k.Key, ct)
		}
	}
	return nil, ErrNoKey
}

// bundle carries one epoch key sealed to each recipient device.
type bundle struct {
	Epoch   uint64  `cbor:"1,keyasint"`
	KeyID   []byte  `cbor:"2,keyasint"`
	Entries []entry `cbor:"3,keyasint"`
}

type entry struct {
	Device policy.PublicKey `cbor:"1,keyasint"`
	Sealed []byte           `cbor:"2,keyasint"` // HPKE enc || ciphertext of the key
}

func bundleInfo(server, channel policy.ID, epoch uint64, id [8]byte) []byte {
	info := append([]byte("guildhall/v1/epoch-key"), server[:]...)
	info = append(info, channel[:]...)
	info = binary.BigEndian.AppendUint64(info, epoch)
	return append(info, id[:]...)
}

// maxEntries and maxBundleBytes bound one bundle envelope (about 130 bytes
// per X25519 entry, 1,220 per hybrid one) below policy.MaxEnvelopeSize,
// leaving room for the envelope's fields and its device certificate.
const (
	maxEntries     = 800
	maxBundleBytes = 100 << 10
)

// sealBundles seals an epoch key to devices (HPKE with each device's KEM,
// X25519 or ML-KEM-768+X25519; HKDF-SHA256, AES-256-GCM), as many
// envelopes' worth as needed.
func sealBundles(k epochKey, server, channel policy.ID, devices []*policy.DeviceCert) ([][]byte, error) {
	var out [][]byte
	err := sealBundlesTo(k, server, channel, devices, func(b []byte) error {
		out = append(out, b)
		return nil
	})
	return out, err
}

// sealChunk is how many devices are sealed to at once (on every core)
// before the bundles they fill are handed on: about 12 hybrid bundles, a
// tenth of a second, so posting starts early and overlaps sealing.
const sealChunk = 1024

// sealBundlesTo is sealBundles handing each bundle to emit as soon as it is
// cut, in order; it stops at emit's first error.
func sealBundlesTo(k epochKey, server, channel policy.ID, devices []*policy.DeviceCert, emit func([]byte) error) error {
	info := bundleInfo(server, channel, k.Epoch, k.ID)
	b := bundle{Epoch: k.Epoch, KeyID: k.ID[:]}
	emitted := false
	flush := func() error {
		enc, err := cbor.Marshal(b)
		if err != nil {
			return err
		}
		b.Entries = nil
		emitted = true
		return emit(append([]byte{payloadKeys}, enc...))
	}
	size := 0
	for from := 0; from < len(devices); from += sealChunk {
		chunk := devices[from:min(from+sealChunk, len(devices))]
		sealed, err := sealAll(k.Key, info, chunk)
		if err != nil {
			return err
		}
		for i, d := range chunk {
			sealed := sealed[i]
			if sealed == nil {
				continue // a key this client cannot seal to (an unknown KEM, a malformed key)
			}
			if len(b.Entries) > 0 && size+len(sealed)+48 > maxBundleBytes {
				if err := flush(); err != nil {
					return err
				}
				size = 0
			}
			b.Entries = append(b.Entries, entry{Device: d.Device, Sealed: sealed})
			size += len(sealed) + 48
			if len(b.Entries) == maxEntries {
				if err := flush(); err != nil {
					return err
				}
				size = 0
			}
		}
	}
	if len(b.Entries) > 0 || !emitted {
		return flush()
	}
	return nil
}

// sealAll seals key to every device, on every core (a re-key of 100,000
// hybrid devices is about 30 s of CPU on one): out[i] is devices[i]'s
// sealed entry, nil when its KEM or key is not one this client can use.
func sealAll(key, info []byte, devices []*policy.DeviceCert) ([][]byte, error) {
	out := make([][]byte, len(devices))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(devices)/64))
	var next atomic.Int64
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(devices) || errs[w] != nil {
					return
				}
				d := devices[i]
				kem, err := hpke.NewKEM(d.KEM)
				if err != nil {
					continue
				}
				pub, err := kem.NewPublicKey(d.EncKey)
				if err != nil {
					continue
				}
				out[i], errs[w] = hpke.Seal(pub, hpke.HKDFSHA256(), hpke.AES256GCM(), info, key)
			}
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// parseBundle decodes a key bundle without opening it: what anyone (the
// hub included) can read of it.
func parseBundle(ct []byte) (b bundle, id [8]byte, recipients []policy.PublicKey, err error) {
	if len(ct) < 2 || ct[0] != payloadKeys {
		return b, id, nil, errors.New("client: not a key bundle")
	}
	if err := cbor.Unmarshal(ct[1:], &b); err != nil || len(b.KeyID) != 8 {
		return b, id, nil, fmt.Errorf("client: malformed key bundle: %v", err)
	}
	copy(id[:], b.KeyID)
	for _, e := range b.Entries {
		recipients = append(recipients, e.Device)
	}
	return b, id, recipients, nil
}

// openBundle returns the epoch key a bundle seals to this device, if any.
func openBundle(keys DeviceKeys, server, channel policy.ID, ct []byte) (epochKey, bool, error) {
	b, id, recipients, err := parseBundle(ct)
	if err != nil {
		return epochKey{}, false, err
	}
	me := policy.KeyOf(keys.Sign)
	for _, e := range b.Entries {
		if e.Device != me {
			continue
		}
		key, err := hpke.Open(keys.Enc, hpke.HKDFSHA256(), hpke.AES256GCM(), bundleInfo(server, channel, b.Epoch, id), e.Sealed)
		if err != nil || keyID(key) != id {
			return epochKey{}, false, fmt.Errorf("client: key bundle entry does not open: %v", err)
		}
		return epochKey{Epoch: b.Epoch, ID: id, Key: key, Recipients: recipients, Verified: true}, true, nil
	}
	return epochKey{Epoch: b.Epoch, ID: id, Recipients: recipients}, false, nil
}

// sealFile encrypts an attachment under a fresh key: nonce || AES-256-GCM.
func sealFile(data []byte) (blob, key []byte) {
	key = make([]byte, 32)
	rand.Read(key)
	nonce := make([]byte, 12)
	rand.Read(nonce)
	return gcm(key).Seal(nonce, nonce, data, []byte("guildhall/v1/file")), key
}

func openFile(blob, key []byte) ([]byte, error) {
	if len(blob) < 12+16 || len(key) != 32 {
		return nil, errors.New("client: not an encrypted attachment")
	}
	return gcm(key).Open(nil, blob[:12], blob[12:], []byte("guildhall/v1/file"))
}
