package policy

// Limits on authentication proofs.
const (
	MaxChallengeSize = 64 // bytes of a hub's challenge
	maxAuthSize      = MaxCertSize + 256
)

// AuthBody answers a hub's challenge: the device of an identity proves it
// holds its key to the hub named by Hub, so the hub can serve it what only
// members may read. The hub chooses Challenge; Time is the device's clock.
type AuthBody struct {
	Hub       PublicKey `cbor:"1,keyasint"` // node key of the hub being answered
	Challenge []byte    `cbor:"2,keyasint"` // the hub's challenge, 1..MaxChallengeSize bytes
	Author    PublicKey `cbor:"3,keyasint"` // identity
	Cert      []byte    `cbor:"4,keyasint"` // device certificate (required)
	Time      int64     `cbor:"5,keyasint"` // Unix ms
}

// Auth is a verified authentication proof.
type Auth struct {
	AuthBody
	Raw  []byte
	cert *DeviceCert
}

// Device returns the device key that signed the proof.
func (a *Auth) Device() PublicKey { return a.cert.Device }

// DeviceCert returns the verified certificate of that device.
func (a *Auth) DeviceCert() *DeviceCert { return a.cert }

// NewAuth signs a proof with a device signer.
func NewAuth(s Signer, body AuthBody) (*Auth, error) {
	if s.Cert == nil {
		return nil, errf(CodeCertInvalid, "auth proofs are signed by a device: signer has no certificate")
	}
	body.Author, body.Cert = s.Identity, s.Cert.Raw
	return ParseAuth(seal(KindAuth, body, s.Key))
}

// ParseAuth decodes and verifies a proof: limits, canonical form, the device
// certificate (valid at the proof's time) and the signature. Whether it
// answers this hub's challenge, and is fresh, is the hub's check; what the
// device may read is State.MayRead's decision.
func ParseAuth(b []byte) (*Auth, error) {
	a := &Auth{Raw: b}
	body, sig, err := decodeSigned(KindAuth, b, maxAuthSize, &a.AuthBody)
	if err != nil {
		return nil, err
	}
	if n := len(a.Challenge); n == 0 || n > MaxChallengeSize {
		return nil, errf(CodeMalformed, "auth challenge is %d bytes, want 1..%d", n, MaxChallengeSize)
	}
	if len(a.Cert) == 0 {
		return nil, errf(CodeCertInvalid, "auth proof carries no device certificate")
	}
	if a.cert, err = (*Verifier)(nil).verifySigner(KindAuth, a.Author, a.Cert, a.Time, body, sig); err != nil {
		return nil, err
	}
	return a, nil
}
