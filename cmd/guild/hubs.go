package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"strings"

	"github.com/guildhall/guildhall/policy"
)

// The hubs a server is reached through, as this client keeps them: the
// first answers reads first (a member's home node, once preferred).
var hubCommands = []command{
	plain("server hubs", []param{pServer}, "list the hubs this client uses for the server, preferred first", serverHubs),
	flagged("server hub add", []param{pServer, word("HUB-URL")}, "use a hub for the server, bringing it the state log if it does not host the server yet", serverHubAdd),
	plain("server hub prefer", []param{pServer, word("HUB-URL")}, "read from this hub of the server first", serverHubPrefer),
}

// hubURL checks that a hub is named by an http or https URL with a host
// and nothing after it but a path: "127.0.0.1:7420" alone is refused.
func hubURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%w: hub URL %q: want http://HOST:PORT or https://HOST[:PORT] (for example http://127.0.0.1:7420)", errUsage, raw)
	}
	return strings.TrimRight(raw, "/"), nil
}

type hubItem struct {
	URL       string `json:"url"`
	Preferred bool   `json:"preferred,omitempty"`
}

type hubList struct {
	Server policy.ID `json:"server"`
	Hubs   []hubItem `json:"hubs"`
}

func (l hubList) Human() string {
	if len(l.Hubs) == 0 {
		return "no hubs for " + l.Server.String() + " (guild server hub add SERVER URL)"
	}
	var b strings.Builder
	for _, h := range l.Hubs {
		b.WriteString(h.URL)
		if h.Preferred {
			b.WriteString("  (preferred)")
		}
		b.WriteByte('\n')
	}
	return strings.TrimRight(b.String(), "\n")
}

func serverHubs(ctx context.Context, e *env, a *args) (any, error) {
	hubs, err := a.c.Hubs(ctx, a.server)
	if err != nil {
		return nil, err
	}
	out := hubList{Server: a.server, Hubs: []hubItem{}}
	for i, h := range hubs {
		out.Hubs = append(out.Hubs, hubItem{URL: h, Preferred: i == 0 && len(hubs) > 1})
	}
	return out, nil
}

type hubAddOpts struct{ prefer bool }

func (o *hubAddOpts) register(fs *flag.FlagSet, e *env) {
	fs.BoolVar(&o.prefer, "prefer", false, "also read from it first (a home node)")
}

func serverHubAdd(ctx context.Context, e *env, a *args, o *hubAddOpts) (any, error) {
	u, err := hubURL(a.word("HUB-URL"))
	if err != nil {
		return nil, err
	}
	brought, err := a.c.BringHub(ctx, a.server, u)
	if err == nil && o.prefer {
		err = a.c.PreferHub(ctx, a.server, u)
	}
	if err != nil {
		return nil, fmt.Errorf("%s is recorded for the server, but: %w", u, err)
	}
	msg := "added " + u
	if brought {
		msg += " (it now hosts the server: the state log was published to it)"
	}
	if o.prefer {
		msg += ", preferred"
	}
	return message(msg), nil
}

func serverHubPrefer(ctx context.Context, e *env, a *args) (any, error) {
	u, err := hubURL(a.word("HUB-URL"))
	if err != nil {
		return nil, err
	}
	hubs, err := a.c.Hubs(ctx, a.server)
	if err != nil {
		return nil, err
	}
	for _, h := range hubs {
		if h == u {
			return message("preferred " + u), a.c.PreferHub(ctx, a.server, u)
		}
	}
	return nil, fmt.Errorf("%s is not a hub of the server here (guild server hub add SERVER URL)", u)
}
