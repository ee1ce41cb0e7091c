package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/guildhall/guildhall/client"
	"github.com/guildhall/guildhall/policy"
)

var serverCommands = []command{
	flagged("server create", []param{word("NAME")}, "create a server on one or more hubs", serverCreate),
	plain("server list", nil, "list the servers this client knows", listServers),
	plain("server show", []param{pServer}, "show the server's state, resolved and verified here: channels, roles, members, creators, overrides, bans, storage", serverShow).fetchingState(),
	flagged("server policy", []param{pServer}, "change every member's base permissions (--everyone) or whether history is --public", serverPolicy).fetchingState(),
	plain("server rename", []param{pServer, word("NAME")}, "rename the server", serverRename).fetchingState(),
	plain("server sync", []param{pServer}, "fetch and verify the server's state log from its hubs", serverSync),
	plain("server remove", []param{pServer}, "forget a server on this device only (its history and keys here); your membership stays", serverRemove),
	plain("server leave", []param{pServer}, "leave a server (a signed leave in its state log), then forget it here", serverLeave).fetchingState(),
	flagged("storage grant", []param{pServer, word("HUB-URL")}, "make a hub eligible to store the server (or --channel strict channels)", storageGrant).fetchingState(),
	plain("storage revoke", []param{pServer, word("HUB-URL")}, "withdraw a hub's storage grants (the inverse of storage grant)", storageRevoke).fetchingState(),
	plain("storage show", []param{pServer}, "list the hubs granted storage, and for which channels", storageShow).fetchingState(),
	flagged("invite create", []param{pServer}, "create an invite token that works while you are offline", inviteCreate).fetchingState(),
	plain("invite list", []param{pServer}, "list your invites the state log knows (used or revoked): uses left, expiry", inviteListCmd).fetchingState(),
	plain("invite revoke", []param{pServer, word("INVITE-ID")}, "make an invite unusable (its ID from invite list, or the token)", inviteRevoke).fetchingState(),
	plain("join", []param{word("TOKEN")}, "join a server with an invite token", join),
}

type serverCreateOpts struct {
	hubs   multi
	public bool
}

func (o *serverCreateOpts) register(fs *flag.FlagSet, e *env) {
	fs.Var(&o.hubs, "hub", "hub URL (repeatable)")
	fs.BoolVar(&o.public, "public", false, "let hubs serve the history to anyone")
}

func serverCreate(ctx context.Context, e *env, a *args, o *serverCreateOpts) (any, error) {
	if len(o.hubs) == 0 {
		return nil, fmt.Errorf("%w: at least one --hub", errUsage)
	}
	for i, h := range o.hubs {
		u, err := hubURL(h)
		if err != nil {
			return nil, err
		}
		o.hubs[i] = u
	}
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	name := a.word("NAME")
	id, err := c.CreateServer(ctx, name, o.hubs, client.ServerOptions{PublicHistory: o.public})
	if err != nil {
		return nil, err
	}
	return idOut{Kind: "server", ID: id, Name: name}, nil
}

// listServers lists the servers whose state verifies here.
func listServers(ctx context.Context, e *env, a *args) (any, error) {
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	ids, err := c.Servers(ctx)
	if err != nil {
		return nil, err
	}
	var out serverList
	for _, id := range ids {
		st, err := c.State(ctx, id)
		if err != nil {
			continue
		}
		hubs, err := c.Hubs(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, serverItem{ID: id, Name: st.Policy().Name, Members: len(st.Members()), Hubs: hubs})
	}
	return out, nil
}

func serverShow(ctx context.Context, e *env, a *args) (any, error) { return showFull(ctx, a) }

func serverSync(ctx context.Context, e *env, a *args) (any, error) {
	n, err := a.c.SyncState(ctx, a.server)
	return message(fmt.Sprintf("%d new state events", n)), err
}

type storageGrantOpts struct{ channels multi }

func (o *storageGrantOpts) register(fs *flag.FlagSet, e *env) {
	fs.Var(&o.channels, "channel", "channel (repeatable); none: every non-strict channel")
}

func storageGrant(ctx context.Context, e *env, a *args, o *storageGrantOpts) (any, error) {
	ids, err := resolveAll(o.channels, func(ch string) (policy.ID, error) { return channelArg(ctx, a.c, a.server, ch) })
	if err != nil {
		return nil, err
	}
	url, err := hubURL(a.word("HUB-URL"))
	if err != nil {
		return nil, err
	}
	return message("granted " + url), a.c.GrantStorage(ctx, a.server, url, ids...)
}

type inviteOpts struct {
	uses          uint
	ttl           time.Duration
	roles, relays multi
}

func (o *inviteOpts) register(fs *flag.FlagSet, e *env) {
	fs.UintVar(&o.uses, "uses", 1, "joins it admits")
	fs.DurationVar(&o.ttl, "ttl", 7*24*time.Hour, "lifetime")
	fs.Var(&o.roles, "role", "role granted on join (repeatable)")
	fs.Var(&o.relays, "relay", "relay address to include as a hint (repeatable)")
}

func inviteCreate(ctx context.Context, e *env, a *args, o *inviteOpts) (any, error) {
	ids, err := resolveAll(o.roles, func(r string) (policy.ID, error) { return roleRef(ctx, a.c, a.server, r) })
	if err != nil {
		return nil, err
	}
	tok, err := a.c.Invite(ctx, a.server, uint32(o.uses), o.ttl, ids, o.relays)
	if err != nil {
		return nil, err
	}
	return tokenOut{Token: tok, Next: "the invitee runs: guild join TOKEN"}, nil
}

func join(ctx context.Context, e *env, a *args) (any, error) {
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	id, err := c.Join(ctx, a.word("TOKEN"))
	if err != nil {
		return nil, err
	}
	out := idOut{Kind: "joined server", ID: id}
	// The join took effect; the name is only for the message, and a state
	// that cannot be read now must not report the join as failed.
	if st, err := c.State(ctx, id); err == nil {
		out.Name = st.Policy().Name
	}
	return out, nil
}

func serverRemove(ctx context.Context, e *env, a *args) (any, error) {
	return message("forgot " + a.server.String() + " on this device (you are still a member; join again with an invite to get it back)"), a.c.RemoveServer(ctx, a.server)
}

func serverLeave(ctx context.Context, e *env, a *args) (any, error) {
	return message("left " + a.server.String()), a.c.Leave(ctx, a.server)
}
