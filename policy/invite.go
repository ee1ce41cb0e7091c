package policy

// Limits on invites.
const (
	MaxInviteSize  = 4096
	MaxInviteUses  = 1_000_000
	maxInviteRoles = 16
	maxHints       = 8   // entries in each hint list
	maxHintLen     = 256 // bytes per hint
	inviteNonceLen = 16
)

// InviteBody is what an inviter signs. It works while the inviter is offline:
// everything a newcomer needs to find the server is in the hints, and every
// node checks the invite against the state log when the join arrives.
type InviteBody struct {
	Server  ID        `cbor:"1,keyasint"`
	Author  PublicKey `cbor:"2,keyasint"`           // inviter identity
	Cert    []byte    `cbor:"3,keyasint,omitempty"` // inviter device certificate, if a device signed
	Issued  int64     `cbor:"4,keyasint"`
	Expires int64     `cbor:"5,keyasint"`
	Uses    uint32    `cbor:"6,keyasint"`           // joins it admits, 1..MaxInviteUses
	Roles   []ID      `cbor:"7,keyasint,omitempty"` // granted on join; strictly ascending
	Hubs    []string  `cbor:"8,keyasint,omitempty"` // hub addresses (URLs or multiaddrs)
	Relays  []string  `cbor:"9,keyasint,omitempty"` // relay addresses
	DHTKeys [][]byte  `cbor:"10,keyasint,omitempty"`
	Nonce   []byte    `cbor:"11,keyasint"` // 16 random bytes: each invite is distinct
}

// Invite is a verified invite: signature and structure checked. Whether it
// admits a given joiner is decided against a state (State.CheckInvite).
type Invite struct {
	InviteBody
	Raw  []byte
	ID   ID
	cert *DeviceCert
}

// NewInvite signs an invite. body.Author and body.Cert are set from s, and
// body.Nonce must hold 16 random bytes.
func NewInvite(s Signer, body InviteBody) (*Invite, error) {
	body.Author, body.Cert = s.Identity, s.certRaw()
	return ParseInvite(seal(KindInvite, body, s.Key))
}

// ParseInvite decodes and verifies a signed invite.
func ParseInvite(b []byte) (*Invite, error) {
	inv := &Invite{Raw: b}
	body, sig, err := decodeSigned(KindInvite, b, MaxInviteSize, &inv.InviteBody)
	if err != nil {
		return nil, err
	}
	if err := inv.validate(); err != nil {
		return nil, err
	}
	if inv.cert, err = (*Verifier)(nil).verifySigner(KindInvite, inv.Author, inv.Cert, inv.Issued, body, sig); err != nil {
		return nil, errf(CodeInvalidInvite, "%v", err)
	}
	inv.ID = Sum(b)
	return inv, nil
}

func (b *InviteBody) validate() error {
	if b.Uses == 0 || b.Uses > MaxInviteUses {
		return errf(CodeInvalidInvite, "uses %d outside 1..%d", b.Uses, MaxInviteUses)
	}
	if b.Expires <= b.Issued {
		return errf(CodeInvalidInvite, "expires at %d, not after issue at %d", b.Expires, b.Issued)
	}
	if len(b.Nonce) != inviteNonceLen {
		return errf(CodeInvalidInvite, "nonce is %d bytes, want %d", len(b.Nonce), inviteNonceLen)
	}
	if len(b.Roles) > maxInviteRoles {
		return errf(CodeTooLarge, "invite grants %d roles, limit %d", len(b.Roles), maxInviteRoles)
	}
	if err := ascendingIDs("invite roles", b.Roles); err != nil {
		return err
	}
	if len(b.DHTKeys) > maxHints {
		return errf(CodeTooLarge, "invite carries %d dht keys, limit %d", len(b.DHTKeys), maxHints)
	}
	for _, k := range b.DHTKeys {
		if len(k) > maxHintLen {
			return errf(CodeTooLarge, "dht key is %d bytes, limit %d", len(k), maxHintLen)
		}
	}
	for _, list := range [][]string{b.Hubs, b.Relays} {
		if len(list) > maxHints {
			return errf(CodeTooLarge, "invite carries %d addresses in one list, limit %d", len(list), maxHints)
		}
		for _, h := range list {
			if err := checkName("bootstrap hint", h, maxHintLen, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// Device returns the inviter's signing device, or the zero key.
func (inv *Invite) Device() PublicKey {
	if inv.cert == nil {
		return PublicKey{}
	}
	return inv.cert.Device
}
