package policy

import (
	"bytes"
	"crypto/ed25519"

	"github.com/fxamacker/cbor/v2"
)

// Decoding limits applied to every object before any signature is checked.
const (
	maxNesting  = 8    // arrays and maps inside each other
	maxArrayLen = 1024 // elements in one array
	maxMapPairs = 64   // pairs in one map
)

// Domain is the prefix of every signing input: Domain + kind + 0x00 + body.
const Domain = "guildhall/v1/"

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
)

var (
	encMode = newEncMode()
	decMode = newDecMode()
)

func newEncMode() cbor.EncMode {
	eo := cbor.CoreDetEncOptions() // RFC 8949 §4.2.1: shortest forms, sorted keys, definite lengths
	eo.ByteArray = cbor.ByteArrayToByteSlice
	m, err := eo.EncMode()
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
	if !bytes.Equal(marshal(v), b) {
		return errf(CodeNonCanonical, "%s: not in canonical form", what)
	}
	return nil
}

// signingInput is Domain || kind || 0x00 || body.
func signingInput(kind string, body []byte) []byte {
	in := make([]byte, 0, len(Domain)+len(kind)+1+len(body))
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
	var s signed
	if err := decodeCanonical(kind, b, &s); err != nil {
		return nil, nil, err
	}
	if len(s.Sig) != ed25519.SignatureSize {
		return nil, nil, errf(CodeMalformed, "%s: signature is %d bytes", kind, len(s.Sig))
	}
	return s.Body, s.Sig, nil
}

func verifySig(kind string, pub PublicKey, body, sig []byte) error {
	if !ed25519.Verify(pub[:], signingInput(kind, body), sig) {
		return errf(CodeBadSignature, "%s: signature does not verify under %s", kind, pub)
	}
	return nil
}
