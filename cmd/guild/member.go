package main

import (
	"context"
	"flag"

	"github.com/guildhall/guildhall/policy"
)

// memberCommands manage members: roles and bans.
var memberCommands = []command{
	flagged("role create", []param{pServer, word("NAME")}, "define a role", roleCreate).fetchingState(),
	flagged("role update", []param{pServer, pRoleRef}, "change a role's --name, --rank or --perms", roleUpdate).fetchingState(),
	plain("role delete", []param{pServer, pRoleRef}, "delete a role, taking it from every member and override", roleDelete).fetchingState(),
	plain("role grant", []param{pServer, pRoleRef, pMember}, "give a member a role", roleGrant).fetchingState(),
	plain("role revoke", []param{pServer, pRoleRef, pMember}, "take a role from a member (re-keys channels they can no longer read)", roleRevoke).fetchingState(),
	flagged("ban", []param{pServer, pMember}, "ban a member and re-key the channels they could read", ban).fetchingState(),
	plain("unban", []param{pServer, pMember}, "lift a ban (the member joins again with an invite)", unban).fetchingState(),
}

type roleOpts struct {
	rank  uint
	perms string
}

func (o *roleOpts) register(fs *flag.FlagSet, e *env) {
	fs.UintVar(&o.rank, "rank", 10, "rank: higher outranks lower")
	fs.StringVar(&o.perms, "perms", "read,post", "permissions")
}

func roleCreate(ctx context.Context, e *env, a *args, o *roleOpts) (any, error) {
	p, err := policy.ParsePerm(o.perms)
	if err != nil {
		return nil, err
	}
	name := a.word("NAME")
	ev, err := a.c.Publish(ctx, a.server, &policy.RoleDefine{Name: name, Rank: uint32(o.rank), Perms: p})
	if err != nil {
		return nil, err
	}
	return idOut{Kind: "role", ID: ev.ID, Name: name}, nil
}

func roleGrant(ctx context.Context, e *env, a *args) (any, error) {
	role, err := argRole(ctx, a)
	if err != nil {
		return nil, err
	}
	_, err = a.c.Publish(ctx, a.server, &policy.RoleGrant{Role: role, Member: a.member})
	return message("granted"), err
}

// roleRevoke re-keys the channels the member can no longer read.
func roleRevoke(ctx context.Context, e *env, a *args) (any, error) {
	role, err := argRole(ctx, a)
	if err != nil {
		return nil, err
	}
	_, err = a.c.PublishChange(ctx, a.server, &policy.RoleRevoke{Role: role, Member: a.member})
	return message("revoked"), err
}

type banOpts struct{ reason string }

func (o *banOpts) register(fs *flag.FlagSet, e *env) {
	fs.StringVar(&o.reason, "reason", "", "reason, recorded in the state log")
}

func ban(ctx context.Context, e *env, a *args, o *banOpts) (any, error) {
	return message("banned " + a.member.String()), a.c.Ban(ctx, a.server, a.member, o.reason)
}

func unban(ctx context.Context, e *env, a *args) (any, error) {
	_, err := a.c.Publish(ctx, a.server, &policy.Unban{Member: a.member})
	return message("unbanned " + a.member.String()), err
}
