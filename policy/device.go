package policy

import (
	"crypto/ed25519"
	"sync"
)

// HPKE KEM identifiers (RFC 9180 registry) accepted for device encryption keys.
const (
	KEMX25519         uint16 = 0x0020 // DHKEM(X25519, HKDF-SHA256): 32-byte public key
	KEMMLKEM768X25519 uint16 = 0x647a // hybrid ML-KEM-768 + X25519: 1216-byte public key
)

// Limits on device certificates.
const (
	MaxCertSize     = 2048                    // signed bytes
	MaxCertLifetime = 400 * 24 * 3600 * 1000  // ms; a device re-certifies at least yearly
	maxNameLen      = 100                     // bytes, for every human-readable name
	maxTopicLen     = 1024                    // bytes
	defaultCacheMax = 1 << 14                 // verified objects a Verifier keeps (≤ ~23 MB with hybrid keys)
	MaxClockSkew    = int64(5 * 60 * 1000)    // ms an object may be ahead of "now"
	msPerDay        = int64(24 * 3600 * 1000) // ms
)

// DeviceCertBody is what an identity signs to allow a device: the device's
// signing key, its HPKE encryption key and a validity window (Unix ms).
type DeviceCertBody struct {
	Identity PublicKey `cbor:"1,keyasint"`
	Device   PublicKey `cbor:"2,keyasint"`
	KEM      uint16    `cbor:"3,keyasint"`
	EncKey   []byte    `cbor:"4,keyasint"`
	Issued   int64     `cbor:"5,keyasint"`
	Expires  int64     `cbor:"6,keyasint"`
	Name     string    `cbor:"7,keyasint,omitempty"`
}

// DeviceCert is a verified device certificate.
type DeviceCert struct {
	DeviceCertBody
	Raw []byte // signed wire bytes
	ID  ID     // Sum(Raw)
}

// NewDeviceCert signs body with the identity key; body.Identity is set from it.
func NewDeviceCert(identity ed25519.PrivateKey, body DeviceCertBody) (*DeviceCert, error) {
	body.Identity = KeyOf(identity)
	if err := body.validate(); err != nil {
		return nil, err
	}
	raw := seal(KindDeviceCert, body, identity)
	return &DeviceCert{DeviceCertBody: body, Raw: raw, ID: Sum(raw)}, nil
}

// ParseDeviceCert decodes and verifies a signed device certificate. It does
// not check the validity window: see ValidAt.
func ParseDeviceCert(b []byte) (*DeviceCert, error) {
	c := &DeviceCert{Raw: b}
	body, sig, err := decodeSigned(KindDeviceCert, b, MaxCertSize, &c.DeviceCertBody)
	if err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	if err := verifySig(KindDeviceCert, c.Identity, body, sig); err != nil {
		return nil, errf(CodeCertInvalid, "%v", err)
	}
	c.ID = Sum(b)
	return c, nil
}

func (b *DeviceCertBody) validate() error {
	switch {
	case b.KEM == KEMX25519 && len(b.EncKey) == 32:
	case b.KEM == KEMMLKEM768X25519 && len(b.EncKey) == 1216:
	default:
		return errf(CodeCertInvalid, "encryption key: kem 0x%04x with %d-byte key is not accepted", b.KEM, len(b.EncKey))
	}
	if b.Device == b.Identity {
		return errf(CodeCertInvalid, "device key equals identity key")
	}
	if b.Expires <= b.Issued || b.Expires-b.Issued > MaxCertLifetime {
		return errf(CodeCertInvalid, "validity window [%d, %d] is empty or longer than %d days", b.Issued, b.Expires, MaxCertLifetime/msPerDay)
	}
	if len(b.Name) > maxNameLen {
		return errf(CodeTooLarge, "device name is %d bytes, limit %d", len(b.Name), maxNameLen)
	}
	return nil
}

// ValidAt reports whether t (Unix ms) is inside the certificate's window.
func (c *DeviceCert) ValidAt(t int64) error {
	if t < c.Issued || t >= c.Expires {
		return errf(CodeCertExpired, "device %s: certificate valid [%d, %d), not at %d", c.Device, c.Issued, c.Expires, t)
	}
	return nil
}

// DeviceRevocationBody is what an identity signs to revoke one of its devices.
type DeviceRevocationBody struct {
	Identity PublicKey `cbor:"1,keyasint"`
	Device   PublicKey `cbor:"2,keyasint"`
	Time     int64     `cbor:"3,keyasint"`
}

// DeviceRevocation is a verified revocation statement.
type DeviceRevocation struct {
	DeviceRevocationBody
	Raw []byte
	ID  ID
}

// NewDeviceRevocation signs a revocation of device with the identity key.
func NewDeviceRevocation(identity ed25519.PrivateKey, device PublicKey, t int64) *DeviceRevocation {
	body := DeviceRevocationBody{Identity: KeyOf(identity), Device: device, Time: t}
	raw := seal(KindDeviceRevoke, body, identity)
	return &DeviceRevocation{DeviceRevocationBody: body, Raw: raw, ID: Sum(raw)}
}

// ParseDeviceRevocation decodes and verifies a signed revocation.
func ParseDeviceRevocation(b []byte) (*DeviceRevocation, error) {
	r := &DeviceRevocation{Raw: b}
	body, sig, err := decodeSigned(KindDeviceRevoke, b, MaxCertSize, &r.DeviceRevocationBody)
	if err != nil {
		return nil, err
	}
	if err := verifySig(KindDeviceRevoke, r.Identity, body, sig); err != nil {
		return nil, err
	}
	r.ID = Sum(b)
	return r, nil
}

// Signer signs objects on behalf of an identity, either with the identity
// key itself (Cert nil) or with a device key certified by Cert.
type Signer struct {
	Identity PublicKey
	Key      ed25519.PrivateKey // identity key, or device key when Cert is set
	Cert     *DeviceCert
}

// IdentitySigner signs directly with the identity key.
func IdentitySigner(identity ed25519.PrivateKey) Signer {
	return Signer{Identity: KeyOf(identity), Key: identity}
}

// DeviceSigner signs with a device key on behalf of cert.Identity.
func DeviceSigner(device ed25519.PrivateKey, cert *DeviceCert) Signer {
	return Signer{Identity: cert.Identity, Key: device, Cert: cert}
}

func (s Signer) certRaw() []byte {
	if s.Cert == nil {
		return nil
	}
	return s.Cert.Raw
}

// Verifier decodes and verifies signed objects and keeps a bounded cache of
// the verified objects that other objects carry (device certificates in
// every envelope, an invite in every join made with it), so a repeated one
// costs a map lookup instead of a signature check. It is safe for concurrent
// use. A nil *Verifier verifies without caching.
type Verifier struct {
	max   int
	mu    sync.RWMutex
	cache map[string]any // guarded by mu; signed bytes -> *DeviceCert or *Invite
}

// NewVerifier returns a Verifier caching up to size verified objects
// (a default of 16,384 when size <= 0).
func NewVerifier(size int) *Verifier {
	if size <= 0 {
		size = defaultCacheMax
	}
	return &Verifier{max: size, cache: make(map[string]any)}
}

// cached returns the verified object for raw, parsing and caching it on a
// miss. Only successes are cached.
func cached[T any](v *Verifier, raw []byte, parse func([]byte) (*T, error)) (*T, error) {
	if v == nil {
		return parse(raw)
	}
	v.mu.RLock()
	x, ok := v.cache[string(raw)].(*T)
	v.mu.RUnlock()
	if ok {
		return x, nil
	}
	x, err := parse(raw)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	if len(v.cache) >= v.max {
		for k := range v.cache { // evict an arbitrary entry: map order is random
			delete(v.cache, k)
			break
		}
	}
	v.cache[string(raw)] = x
	v.mu.Unlock()
	return x, nil
}

func (v *Verifier) cert(raw []byte) (*DeviceCert, error) { return cached(v, raw, ParseDeviceCert) }

func (v *Verifier) invite(raw []byte) (*Invite, error) { return cached(v, raw, ParseInvite) }

// verifySigner checks a signature made by author, directly or through the
// device certificate certRaw, which must be valid at time at. It returns the
// certificate (nil for a direct identity signature).
func (v *Verifier) verifySigner(kind string, author PublicKey, certRaw []byte, at int64, body, sig []byte) (*DeviceCert, error) {
	c, err := v.signerCert(kind, author, certRaw, at)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, verifySig(kind, author, body, sig)
	}
	return c, verifySig(kind, c.Device, body, sig)
}

// signerCert checks the device certificate an object carries (none: nil)
// against its author and time.
func (v *Verifier) signerCert(kind string, author PublicKey, certRaw []byte, at int64) (*DeviceCert, error) {
	if len(certRaw) == 0 {
		return nil, nil
	}
	c, err := v.cert(certRaw)
	if err != nil {
		return nil, err
	}
	if c.Identity != author {
		return nil, errf(CodeCertInvalid, "%s: certificate is for %s, author is %s", kind, c.Identity, author)
	}
	if err := c.ValidAt(at); err != nil {
		return nil, err
	}
	return c, nil
}
