package client

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// Log verifies the server's state log from the local store alone: the
// client trusts no hub for authority.
func (c *Client) Log(ctx context.Context, server policy.ID) (*policy.Log, error) {
	raws, err := c.st.events(ctx, server)
	if err != nil {
		return nil, err
	}
	if len(raws) == 0 {
		return nil, fmt.Errorf("%w: server %s", ErrUnknown, server)
	}
	events, err := policy.NewVerifier(0).ParseEvents(raws)
	if err != nil {
		return nil, err
	}
	var genesis *policy.Event
	for _, e := range events {
		if e.ID == server {
			genesis = e
		}
	}
	if genesis == nil {
		return nil, fmt.Errorf("%w: no genesis of %s", ErrUnknown, server)
	}
	return policy.Resolve(genesis, events)
}

// State returns the server's resolved state.
func (c *Client) State(ctx context.Context, server policy.ID) (*policy.State, error) {
	l, err := c.Log(ctx, server)
	if err != nil {
		return nil, err
	}
	return l.State(), nil
}

// learnCerts records the device certificates events carry (those that do
// not parse are not kept).
func (c *Client) learnCerts(ctx context.Context, raws ...[]byte) error {
	for _, raw := range raws {
		if len(raw) == 0 {
			continue
		}
		if cert, err := policy.ParseDeviceCert(raw); err == nil {
			if err := c.st.addDevice(ctx, cert); err != nil {
				return err
			}
		}
	}
	return nil
}

// SyncState fetches the server's state log from its hubs, verifies it and
// stores it; it returns how many events were new.
func (c *Client) SyncState(ctx context.Context, server policy.ID) (int, error) {
	return c.syncState(ctx, server, "", false)
}

// syncState fetches the state log with a session at each hub, or, given an
// invite token, with the invite (a newcomer's view before it joins). Since
// set, a member's session reads only what the hub logged after the last
// read there (Refresh); else all of it.
func (c *Client) syncState(ctx context.Context, server policy.ID, invite string, since bool) (int, error) {
	hubs, err := c.st.hubs(ctx, server)
	if err != nil {
		return 0, err
	}
	if len(hubs) == 0 {
		return 0, ErrNoHub
	}
	d, err := c.Device()
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, url := range hubs {
		h := c.hub(url)
		token := invite
		if token == "" {
			if token, err = h.Login(ctx, d); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		var raws [][]byte
		var readErr error
		after := uint64(0)
		if since && invite == "" {
			if after, err = c.stateCursor(ctx, url, server); err != nil {
				return 0, err
			}
		}
		for {
			page, err := h.Events(ctx, token, server, after)
			if err != nil {
				readErr = err
				break
			}
			for _, e := range page.Events {
				raws = append(raws, e.Raw)
			}
			after = page.Next
			if !page.More {
				break
			}
		}
		if readErr != nil { // a refusal is not an empty log: try the next hub, and report it
			errs = append(errs, readErr)
			continue
		}
		events, err := policy.NewVerifier(0).ParseEvents(raws)
		if err != nil {
			errs = append(errs, fmt.Errorf("hub %s served an invalid state log: %w", url, err))
			continue
		}
		n, err := c.st.addEvents(ctx, server, events)
		if err != nil {
			return 0, err
		}
		for _, e := range events {
			if err := c.learnCerts(ctx, e.Cert); err != nil {
				return n, err
			}
		}
		if invite == "" {
			if err := c.setStateCursor(ctx, url, server, after); err != nil {
				return n, err
			}
		}
		return n, nil
	}
	return 0, noHub(errs)
}

// Publish signs a state event on the current heads, checks locally that it
// takes effect, publishes it to the server's hubs and, once one took it,
// stores it. A hub that refuses it as built on stale history (its log has
// moved on by more than policy.MaxBehind events) makes Publish refresh the
// state log and sign the act again, once.
func (c *Client) Publish(ctx context.Context, server policy.ID, content policy.Content) (*policy.Event, error) {
	for attempt := 0; ; attempt++ {
		e, err := c.signEvent(ctx, server, content)
		if err != nil {
			return nil, err
		}
		err = c.publishRaw(ctx, server, e.Raw)
		if err != nil && attempt == 0 && IsCode(err, string(policy.CodeStale)) {
			if _, serr := c.SyncState(ctx, server); serr == nil {
				continue
			}
		}
		if err != nil {
			return nil, err
		}
		if _, err := c.st.addEvents(ctx, server, []*policy.Event{e}); err != nil {
			return nil, err
		}
		return e, nil
	}
}

// signEvent signs content as a new event of the server on the parents the
// protocol's rule chooses (PROTOCOL §4.5), so that a head dated ahead cannot
// make it invalid or unacceptable to hubs; the event is dated now, or at its
// latest parent if that is later. It fails with the state's reason if the
// event would not take effect: nothing is published then.
func (c *Client) signEvent(ctx context.Context, server policy.ID, content policy.Content) (*policy.Event, error) {
	d, err := c.Device()
	if err != nil {
		return nil, err
	}
	l, err := c.Log(ctx, server)
	if err != nil {
		return nil, err
	}
	t := c.Now().UnixMilli()
	parents := l.ParentsAt(t)
	for _, h := range parents {
		if e, ok := l.Event(h); ok && e.Time > t {
			t = e.Time
		}
	}
	e, err := policy.NewEvent(d.Signer(), server, parents, t, content)
	if err != nil {
		return nil, err
	}
	if err := l.Add(e); err != nil {
		return nil, err
	}
	if _, reason := l.Outcome(e.ID); reason != nil {
		return nil, reason
	}
	return e, nil
}

// publishRaw sends events to every hub of the server; it fails only if no
// hub took them.
func (c *Client) publishRaw(ctx context.Context, server policy.ID, raws ...[]byte) error {
	hubs, err := c.st.hubs(ctx, server)
	if err != nil {
		return err
	}
	var errs []error
	ok := 0
	for _, url := range hubs {
		_, err := c.hub(url).PublishEvents(ctx, server, raws)
		if IsCode(err, wire.CodeNotHosted) {
			err = c.publishWithLog(ctx, url, server, raws)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ok++
	}
	if ok == 0 {
		return fmt.Errorf("%w: %w", ErrNotAccepted, noHub(errs))
	}
	return nil
}

// maxLogCopy bounds the events of the state log that publishWithLog sends
// with a publication: a hub takes at most 1,000 objects a request by
// default, and fetches the rest of a longer log from its peer hubs.
const maxLogCopy = 900

// publishWithLog publishes events to a hub that does not host the server
// (a hub just granted storage, the joiner's home node, a hub restored
// empty) together with the state log this client holds, genesis first and
// in resolution order, so that the hub can admit the server as its
// admission mode allows and take the log as history (PROTOCOL §8).
func (c *Client) publishWithLog(ctx context.Context, url string, server policy.ID, raws [][]byte) error {
	l, err := c.Log(ctx, server)
	if err != nil {
		return err
	}
	var all [][]byte
	for _, id := range l.Order() {
		if len(all) == maxLogCopy {
			break
		}
		if e, ok := l.Event(id); ok {
			all = append(all, e.Raw)
		}
	}
	_, err = c.hub(url).PublishEvents(ctx, server, append(all, raws...))
	return err
}

// ServerOptions shape a new server.
type ServerOptions struct {
	Everyone      policy.Perm // base permissions; default read and post
	PublicHistory bool
}

// CreateServer creates a server on the given hubs: a genesis naming this
// identity as creator, and a server-wide storage grant to each hub (for
// its non-strict channels).
func (c *Client) CreateServer(ctx context.Context, name string, hubs []string, opts ServerOptions) (policy.ID, error) {
	d, err := c.Device()
	if err != nil {
		return policy.ID{}, err
	}
	if opts.Everyone == 0 {
		opts.Everyone = policy.PermRead | policy.PermPost
	}
	nonce := make([]byte, 16)
	rand.Read(nonce)
	g, err := policy.NewEvent(d.Signer(), policy.ID{}, nil, c.Now().UnixMilli(), &policy.Genesis{
		Creators: []policy.PublicKey{d.Identity()},
		Policy:   policy.ServerPolicy{Name: name, Everyone: opts.Everyone, PublicHistory: opts.PublicHistory}, Nonce: nonce})
	if err != nil {
		return policy.ID{}, err
	}
	if err := c.st.addServer(ctx, g.ID, hubs); err != nil {
		return policy.ID{}, err
	}
	if err := c.createOn(ctx, g, hubs); err != nil {
		// Nothing half-made is left here: the server exists only once a hub holds it.
		if rerr := c.st.removeServer(context.WithoutCancel(ctx), g.ID); rerr != nil {
			return policy.ID{}, errors.Join(err, rerr)
		}
		return policy.ID{}, fmt.Errorf("client: the server was not created (nothing kept here): %w", err)
	}
	return g.ID, nil
}

// createOn publishes a new server's genesis and grants each hub storage.
func (c *Client) createOn(ctx context.Context, g *policy.Event, hubs []string) error {
	if _, err := c.st.addEvents(ctx, g.ID, []*policy.Event{g}); err != nil {
		return err
	}
	if err := c.publishRaw(ctx, g.ID, g.Raw); err != nil {
		return err
	}
	for _, url := range hubs {
		node, err := c.hub(url).Node(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", url, err)
		}
		if _, err := c.Publish(ctx, g.ID, &policy.StorageGrant{Node: node}); err != nil {
			return err
		}
	}
	return nil
}

// RemoveServer forgets a server on this device only (its history, keys and
// state log here); the server, and the membership, stay as they are
// elsewhere. Leave is the act that ends a membership.
func (c *Client) RemoveServer(ctx context.Context, server policy.ID) error {
	if ok, err := c.st.hasServer(ctx, server); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("%w: %s", ErrUnknown, server)
	}
	return c.st.removeServer(ctx, server)
}

// Leave ends this identity's membership of a server (a leave event in its
// state log, which every node checks) and then forgets it here. A creator
// cannot leave its own server.
func (c *Client) Leave(ctx context.Context, server policy.ID) error {
	if _, err := c.Publish(ctx, server, &policy.Leave{}); err != nil {
		return err
	}
	return c.st.removeServer(ctx, server)
}

// CreateChannel creates a channel and starts its first key epoch.
func (c *Client) CreateChannel(ctx context.Context, server policy.ID, ch policy.ChannelCreate) (policy.ID, error) {
	e, err := c.Publish(ctx, server, &ch)
	if err != nil {
		return policy.ID{}, err
	}
	return e.ID, nil
}

// ChannelByName finds a channel of a server by name.
func (c *Client) ChannelByName(ctx context.Context, server policy.ID, name string) (policy.ID, error) {
	st, err := c.State(ctx, server)
	if err != nil {
		return policy.ID{}, err
	}
	for _, ch := range st.Channels() {
		if ch.Name == name {
			return ch.ID, nil
		}
	}
	return policy.ID{}, fmt.Errorf("%w: no channel %q", ErrUnknown, name)
}

// GrantStorage makes a hub (by URL) eligible to store the listed channels,
// or every non-strict channel when none is listed, and adds it to the
// server's hubs.
func (c *Client) GrantStorage(ctx context.Context, server policy.ID, url string, channels ...policy.ID) error {
	node, err := c.hub(url).Node(ctx)
	if err != nil {
		return err
	}
	slices.SortFunc(channels, policy.ID.Compare)
	if err := c.st.addServer(ctx, server, []string{url}); err != nil {
		return err
	}
	_, err = c.Publish(ctx, server, &policy.StorageGrant{Node: node, Channels: channels})
	return err
}

// Ban bans a member and re-keys every channel they could read, so they
// cannot read what is posted after the ban.
func (c *Client) Ban(ctx context.Context, server policy.ID, member policy.PublicKey, reason string) error {
	before, err := c.State(ctx, server)
	if err != nil {
		return err
	}
	if _, err := c.Publish(ctx, server, &policy.Ban{Member: member, Reason: reason}); err != nil {
		return err
	}
	return c.rekeyWhereReader(ctx, server, before, func(k policy.PublicKey) bool { return k == member })
}

// RevokeDevice publishes the revocation of one of this identity's devices
// in a server and re-keys the channels this identity reads there.
func (c *Client) RevokeDevice(ctx context.Context, server policy.ID, device policy.PublicKey) error {
	id, ok := c.Identity()
	if !ok {
		return ErrNoIdentity
	}
	rev := policy.NewDeviceRevocation(id.Key, device, c.Now().UnixMilli())
	before, err := c.State(ctx, server)
	if err != nil {
		return err
	}
	if _, err := c.Publish(ctx, server, &policy.DeviceRevoke{Revocation: rev.Raw}); err != nil {
		return err
	}
	return c.rekeyWhereReader(ctx, server, before, func(k policy.PublicKey) bool { return k == id.Public() })
}

// PublishChange publishes any state event, and re-keys the channels whose
// readers it removed (a role revoked, an override denying read...).
func (c *Client) PublishChange(ctx context.Context, server policy.ID, content policy.Content) (*policy.Event, error) {
	before, err := c.State(ctx, server)
	if err != nil {
		return nil, err
	}
	e, err := c.Publish(ctx, server, content)
	if err != nil {
		return nil, err
	}
	after, err := c.State(ctx, server)
	if err != nil {
		return e, err
	}
	for _, ch := range after.Channels() {
		now := map[policy.PublicKey]bool{}
		for _, k := range after.Readers(ch.ID) {
			now[k] = true
		}
		for _, k := range before.Readers(ch.ID) {
			if !now[k] {
				if err := c.Rekey(ctx, server, ch.ID); err != nil {
					return e, err
				}
				break
			}
		}
	}
	return e, nil
}

// rekeyWhereReader re-keys the channels in which a matching identity was a
// reader before the change.
func (c *Client) rekeyWhereReader(ctx context.Context, server policy.ID, before *policy.State, match func(policy.PublicKey) bool) error {
	for _, ch := range before.Channels() {
		if ch.Archived {
			continue
		}
		if slices.ContainsFunc(before.Readers(ch.ID), match) {
			if err := c.Rekey(ctx, server, ch.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// Invite creates an invite token that works while its author is offline:
// the server ID, expiry, uses, roles and where to find the server's hubs
// and relays travel in it.
func (c *Client) Invite(ctx context.Context, server policy.ID, uses uint32, ttl time.Duration, roles []policy.ID, relays []string) (string, error) {
	d, err := c.Device()
	if err != nil {
		return "", err
	}
	hubs, err := c.st.hubs(ctx, server)
	if err != nil {
		return "", err
	}
	hubs = c.publicURLs(ctx, hubs)
	nonce := make([]byte, 16)
	rand.Read(nonce)
	slices.SortFunc(roles, policy.ID.Compare)
	now := c.Now()
	inv, err := policy.NewInvite(d.Signer(), policy.InviteBody{Server: server, Issued: now.Add(-time.Minute).UnixMilli(), Expires: now.Add(ttl).UnixMilli(),
		Uses: uses, Roles: roles, Hubs: hubs, Relays: relays, Nonce: nonce})
	if err != nil {
		return "", err
	}
	st, err := c.State(ctx, server)
	if err == nil {
		err = st.CheckInvite(inv, policy.PublicKey{}, now.UnixMilli())
	}
	if err != nil {
		return "", err // an invite the state would refuse is useless
	}
	return policy.EncodeInviteToken(inv), nil
}

// publicURLs returns the URLs to put in an invite: each hub's advertised
// public URL (GET /v1/info) where it has one, else the URL this client
// uses; a hub that does not answer keeps the URL used. Duplicates go.
func (c *Client) publicURLs(ctx context.Context, urls []string) []string {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var out []string
	for _, u := range urls {
		if info, err := c.hub(u).Info(ctx); err == nil && info.PublicURL != "" {
			u = info.PublicURL
		}
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out
}

// Join joins a server with an invite token. The newcomer reads the state
// log from the invite's hubs with the invite, checks locally that its join
// takes effect (so a used-up, expired or revoked invite, or a ban, is
// reported as such), names the heads it read (PROTOCOL §4.5), publishes the
// join and verifies the result.
func (c *Client) Join(ctx context.Context, token string) (policy.ID, error) {
	d, err := c.Device()
	if err != nil {
		return policy.ID{}, err
	}
	inv, err := policy.DecodeInviteToken(token)
	if policy.CodeOf(err) == policy.CodeMalformed && strings.HasPrefix(strings.TrimSpace(token), policy.InviteTokenPrefix) {
		return policy.ID{}, damagedInvite{err}
	} else if err != nil {
		return policy.ID{}, err
	}
	if len(inv.Hubs) == 0 {
		return policy.ID{}, fmt.Errorf("%w: the invite names no hub", ErrNoHub)
	}
	if err := c.st.addServer(ctx, inv.Server, inv.Hubs); err != nil {
		return policy.ID{}, err
	}
	if _, err := c.syncState(ctx, inv.Server, policy.EncodeInviteToken(inv), false); err != nil {
		var he *HubError
		switch {
		case policy.CodeOf(err) != "":
			return policy.ID{}, fmt.Errorf("client: the invite does not admit you: %w", err)
		case !errors.As(err, &he):
			return policy.ID{}, err
		case he.Code != string(policy.CodeForbidden) && he.Code != wire.CodeUnauthenticated:
			return policy.ID{}, fmt.Errorf("client: the invite does not admit you: %w", err)
		}
		// A hub that does not open the state log to invites: join blind.
	}
	now := c.Now().UnixMilli()
	parents, t := []policy.ID{inv.Server}, now
	l, lerr := c.Log(ctx, inv.Server)
	if lerr == nil && policy.CodeOf(l.State().CheckInvite(inv, d.Identity(), now)) == policy.CodeConflict {
		// A member already, as policy judges it (another device, or the
		// server forgotten here and taken back): nothing to publish; read
		// it as a member.
		if _, err := c.SyncState(ctx, inv.Server); err != nil {
			return policy.ID{}, err
		}
		return inv.Server, nil
	}
	if lerr == nil {
		parents = l.ParentsAt(now)
		for _, p := range parents {
			if e, ok := l.Event(p); ok && e.Time > t {
				t = e.Time
			}
		}
	}
	e, err := policy.NewEvent(d.Signer(), inv.Server, parents, t, &policy.Join{Invite: inv.Raw})
	if err != nil {
		return policy.ID{}, err
	}
	if lerr == nil {
		if err := l.Add(e); err != nil {
			return policy.ID{}, err
		}
		if folded, reason := l.Outcome(e.ID); folded && reason != nil {
			return policy.ID{}, fmt.Errorf("client: the join would not take effect: %w", explain(reason))
		}
	}
	if err := c.publishRaw(ctx, inv.Server, e.Raw); err != nil {
		return policy.ID{}, err
	}
	if _, err := c.SyncState(ctx, inv.Server); err != nil {
		return policy.ID{}, fmt.Errorf("client: the join was published, but reading the server as a member failed: %w", err)
	}
	if l, err = c.Log(ctx, inv.Server); err != nil {
		return policy.ID{}, err
	}
	if folded, reason := l.Outcome(e.ID); !folded || reason != nil {
		if reason == nil {
			reason = errors.New("its ancestors are not all known yet")
		}
		return policy.ID{}, fmt.Errorf("client: the join did not take effect: %w", reason)
	}
	return inv.Server, nil
}
