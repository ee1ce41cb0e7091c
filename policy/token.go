package policy

import (
	"encoding/base64"
	"strings"
)

// Tokens are the copyable text forms of objects people pass between
// machines by hand (chat, a config file, a terminal): a fixed prefix naming
// the kind and version, then the object's bytes in unpadded base64url
// (RFC 4648 §5). PROTOCOL §9 specifies them.
const (
	InviteTokenPrefix = "ghinv1:"  // a signed invite's exact bytes (ParseInvite)
	CertTokenPrefix   = "ghcert1:" // a signed device certificate's exact bytes (ParseDeviceCert)
	LinkTokenPrefix   = "ghlink1:" // a LinkRequest in canonical CBOR
)

// MaxTokenSize bounds a token's text before it is decoded: the largest
// object a token carries (an invite with its certificate and hints) is
// below 8 KiB.
const MaxTokenSize = 16 << 10

// LinkRequest is what a new device shows the identity holder so that the
// identity certifies it: its public keys and a name. It is not signed: the
// person approving it is the check.
type LinkRequest struct {
	Device PublicKey `cbor:"1,keyasint"` // the device's Ed25519 key
	EncKey []byte    `cbor:"2,keyasint"` // its encryption key: X25519 (32 bytes) or ML-KEM-768+X25519 (1216)
	Name   string    `cbor:"3,keyasint"` // what the person calls it, at most 100 bytes
}

// EncodeInviteToken returns an invite's token.
func EncodeInviteToken(inv *Invite) string { return encodeToken(InviteTokenPrefix, inv.Raw) }

// DecodeInviteToken parses and verifies an invite token.
func DecodeInviteToken(s string) (*Invite, error) {
	b, err := decodeToken(s, InviteTokenPrefix, "an invite")
	if err != nil {
		return nil, err
	}
	inv, err := ParseInvite(b)
	if CodeOf(err) == CodeMalformed {
		return nil, errf(CodeMalformed, "the invite token is damaged or cut short (copy all of it): %v", err)
	}
	return inv, err
}

// EncodeCertToken returns a device certificate's token.
func EncodeCertToken(c *DeviceCert) string { return encodeToken(CertTokenPrefix, c.Raw) }

// DecodeCertToken parses and verifies a device certificate token.
func DecodeCertToken(s string) (*DeviceCert, error) {
	b, err := decodeToken(s, CertTokenPrefix, "a device certificate")
	if err != nil {
		return nil, err
	}
	c, err := ParseDeviceCert(b)
	if CodeOf(err) == CodeMalformed {
		return nil, errf(CodeMalformed, "the certificate token is damaged or cut short (copy all of it): %v", err)
	}
	return c, err
}

// Encode returns the request's token.
func (r LinkRequest) Encode() string {
	b, err := encMode.Marshal(r)
	if err != nil {
		panic(err) // a struct of fixed-size and plain fields always encodes
	}
	return encodeToken(LinkTokenPrefix, b)
}

// DecodeLinkRequest parses a link request token: canonical CBOR, a 32-byte
// X25519 key, a name of at most 100 bytes.
func DecodeLinkRequest(s string) (LinkRequest, error) {
	var r LinkRequest
	b, err := decodeToken(s, LinkTokenPrefix, "a device link request")
	if err != nil {
		return r, err
	}
	if err := decodeCanonical("link request", b, &r); err != nil {
		return LinkRequest{}, err
	}
	if r.KEM() == 0 {
		return LinkRequest{}, errf(CodeMalformed, "link request: encryption key is %d bytes, want 32 (X25519) or 1216 (ML-KEM-768+X25519)", len(r.EncKey))
	}
	if err := checkName("link request name", r.Name, maxNameLen, false); err != nil {
		return LinkRequest{}, err
	}
	return r, nil
}

// KEM is the HPKE KEM of the request's encryption key, told by its length
// (KEMX25519 or KEMMLKEM768X25519), or 0 if it is neither.
func (r LinkRequest) KEM() uint16 {
	switch len(r.EncKey) {
	case 32:
		return KEMX25519
	case 1216:
		return KEMMLKEM768X25519
	}
	return 0
}

func encodeToken(prefix string, b []byte) string {
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// decodeToken checks a token's prefix and size and returns its bytes; what
// names the expected kind in errors, with its article.
func decodeToken(s, prefix, what string) ([]byte, error) {
	s = strings.TrimSpace(s)
	switch {
	case len(s) > MaxTokenSize:
		return nil, errf(CodeTooLarge, "token is %d characters, limit %d for %s", len(s), MaxTokenSize, what)
	case !strings.HasPrefix(s, prefix):
		return nil, errf(CodeMalformed, "not %s token: it does not start with %q", what, prefix)
	}
	b, err := base64.RawURLEncoding.DecodeString(s[len(prefix):])
	if err != nil {
		return nil, errf(CodeMalformed, "the token is damaged or cut short (copy all of it), not %s: %v", what, err)
	}
	return b, nil
}
