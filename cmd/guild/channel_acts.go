package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/guildhall/guildhall/policy"
)

type channelUpdateOpts struct {
	fs                      *flag.FlagSet
	name, topic, durability string
	retention               time.Duration
	retentionBytes          uint64
}

func (o *channelUpdateOpts) register(fs *flag.FlagSet, e *env) {
	o.fs = fs
	fs.StringVar(&o.name, "name", "", "new name")
	fs.StringVar(&o.topic, "topic", "", "new topic (empty: none)")
	fs.StringVar(&o.durability, "durability", "", "strict, replicated or guaranteed")
	fs.DurationVar(&o.retention, "retention", 0, "keep envelopes this long (0: forever)")
	fs.Uint64Var(&o.retentionBytes, "retention-bytes", 0, "keep at most this many bytes (0: no cap)")
}

// currentChannel returns a channel's settings as an update that changes
// nothing.
func currentChannel(ctx context.Context, a *args) (policy.ChannelUpdate, error) {
	st, err := a.c.State(ctx, a.server)
	if err != nil {
		return policy.ChannelUpdate{}, err
	}
	ch, ok := st.Channel(a.channel)
	if !ok {
		return policy.ChannelUpdate{}, fmt.Errorf("no channel %s in this server", a.channel)
	}
	return policy.ChannelUpdate{Channel: ch.ID, Name: ch.Name, Topic: ch.Topic, Durability: ch.Durability,
		RetentionMs: ch.RetentionMs, RetentionBytes: ch.RetentionBytes, Archived: ch.Archived}, nil
}

func channelUpdate(ctx context.Context, e *env, a *args, o *channelUpdateOpts) (any, error) {
	u, err := currentChannel(ctx, a)
	if err != nil {
		return nil, err
	}
	set := false
	o.fs.Visit(func(f *flag.Flag) {
		set = true
		switch f.Name {
		case "name":
			u.Name = o.name
		case "topic":
			u.Topic = o.topic
		case "retention":
			u.RetentionMs = o.retention.Milliseconds()
		case "retention-bytes":
			u.RetentionBytes = o.retentionBytes
		}
	})
	if !set {
		return nil, usageError("nothing to change: give --name, --topic, --durability, --retention or --retention-bytes")
	}
	if isSet(o.fs, "name") && o.name == "" {
		return nil, usageError("a channel's name cannot be empty")
	}
	if o.retention < 0 {
		return nil, usageError("--retention cannot be negative")
	}
	if isSet(o.fs, "durability") {
		if u.Durability, err = policy.ParseDurability(o.durability); err != nil {
			return nil, err
		}
	}
	if _, err := a.c.Publish(ctx, a.server, &u); err != nil {
		return nil, err
	}
	return idOut{Kind: "updated channel", ID: u.Channel, Name: u.Name}, nil
}

func channelArchive(ctx context.Context, e *env, a *args) (any, error) {
	u, err := currentChannel(ctx, a)
	if err != nil {
		return nil, err
	}
	if u.Archived {
		return nil, fmt.Errorf("#%s is already archived", u.Name)
	}
	u.Archived = true
	if _, err := a.c.Publish(ctx, a.server, &u); err != nil {
		return nil, err
	}
	return message("archived #" + u.Name + ": its history stays, it takes no more posts"), nil
}
