package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/guildhall/guildhall/client/hubapi"
	"github.com/guildhall/guildhall/relay/turnrest"
	"github.com/guildhall/guildhall/wire"
)

var turnCommands = []command{
	flagged("turn credentials", nil, "TURN REST credentials in WebRTC's iceServers shape: from a hub, with this device's session (--hub URL), or, for an operator, made with a relay's static-auth-secret", turnCredentials),
}

type turnOpts struct {
	hub, secretFile, user string
	urls                  multi
	ttl                   time.Duration
	fs                    *flag.FlagSet // which flags were given
}

func (o *turnOpts) register(fs *flag.FlagSet, e *env) {
	o.fs = fs
	fs.StringVar(&o.hub, "hub", "", "ask this hub (http[s]://HOST:PORT) for credentials for this identity, signing in with this device; the hub's operator chooses relays and lifetime")
	fs.StringVar(&o.secretFile, "secret-file", e.getenv("GUILD_TURN_SECRET_FILE"), "file holding the relay's shared secret, first line (or GUILD_TURN_SECRET_FILE; GUILD_TURN_SECRET holds the secret itself). Never on the command line: it would show in ps and shell history")
	fs.StringVar(&o.user, "user", "", "user name to embed")
	fs.Var(&o.urls, "url", "a TURN URI to include, e.g. turn:relay.example.org:3478?transport=udp (repeatable)")
	fs.DurationVar(&o.ttl, "ttl", 24*time.Hour, "lifetime")
}

// turnCredentials issues what the relay's own check accepts
// (turnrest.Issue is both), or fetches what a hub issues.
func turnCredentials(ctx context.Context, e *env, a *args, o *turnOpts) (any, error) {
	if o.hub != "" {
		return hubTURNCredentials(ctx, e, o)
	}
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
		return nil, fmt.Errorf("%w: no secret: give --secret-file FILE (or set GUILD_TURN_SECRET_FILE or GUILD_TURN_SECRET), or --hub URL to ask a hub", errUsage)
	}
	for _, u := range o.urls {
		if err := turnrest.CheckURL(u); err != nil {
			return nil, fmt.Errorf("%w: --url: %w", errUsage, err)
		}
	}
	exp := time.Now().Add(o.ttl)
	u, p, err := turnrest.Issue(secret, o.user, exp)
	if err != nil {
		return nil, errors.Join(errUsage, err)
	}
	return turnOut{URLs: o.urls, Username: u, Credential: p, TTL: int64(o.ttl.Seconds()), Expires: exp}, nil
}

// hubTURNCredentials signs in to the hub with this device and prints what
// it issues, in the shape of the offline credentials. The identity is the
// user part, and the hub's operator chooses relays and lifetime: the
// flags that would choose them here are refused rather than ignored.
func hubTURNCredentials(ctx context.Context, e *env, o *turnOpts) (any, error) {
	var given []string
	o.fs.Visit(func(f *flag.Flag) {
		if f.Name == "secret-file" || f.Name == "user" || f.Name == "url" || f.Name == "ttl" {
			given = append(given, "--"+f.Name)
		}
	})
	if len(given) > 0 {
		return nil, fmt.Errorf("%w: %s with --hub: the hub chooses relays, user and lifetime", errUsage, strings.Join(given, ", "))
	}
	url, err := hubURL(o.hub)
	if err != nil {
		return nil, err
	}
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	dev, err := c.Device()
	if err != nil {
		return nil, err
	}
	h := hubapi.New(url)
	token, err := h.Login(ctx, dev)
	if err != nil {
		return nil, err
	}
	cr, err := h.TURNCredentials(ctx, token)
	if hubapi.IsCode(err, wire.CodeNotConfigured) {
		return nil, fmt.Errorf("hub %s issues no TURN credentials: its operator has not configured relays (turn: in its hub.yaml)", url)
	}
	if err != nil {
		return nil, err
	}
	return turnOut{URLs: cr.URLs, Username: cr.Username, Credential: cr.Credential, TTL: cr.TTL, Expires: time.UnixMilli(cr.Expires)}, nil
}
