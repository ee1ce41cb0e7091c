package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/guildhall/guildhall/client"
	"github.com/guildhall/guildhall/policy"
)

// command is one subcommand: "server create", "send"... Its positional
// arguments are declared, so that one parser checks and resolves them
// before the command runs and its usage line is written from them.
type command struct {
	name   string
	params []param
	help   string
	// fresh: bring the server's state log up to date before resolving the
	// arguments after SERVER (a channel created elsewhere is found by name,
	// a member who just joined can be given a role).
	fresh bool
	// bind registers the command's flags and returns what runs it.
	bind func(fs *flag.FlagSet, e *env) runFunc
}

type runFunc = func(ctx context.Context, e *env, a *args) (any, error)

// kind is what a positional argument names, and so how it is resolved.
type kind int

const (
	kindWord     kind = iota // taken as written: a name, a text, a token, a file, a URL
	kindServer               // a server known here, by ID or by name; opens the client
	kindServerID             // a server by ID only (operators: no local state)
	kindChannel              // a channel of the SERVER before it, by ID, name or #name
	kindRole                 // a role of the SERVER before it, by ID or name
	kindMember               // an identity key
	kindDevice               // a device key
	kindMessage              // a message (envelope) ID
)

// param is one declared positional argument: its name in the usage line
// and its kind.
type param struct {
	name string
	kind kind
}

var (
	pServer    = param{"SERVER", kindServer}
	pServerID  = param{"SERVER", kindServerID}
	pChannel   = param{"CHANNEL", kindChannel}
	pRole      = param{"ROLE", kindRole}
	pMember    = param{"MEMBER", kindMember}
	pDevice    = param{"DEVICE", kindDevice}
	pMessageID = param{"MESSAGE-ID", kindMessage} // or a unique prefix, as history shows
)

// word declares an argument taken as written.
func word(name string) param { return param{name, kindWord} }

// args are a command's resolved positional arguments.
type args struct {
	c       *client.Client // set when a SERVER was resolved
	server  policy.ID
	channel policy.ID
	role    policy.ID
	member  policy.PublicKey
	device  policy.PublicKey
	message policy.ID
	words   map[string]string // kindWord arguments by name
}

// word returns the argument declared with that name.
func (a *args) word(name string) string { return a.words[name] }

func usageLine(params []param) string {
	names := make([]string, len(params))
	for i, p := range params {
		names[i] = p.name
	}
	return strings.Join(names, " ")
}

// resolve checks the count of positional arguments and resolves each by
// its kind, in order (a CHANNEL or ROLE is looked up in the SERVER
// before it).
func (cmd *command) resolve(ctx context.Context, e *env, raw []string) (*args, error) {
	if len(raw) != len(cmd.params) {
		return nil, fmt.Errorf("%w: want %d arguments, got %d", errUsage, len(cmd.params), len(raw))
	}
	a := &args{words: map[string]string{}}
	var err error
	for i, p := range cmd.params {
		v := raw[i]
		switch p.kind {
		case kindWord:
			a.words[p.name] = v
		case kindServer:
			if a.c, a.server, err = serverArg(ctx, e, v); err == nil && cmd.fresh {
				e.refresh(ctx, a.c, a.server)
			}
		case kindServerID:
			a.server, err = policy.ParseID(v)
		case kindChannel:
			a.channel, err = channelArg(ctx, a.c, a.server, v)
		case kindRole:
			a.role, err = roleArg(ctx, a.c, a.server, v)
		case kindMember:
			a.member, err = policy.ParsePublicKey(v)
		case kindDevice:
			if a.c != nil {
				a.device, err = a.c.ResolveDevice(ctx, v)
			} else {
				a.device, err = policy.ParsePublicKey(v)
			}
		case kindMessage:
			if a.c != nil {
				a.message, err = a.c.ResolveMessage(ctx, a.server, v)
			} else {
				a.message, err = policy.ParseID(v)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return a, nil
}

// plain defines a command without flags.
func plain(name string, params []param, help string, run runFunc) command {
	return command{name: name, params: params, help: help, bind: func(*flag.FlagSet, *env) runFunc { return run }}
}

// fetchingState marks a command that acts on a server: it refreshes the
// server's state log before resolving the arguments after SERVER.
func (cmd command) fetchingState() command {
	cmd.fresh = true
	return cmd
}

// refreshTimeout bounds the refresh before an act: past it, or when the
// hubs cannot be read, the command goes on with the local state and says
// so.
var refreshTimeout = 3 * time.Second

// refresh fetches what the server's hubs logged since the last read here.
func (e *env) refresh(ctx context.Context, c *client.Client, server policy.ID) {
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	if _, err := c.Refresh(ctx, server); err != nil {
		fmt.Fprintf(e.stderr, "guild: using the local state of the server: refreshing it failed: %v\n", err)
	}
}

// options are a command's flags.
type options interface {
	register(fs *flag.FlagSet, e *env)
}

// flagged defines a command with flags: O holds them, and run gets them
// parsed.
func flagged[O any, P interface {
	*O
	options
}](name string, params []param, help string, run func(ctx context.Context, e *env, a *args, o P) (any, error)) command {
	return command{name: name, params: params, help: help, bind: func(fs *flag.FlagSet, e *env) runFunc {
		o := P(new(O))
		o.register(fs, e)
		return func(ctx context.Context, e *env, a *args) (any, error) { return run(ctx, e, a, o) }
	}}
}

// serverArg resolves a server given by ID or by name.
func serverArg(ctx context.Context, e *env, arg string) (*client.Client, policy.ID, error) {
	c, err := e.client()
	if err != nil {
		return nil, policy.ID{}, err
	}
	if id, err := policy.ParseID(arg); err == nil {
		return c, id, nil
	}
	ids, err := c.Servers(ctx)
	if err != nil {
		return nil, policy.ID{}, err
	}
	var found []policy.ID
	for _, id := range ids {
		if st, err := c.State(ctx, id); err == nil && st.Policy().Name == arg {
			found = append(found, id)
		}
	}
	switch len(found) {
	case 1:
		return c, found[0], nil
	case 0:
		return nil, policy.ID{}, fmt.Errorf("no server named %q here (guild server list)", arg)
	}
	return nil, policy.ID{}, fmt.Errorf("%d servers are named %q: use the ID", len(found), arg)
}

func channelArg(ctx context.Context, c *client.Client, server policy.ID, arg string) (policy.ID, error) {
	if id, err := policy.ParseID(arg); err == nil {
		return id, nil
	}
	return c.ChannelByName(ctx, server, strings.TrimPrefix(arg, "#"))
}

func roleArg(ctx context.Context, c *client.Client, server policy.ID, arg string) (policy.ID, error) {
	if id, err := policy.ParseID(arg); err == nil {
		return id, nil
	}
	st, err := c.State(ctx, server)
	if err != nil {
		return policy.ID{}, err
	}
	for _, r := range st.Roles() {
		if r.Name == arg {
			return r.ID, nil
		}
	}
	return policy.ID{}, fmt.Errorf("no role named %q", arg)
}

// resolveAll resolves each of a repeated flag's names (channels, roles).
func resolveAll(names []string, resolve func(string) (policy.ID, error)) ([]policy.ID, error) {
	var ids []policy.ID
	for _, n := range names {
		id, err := resolve(n)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }
