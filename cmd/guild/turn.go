package main

import (
	"context"
	"flag"
	"time"

	"github.com/guildhall/guildhall/relay"
)

var turnCommands = []command{
	flagged("turn credentials", nil, "operator: TURN REST credentials for a relay's static-auth-secret", turnCredentials),
}

type turnOpts struct {
	secret, user string
	ttl          time.Duration
}

func (o *turnOpts) register(fs *flag.FlagSet, e *env) {
	fs.StringVar(&o.secret, "secret", e.getenv("GUILD_TURN_SECRET"), "the relay's shared secret (or GUILD_TURN_SECRET)")
	fs.StringVar(&o.user, "user", "", "user name to embed")
	fs.DurationVar(&o.ttl, "ttl", 24*time.Hour, "lifetime")
}

// turnCredentials issues what the relay's own check accepts
// (relay.RESTCredential is both).
func turnCredentials(ctx context.Context, e *env, a *args, o *turnOpts) (any, error) {
	exp := time.Now().Add(o.ttl)
	u, p, err := relay.RESTCredential(o.secret, o.user, exp)
	if err != nil {
		return nil, err
	}
	return turnOut{Username: u, Password: p, Expires: exp}, nil
}
