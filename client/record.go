package client

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/guildhall/guildhall/policy"
)

// Record is what a server's state holds beyond policy.State's accessors,
// read from the events of its log that took effect, in fold order.
type Record struct {
	Creators  []policy.PublicKey
	Bans      []BanEntry
	Overrides []OverrideEntry
	Grants    []GrantEntry
	Invites   []InviteEntry // invites the log knows: used by a join, or revoked
}

// BanEntry is a ban in force.
type BanEntry struct {
	Member policy.PublicKey
	Reason string
}

// OverrideEntry is a channel override in force (Role zero: everyone).
type OverrideEntry struct {
	Channel, Role policy.ID
	Allow, Deny   policy.Perm
}

// GrantEntry is a storage grant in force (no channels: every non-strict one).
type GrantEntry struct {
	Node     policy.PublicKey
	Channels []policy.ID
}

// InviteEntry is an invite the state log knows. Body is zero for an invite
// known only by its revocation.
type InviteEntry struct {
	ID        policy.ID
	Body      policy.InviteBody
	Used      uint32
	Revoked   bool
	RevokedBy policy.PublicKey // the identity that revoked it
}

// Record reads a server's bans, overrides, storage grants and known invites
// from its verified state log.
func (c *Client) Record(ctx context.Context, server policy.ID) (*Record, error) {
	l, err := c.Log(ctx, server)
	if err != nil {
		return nil, err
	}
	st := l.State()
	r := &Record{Creators: l.Genesis().Body.(*policy.Genesis).Creators}
	bans := map[policy.PublicKey]string{}
	type oKey struct{ ch, role policy.ID }
	overrides := map[oKey]OverrideEntry{}
	grants := map[policy.PublicKey]GrantEntry{}
	invites := map[policy.ID]*InviteEntry{}
	var inviteOrder []policy.ID
	invite := func(id policy.ID) *InviteEntry {
		if e, ok := invites[id]; ok {
			return e
		}
		e := &InviteEntry{ID: id}
		invites[id] = e
		inviteOrder = append(inviteOrder, id)
		return e
	}
	for _, id := range l.Order() {
		if folded, reason := l.Outcome(id); !folded || reason != nil {
			continue
		}
		e, _ := l.Event(id)
		switch b := e.Body.(type) {
		case *policy.Ban:
			bans[b.Member] = b.Reason
		case *policy.Unban:
			delete(bans, b.Member)
		case *policy.ChannelOverride:
			k := oKey{b.Channel, b.Role}
			if b.Allow == 0 && b.Deny == 0 {
				delete(overrides, k)
			} else {
				overrides[k] = OverrideEntry{Channel: b.Channel, Role: b.Role, Allow: b.Allow, Deny: b.Deny}
			}
		case *policy.RoleDelete:
			for k := range overrides {
				if k.role == b.Role {
					delete(overrides, k)
				}
			}
		case *policy.StorageGrant:
			grants[b.Node] = GrantEntry{Node: b.Node, Channels: b.Channels}
		case *policy.StorageRevoke:
			delete(grants, b.Node)
		case *policy.InviteRevoke:
			i := invite(b.Invite)
			i.Revoked, i.RevokedBy = true, e.Author
		case *policy.Join:
			inv, err := policy.ParseInvite(b.Invite)
			if err != nil {
				continue
			}
			invite(inv.ID).Body = inv.InviteBody
		}
	}
	banned := st.Banned()
	for k, reason := range bans {
		if _, ok := banned[k]; ok {
			r.Bans = append(r.Bans, BanEntry{Member: k, Reason: reason})
		}
	}
	slices.SortFunc(r.Bans, func(a, b BanEntry) int { return a.Member.Compare(b.Member) })
	for _, o := range overrides {
		r.Overrides = append(r.Overrides, o)
	}
	slices.SortFunc(r.Overrides, func(a, b OverrideEntry) int {
		if n := a.Channel.Compare(b.Channel); n != 0 {
			return n
		}
		return a.Role.Compare(b.Role)
	})
	for _, g := range grants {
		r.Grants = append(r.Grants, g)
	}
	slices.SortFunc(r.Grants, func(a, b GrantEntry) int { return a.Node.Compare(b.Node) })
	for _, id := range inviteOrder {
		e := invites[id]
		e.Used = st.InviteUses(id)
		r.Invites = append(r.Invites, *e)
	}
	return r, nil
}

// RevokeInvite makes an invite unusable from now on.
func (c *Client) RevokeInvite(ctx context.Context, server, invite policy.ID) error {
	_, err := c.Publish(ctx, server, &policy.InviteRevoke{Invite: invite})
	return err
}

// RevokeStorage withdraws a hub's storage grants (by URL), the inverse of
// GrantStorage. The hub stays among the hubs this client reads from.
func (c *Client) RevokeStorage(ctx context.Context, server policy.ID, url string) error {
	node, err := c.hub(url).Node(ctx)
	if err != nil {
		return err
	}
	rec, err := c.Record(ctx, server)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(rec.Grants, func(g GrantEntry) bool { return g.Node == node }) {
		return fmt.Errorf("client: %s (node %s) holds no storage grant in this server", url, node)
	}
	_, err = c.Publish(ctx, server, &policy.StorageRevoke{Node: node})
	return err
}

// HubNodes maps the node keys of this server's hubs to their URLs, for the
// hubs that answer within a few seconds.
func (c *Client) HubNodes(ctx context.Context, server policy.ID) (map[policy.PublicKey]string, error) {
	urls, err := c.Hubs(ctx, server)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	out := map[policy.PublicKey]string{}
	for _, u := range urls {
		if node, err := c.hub(u).Node(ctx); err == nil {
			out[node] = u
		}
	}
	return out, nil
}
