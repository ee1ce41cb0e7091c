package policy

import (
	"maps"
	"slices"
)

// The canonical form of a resolved state: every collection a list sorted by
// its key, so equal states have equal bytes. Test vectors pin these bytes.
type stateSnapshot struct {
	Server         ID            `cbor:"1,keyasint"`
	Creators       []PublicKey   `cbor:"2,keyasint"`
	Policy         ServerPolicy  `cbor:"3,keyasint"`
	Roles          []snapRole    `cbor:"4,keyasint,omitempty"`
	Channels       []snapChannel `cbor:"5,keyasint,omitempty"`
	Members        []snapMember  `cbor:"6,keyasint,omitempty"`
	Banned         []PublicKey   `cbor:"7,keyasint,omitempty"`
	Grants         []snapGrant   `cbor:"8,keyasint,omitempty"`
	RevokedDevices []PublicKey   `cbor:"9,keyasint,omitempty"`
	InviteUses     []snapUse     `cbor:"10,keyasint,omitempty"`
	RevokedInvites []ID          `cbor:"11,keyasint,omitempty"`
}

type snapRole struct {
	_     struct{} `cbor:",toarray"`
	ID    ID
	Name  string
	Rank  uint32
	Perms Perm
}

type snapChannel struct {
	_              struct{} `cbor:",toarray"`
	ID             ID
	Name           string
	Topic          string
	Durability     Durability
	RetentionMs    int64
	RetentionBytes uint64
	Archived       bool
	Overrides      []snapOverride
}

type snapOverride struct {
	_     struct{} `cbor:",toarray"`
	Role  ID
	Allow Perm
	Deny  Perm
}

type snapMember struct {
	_     struct{} `cbor:",toarray"`
	Key   PublicKey
	Roles []ID
}

type snapGrant struct {
	_        struct{} `cbor:",toarray"`
	Node     PublicKey
	Server   bool
	Channels []ID
}

type snapUse struct {
	_      struct{} `cbor:",toarray"`
	Invite ID
	Uses   uint32
}

// Canonical returns the state's canonical CBOR bytes.
func (s *State) Canonical() []byte {
	snap := stateSnapshot{
		Server:         s.id,
		Creators:       slices.SortedFunc(maps.Keys(s.creators), PublicKey.Compare),
		Policy:         s.policy,
		Banned:         slices.SortedFunc(maps.Keys(s.banned), PublicKey.Compare),
		RevokedDevices: slices.SortedFunc(maps.Keys(s.revokedDevices), PublicKey.Compare),
		RevokedInvites: slices.SortedFunc(maps.Keys(s.revokedInvites), ID.Compare),
	}
	for _, id := range slices.SortedFunc(maps.Keys(s.roles), ID.Compare) {
		r := s.roles[id]
		snap.Roles = append(snap.Roles, snapRole{ID: id, Name: r.Name, Rank: r.Rank, Perms: r.Perms})
	}
	for _, id := range slices.SortedFunc(maps.Keys(s.channels), ID.Compare) {
		c := s.channels[id]
		sc := snapChannel{ID: id, Name: c.Name, Topic: c.Topic, Durability: c.Durability,
			RetentionMs: c.RetentionMs, RetentionBytes: c.RetentionBytes, Archived: c.Archived, Overrides: []snapOverride{}}
		for _, rid := range slices.SortedFunc(maps.Keys(c.overrides), ID.Compare) {
			o := c.overrides[rid]
			sc.Overrides = append(sc.Overrides, snapOverride{Role: rid, Allow: o.allow, Deny: o.deny})
		}
		snap.Channels = append(snap.Channels, sc)
	}
	for _, k := range s.Members() {
		snap.Members = append(snap.Members, snapMember{Key: k, Roles: nonNil(s.MemberRoles(k))})
	}
	for _, k := range slices.SortedFunc(maps.Keys(s.grants), PublicKey.Compare) {
		g := s.grants[k]
		snap.Grants = append(snap.Grants, snapGrant{Node: k, Server: g.server, Channels: nonNil(slices.SortedFunc(maps.Keys(g.channels), ID.Compare))})
	}
	for _, id := range slices.SortedFunc(maps.Keys(s.inviteUses), ID.Compare) {
		snap.InviteUses = append(snap.InviteUses, snapUse{Invite: id, Uses: s.inviteUses[id]})
	}
	return marshal(snap)
}

// Digest returns the content ID of the canonical state.
func (s *State) Digest() ID { return Sum(s.Canonical()) }

func nonNil(ids []ID) []ID {
	if ids == nil {
		return []ID{}
	}
	return ids
}
