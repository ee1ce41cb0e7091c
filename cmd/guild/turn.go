package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/guildhall/guildhall/relay"
)

var turnCommands = []command{
	flagged("turn credentials", nil, "operator: TURN REST credentials for a relay's static-auth-secret, in WebRTC's iceServers shape", turnCredentials),
}

type turnOpts struct {
	secretFile, user string
	urls             multi
	ttl              time.Duration
}

func (o *turnOpts) register(fs *flag.FlagSet, e *env) {
	fs.StringVar(&o.secretFile, "secret-file", e.getenv("GUILD_TURN_SECRET_FILE"), "file holding the relay's shared secret, first line (or GUILD_TURN_SECRET_FILE; GUILD_TURN_SECRET holds the secret itself). Never on the command line: it would show in ps and shell history")
	fs.StringVar(&o.user, "user", "", "user name to embed")
	fs.Var(&o.urls, "url", "a TURN URI to include, e.g. turn:relay.example.org:3478?transport=udp (repeatable)")
	fs.DurationVar(&o.ttl, "ttl", 24*time.Hour, "lifetime")
}

// turnCredentials issues what the relay's own check accepts
// (relay.RESTCredential is both).
func turnCredentials(ctx context.Context, e *env, a *args, o *turnOpts) (any, error) {
	secret := e.getenv("GUILD_TURN_SECRET")
	if o.secretFile != "" {
		b, err := os.ReadFile(o.secretFile)
		if err != nil {
			return nil, err
		}
		secret, _, _ = strings.Cut(string(b), "\n")
		secret = strings.TrimSpace(secret)
	}
	if secret == "" {
		return nil, fmt.Errorf("%w: no secret: give --secret-file FILE (or set GUILD_TURN_SECRET_FILE or GUILD_TURN_SECRET)", errUsage)
	}
	for _, u := range o.urls {
		if !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") {
			return nil, fmt.Errorf("%w: --url %q is not a turn: or turns: URI", errUsage, u)
		}
	}
	exp := time.Now().Add(o.ttl)
	u, p, err := relay.RESTCredential(secret, o.user, exp)
	if err != nil {
		return nil, errors.Join(errUsage, err)
	}
	return turnOut{URLs: o.urls, Username: u, Credential: p, TTL: int64(o.ttl.Seconds()), Expires: exp}, nil
}
