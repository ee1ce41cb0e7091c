package policy

// CheckFresh reports whether t (Unix ms) is within MaxClockSkew of now. Hubs
// apply it to live posts; replicated history is checked without it.
func CheckFresh(t, now int64) error {
	if t > now+MaxClockSkew || t < now-MaxClockSkew {
		return errf(CodeClock, "time %d is more than %d ms from now (%d)", t, MaxClockSkew, now)
	}
	return nil
}

// CheckEnvelope decides whether an envelope is acceptable in this state at
// now (Unix ms): for this server, not from the future, from a device that is
// not revoked, by a member who is not banned, in an open channel where the
// member may post, not older than the channel's retention, and within the
// server's size limit. The signature and the
// certificate's window at the envelope's time were checked when it was parsed.
func (s *State) CheckEnvelope(e *Envelope, now int64) error {
	switch {
	case e.Server != s.id:
		return errf(CodeWrongServer, "envelope is for server %s", e.Server)
	case e.Time > now+MaxClockSkew:
		return errf(CodeClock, "envelope time %d is ahead of now (%d)", e.Time, now)
	case s.IsDeviceRevoked(e.cert.Device):
		return errf(CodeDeviceRevoked, "device %s was revoked", e.cert.Device)
	case s.IsBanned(e.Author):
		return errf(CodeBanned, "sender %s is banned", e.Author)
	case !s.IsMember(e.Author):
		return errf(CodeNotMember, "sender %s is not a member", e.Author)
	}
	ch, ok := s.channels[e.Channel]
	if !ok || ch.Archived {
		return errf(CodeUnknownChannel, "no open channel %s", e.Channel)
	}
	if !s.Permissions(e.Author, e.Channel).Has(PermPost) {
		return errf(CodeForbidden, "%s may not post in %s", e.Author, ch.Name)
	}
	if ch.RetentionMs > 0 && e.Time < now-ch.RetentionMs {
		return errf(CodeExpired, "envelope time %d is beyond %s's retention of %d ms", e.Time, ch.Name, ch.RetentionMs)
	}
	if limit := s.maxEnvelope(); len(e.Raw) > limit {
		return errf(CodeTooLarge, "envelope is %d bytes, server limit %d", len(e.Raw), limit)
	}
	return nil
}

func (s *State) maxEnvelope() int {
	if s.policy.MaxEnvelopeBytes == 0 {
		return MaxEnvelopeSize
	}
	return int(s.policy.MaxEnvelopeBytes)
}

// MayStore decides whether node may store a channel's ciphertext (storage
// eligibility, never read access). A node is eligible through a storage grant
// naming the channel; through a server-wide grant for a non-strict channel;
// or, when cert certifies node as a device of an identity, because that
// identity may read the channel (strict) or is a member (replicated,
// guaranteed). cert may be nil; it must be valid at now.
func (s *State) MayStore(node PublicKey, cert *DeviceCert, channel ID, now int64) error {
	ch, ok := s.channels[channel]
	if !ok {
		return errf(CodeUnknownChannel, "no channel %s", channel)
	}
	if g, ok := s.grants[node]; ok {
		if _, named := g.channels[channel]; named || (g.server && ch.Durability != Strict) {
			return nil
		}
	}
	if cert != nil && cert.Device == node && cert.ValidAt(now) == nil && !s.IsDeviceRevoked(node) {
		p := s.Permissions(cert.Identity, channel)
		if ch.Durability == Strict && p.Has(PermRead) || ch.Durability != Strict && s.IsMember(cert.Identity) {
			return nil
		}
	}
	return errf(CodeNotEligible, "node %s may not store %s channel %s", node, ch.Durability, ch.Name)
}

// CheckTombstone decides whether t may delete target: same server, channel
// and envelope; the author is a member, not banned, on a device not revoked;
// and is the envelope's sender or may moderate the channel.
func (s *State) CheckTombstone(t *Tombstone, target *Envelope) error {
	switch {
	case t.Server != s.id:
		return errf(CodeWrongServer, "tombstone is for server %s", t.Server)
	case t.Target != target.ID || t.Channel != target.Channel || target.Server != s.id:
		return errf(CodeMalformed, "tombstone does not name this envelope")
	case t.cert != nil && s.IsDeviceRevoked(t.cert.Device):
		return errf(CodeDeviceRevoked, "device %s was revoked", t.cert.Device)
	case s.IsBanned(t.Author):
		return errf(CodeBanned, "%s is banned", t.Author)
	case !s.IsMember(t.Author):
		return errf(CodeNotMember, "%s is not a member", t.Author)
	case t.Author == target.Author:
		return nil
	case !s.Permissions(t.Author, t.Channel).Has(PermModerate):
		return errf(CodeForbidden, "%s may not moderate this channel", t.Author)
	}
	return nil
}

// CheckReceipt decides whether r proves that an eligible hub stored e: the
// receipt names e, its server and channel, and its hub may store the
// channel. The signature was checked when r was parsed. hubCert is the hub's
// device certificate when it is a member's home node, else nil.
func (s *State) CheckReceipt(r *Receipt, e *Envelope, hubCert *DeviceCert, now int64) error {
	if r.Envelope != e.ID || r.Server != e.Server || r.Channel != e.Channel {
		return errf(CodeMalformed, "receipt does not name envelope %s", e.ID)
	}
	if r.Server != s.id {
		return errf(CodeWrongServer, "receipt is for server %s", r.Server)
	}
	return s.MayStore(r.Hub, hubCert, r.Channel, now)
}

// CheckInvite decides whether inv admits joiner at time t (Unix ms) in this
// state. Bans beat invites: a banned joiner, or an inviter banned, demoted
// below the invite's roles or stripped of PermInvite, makes it fail.
func (s *State) CheckInvite(inv *Invite, joiner PublicKey, t int64) error {
	switch {
	case inv.Server != s.id:
		return errf(CodeWrongServer, "invite is for server %s", inv.Server)
	case s.IsBanned(joiner):
		return errf(CodeBanned, "%s is banned", joiner)
	case s.IsMember(joiner):
		return errf(CodeConflict, "%s is already a member", joiner)
	case t < inv.Issued:
		return errf(CodeClock, "join at %d precedes the invite's issue at %d", t, inv.Issued)
	case t >= inv.Expires:
		return errf(CodeInviteExpired, "invite expired at %d, used at %d", inv.Expires, t)
	}
	if _, ok := s.revokedInvites[inv.ID]; ok {
		return errf(CodeInviteRevoked, "invite %s was revoked", inv.ID)
	}
	if s.inviteUses[inv.ID] >= inv.Uses {
		return errf(CodeInviteExhausted, "invite admitted its %d joins", inv.Uses)
	}
	if inv.cert != nil && s.IsDeviceRevoked(inv.cert.Device) {
		return errf(CodeInvalidInvite, "inviter device %s was revoked", inv.cert.Device)
	}
	inviter := actor{key: inv.Author, rank: s.Rank(inv.Author), perms: s.Permissions(inv.Author, ID{})}
	if !s.IsMember(inv.Author) || !inviter.perms.Has(PermInvite) {
		return errf(CodeInvalidInvite, "inviter %s is not a member who may invite", inv.Author)
	}
	for _, id := range inv.Roles {
		if _, err := s.role(inviter, id); err != nil {
			return errf(CodeInvalidInvite, "invite grants role %s: %v", id, err)
		}
	}
	return nil
}
