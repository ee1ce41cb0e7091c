package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/guildhall/guildhall/client"
	"github.com/guildhall/guildhall/policy"
)

// pRoleRef is a role given by ID or by a name no other role has: it is
// resolved by the command (roleRef), so that two roles of one name are
// refused rather than one picked.
var pRoleRef = word("ROLE")

// roleRef resolves a role by ID or by name, refusing a name two roles share
// and an ID that names no role.
func roleRef(ctx context.Context, c *client.Client, server policy.ID, arg string) (policy.ID, error) {
	st, err := c.State(ctx, server)
	if err != nil {
		return policy.ID{}, err
	}
	if id, err := policy.ParseID(arg); err == nil {
		if _, ok := st.Role(id); !ok {
			return policy.ID{}, fmt.Errorf("no role %s in this server", id)
		}
		return id, nil
	}
	var found []policy.ID
	for _, r := range st.Roles() {
		if r.Name == arg {
			found = append(found, r.ID)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return policy.ID{}, fmt.Errorf("no role named %q", arg)
	}
	return policy.ID{}, fmt.Errorf("%d roles are named %s: give the role's ID (guild server show)", len(found), arg)
}

// argRole resolves the ROLE argument.
func argRole(ctx context.Context, a *args) (policy.ID, error) {
	return roleRef(ctx, a.c, a.server, a.word("ROLE"))
}

type roleUpdateOpts struct {
	fs          *flag.FlagSet
	name, perms string
	rank        uint
}

func (o *roleUpdateOpts) register(fs *flag.FlagSet, e *env) {
	o.fs = fs
	fs.StringVar(&o.name, "name", "", "new name")
	fs.UintVar(&o.rank, "rank", 0, "new rank")
	fs.StringVar(&o.perms, "perms", "", "new permissions, e.g. read,post")
}

// roleUpdate changes what is given; a role that loses read re-keys.
func roleUpdate(ctx context.Context, e *env, a *args, o *roleUpdateOpts) (any, error) {
	id, err := argRole(ctx, a)
	if err != nil {
		return nil, err
	}
	st, err := a.c.State(ctx, a.server)
	if err != nil {
		return nil, err
	}
	r, _ := st.Role(id)
	u := policy.RoleUpdate{Role: id, Name: r.Name, Rank: r.Rank, Perms: r.Perms}
	set := false
	o.fs.Visit(func(f *flag.Flag) {
		set = true
		switch f.Name {
		case "name":
			u.Name = o.name
		case "rank":
			u.Rank = uint32(o.rank)
		}
	})
	if !set {
		return nil, usageError("nothing to change: give --name, --rank or --perms")
	}
	if isSet(o.fs, "perms") {
		if u.Perms, err = policy.ParsePerm(o.perms); err != nil {
			return nil, err
		}
	}
	if isSet(o.fs, "name") && o.name == "" {
		return nil, usageError("a role's name cannot be empty")
	}
	if _, err := a.c.PublishChange(ctx, a.server, &u); err != nil {
		return nil, err
	}
	return idOut{Kind: "updated role", ID: id, Name: u.Name}, nil
}

// roleDelete removes the role from every member and override; channels
// whose readers it removes are re-keyed.
func roleDelete(ctx context.Context, e *env, a *args) (any, error) {
	id, err := argRole(ctx, a)
	if err != nil {
		return nil, err
	}
	_, err = a.c.PublishChange(ctx, a.server, &policy.RoleDelete{Role: id})
	return message("deleted role " + id.String()), err
}

// isSet reports whether a flag was given.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// usageError is a wrong command line (exit 2, usage shown), said in its
// own words without a "usage:" prefix.
type usageError string

func (e usageError) Error() string        { return string(e) }
func (e usageError) Is(target error) bool { return target == errUsage }
