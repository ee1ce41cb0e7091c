package policy

import (
	"slices"

	"github.com/fxamacker/cbor/v2"
)

// Limits on state events.
const (
	MaxEventSize   = 64 << 10 // signed bytes
	MaxParents     = 16       // parents one event may name
	MaxBehind      = 256      // how far behind the last folded event a live event may build (Log.CheckPublication)
	MaxCreators    = 16       // identities in a genesis creator set
	MaxRoleRank    = 1 << 30  // role ranks are 0..MaxRoleRank; creators rank above every role
	maxReasonLen   = 512      // ban reason bytes
	maxGrantedChan = 64       // channels in one storage grant
)

// State event kinds (EventBody.Kind).
const (
	EvGenesis         = "genesis"
	EvServerPolicy    = "server.policy"
	EvRoleDefine      = "role.define"
	EvRoleUpdate      = "role.update"
	EvRoleDelete      = "role.delete"
	EvRoleGrant       = "role.grant"
	EvRoleRevoke      = "role.revoke"
	EvChannelCreate   = "channel.create"
	EvChannelUpdate   = "channel.update"
	EvChannelOverride = "channel.override"
	EvBan             = "ban"
	EvUnban           = "unban"
	EvInviteRevoke    = "invite.revoke"
	EvJoin            = "join"
	EvLeave           = "leave"
	EvStorageGrant    = "storage.grant"
	EvStorageRevoke   = "storage.revoke"
	EvDeviceRevoke    = "device.revoke"
)

// EventBody is the signed body of a state event. Times are Unix milliseconds.
type EventBody struct {
	Server  ID              `cbor:"1,keyasint"`           // zero in the genesis event
	Kind    string          `cbor:"2,keyasint"`           // one of the Ev* kinds
	Parents []ID            `cbor:"3,keyasint,omitempty"` // strictly ascending; empty only in genesis
	Author  PublicKey       `cbor:"4,keyasint"`           // identity acting
	Cert    []byte          `cbor:"5,keyasint,omitempty"` // device certificate when a device signed
	Time    int64           `cbor:"6,keyasint"`           // not before any parent's time
	Content cbor.RawMessage `cbor:"7,keyasint"`           // the kind's content, a map
}

// Event is a verified state event: its signature, certificate and structure
// have been checked. Whether it is authorised is decided by resolution.
type Event struct {
	EventBody
	Raw  []byte      // signed wire bytes
	ID   ID          // Sum(Raw)
	Body Content     // decoded Content, of the type matching Kind
	cert *DeviceCert // nil when the identity signed directly
}

// Device returns the signing device key, or the zero key for identity-signed events.
func (e *Event) Device() PublicKey {
	if e.cert == nil {
		return PublicKey{}
	}
	return e.cert.Device
}

// Content is the kind-specific part of an event.
type Content interface {
	Kind() string
	validate() error
}

// ServerPolicy is the server-wide configuration, set at genesis and replaced
// whole by server.policy events.
type ServerPolicy struct {
	Name             string `cbor:"1,keyasint"`
	Everyone         Perm   `cbor:"2,keyasint"`           // base permissions of every member
	PublicHistory    bool   `cbor:"3,keyasint,omitempty"` // hubs may serve ciphertext to anyone
	MaxEnvelopeBytes uint32 `cbor:"4,keyasint,omitempty"` // 0: MaxEnvelopeSize
}

// Genesis creates a server. Its ID is the ServerID.
type Genesis struct {
	Creators []PublicKey  `cbor:"1,keyasint"` // immutable; strictly ascending; author among them
	Policy   ServerPolicy `cbor:"2,keyasint"`
	Nonce    []byte       `cbor:"3,keyasint,omitempty"` // makes otherwise identical servers distinct
}

// RoleDefine defines a role; the role's ID is the event's ID.
type RoleDefine struct {
	Name  string `cbor:"1,keyasint"`
	Rank  uint32 `cbor:"2,keyasint"`
	Perms Perm   `cbor:"3,keyasint"`
}

// RoleUpdate replaces a role's name, rank and permissions.
type RoleUpdate struct {
	Role  ID     `cbor:"1,keyasint"`
	Name  string `cbor:"2,keyasint"`
	Rank  uint32 `cbor:"3,keyasint"`
	Perms Perm   `cbor:"4,keyasint"`
}

// RoleDelete deletes a role, removing it from every member and override.
type RoleDelete struct {
	Role ID `cbor:"1,keyasint"`
}

// RoleGrant gives a role to a member.
type RoleGrant struct {
	Role   ID        `cbor:"1,keyasint"`
	Member PublicKey `cbor:"2,keyasint"`
}

// RoleRevoke takes a role from a member.
type RoleRevoke RoleGrant

// ChannelCreate creates a channel; the channel's ID is the event's ID.
type ChannelCreate struct {
	Name           string     `cbor:"1,keyasint"`
	Topic          string     `cbor:"2,keyasint,omitempty"`
	Durability     Durability `cbor:"3,keyasint"`
	RetentionMs    int64      `cbor:"4,keyasint,omitempty"` // keep envelopes this long; 0: forever
	RetentionBytes uint64     `cbor:"5,keyasint,omitempty"` // keep at most this many bytes; 0: no cap
}

// ChannelUpdate replaces a channel's settings; Archived closes it to posts.
type ChannelUpdate struct {
	Channel        ID         `cbor:"1,keyasint"`
	Name           string     `cbor:"2,keyasint"`
	Topic          string     `cbor:"3,keyasint,omitempty"`
	Durability     Durability `cbor:"4,keyasint"`
	RetentionMs    int64      `cbor:"5,keyasint,omitempty"`
	RetentionBytes uint64     `cbor:"6,keyasint,omitempty"`
	Archived       bool       `cbor:"7,keyasint,omitempty"`
}

// ChannelOverride sets the allow and deny sets of one role (the zero ID: the
// everyone base) in one channel. Allow and deny both zero clears it.
type ChannelOverride struct {
	Channel ID   `cbor:"1,keyasint"`
	Role    ID   `cbor:"2,keyasint"`
	Allow   Perm `cbor:"3,keyasint,omitempty"`
	Deny    Perm `cbor:"4,keyasint,omitempty"`
}

// Ban bans an identity (member or not) from the server.
type Ban struct {
	Member PublicKey `cbor:"1,keyasint"`
	Reason string    `cbor:"2,keyasint,omitempty"`
}

// Unban lifts a ban. The identity must join again to be a member.
type Unban struct {
	Member PublicKey `cbor:"1,keyasint"`
}

// InviteRevoke makes an invite unusable from this point of the log on.
type InviteRevoke struct {
	Invite ID `cbor:"1,keyasint"`
}

// Join makes the author a member through a signed invite.
type Join struct {
	Invite []byte `cbor:"1,keyasint"` // signed invite bytes
	invite *Invite
}

// Leave ends the author's membership.
type Leave struct{}

// StorageGrant makes a node eligible to store: for the listed channels
// (including strict ones), or for every non-strict channel when none is listed.
type StorageGrant struct {
	Node     PublicKey `cbor:"1,keyasint"`
	Channels []ID      `cbor:"2,keyasint,omitempty"` // strictly ascending
}

// StorageRevoke withdraws every grant of a node.
type StorageRevoke struct {
	Node PublicKey `cbor:"1,keyasint"`
}

// DeviceRevoke publishes an identity's signed device revocation to the server.
type DeviceRevoke struct {
	Revocation []byte `cbor:"1,keyasint"`
	revocation *DeviceRevocation
}

func (*Genesis) Kind() string         { return EvGenesis }
func (*ServerPolicy) Kind() string    { return EvServerPolicy }
func (*RoleDefine) Kind() string      { return EvRoleDefine }
func (*RoleUpdate) Kind() string      { return EvRoleUpdate }
func (*RoleDelete) Kind() string      { return EvRoleDelete }
func (*RoleGrant) Kind() string       { return EvRoleGrant }
func (*RoleRevoke) Kind() string      { return EvRoleRevoke }
func (*ChannelCreate) Kind() string   { return EvChannelCreate }
func (*ChannelUpdate) Kind() string   { return EvChannelUpdate }
func (*ChannelOverride) Kind() string { return EvChannelOverride }
func (*Ban) Kind() string             { return EvBan }
func (*Unban) Kind() string           { return EvUnban }
func (*InviteRevoke) Kind() string    { return EvInviteRevoke }
func (*Join) Kind() string            { return EvJoin }
func (*Leave) Kind() string           { return EvLeave }
func (*StorageGrant) Kind() string    { return EvStorageGrant }
func (*StorageRevoke) Kind() string   { return EvStorageRevoke }
func (*DeviceRevoke) Kind() string    { return EvDeviceRevoke }

func newContent(kind string) Content {
	switch kind {
	case EvGenesis:
		return &Genesis{}
	case EvServerPolicy:
		return &ServerPolicy{}
	case EvRoleDefine:
		return &RoleDefine{}
	case EvRoleUpdate:
		return &RoleUpdate{}
	case EvRoleDelete:
		return &RoleDelete{}
	case EvRoleGrant:
		return &RoleGrant{}
	case EvRoleRevoke:
		return &RoleRevoke{}
	case EvChannelCreate:
		return &ChannelCreate{}
	case EvChannelUpdate:
		return &ChannelUpdate{}
	case EvChannelOverride:
		return &ChannelOverride{}
	case EvBan:
		return &Ban{}
	case EvUnban:
		return &Unban{}
	case EvInviteRevoke:
		return &InviteRevoke{}
	case EvJoin:
		return &Join{}
	case EvLeave:
		return &Leave{}
	case EvStorageGrant:
		return &StorageGrant{}
	case EvStorageRevoke:
		return &StorageRevoke{}
	case EvDeviceRevoke:
		return &DeviceRevoke{}
	}
	return nil
}

func checkName(what, s string, limit int, required bool) error {
	if required && s == "" {
		return errf(CodeMalformed, "%s is empty", what)
	}
	if len(s) > limit {
		return errf(CodeTooLarge, "%s is %d bytes, limit %d", what, len(s), limit)
	}
	return nil
}

func ascendingIDs(what string, ids []ID) error {
	for i := 1; i < len(ids); i++ {
		if ids[i-1].Compare(ids[i]) >= 0 {
			return errf(CodeNonCanonical, "%s must be strictly ascending", what)
		}
	}
	return nil
}

func (g *Genesis) validate() error {
	if len(g.Creators) == 0 || len(g.Creators) > MaxCreators {
		return errf(CodeMalformed, "genesis names %d creators, want 1..%d", len(g.Creators), MaxCreators)
	}
	for i := 1; i < len(g.Creators); i++ {
		if g.Creators[i-1].Compare(g.Creators[i]) >= 0 {
			return errf(CodeNonCanonical, "creators must be strictly ascending")
		}
	}
	if len(g.Nonce) > 32 {
		return errf(CodeTooLarge, "genesis nonce is %d bytes, limit 32", len(g.Nonce))
	}
	return g.Policy.validate()
}

func (p *ServerPolicy) validate() error {
	if err := checkName("server name", p.Name, maxNameLen, true); err != nil {
		return err
	}
	if p.MaxEnvelopeBytes > MaxEnvelopeSize {
		return errf(CodeTooLarge, "max envelope bytes %d above the protocol limit %d", p.MaxEnvelopeBytes, MaxEnvelopeSize)
	}
	return p.Everyone.validate()
}

func (r *RoleDefine) validate() error {
	if err := checkName("role name", r.Name, maxNameLen, true); err != nil {
		return err
	}
	if r.Rank == 0 || r.Rank > MaxRoleRank {
		return errf(CodeMalformed, "role rank %d outside 1..%d", r.Rank, MaxRoleRank)
	}
	return r.Perms.validate()
}

func (r *RoleUpdate) validate() error {
	d := RoleDefine{Name: r.Name, Rank: r.Rank, Perms: r.Perms}
	return d.validate()
}

func (*RoleDelete) validate() error { return nil }
func (*RoleGrant) validate() error  { return nil }
func (*RoleRevoke) validate() error { return nil }

func validateChannel(name, topic string, d Durability, ms int64) error {
	if err := checkName("channel name", name, maxNameLen, true); err != nil {
		return err
	}
	if err := checkName("channel topic", topic, maxTopicLen, false); err != nil {
		return err
	}
	if ms < 0 {
		return errf(CodeMalformed, "negative retention %d ms", ms)
	}
	return d.validate()
}

func (c *ChannelCreate) validate() error {
	return validateChannel(c.Name, c.Topic, c.Durability, c.RetentionMs)
}

func (c *ChannelUpdate) validate() error {
	return validateChannel(c.Name, c.Topic, c.Durability, c.RetentionMs)
}

func (o *ChannelOverride) validate() error {
	if o.Allow&o.Deny != 0 {
		return errf(CodeMalformed, "override both allows and denies %s", o.Allow&o.Deny)
	}
	if err := o.Allow.validate(); err != nil {
		return err
	}
	return o.Deny.validate()
}

func (b *Ban) validate() error { return checkName("ban reason", b.Reason, maxReasonLen, false) }

func (*Unban) validate() error        { return nil }
func (*InviteRevoke) validate() error { return nil }
func (*Leave) validate() error        { return nil }
func (*StorageRevoke) validate() error {
	return nil
}

// validate is a no-op: the carried invite is verified by Verifier.Event,
// through the Verifier's cache.
func (j *Join) validate() error { return nil }

func (g *StorageGrant) validate() error {
	if len(g.Channels) > maxGrantedChan {
		return errf(CodeTooLarge, "storage grant names %d channels, limit %d", len(g.Channels), maxGrantedChan)
	}
	return ascendingIDs("granted channels", g.Channels)
}

func (d *DeviceRevoke) validate() error {
	r, err := ParseDeviceRevocation(d.Revocation)
	if err != nil {
		return err
	}
	d.revocation = r
	return nil
}

// NewEvent builds and signs a state event. For a genesis event, server must
// be the zero ID and parents empty.
func NewEvent(s Signer, server ID, parents []ID, t int64, c Content) (*Event, error) {
	body := EventBody{Server: server, Kind: c.Kind(), Parents: sortIDs(parents), Author: s.Identity, Cert: s.certRaw(), Time: t, Content: marshal(c)}
	raw := seal(KindEvent, body, s.Key)
	return ParseEvent(raw) // one code path: what we sign is what we accept
}

// ParseEvent decodes and verifies a state event with no certificate cache.
func ParseEvent(b []byte) (*Event, error) { return (*Verifier)(nil).Event(b) }

// Event decodes and verifies a state event: limits, canonical form, kind and
// content structure, parents, and the author's signature (through a device
// certificate valid at the event's time, when one is carried).
func (v *Verifier) Event(b []byte) (*Event, error) { return v.event(b, true) }

// StoredEvent decodes a state event that was verified by Event when it was
// stored, by the same node: every check Event makes except the event's own
// signature, the one check that costs (an Ed25519 verification per event;
// its certificate's and invite's signatures are still checked, and cached).
// It is for reading back a node's own store, which is as trusted as the node
// key that guards it; anything that arrives from the network goes through
// Event.
func (v *Verifier) StoredEvent(b []byte) (*Event, error) { return v.event(b, false) }

func (v *Verifier) event(b []byte, verify bool) (*Event, error) {
	e := &Event{Raw: b}
	body, sig, err := decodeSigned(KindEvent, b, MaxEventSize, &e.EventBody)
	if err != nil {
		return nil, err
	}
	c := newContent(e.Kind)
	if c == nil {
		return nil, errf(CodeMalformed, "unknown event kind %q", e.Kind)
	}
	if err := decodeCanonical(e.Kind, e.Content, c); err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	if j, ok := c.(*Join); ok {
		if j.invite, err = v.invite(j.Invite); err != nil {
			return nil, err
		}
	}
	e.Body = c
	if len(e.Parents) > MaxParents {
		return nil, errf(CodeTooLarge, "event names %d parents, limit %d", len(e.Parents), MaxParents)
	}
	if err := ascendingIDs("parents", e.Parents); err != nil {
		return nil, err
	}
	if (e.Kind == EvGenesis) != (len(e.Parents) == 0) {
		return nil, errf(CodeMalformed, "only a genesis event has no parents")
	}
	if e.Kind == EvGenesis && !e.Server.IsZero() {
		return nil, errf(CodeMalformed, "genesis event names a server")
	}
	if verify {
		e.cert, err = v.verifySigner(KindEvent, e.Author, e.Cert, e.Time, body, sig)
	} else {
		e.cert, err = v.signerCert(KindEvent, e.Author, e.Cert, e.Time)
	}
	if err != nil {
		return nil, err
	}
	e.ID = Sum(b)
	return e, nil
}

func sortIDs(ids []ID) []ID {
	if len(ids) == 0 {
		return nil
	}
	out := append([]ID(nil), ids...)
	slices.SortFunc(out, ID.Compare)
	// drop duplicates so callers may pass heads with repeats
	w := 1
	for i := 1; i < len(out); i++ {
		if out[i] != out[w-1] {
			out[w] = out[i]
			w++
		}
	}
	return out[:w]
}
