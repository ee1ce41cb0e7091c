package client

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/guildhall/guildhall/policy"
)

// DeviceKeys are one device's private keys: Ed25519 to sign, X25519 to
// receive channel keys (HPKE). They never leave the device.
type DeviceKeys struct {
	Sign ed25519.PrivateKey
	Enc  *ecdh.PrivateKey
}

// NewDeviceKeys generates a device's keys.
func NewDeviceKeys() DeviceKeys {
	_, sign, _ := ed25519.GenerateKey(rand.Reader)
	enc, _ := ecdh.X25519().GenerateKey(rand.Reader)
	return DeviceKeys{Sign: sign, Enc: enc}
}

// Device is this device: its keys and the certificate by which its
// identity allows it.
type Device struct {
	Keys DeviceKeys
	Cert *policy.DeviceCert
}

// Signer signs as the identity through this device.
func (d *Device) Signer() policy.Signer { return policy.DeviceSigner(d.Keys.Sign, d.Cert) }

// Identity returns the identity the device acts for.
func (d *Device) Identity() policy.PublicKey { return d.Cert.Identity }

// DefaultDeviceLifetime is how long a device certificate is valid; the
// device is re-certified before it ends.
const DefaultDeviceLifetime = 365 * 24 * time.Hour

// LinkRequest is what a new device shows the identity holder so that the
// identity certifies it: its public keys and a name.
type LinkRequest struct {
	Device policy.PublicKey `cbor:"1,keyasint"`
	EncKey []byte           `cbor:"2,keyasint"`
	Name   string           `cbor:"3,keyasint"`
}

// Request returns the link request for these keys.
func (k DeviceKeys) Request(name string) LinkRequest {
	return LinkRequest{Device: policy.KeyOf(k.Sign), EncKey: k.Enc.PublicKey().Bytes(), Name: name}
}

// Certify signs a device certificate for a link request.
func (id Identity) Certify(req LinkRequest, now time.Time, lifetime time.Duration) (*policy.DeviceCert, error) {
	if lifetime <= 0 {
		lifetime = DefaultDeviceLifetime
	}
	return policy.NewDeviceCert(id.Key, policy.DeviceCertBody{Device: req.Device, KEM: policy.KEMX25519, EncKey: req.EncKey,
		Issued: now.Add(-time.Minute).UnixMilli(), Expires: now.Add(lifetime).UnixMilli(), Name: req.Name})
}

// Encode and DecodeLinkRequest turn a request into a copyable token.
func (r LinkRequest) Encode() string {
	b, _ := cbor.Marshal(r)
	return "ghlink1:" + base64.RawURLEncoding.EncodeToString(b)
}

// DecodeLinkRequest parses a link request token.
func DecodeLinkRequest(s string) (LinkRequest, error) {
	var r LinkRequest
	b, err := decodeToken(s, "ghlink1:")
	if err == nil {
		err = cbor.Unmarshal(b, &r)
	}
	if err != nil || len(r.EncKey) != 32 {
		return r, fmt.Errorf("client: not a device link request: %v", err)
	}
	return r, nil
}

// EncodeCert and DecodeCert turn a device certificate into a copyable token.
func EncodeCert(c *policy.DeviceCert) string {
	return "ghcert1:" + base64.RawURLEncoding.EncodeToString(c.Raw)
}

// DecodeCert parses and verifies a certificate token.
func DecodeCert(s string) (*policy.DeviceCert, error) {
	b, err := decodeToken(s, "ghcert1:")
	if err != nil {
		return nil, err
	}
	return policy.ParseDeviceCert(b)
}

func decodeToken(s, prefix string) ([]byte, error) {
	if len(s) < len(prefix) || s[:len(prefix)] != prefix {
		return nil, errors.New("client: token has the wrong prefix")
	}
	return base64.RawURLEncoding.DecodeString(s[len(prefix):])
}
