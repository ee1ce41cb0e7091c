package policy

// apply authorises e against the state so far and, only if every check
// passes, applies it. A rejected event leaves the state untouched.
// For a join, history says what the state cannot: how many joins through
// the same invite precede it causally (Log.usedBefore).
func (s *State) apply(e *Event, used uint32) error {
	if e.cert != nil && s.IsDeviceRevoked(e.cert.Device) {
		return errf(CodeDeviceRevoked, "device %s was revoked", e.cert.Device)
	}
	if j, ok := e.Body.(*Join); ok {
		return s.applyJoin(e, j, used)
	}
	if s.IsBanned(e.Author) {
		return errf(CodeBanned, "author %s is banned", e.Author)
	}
	if !s.IsMember(e.Author) {
		return errf(CodeNotMember, "author %s is not a member", e.Author)
	}
	a := actor{key: e.Author, rank: s.Rank(e.Author), perms: s.Permissions(e.Author, ID{})}
	switch c := e.Body.(type) {
	case *ServerPolicy:
		return s.applyPolicy(a, c)
	case *RoleDefine:
		return s.applyRoleDefine(a, e.ID, c)
	case *RoleUpdate:
		return s.applyRoleUpdate(a, c)
	case *RoleDelete:
		return s.applyRoleDelete(a, c)
	case *RoleGrant:
		return s.applyRoleGrant(a, c, true)
	case *RoleRevoke:
		return s.applyRoleGrant(a, (*RoleGrant)(c), false)
	case *ChannelCreate:
		return s.applyChannelCreate(a, e.ID, c)
	case *ChannelUpdate:
		return s.applyChannelUpdate(a, c)
	case *ChannelOverride:
		return s.applyOverride(a, c)
	case *Ban:
		return s.applyBan(a, e.ID, c)
	case *Unban:
		return s.applyUnban(a, c)
	case *InviteRevoke:
		return s.applyInviteRevoke(a, c)
	case *Leave:
		return s.applyLeave(a)
	case *StorageGrant:
		return s.applyStorageGrant(a, c)
	case *StorageRevoke:
		return s.applyStorageRevoke(a, c)
	case *DeviceRevoke:
		return s.applyDeviceRevoke(a, c)
	}
	return errf(CodeMalformed, "event kind %q cannot be applied here", e.Kind)
}

// actor is the author of an event as the state sees it when authorising it.
type actor struct {
	key   PublicKey
	rank  int64
	perms Perm // server-wide
}

func (a actor) need(p Perm) error {
	if !a.perms.Has(p) {
		return errf(CodeForbidden, "%s lacks %s", a.key, p&^a.perms)
	}
	return nil
}

// outranks requires the actor's rank to be strictly above r.
func (a actor) outranks(what string, r int64) error {
	if a.rank <= r {
		return errf(CodeRank, "%s (rank %d) does not outrank %s (rank %d)", a.key, a.rank, what, r)
	}
	return nil
}

// mayGive requires p to be a subset of the actor's own permissions: nobody
// hands out a permission they do not hold.
func (a actor) mayGive(p Perm) error {
	if !a.perms.Has(p) {
		return errf(CodeForbidden, "%s cannot give %s, which it lacks", a.key, p&^a.perms)
	}
	return nil
}

func (s *State) applyPolicy(a actor, c *ServerPolicy) error {
	if err := a.need(PermManageServer); err != nil {
		return err
	}
	if err := a.mayGive(c.Everyone); err != nil {
		return err
	}
	s.policy = *c
	return nil
}

func (s *State) applyRoleDefine(a actor, id ID, c *RoleDefine) error {
	if err := a.need(PermManageRoles); err != nil {
		return err
	}
	if err := a.outranks("new role", int64(c.Rank)); err != nil {
		return err
	}
	if err := a.mayGive(c.Perms); err != nil {
		return err
	}
	if len(s.roles) >= MaxRoles {
		return errf(CodeTooLarge, "server has %d roles, limit %d", len(s.roles), MaxRoles)
	}
	s.roles[id] = &Role{ID: id, Name: c.Name, Rank: c.Rank, Perms: c.Perms}
	return nil
}

func (s *State) role(a actor, id ID) (*Role, error) {
	r, ok := s.roles[id]
	if !ok {
		return nil, errf(CodeUnknownRole, "no role %s", id)
	}
	if err := a.outranks("role "+r.Name, int64(r.Rank)); err != nil {
		return nil, err
	}
	return r, nil
}

func (s *State) applyRoleUpdate(a actor, c *RoleUpdate) error {
	if err := a.need(PermManageRoles); err != nil {
		return err
	}
	r, err := s.role(a, c.Role)
	if err != nil {
		return err
	}
	if err := a.outranks("new rank", int64(c.Rank)); err != nil {
		return err
	}
	if err := a.mayGive(c.Perms); err != nil {
		return err
	}
	r.Name, r.Rank, r.Perms = c.Name, c.Rank, c.Perms
	return nil
}

func (s *State) applyRoleDelete(a actor, c *RoleDelete) error {
	if err := a.need(PermManageRoles); err != nil {
		return err
	}
	if _, err := s.role(a, c.Role); err != nil {
		return err
	}
	delete(s.roles, c.Role)
	for k, m := range s.members {
		if m.has(c.Role) {
			m.roles = m.with(c.Role, false)
			s.members[k] = m
		}
	}
	for _, ch := range s.channels {
		delete(ch.overrides, c.Role)
	}
	return nil
}

func (s *State) applyRoleGrant(a actor, c *RoleGrant, give bool) error {
	if err := a.need(PermManageRoles); err != nil {
		return err
	}
	if _, err := s.role(a, c.Role); err != nil {
		return err
	}
	m, ok := s.members[c.Member]
	if !ok {
		return errf(CodeNotMember, "target %s is not a member", c.Member)
	}
	if c.Member != a.key {
		if err := a.outranks("target "+c.Member.String(), s.Rank(c.Member)); err != nil {
			return err
		}
	}
	if m.has(c.Role) == give {
		return errf(CodeConflict, "member %s already has (or lacks) role %s", c.Member, c.Role)
	}
	m.roles = m.with(c.Role, give)
	s.members[c.Member] = m
	return nil
}

func (s *State) applyChannelCreate(a actor, id ID, c *ChannelCreate) error {
	if err := a.need(PermManageChannels); err != nil {
		return err
	}
	if len(s.channels) >= MaxChannels {
		return errf(CodeTooLarge, "server has %d channels, limit %d", len(s.channels), MaxChannels)
	}
	s.channels[id] = &Channel{ID: id, Name: c.Name, Topic: c.Topic, Durability: c.Durability,
		RetentionMs: c.RetentionMs, RetentionBytes: c.RetentionBytes, overrides: map[ID]override{}}
	return nil
}

func (s *State) applyChannelUpdate(a actor, c *ChannelUpdate) error {
	if err := a.need(PermManageChannels); err != nil {
		return err
	}
	ch, ok := s.channels[c.Channel]
	if !ok {
		return errf(CodeUnknownChannel, "no channel %s", c.Channel)
	}
	ch.Name, ch.Topic, ch.Durability = c.Name, c.Topic, c.Durability
	ch.RetentionMs, ch.RetentionBytes, ch.Archived = c.RetentionMs, c.RetentionBytes, c.Archived
	return nil
}

func (s *State) applyOverride(a actor, c *ChannelOverride) error {
	if err := a.need(PermManageChannels); err != nil {
		return err
	}
	ch, ok := s.channels[c.Channel]
	if !ok {
		return errf(CodeUnknownChannel, "no channel %s", c.Channel)
	}
	if !c.Role.IsZero() {
		if _, err := s.role(a, c.Role); err != nil {
			return err
		}
	}
	if err := a.mayGive(c.Allow | c.Deny); err != nil {
		return err
	}
	if c.Allow == 0 && c.Deny == 0 {
		delete(ch.overrides, c.Role)
		return nil
	}
	if _, exists := ch.overrides[c.Role]; !exists && len(ch.overrides) >= MaxOverrides {
		return errf(CodeTooLarge, "channel has %d overrides, limit %d", len(ch.overrides), MaxOverrides)
	}
	ch.overrides[c.Role] = override{allow: c.Allow, deny: c.Deny}
	return nil
}

func (s *State) applyBan(a actor, id ID, c *Ban) error {
	if err := a.need(PermBan); err != nil {
		return err
	}
	if s.IsCreator(c.Member) {
		return errf(CodeRank, "creator %s cannot be banned", c.Member)
	}
	if err := a.outranks("target "+c.Member.String(), s.Rank(c.Member)); err != nil {
		return err
	}
	if s.IsBanned(c.Member) {
		return errf(CodeConflict, "%s is already banned", c.Member)
	}
	s.banned[c.Member] = id
	delete(s.members, c.Member)
	return nil
}

func (s *State) applyUnban(a actor, c *Unban) error {
	if err := a.need(PermBan); err != nil {
		return err
	}
	if !s.IsBanned(c.Member) {
		return errf(CodeConflict, "%s is not banned", c.Member)
	}
	delete(s.banned, c.Member)
	return nil
}

func (s *State) applyInviteRevoke(a actor, c *InviteRevoke) error {
	if err := a.need(PermInvite); err != nil {
		return err
	}
	if _, ok := s.revokedInvites[c.Invite]; ok {
		return errf(CodeConflict, "invite %s already revoked", c.Invite)
	}
	s.revokedInvites[c.Invite] = struct{}{}
	return nil
}

func (s *State) applyJoin(e *Event, j *Join, used uint32) error {
	if err := s.checkInvite(j.invite, e.Author, e.Time, used); err != nil {
		return err
	}
	s.members[e.Author] = member{roles: j.invite.Roles, via: e.ID} // ascending, checked at decode
	s.inviteUses[j.invite.ID]++
	return nil
}

func (s *State) applyLeave(a actor) error {
	if s.IsCreator(a.key) {
		return errf(CodeForbidden, "creator %s cannot leave: the creator set is immutable", a.key)
	}
	delete(s.members, a.key)
	return nil
}

func (s *State) applyStorageGrant(a actor, c *StorageGrant) error {
	if err := a.need(PermManageStorage); err != nil {
		return err
	}
	for _, id := range c.Channels {
		if _, ok := s.channels[id]; !ok {
			return errf(CodeUnknownChannel, "no channel %s", id)
		}
	}
	if _, exists := s.grants[c.Node]; !exists && len(s.grants) >= MaxGrants {
		return errf(CodeTooLarge, "server has %d storage grants, limit %d", len(s.grants), MaxGrants)
	}
	g := &grant{server: len(c.Channels) == 0, channels: make(map[ID]struct{}, len(c.Channels))}
	for _, id := range c.Channels {
		g.channels[id] = struct{}{}
	}
	s.grants[c.Node] = g
	return nil
}

func (s *State) applyStorageRevoke(a actor, c *StorageRevoke) error {
	if err := a.need(PermManageStorage); err != nil {
		return err
	}
	if _, ok := s.grants[c.Node]; !ok {
		return errf(CodeConflict, "node %s holds no grant", c.Node)
	}
	delete(s.grants, c.Node)
	return nil
}

func (s *State) applyDeviceRevoke(a actor, c *DeviceRevoke) error {
	r := c.revocation
	if r.Identity != a.key {
		return errf(CodeForbidden, "%s may only publish revocations of its own devices, not %s's", a.key, r.Identity)
	}
	if s.IsDeviceRevoked(r.Device) {
		return errf(CodeConflict, "device %s already revoked", r.Device)
	}
	s.revokedDevices[r.Device] = r.Identity
	return nil
}
