package client

import (
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"time"

	"github.com/guildhall/guildhall/policy"
)

// DeviceKeys are one device's private keys: Ed25519 to sign, and an HPKE
// key to receive channel keys: ML-KEM-768+X25519 (post-quantum hybrid) for
// new devices, X25519 for devices made before. They never leave the device.
type DeviceKeys struct {
	Sign ed25519.PrivateKey
	Enc  hpke.PrivateKey
}

// NewDeviceKeys generates a device's keys, with a hybrid encryption key.
func NewDeviceKeys() DeviceKeys {
	_, sign, _ := ed25519.GenerateKey(rand.Reader)
	enc, err := hpke.MLKEM768X25519().GenerateKey()
	if err != nil {
		panic(err) // the system's randomness failed
	}
	return DeviceKeys{Sign: sign, Enc: enc}
}

// encKey loads a stored encryption key: kem is its HPKE KEM ID (a store
// made before hybrid keys has none: X25519).
func encKey(kem uint16, b []byte) (hpke.PrivateKey, error) {
	if kem == 0 {
		kem = policy.KEMX25519
	}
	k, err := hpke.NewKEM(kem)
	if err != nil {
		return nil, err
	}
	return k.NewPrivateKey(b)
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

// LinkRequest is what a new device shows the identity holder (policy.LinkRequest).
type LinkRequest = policy.LinkRequest

// Request returns the link request for these keys.
func (k DeviceKeys) Request(name string) LinkRequest {
	return LinkRequest{Device: policy.KeyOf(k.Sign), EncKey: k.Enc.PublicKey().Bytes(), Name: name}
}

// Certify signs a device certificate for a link request.
func (id Identity) Certify(req LinkRequest, now time.Time, lifetime time.Duration) (*policy.DeviceCert, error) {
	if lifetime <= 0 {
		lifetime = DefaultDeviceLifetime
	}
	return policy.NewDeviceCert(id.Key, policy.DeviceCertBody{Device: req.Device, KEM: req.KEM(), EncKey: req.EncKey,
		Issued: now.Add(-time.Minute).UnixMilli(), Expires: now.Add(lifetime).UnixMilli(), Name: req.Name})
}
