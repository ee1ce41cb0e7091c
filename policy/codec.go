package policy

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// Decoding limits applied to every object before any signature is checked.
const (
	maxNesting  = 8    // arrays and maps inside each other
	maxArrayLen = 1024 // elements in one array
	maxMapPairs = 64   // pairs in one map
)

// Domain is the prefix of every signing input: Domain + kind + 0x00 + body.
const Domain = "guildhall/v2/"

// Object kinds: each names a signing domain and a decoder.
const (
	KindDeviceCert   = "device-cert"
	KindDeviceRevoke = "device-revoke"
	KindEvent        = "event"
	KindEnvelope     = "envelope"
	KindTombstone    = "tombstone"
	KindReceipt      = "receipt"
	KindInvite       = "invite"
	KindDiscovery    = "discovery"
	KindAuth         = "auth"
	KindTakedown     = "takedown"
)

var (
	encMode = newEncMode()
	decMode = newDecMode()
	bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}
)

func newEncMode() cbor.UserBufferEncMode {
	eo := cbor.CoreDetEncOptions() // RFC 8949 §4.2.1: shortest forms, sorted keys, definite lengths
	eo.ByteArray = cbor.ByteArrayToByteSlice
	m, err := eo.UserBufferEncMode()
	if err != nil {
		panic(err)
	}
	return m
}

func newDecMode() cbor.DecMode {
	m, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   maxNesting,
		MaxArrayElements:  maxArrayLen,
		MaxMapPairs:       maxMapPairs,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}

// signed is the outer wire form of every signed object: a two-element CBOR
// array of the canonical body bytes and the 64-byte Ed25519 signature.
type signed struct {
	_    struct{} `cbor:",toarray"`
	Body []byte
	Sig  []byte
}

// marshal encodes v canonically. Only this package's own types reach it, so
// an error is a programming bug.
func marshal(v any) []byte {
	b, err := encMode.Marshal(v)
	if err != nil {
		panic("policy: marshal: " + err.Error())
	}
	return b
}

// decodeCanonical decodes b into v and rejects it unless re-encoding v gives
// exactly b: there is one byte form per value.
func decodeCanonical(what string, b []byte, v any) error {
	if err := decMode.Unmarshal(b, v); err != nil {
		return errf(CodeMalformed, "%s: %v", what, err)
	}
	buf := bufPool.Get().(*bytes.Buffer)
	defer putBuf(buf)
	if err := encMode.MarshalToBuffer(v, buf); err != nil || !bytes.Equal(buf.Bytes(), b) {
		return errf(CodeNonCanonical, "%s: not in canonical form", what)
	}
	return nil
}

func putBuf(buf *bytes.Buffer) {
	buf.Reset()
	if buf.Cap() <= 2*MaxEnvelopeSize { // do not pin outsized buffers
		bufPool.Put(buf)
	}
}

// signingInput is Domain || kind || 0x00 || body.
func signingInput(kind string, body []byte) []byte {
	return appendSigningInput(make([]byte, 0, len(Domain)+len(kind)+1+len(body)), kind, body)
}

func appendSigningInput(in []byte, kind string, body []byte) []byte {
	in = append(in, Domain...)
	in = append(in, kind...)
	in = append(in, 0)
	return append(in, body...)
}

// seal encodes body canonically, signs it under kind with priv and returns
// the signed wire bytes.
func seal(kind string, body any, priv ed25519.PrivateKey) []byte {
	bb := marshal(body)
	sig := ed25519.Sign(priv, signingInput(kind, bb))
	return marshal(signed{Body: bb, Sig: sig})
}

// open splits signed wire bytes into body and signature, enforcing the size
// limit and the canonical outer form. It does not verify the signature.
func open(kind string, b []byte, limit int) (body, sig []byte, err error) {
	if len(b) > limit {
		return nil, nil, errf(CodeTooLarge, "%s: %d bytes, limit %d", kind, len(b), limit)
	}
	// The outer form is fixed: 0x82, then two definite byte strings in their
	// shortest encoding and nothing after. Parsing it by hand avoids copying
	// the body; the body itself is decoded by decodeCanonical.
	if len(b) == 0 {
		return nil, nil, errf(CodeMalformed, "%s: empty", kind)
	}
	if b[0] != 0x82 {
		if b[0] == 0x98 && len(b) > 1 && b[1] == 2 {
			return nil, nil, errf(CodeNonCanonical, "%s: outer array length not in shortest form", kind)
		}
		return nil, nil, errf(CodeMalformed, "%s: not a two-element array [body, signature]", kind)
	}
	body, rest, err := byteString(kind, b[1:])
	if err != nil {
		return nil, nil, err
	}
	sig, rest, err = byteString(kind, rest)
	if err != nil {
		return nil, nil, err
	}
	if len(rest) != 0 {
		return nil, nil, errf(CodeMalformed, "%s: %d bytes after the signed object", kind, len(rest))
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, nil, errf(CodeMalformed, "%s: signature is %d bytes", kind, len(sig))
	}
	return body, sig, nil
}

// decodeSigned opens signed bytes of a kind and decodes their body
// canonically into v, returning the body bytes and the signature to verify.
// Parsers set the object's ID only once every check has passed, so input
// that is rejected is never hashed.
func decodeSigned(kind string, b []byte, limit int, v any) (body, sig []byte, err error) {
	if body, sig, err = open(kind, b, limit); err != nil {
		return nil, nil, err
	}
	if err := decodeCanonical(kind, body, v); err != nil {
		return nil, nil, err
	}
	return body, sig, nil
}

// byteString splits a definite-length CBOR byte string off the front of b,
// requiring the shortest length encoding.
func byteString(kind string, b []byte) (s, rest []byte, err error) {
	if len(b) == 0 || b[0]>>5 != 2 {
		return nil, nil, errf(CodeMalformed, "%s: expected a byte string", kind)
	}
	var n uint64
	hdr := 1
	switch ai := b[0] & 0x1f; {
	case ai < 24:
		n = uint64(ai)
	case ai == 24 && len(b) >= 2:
		n, hdr = uint64(b[1]), 2
	case ai == 25 && len(b) >= 3:
		n, hdr = uint64(binary.BigEndian.Uint16(b[1:])), 3
	case ai == 26 && len(b) >= 5:
		n, hdr = uint64(binary.BigEndian.Uint32(b[1:])), 5
	default: // 27 (over any limit here), 28-30 reserved, 31 indefinite, or truncated
		return nil, nil, errf(CodeMalformed, "%s: unsupported or truncated byte string header", kind)
	}
	if (hdr == 2 && n < 24) || (hdr == 3 && n < 1<<8) || (hdr == 5 && n < 1<<16) {
		return nil, nil, errf(CodeNonCanonical, "%s: byte string length not in shortest form", kind)
	}
	if uint64(len(b)-hdr) < n {
		return nil, nil, errf(CodeMalformed, "%s: truncated", kind)
	}
	return b[hdr : hdr+int(n)], b[hdr+int(n):], nil
}

var inputPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

func verifySig(kind string, pub PublicKey, body, sig []byte) error {
	p := inputPool.Get().(*[]byte)
	in := appendSigningInput((*p)[:0], kind, body)
	ok := ed25519.Verify(pub[:], in, sig)
	if cap(in) <= 2*MaxEnvelopeSize {
		*p = in
		inputPool.Put(p)
	}
	if !ok {
		return errf(CodeBadSignature, "%s: signature does not verify under %s", kind, pub)
	}
	return nil
}
