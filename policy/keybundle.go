package policy

import (
	"encoding/binary"
)

// Key bundles are client payloads (docs/PROTOCOL.md §7): an envelope whose
// ciphertext starts with PayloadKeys carries one channel epoch key sealed
// to each of some devices. Their header is in the clear so that a hub can
// serve each device only its own entries; ParseKeyBundle is how a hub reads
// it, strictly, since it comes from the network.

// PayloadKeys is the first ciphertext byte of a key bundle.
const PayloadKeys byte = 0x02

// MaxBundleEntries bounds the entries of one key bundle.
const MaxBundleEntries = 800

// KeyBundle is a key bundle's header: the epoch, the key's ID, and where
// each recipient's sealed entry lies within the ciphertext.
type KeyBundle struct {
	Epoch   uint64
	KeyID   [8]byte
	Entries []KeyBundleEntry
}

// KeyBundleEntry is one recipient device and the offset and length of its
// sealed key within the envelope's ciphertext.
type KeyBundleEntry struct {
	Device   PublicKey
	Off, Len int
}

// ParseKeyBundle reads a key bundle's header from an envelope's ciphertext:
// 0x02 followed by the canonical CBOR map
// {1: epoch (uint), 2: key_id (8-byte bstr), 3: [{1: device (32-byte bstr), 2: sealed (bstr)}]},
// keys in that order, definite lengths, at most MaxBundleEntries entries,
// sealed entries 1 to 2,048 bytes, nothing after the map.
func ParseKeyBundle(ct []byte) (*KeyBundle, error) {
	if len(ct) < 2 || ct[0] != PayloadKeys {
		return nil, errf(CodeMalformed, "not a key bundle")
	}
	r := &headReader{b: ct, i: 1}
	if n, ok := r.head(5); !ok || n != 3 {
		return nil, errf(CodeMalformed, "key bundle: not a map of 3")
	}
	var b KeyBundle
	if k, ok := r.head(0); !ok || k != 1 {
		return nil, errf(CodeMalformed, "key bundle: key 1 missing")
	}
	epoch, ok := r.head(0)
	if !ok {
		return nil, errf(CodeMalformed, "key bundle: epoch")
	}
	b.Epoch = epoch
	if k, ok := r.head(0); !ok || k != 2 {
		return nil, errf(CodeMalformed, "key bundle: key 2 missing")
	}
	id, ok := r.bytes(8, 8)
	if !ok {
		return nil, errf(CodeMalformed, "key bundle: key_id is not 8 bytes")
	}
	copy(b.KeyID[:], id)
	if k, ok := r.head(0); !ok || k != 3 {
		return nil, errf(CodeMalformed, "key bundle: key 3 missing")
	}
	n, ok := r.head(4)
	if !ok || n > MaxBundleEntries {
		return nil, errf(CodeMalformed, "key bundle: entries not an array of at most %d", MaxBundleEntries)
	}
	b.Entries = make([]KeyBundleEntry, 0, n)
	for range n {
		if m, ok := r.head(5); !ok || m != 2 {
			return nil, errf(CodeMalformed, "key bundle: entry not a map of 2")
		}
		var e KeyBundleEntry
		if k, ok := r.head(0); !ok || k != 1 {
			return nil, errf(CodeMalformed, "key bundle: entry key 1 missing")
		}
		dev, ok := r.bytes(32, 32)
		if !ok {
			return nil, errf(CodeMalformed, "key bundle: device is not 32 bytes")
		}
		copy(e.Device[:], dev)
		if k, ok := r.head(0); !ok || k != 2 {
			return nil, errf(CodeMalformed, "key bundle: entry key 2 missing")
		}
		sealed, ok := r.bytes(1, 2048)
		if !ok {
			return nil, errf(CodeMalformed, "key bundle: sealed entry of 1 to 2048 bytes expected")
		}
		e.Off, e.Len = r.i-len(sealed), len(sealed)
		b.Entries = append(b.Entries, e)
	}
	if r.i != len(ct) {
		return nil, errf(CodeMalformed, "key bundle: %d bytes after the map", len(ct)-r.i)
	}
	return &b, nil
}

// headReader reads CBOR heads with definite, shortest-form arguments.
type headReader struct {
	b []byte
	i int
}

// head reads a head of major type major and returns its argument.
func (r *headReader) head(major byte) (uint64, bool) {
	if r.i >= len(r.b) || r.b[r.i]>>5 != major {
		return 0, false
	}
	info := r.b[r.i] & 0x1f
	r.i++
	var v uint64
	switch {
	case info < 24:
		return uint64(info), true
	case info == 24 && r.i+1 <= len(r.b):
		v = uint64(r.b[r.i])
		r.i++
		return v, v >= 24
	case info == 25 && r.i+2 <= len(r.b):
		v = uint64(binary.BigEndian.Uint16(r.b[r.i:]))
		r.i += 2
		return v, v > 0xff
	case info == 26 && r.i+4 <= len(r.b):
		v = uint64(binary.BigEndian.Uint32(r.b[r.i:]))
		r.i += 4
		return v, v > 0xffff
	case info == 27 && r.i+8 <= len(r.b):
		v = binary.BigEndian.Uint64(r.b[r.i:])
		r.i += 8
		return v, v > 0xffffffff
	}
	return 0, false
}

// bytes reads a byte string of min to max bytes.
func (r *headReader) bytes(min, max int) ([]byte, bool) {
	n, ok := r.head(2)
	if !ok || n < uint64(min) || n > uint64(max) || uint64(len(r.b)-r.i) < n {
		return nil, false
	}
	out := r.b[r.i : r.i+int(n)]
	r.i += int(n)
	return out, true
}

// StoredEnvelopeHeader decodes an envelope that was verified when stored,
// without verifying it again: for a hub to tell what it serves (its epoch,
// and whether it is a key bundle). It is not for input from the network.
func StoredEnvelopeHeader(raw []byte) (EnvelopeBody, error) {
	var body EnvelopeBody
	_, _, err := decodeSigned(KindEnvelope, raw, MaxEnvelopeSize, &body)
	return body, err
}
