// Package payload seals and opens the message payload members put in
// envelopes (PROTOCOL §7, `0x03`): a body encrypted under a key of its own,
// derived from the channel's epoch key and the message's nonce, and bound to
// the ciphertext by a commitment the sender signs with the envelope. A
// reader can therefore reveal one message, and only that one, to a third
// party (an abuse report to a hub's operator): the message key opens it,
// cannot open any other message, and cannot be forged to open it as
// something the sender did not write.
package payload

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"

	"github.com/fxamacker/cbor/v2"

	"github.com/guildhall/guildhall/policy"
)

// Message is the first byte of a committed message payload:
// key_id (8) || nonce (12) || commitment (32) || AES-256-GCM(message key, nonce, body, AAD).
const Message byte = 0x03

const (
	keyIDLen  = 8
	nonceLen  = 12
	commitLen = 32
	header    = 1 + keyIDLen + nonceLen + commitLen
	// MinSize is the size of a committed message with an empty body.
	MinSize = header + 16
)

var (
	// ErrNotMessage: the payload is not a committed message.
	ErrNotMessage = errors.New("payload: not a committed message (0x03)")
	// ErrCommitment: the key is not the one the sender committed to.
	ErrCommitment = errors.New("payload: the key is not the message's committed key")
	// ErrOpen: the ciphertext does not open with the key.
	ErrOpen = errors.New("payload: the message does not open with its key")
)

// AAD is a message's associated data: "guildhall/v1/message" || server ||
// channel || epoch (uint64, big-endian).
func AAD(server, channel policy.ID, epoch uint64) []byte {
	aad := append([]byte("guildhall/v1/message"), server[:]...)
	aad = append(aad, channel[:]...)
	return binary.BigEndian.AppendUint64(aad, epoch)
}

// messageKey is HKDF-SHA256(ikm = epoch key, salt = nonce,
// info = "guildhall/v1/message-key"), 32 bytes.
func messageKey(epochKey, nonce []byte) []byte {
	k, err := hkdf.Key(sha256.New, epochKey, nonce, "guildhall/v1/message-key", 32)
	if err != nil {
		panic(err) // 32 bytes of SHA-256 output are always available
	}
	return k
}

// commitment is SHA-256("guildhall/v1/message-commit" || message key).
func commitment(key []byte) []byte {
	h := sha256.Sum256(append([]byte("guildhall/v1/message-commit"), key...))
	return h[:]
}

func gcm(key []byte) cipher.AEAD {
	b, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // keys are always 32 bytes
	}
	a, _ := cipher.NewGCM(b)
	return a
}

// Seal encrypts body under a fresh message key derived from epochKey, whose
// key ID it names, with a random nonce.
func Seal(epochKey []byte, keyID [8]byte, aad, body []byte) []byte {
	nonce := make([]byte, nonceLen)
	rand.Read(nonce)
	return SealWithNonce(epochKey, keyID, nonce, aad, body)
}

// SealWithNonce is Seal with a given 12-byte nonce (for test vectors; a
// nonce must never repeat under one epoch key).
func SealWithNonce(epochKey []byte, keyID [8]byte, nonce, aad, body []byte) []byte {
	k := messageKey(epochKey, nonce)
	out := make([]byte, 0, header+len(body)+16)
	out = append(out, Message)
	out = append(out, keyID[:]...)
	out = append(out, nonce...)
	out = append(out, commitment(k)...)
	return gcm(k).Seal(out, nonce, body, aad)
}

// KeyID returns the epoch key ID a committed message names.
func KeyID(ct []byte) ([8]byte, error) {
	if len(ct) < MinSize || ct[0] != Message {
		return [8]byte{}, ErrNotMessage
	}
	return [8]byte(ct[1 : 1+keyIDLen]), nil
}

// MessageKey returns the key of one committed message, from the epoch key
// it was sealed under: what a reader reveals to report that message.
func MessageKey(epochKey, ct []byte) ([]byte, error) {
	if len(ct) < MinSize || ct[0] != Message {
		return nil, ErrNotMessage
	}
	return messageKey(epochKey, ct[1+keyIDLen:1+keyIDLen+nonceLen]), nil
}

// Open decrypts a committed message with its message key, after checking
// the key against the commitment the payload carries.
func Open(key, ct, aad []byte) ([]byte, error) {
	if len(ct) < MinSize || ct[0] != Message {
		return nil, ErrNotMessage
	}
	if len(key) != 32 || subtle.ConstantTimeCompare(commitment(key), ct[1+keyIDLen+nonceLen:header]) != 1 {
		return nil, ErrCommitment
	}
	plain, err := gcm(key).Open(nil, ct[1+keyIDLen:1+keyIDLen+nonceLen], ct[header:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

// BodyText returns the text of a message body (PROTOCOL §7: a CBOR map
// whose key 1 is the text), or false when the body has none or does not
// decode: what an operator reading a report is shown besides the bytes.
func BodyText(body []byte) (string, bool) {
	var b struct {
		Text string `cbor:"1,keyasint"`
	}
	if len(body) > 1<<20 || bodyDec.Unmarshal(body, &b) != nil || b.Text == "" {
		return "", false
	}
	return b.Text, true
}

var bodyDec = func() cbor.DecMode {
	m, err := cbor.DecOptions{MaxNestedLevels: 8, MaxArrayElements: 1024, MaxMapPairs: 64}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}()
