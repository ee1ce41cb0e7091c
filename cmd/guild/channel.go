package main

import (
	"context"
	"flag"
	"time"

	"github.com/guildhall/guildhall/policy"
)

var channelCommands = []command{
	flagged("channel create", []param{pServer, word("NAME")}, "create a channel", channelCreate).fetchingState(),
	flagged("channel override", []param{pServer, pChannel}, "set a role's (or everyone's) allow and deny permissions in a channel, or --clear them", channelOverride).fetchingState(),
	flagged("channel update", []param{pServer, pChannel}, "change a channel's --name, --topic, --durability or retention", channelUpdate).fetchingState(),
	plain("channel archive", []param{pServer, pChannel}, "archive a channel: it keeps its history and takes no more posts", channelArchive).fetchingState(),
}

type channelOpts struct {
	durability, topic string
	retention         time.Duration
	retentionBytes    uint64
}

func (o *channelOpts) register(fs *flag.FlagSet, e *env) {
	fs.StringVar(&o.durability, "durability", "replicated", "strict, replicated or guaranteed")
	fs.StringVar(&o.topic, "topic", "", "topic")
	fs.DurationVar(&o.retention, "retention", 0, "keep envelopes this long (0: forever)")
	fs.Uint64Var(&o.retentionBytes, "retention-bytes", 0, "keep at most this many bytes (0: no cap)")
}

func channelCreate(ctx context.Context, e *env, a *args, o *channelOpts) (any, error) {
	d, err := policy.ParseDurability(o.durability)
	if err != nil {
		return nil, err
	}
	name := a.word("NAME")
	id, err := a.c.CreateChannel(ctx, a.server, policy.ChannelCreate{Name: name, Topic: o.topic, Durability: d,
		RetentionMs: o.retention.Milliseconds(), RetentionBytes: o.retentionBytes})
	if err != nil {
		return nil, err
	}
	return idOut{Kind: "channel", ID: id, Name: name}, nil
}

type overrideOpts struct {
	role, allow, deny string
	clear             bool
}

func (o *overrideOpts) register(fs *flag.FlagSet, e *env) {
	fs.StringVar(&o.role, "role", "", "role name or ID (default: everyone)")
	fs.StringVar(&o.allow, "allow", "", "permissions to allow, e.g. read,post")
	fs.StringVar(&o.deny, "deny", "", "permissions to deny")
	fs.BoolVar(&o.clear, "clear", false, "remove the override")
}

// channelOverride re-keys the channel if the override removes readers.
func channelOverride(ctx context.Context, e *env, a *args, o *overrideOpts) (any, error) {
	switch {
	case o.clear && (o.allow != "" || o.deny != ""):
		return nil, usageError("--clear removes the override: give it without --allow/--deny")
	case !o.clear && o.allow == "" && o.deny == "":
		return nil, usageError("nothing to set: give --allow/--deny, or --clear")
	}
	var r policy.ID
	if o.role != "" {
		var err error
		if r, err = roleRef(ctx, a.c, a.server, o.role); err != nil {
			return nil, err
		}
	}
	allow, err := policy.ParsePerm(o.allow)
	if err != nil {
		return nil, err
	}
	deny, err := policy.ParsePerm(o.deny)
	if err != nil {
		return nil, err
	}
	if !o.clear && allow == 0 && deny == 0 {
		return nil, usageError("nothing to set: --allow/--deny name no permission (or give --clear)")
	}
	_, err = a.c.PublishChange(ctx, a.server, &policy.ChannelOverride{Channel: a.channel, Role: r, Allow: allow, Deny: deny})
	if o.clear {
		return message("override cleared"), err
	}
	return message("override set"), err
}
