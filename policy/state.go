package policy

import (
	"maps"
	"slices"
)

// Limits on the size of a server's state.
const (
	MaxRoles     = 250 // defined roles
	MaxChannels  = 500 // channels, archived included
	MaxOverrides = 64  // overrides in one channel
	MaxGrants    = 256 // storage-granted nodes
)

// Ranks outside the role range.
const (
	RankNone    int64 = -1      // not a member, or banned
	RankCreator int64 = 1 << 40 // every creator; above every role
	rankMember  int64 = 0       // a member with no role; role ranks lie in 1..MaxRoleRank
)

// Role is a defined role.
type Role struct {
	ID    ID
	Name  string
	Rank  uint32
	Perms Perm
}

// Channel is a channel and its settings.
type Channel struct {
	ID             ID
	Name           string
	Topic          string
	Durability     Durability
	RetentionMs    int64
	RetentionBytes uint64
	Archived       bool
	overrides      map[ID]override // role ID (zero: everyone) -> override
}

type override struct{ allow, deny Perm }

// member is stored by value; roles is sorted and never modified in place
// (copy on write), so copying a member map copies no role sets.
type member struct {
	roles []ID
	via   ID // join event, zero for creators
}

func (m member) has(role ID) bool {
	_, ok := slices.BinarySearchFunc(m.roles, role, ID.Compare)
	return ok
}

// with returns m's roles with role added (give) or removed, as a new slice.
func (m member) with(role ID, give bool) []ID {
	i, ok := slices.BinarySearchFunc(m.roles, role, ID.Compare)
	switch {
	case give && !ok:
		return slices.Insert(slices.Clone(m.roles), i, role)
	case !give && ok:
		return slices.Delete(slices.Clone(m.roles), i, i+1)
	}
	return m.roles
}

type grant struct {
	server   bool            // every non-strict channel
	channels map[ID]struct{} // these channels, strict included
}

// State is a server's resolved state: the result of folding its state log.
// A State is read-only for callers; the Log that owns it updates it in place
// as events are applied, so it must not be read concurrently with Log.Add.
type State struct {
	id             ID
	creators       map[PublicKey]struct{}
	policy         ServerPolicy
	roles          map[ID]*Role
	channels       map[ID]*Channel
	members        map[PublicKey]member
	banned         map[PublicKey]ID // identity -> ban event
	grants         map[PublicKey]*grant
	revokedDevices map[PublicKey]PublicKey // device -> identity
	inviteUses     map[ID]uint32
	revokedInvites map[ID]struct{}
}

func newState(g *Event) *State {
	gen := g.Body.(*Genesis)
	s := &State{
		id:             g.ID,
		creators:       make(map[PublicKey]struct{}),
		policy:         gen.Policy,
		roles:          make(map[ID]*Role),
		channels:       make(map[ID]*Channel),
		members:        make(map[PublicKey]member),
		banned:         make(map[PublicKey]ID),
		grants:         make(map[PublicKey]*grant),
		revokedDevices: make(map[PublicKey]PublicKey),
		inviteUses:     make(map[ID]uint32),
		revokedInvites: make(map[ID]struct{}),
	}
	for _, c := range gen.Creators {
		s.creators[c] = struct{}{}
		s.members[c] = member{}
	}
	return s
}

// clone returns a deep copy of the state (used for fold checkpoints).
func (s *State) clone() *State {
	c := *s
	c.creators = maps.Clone(s.creators)
	c.roles = make(map[ID]*Role, len(s.roles))
	for id, r := range s.roles {
		rr := *r
		c.roles[id] = &rr
	}
	c.channels = make(map[ID]*Channel, len(s.channels))
	for id, ch := range s.channels {
		cc := *ch
		cc.overrides = maps.Clone(ch.overrides)
		c.channels[id] = &cc
	}
	c.members = maps.Clone(s.members)
	c.banned = maps.Clone(s.banned)
	c.grants = make(map[PublicKey]*grant, len(s.grants))
	for k, g := range s.grants {
		c.grants[k] = &grant{server: g.server, channels: maps.Clone(g.channels)}
	}
	c.revokedDevices = maps.Clone(s.revokedDevices)
	c.inviteUses = maps.Clone(s.inviteUses)
	c.revokedInvites = maps.Clone(s.revokedInvites)
	return &c
}

// ServerID returns the ID of the server's genesis event.
func (s *State) ServerID() ID { return s.id }

// Policy returns the server policy in force.
func (s *State) Policy() ServerPolicy { return s.policy }

// IsCreator reports whether k is in the genesis creator set.
func (s *State) IsCreator(k PublicKey) bool { _, ok := s.creators[k]; return ok }

// IsMember reports whether k is a current member (creators always are).
func (s *State) IsMember(k PublicKey) bool { _, ok := s.members[k]; return ok }

// IsBanned reports whether k is banned.
func (s *State) IsBanned(k PublicKey) bool { _, ok := s.banned[k]; return ok }

// IsDeviceRevoked reports whether a device key has been revoked.
func (s *State) IsDeviceRevoked(d PublicKey) bool { _, ok := s.revokedDevices[d]; return ok }

// Role returns a role by ID.
func (s *State) Role(id ID) (Role, bool) {
	r, ok := s.roles[id]
	if !ok {
		return Role{}, false
	}
	return *r, true
}

// Channel returns a channel by ID (archived channels included).
func (s *State) Channel(id ID) (Channel, bool) {
	c, ok := s.channels[id]
	if !ok {
		return Channel{}, false
	}
	out := *c
	out.overrides = nil
	return out, true
}

// Channels returns every channel, ordered by ID.
func (s *State) Channels() []Channel {
	out := make([]Channel, 0, len(s.channels))
	for _, id := range slices.SortedFunc(maps.Keys(s.channels), ID.Compare) {
		c, _ := s.Channel(id)
		out = append(out, c)
	}
	return out
}

// Roles returns every role, ordered by ID.
func (s *State) Roles() []Role {
	out := make([]Role, 0, len(s.roles))
	for _, id := range slices.SortedFunc(maps.Keys(s.roles), ID.Compare) {
		r, _ := s.Role(id)
		out = append(out, r)
	}
	return out
}

// Members returns every member, ordered by key.
func (s *State) Members() []PublicKey {
	return slices.SortedFunc(maps.Keys(s.members), PublicKey.Compare)
}

// Banned returns the banned identities, each with its ban event (a copy).
func (s *State) Banned() map[PublicKey]ID { return maps.Clone(s.banned) }

// MemberRoles returns a member's role IDs, ordered.
func (s *State) MemberRoles(k PublicKey) []ID {
	return slices.Clone(s.members[k].roles)
}

// Rank returns k's rank: RankCreator for creators, the highest rank of its
// roles for members (0 with none), RankNone for non-members and the banned.
func (s *State) Rank(k PublicKey) int64 {
	if _, ok := s.creators[k]; ok {
		return RankCreator
	}
	m, ok := s.members[k]
	if !ok {
		return RankNone
	}
	r := rankMember
	for _, id := range m.roles {
		if rr := int64(s.roles[id].Rank); rr > r {
			r = rr
		}
	}
	return r
}

// Permissions returns k's permissions server-wide (channel zero) or in a
// channel: the everyone base and k's roles, then the channel's everyone
// override, then the union of its role overrides (deny, then allow).
// Creators hold every permission; non-members none.
func (s *State) Permissions(k PublicKey, channel ID) Perm {
	if _, ok := s.creators[k]; ok {
		return PermAll
	}
	m, ok := s.members[k]
	if !ok {
		return 0
	}
	p := s.policy.Everyone
	for _, id := range m.roles {
		p |= s.roles[id].Perms
	}
	if channel.IsZero() {
		return p
	}
	c, ok := s.channels[channel]
	if !ok {
		return 0
	}
	if o, ok := c.overrides[ID{}]; ok {
		p = p&^o.deny | o.allow
	}
	var allow, deny Perm
	for _, id := range m.roles {
		if o, ok := c.overrides[id]; ok {
			allow |= o.allow
			deny |= o.deny
		}
	}
	return p&^deny | allow
}

// Readers returns the identities that may read a channel (members holding
// PermRead there), ordered: the recipients of the channel's next key epoch.
func (s *State) Readers(channel ID) []PublicKey {
	if _, ok := s.channels[channel]; !ok {
		return nil
	}
	var out []PublicKey
	for k := range s.members {
		if s.Permissions(k, channel).Has(PermRead) {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, PublicKey.Compare)
	return out
}

// InviteUses returns how many joins an invite has admitted.
func (s *State) InviteUses(id ID) uint32 { return s.inviteUses[id] }
