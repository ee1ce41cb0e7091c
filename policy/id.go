package policy

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// ID is a content ID: the SHA-256 digest of an object's canonical signed bytes
// (or of a blob's ciphertext). On the wire it is a 32-byte CBOR byte string;
// as text it is a CIDv1 (raw codec, sha2-256) in lowercase base32 multibase,
// e.g. "bafkrei...".
type ID [32]byte

// PublicKey is an Ed25519 public key: an identity, a device or a node. On the
// wire it is a 32-byte CBOR byte string; as text it is the multicodec
// ed25519-pub key in lowercase base32 multibase.
type PublicKey [32]byte

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

var (
	cidPrefix = []byte{0x01, 0x55, 0x12, 0x20} // CIDv1, raw, sha2-256, 32 bytes
	keyPrefix = []byte{0xed, 0x01}             // multicodec ed25519-pub (varint 0xed)
)

// Sum returns the content ID of b.
func Sum(b []byte) ID { return ID(sha256.Sum256(b)) }

// IsZero reports whether id is the zero ID (used for "none").
func (id ID) IsZero() bool { return id == ID{} }

// String returns the CIDv1 text form.
func (id ID) String() string { return multibase(cidPrefix, id[:]) }

// Compare orders IDs bytewise; it is the tie-breaker in resolution.
func (id ID) Compare(o ID) int { return bytes.Compare(id[:], o[:]) }

// ParseID parses the text form returned by ID.String.
func ParseID(s string) (ID, error) {
	var id ID
	b, err := parseMultibase(s, cidPrefix, len(id))
	if err != nil {
		return id, err
	}
	copy(id[:], b)
	return id, nil
}

// String returns the multibase text form of the key.
func (k PublicKey) String() string { return multibase(keyPrefix, k[:]) }

// IsZero reports whether k is the zero key (used for "none").
func (k PublicKey) IsZero() bool { return k == PublicKey{} }

// Compare orders keys bytewise.
func (k PublicKey) Compare(o PublicKey) int { return bytes.Compare(k[:], o[:]) }

// ParsePublicKey parses the text form returned by PublicKey.String.
func ParsePublicKey(s string) (PublicKey, error) {
	var k PublicKey
	b, err := parseMultibase(s, keyPrefix, len(k))
	if err != nil {
		return k, err
	}
	copy(k[:], b)
	return k, nil
}

// KeyOf returns the public half of an Ed25519 private key.
func KeyOf(priv ed25519.PrivateKey) PublicKey {
	var k PublicKey
	copy(k[:], priv.Public().(ed25519.PublicKey))
	return k
}

func multibase(prefix, b []byte) string {
	buf := make([]byte, 0, len(prefix)+len(b))
	buf = append(append(buf, prefix...), b...)
	return "b" + strings.ToLower(b32.EncodeToString(buf))
}

func parseMultibase(s string, prefix []byte, n int) ([]byte, error) {
	if len(s) < 2 || s[0] != 'b' {
		return nil, errf(CodeMalformed, "id %q: want lowercase base32 multibase ('b' prefix)", s)
	}
	if strings.ToLower(s) != s {
		return nil, errf(CodeMalformed, "id %q: not lowercase", s)
	}
	raw, err := b32.DecodeString(strings.ToUpper(s[1:]))
	if err != nil {
		return nil, errf(CodeMalformed, "id %q: %v", s, err)
	}
	if len(raw) != len(prefix)+n || !bytes.HasPrefix(raw, prefix) {
		return nil, errf(CodeMalformed, "id %q: wrong type or length", s)
	}
	if multibase(prefix, raw[len(prefix):]) != s { // base32 tolerates stray trailing bits
		return nil, errf(CodeNonCanonical, "id %q: not the canonical text form", s)
	}
	return raw[len(prefix):], nil
}

// MarshalText returns the text form, so IDs read as "bafkrei..." in JSON.
// The canonical CBOR encoding is unaffected: it is always the 32 bytes.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText parses the text form.
func (id *ID) UnmarshalText(b []byte) (err error) { *id, err = ParseID(string(b)); return err }

// MarshalText returns the text form, so keys read as multibase in JSON.
func (k PublicKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText parses the text form.
func (k *PublicKey) UnmarshalText(b []byte) (err error) {
	*k, err = ParsePublicKey(string(b))
	return err
}
