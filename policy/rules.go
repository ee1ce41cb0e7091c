// This file holds every decision of who may do what over a resolved state:
// one function per question a hub, a replica or a client asks, each stated
// as a sentence in its doc comment and coded as that sentence. State-log
// events are authorised as they are folded (apply.go); everything else is
// decided here. Nothing outside package policy decides authority: callers
// ask one of these and act on the answer.

package policy

import (
	"errors"
)

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
	}
	if err := s.standing(e.Author, e.cert.Device); err != nil {
		return err
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
	return s.mayStore(node, cert, channel, func(c *DeviceCert) bool { return c.ValidAt(now) == nil && !s.IsDeviceRevoked(node) })
}

// MustPurge decides whether a hub whose node key is node (cert: its home
// node certificate, or nil) must delete the ciphertext it holds of a
// channel and stop serving it: the state no longer lets it store the
// channel (a channel made strict that the hub was not granted and whose
// readers do not include the home node's owner; a grant revoked). A home
// node whose own certificate lapsed or was revoked is not made to purge by
// that (it takes nothing new, by MayStore; what it holds is its owner's),
// and a channel the state does not know is not purged.
func (s *State) MustPurge(node PublicKey, cert *DeviceCert, channel ID) bool {
	if _, ok := s.channels[channel]; !ok {
		return false
	}
	return s.mayStore(node, cert, channel, func(*DeviceCert) bool { return true }) != nil
}

func (s *State) mayStore(node PublicKey, cert *DeviceCert, channel ID, certValid func(*DeviceCert) bool) error {
	ch, ok := s.channels[channel]
	if !ok {
		return errf(CodeUnknownChannel, "no channel %s", channel)
	}
	if g, ok := s.grants[node]; ok {
		if _, named := g.channels[channel]; named || (g.server && ch.Durability != Strict) {
			return nil
		}
	}
	if cert != nil && cert.Device == node && certValid(cert) {
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
	case t.Target != target.ID || t.Channel != target.Channel || t.TargetTime != target.Time || target.Server != s.id:
		return errf(CodeMalformed, "tombstone does not name this envelope")
	}
	return s.checkTombstoneAuthor(t, target.Author)
}

// CheckEarlyTombstone decides whether a hub that does not hold t's target
// may keep t in the target's place until the envelope arrives: same server,
// a channel of it, a target time, and an author in standing. Whether the
// author may delete that envelope is decided by CheckTombstone when it
// arrives; until then the tombstone deletes nothing.
func (s *State) CheckEarlyTombstone(t *Tombstone) error {
	switch {
	case t.Server != s.id:
		return errf(CodeWrongServer, "tombstone is for server %s", t.Server)
	case t.TargetTime <= 0:
		return errf(CodeMalformed, "tombstone has no target time")
	}
	if _, ok := s.channels[t.Channel]; !ok {
		return errf(CodeUnknownChannel, "tombstone names unknown channel %s", t.Channel)
	}
	var device PublicKey
	if t.cert != nil {
		device = t.cert.Device
	}
	return s.standing(t.Author, device)
}

// checkTombstoneAuthor: t's author is in standing and is sender, or may
// moderate the channel.
func (s *State) checkTombstoneAuthor(t *Tombstone, sender PublicKey) error {
	var device PublicKey
	if t.cert != nil {
		device = t.cert.Device
	}
	if err := s.standing(t.Author, device); err != nil {
		return err
	}
	switch {
	case t.Author == sender:
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
	return s.checkInvite(inv, joiner, t, s.inviteUses[inv.ID])
}

// checkInvite is CheckInvite with the joins already counted against the
// invite given: in resolution, those that causally precede the join.
func (s *State) checkInvite(inv *Invite, joiner PublicKey, t int64, used uint32) error {
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
	if used >= inv.Uses {
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

// MayRead decides whether the holder of identity k, on device d, may read a
// channel's ciphertext (channel zero: the server's state log). A server that
// declared its history public may be read by anyone, k and d zero included.
// Otherwise the reader is a member, not banned, on a device that is not
// revoked, and holds the read permission in the channel, which must exist.
func (s *State) MayRead(k, d PublicKey, channel ID) error {
	if !channel.IsZero() {
		if _, ok := s.channels[channel]; !ok {
			return errf(CodeUnknownChannel, "no channel %s", channel)
		}
	}
	switch {
	case s.policy.PublicHistory:
		return nil
	case k.IsZero():
		return errf(CodeForbidden, "the history of server %s is for authenticated members", s.id)
	}
	if err := s.standing(k, d); err != nil {
		return err
	}
	switch {
	case !channel.IsZero() && !s.Permissions(k, channel).Has(PermRead):
		return errf(CodeForbidden, "%s may not read this channel", k)
	}
	return nil
}

// MayReadLogWith decides whether the holder of an invite may read the
// server's state log (never a channel) at now (Unix ms), so that a newcomer
// sees the log, prior joins through the invite included, and names its
// heads when joining: the invite is for this server, unexpired, not
// revoked, not used up by the joins folded so far (a newcomer reads before
// it joins, and an invite copied out of a join event is no pass), and its
// inviter is a member in good standing who may invite.
func (s *State) MayReadLogWith(inv *Invite, now int64) error {
	switch {
	case inv.Server != s.id:
		return errf(CodeWrongServer, "invite is for server %s", inv.Server)
	case now >= inv.Expires:
		return errf(CodeInviteExpired, "invite expired at %d", inv.Expires)
	case s.inviteUses[inv.ID] >= inv.Uses:
		return errf(CodeInviteExhausted, "invite admitted its %d joins", inv.Uses)
	}
	if _, ok := s.revokedInvites[inv.ID]; ok {
		return errf(CodeInviteRevoked, "invite %s was revoked", inv.ID)
	}
	if err := s.standing(inv.Author, inv.Device()); err != nil {
		return errf(CodeInvalidInvite, "inviter: %v", err)
	}
	if !s.Permissions(inv.Author, ID{}).Has(PermInvite) {
		return errf(CodeInvalidInvite, "inviter %s may not invite", inv.Author)
	}
	return nil
}

// MayUpload decides whether the holder of identity k, on device d, may
// store blobs (attachments) for the server at a hub: a member, not banned,
// on a device that is not revoked, who may post server-wide. Public history
// does not open uploads.
func (s *State) MayUpload(k, d PublicKey) error {
	switch {
	case k.IsZero():
		return errf(CodeForbidden, "uploads to server %s are for authenticated members", s.id)
	}
	if err := s.standing(k, d); err != nil {
		return err
	}
	switch {
	case !s.Permissions(k, ID{}).Has(PermPost):
		return errf(CodeForbidden, "%s may not post in this server", k)
	}
	return nil
}

// CheckServerEvents decides whether state events all belong to server: a
// genesis must be the server itself, any other event must name it. Hubs ask
// it of every publication and every replicated batch before they look the
// server up, since a genesis may be what creates it.
func CheckServerEvents(server ID, events []*Event) error {
	for _, e := range events {
		if e.Kind == EvGenesis && e.ID != server || e.Kind != EvGenesis && e.Server != server {
			return errf(CodeWrongServer, "event %s is not of server %s", e.ID, server)
		}
	}
	return nil
}

// CheckLiveEvents decides whether a client's publication is fit to be
// taken at all at now (Unix ms), before the hub looks at the server's
// state or admits a new server: every event belongs to server
// (CheckServerEvents) and is dated within MaxClockSkew of now (CheckFresh),
// so no future-dated head can enter a log through a hub, nor a backdated
// one through a live publication. Replicated history is not checked for
// freshness.
func CheckLiveEvents(server ID, events []*Event, now int64) error {
	if err := CheckServerEvents(server, events); err != nil {
		return err
	}
	for _, e := range events {
		if CheckFresh(e.Time, now) != nil {
			return errf(CodeClock, "event %s is dated %d, more than %d ms from now (%d)", e.ID, e.Time, MaxClockSkew, now)
		}
	}
	return nil
}

// CheckPublication decides whether a hub stores a client's publication (the
// state events of one request) in this state: every event belongs to this
// server, and every author could make its event take effect, so a hub never
// stores what can never apply. A genesis is stored (its own fold decides
// it); a join must be admitted by its invite in this state (CheckInvite:
// the joiner not banned nor a member, the invite unexpired, not revoked,
// not used up, its inviter able to invite), since a live newcomer reads the
// log before joining; an author whose join in this same publication passes
// may act in it; any other author must be a member who is not banned. One
// refused event refuses the whole publication. (Log.CheckPublication takes
// again, as they are, the events a log already holds.)
func (s *State) CheckPublication(events []*Event) error {
	if err := CheckServerEvents(s.id, events); err != nil {
		return err
	}
	joining := map[PublicKey]bool{}
	for _, e := range events {
		if j, ok := e.Body.(*Join); ok {
			if err := s.CheckInvite(j.invite, e.Author, e.Time); err != nil {
				var pe *Error
				if errors.As(err, &pe) {
					return errf(pe.Code, "join %s: %s", e.ID, pe.Detail)
				}
				return err
			}
			joining[e.Author] = true
		}
	}
	for _, e := range events {
		switch {
		case e.Kind == EvGenesis || e.Kind == EvJoin || joining[e.Author]:
		case s.IsBanned(e.Author):
			return errf(CodeBanned, "author %s is banned", e.Author)
		case !s.IsMember(e.Author):
			return errf(CodeNotMember, "author %s is not a member", e.Author)
		}
	}
	return nil
}

// CheckPublication is State.CheckPublication for a hub holding this log:
// the events the log already holds are taken again as they are (a
// publication may repeat history); the others must pass, and each must
// build on recent history (CheckRecent).
func (l *Log) CheckPublication(events []*Event) error {
	var fresh []*Event
	isFresh := map[ID]bool{}
	for _, e := range events {
		if l.events[e.ID] == nil && !isFresh[e.ID] {
			fresh = append(fresh, e)
			isFresh[e.ID] = true
		}
	}
	if err := CheckServerEvents(l.genesis.ID, events); err != nil {
		return err
	}
	for _, e := range fresh {
		if err := l.checkRecent(e, isFresh); err != nil {
			return err
		}
	}
	return l.state.CheckPublication(fresh)
}

// checkRecent decides whether a live event builds on recent history: at
// least one of its parents is an event of the same publication, or one the
// log does not hold or has not folded (the event then waits for it, and
// costs nothing now), or one of the last MaxBehind events of the log's
// resolution order. An event can be folded no earlier than just after its
// last parent, and everything the log folded after that point is folded
// again; so a live event built only on older history (naming the genesis
// alone in a long log, say) would make the hub re-fold up to the whole log
// while it holds the server. It is refused stale: its author refreshes its
// copy of the log and chooses parents again (PROTOCOL §4.5), which names
// the last folded event. Replicated history is not checked: it is judged
// as the log resolves it (Replicable).
func (l *Log) checkRecent(e *Event, publication map[ID]bool) error {
	floor := len(l.order) - MaxBehind
	for _, p := range e.Parents {
		i, folded := l.index[p]
		if publication[p] || !folded || i >= floor {
			return nil
		}
	}
	return errf(CodeStale, "event %s builds on history more than %d events behind the log's %d: refresh the log and choose parents again", e.ID, MaxBehind, len(l.order))
}

// OwnerActs decides whether a publication is its owner's, which is what
// admits a server to a member's home node: the owner's identity signed one
// of its events (the genesis, or another). A genesis signed by someone else
// that merely lists the owner among its creators does not count, so a
// stranger cannot make a home node host its server by naming the owner.
func OwnerActs(owner PublicKey, events []*Event) bool {
	for _, e := range events {
		if e.Author == owner {
			return true
		}
	}
	return false
}

// Replicable decides which state events a peer hub offers should be stored
// with this log, and returns them. Unlike a client's publication, history is
// admitted as the log resolves it (an event by a member who was later banned
// is still part of the log); all must belong to this server, events already
// in the log are left out, and so are events, other than joins, whose
// authors never were members where the log places them, so strangers cannot
// fill the log through a peer.
func (l *Log) Replicable(events []*Event) ([]*Event, error) {
	if err := CheckServerEvents(l.genesis.ID, events); err != nil {
		return nil, err
	}
	trial, err := Resolve(l.genesis, append(l.Events(), events...))
	if err != nil {
		return nil, err
	}
	var keep []*Event
	for _, e := range events {
		if _, known := l.Event(e.ID); known {
			continue
		}
		if _, reason := trial.Outcome(e.ID); CodeOf(reason) == CodeNotMember && e.Kind != EvJoin {
			continue
		}
		keep = append(keep, e)
	}
	return keep, nil
}

// CheckIntake decides whether the hub whose node key is node (cert: its
// certificate as a member's home node, or nil) takes envelope e into storage
// at now: the envelope is acceptable in this state (CheckEnvelope) and the
// hub may store its channel (MayStore). It does not judge freshness: a hub
// asks CheckFresh of live posts as well, and not of replicated history.
func (s *State) CheckIntake(e *Envelope, node PublicKey, cert *DeviceCert, now int64) error {
	if err := s.CheckEnvelope(e, now); err != nil {
		return err
	}
	return s.MayStore(node, cert, e.Channel, now)
}

// EligibleChannels returns the channels node (with cert, as for MayStore)
// may store at now, in channel order.
func (s *State) EligibleChannels(node PublicKey, cert *DeviceCert, now int64) []ID {
	var out []ID
	for _, ch := range s.Channels() {
		if s.MayStore(node, cert, ch.ID, now) == nil {
			out = append(out, ch.ID)
		}
	}
	return out
}

// MayReplicate decides whether a peer node (with cert, as for MayStore) may
// receive a channel's ciphertext from a hub at now. Channel zero is the
// server's state log, which any node eligible for some channel may have.
func (s *State) MayReplicate(node PublicKey, cert *DeviceCert, channel ID, now int64) error {
	if channel.IsZero() {
		if len(s.EligibleChannels(node, cert, now)) > 0 {
			return nil
		}
		return errf(CodeNotEligible, "node %s may not store any channel of server %s", node, s.id)
	}
	if s.MayStore(node, cert, channel, now) != nil {
		return errf(CodeNotEligible, "node %s may not store this server's channel", node)
	}
	return nil
}

// MayReceiveKey decides whether a device may be sent a channel's key at now:
// its certificate is valid at now and it may hold the key (MayHoldKey).
func (s *State) MayReceiveKey(cert *DeviceCert, channel ID, now int64) error {
	if err := cert.ValidAt(now); err != nil {
		return err
	}
	return s.MayHoldKey(cert.Device, cert.Identity, channel)
}

// MayHoldKey decides whether a device may hold a channel's current key, so
// that a sender may keep using a key sealed to it: the device is not
// revoked, the channel exists, and the device's identity, when known (not
// zero), may read the channel (a member with the read permission there).
func (s *State) MayHoldKey(device, identity PublicKey, channel ID) error {
	if s.IsDeviceRevoked(device) {
		return errf(CodeDeviceRevoked, "device %s was revoked", device)
	}
	if _, ok := s.channels[channel]; !ok {
		return errf(CodeUnknownChannel, "no channel %s", channel)
	}
	if !identity.IsZero() && (!s.IsMember(identity) || !s.Permissions(identity, channel).Has(PermRead)) {
		return errf(CodeForbidden, "%s may not read this channel", identity)
	}
	return nil
}

// standing decides whether identity k, acting through device d (zero when
// it signs with its identity key), is in good standing: the device is not
// revoked, k is not banned, and k is a member, checked in that order.
func (s *State) standing(k, d PublicKey) error {
	switch {
	case !d.IsZero() && s.IsDeviceRevoked(d):
		return errf(CodeDeviceRevoked, "device %s was revoked", d)
	case s.IsBanned(k):
		return errf(CodeBanned, "%s is banned", k)
	case !s.IsMember(k):
		return errf(CodeNotMember, "%s is not a member", k)
	}
	return nil
}
