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

type inviteItem struct {
	ID      policy.ID `json:"id"`
	Uses    uint32    `json:"uses"`
	Used    uint32    `json:"used"`
	Left    uint32    `json:"left"`
	Expires time.Time `json:"expires,omitzero"`
	Expired bool      `json:"expired,omitempty"`
	Revoked bool      `json:"revoked,omitempty"`
}

type inviteList []inviteItem

func (l inviteList) Human() string {
	if len(l) == 0 {
		return "no invites of yours in the state log (an invite appears once someone joins with it)"
	}
	var b strings.Builder
	for _, i := range l {
		state := fmt.Sprintf("%d of %d uses left, expires %s", i.Left, i.Uses, i.Expires.Format(time.DateTime))
		switch {
		case i.Revoked:
			state = "revoked"
		case i.Expired:
			state = fmt.Sprintf("expired %s", i.Expires.Format(time.DateTime))
		}
		fmt.Fprintf(&b, "%s  %s\n", i.ID, state)
	}
	return strings.TrimRight(b.String(), "\n")
}

// inviteList lists this identity's invites that the state log knows: those
// a join used, and those revoked.
func inviteListCmd(ctx context.Context, e *env, a *args) (any, error) {
	me, ok := a.c.Identity()
	if !ok {
		return nil, client.ErrNoIdentity
	}
	rec, err := a.c.Record(ctx, a.server)
	if err != nil {
		return nil, err
	}
	now := a.c.Now()
	out := inviteList{}
	for _, i := range rec.Invites {
		if i.Body.Author != me.Public() {
			continue // another's, or known only by a revocation
		}
		it := inviteItem{ID: i.ID, Uses: i.Body.Uses, Used: i.Used, Expires: time.UnixMilli(i.Body.Expires).UTC(), Revoked: i.Revoked}
		it.Expired = now.UnixMilli() >= i.Body.Expires
		if i.Used < i.Body.Uses && !it.Revoked && !it.Expired {
			it.Left = i.Body.Uses - i.Used
		}
		out = append(out, it)
	}
	// invites no join used, known by this identity's revocation
	for _, i := range rec.Invites {
		if i.Body.Author.IsZero() && i.Revoked && i.RevokedBy == me.Public() {
			out = append(out, inviteItem{ID: i.ID, Revoked: true})
		}
	}
	return out, nil
}

// inviteRef is an invite's ID, or the invite token itself.
func inviteRef(arg string) (policy.ID, error) {
	if id, err := policy.ParseID(arg); err == nil {
		return id, nil
	}
	if inv, err := policy.DecodeInviteToken(arg); err == nil {
		return inv.ID, nil
	}
	return policy.ID{}, usageError(fmt.Sprintf("%q is neither an invite ID (guild invite list) nor an invite token", arg))
}

func inviteRevoke(ctx context.Context, e *env, a *args) (any, error) {
	id, err := inviteRef(a.word("INVITE-ID"))
	if err != nil {
		return nil, err
	}
	return message("revoked invite " + id.String()), a.c.RevokeInvite(ctx, a.server, id)
}

func storageRevoke(ctx context.Context, e *env, a *args) (any, error) {
	url, err := hubURL(a.word("HUB-URL"))
	if err != nil {
		return nil, err
	}
	return message("revoked the storage grant of " + url), a.c.RevokeStorage(ctx, a.server, url)
}

type grantItem struct {
	Node     policy.PublicKey `json:"node"`
	URL      string           `json:"url,omitempty"`
	Channels []string         `json:"channels,omitempty"` // none: every non-strict channel
}

type grantList []grantItem

func (l grantList) Human() string {
	if len(l) == 0 {
		return "no hub holds a storage grant"
	}
	var b strings.Builder
	for _, g := range l {
		where := g.URL
		if where == "" {
			where = "(hub not among this server's hubs here)"
		}
		what := "every non-strict channel"
		if len(g.Channels) > 0 {
			what = "#" + strings.Join(g.Channels, ", #")
		}
		fmt.Fprintf(&b, "%s  %s  %s\n", g.Node, where, what)
	}
	return strings.TrimRight(b.String(), "\n")
}

// grants lists the storage grants in force, with the URL of each hub this
// client knows.
func grants(ctx context.Context, a *args) (grantList, error) {
	rec, err := a.c.Record(ctx, a.server)
	if err != nil {
		return nil, err
	}
	st, err := a.c.State(ctx, a.server)
	if err != nil {
		return nil, err
	}
	urls, err := a.c.HubNodes(ctx, a.server)
	if err != nil {
		return nil, err
	}
	out := grantList{}
	for _, g := range rec.Grants {
		it := grantItem{Node: g.Node, URL: urls[g.Node]}
		for _, id := range g.Channels {
			ch, _ := st.Channel(id)
			it.Channels = append(it.Channels, ch.Name)
		}
		out = append(out, it)
	}
	return out, nil
}

func storageShow(ctx context.Context, e *env, a *args) (any, error) { return grants(ctx, a) }

type serverPolicyOpts struct {
	fs       *flag.FlagSet
	everyone string
	public   bool
}

func (o *serverPolicyOpts) register(fs *flag.FlagSet, e *env) {
	o.fs = fs
	fs.StringVar(&o.everyone, "everyone", "", "every member's base permissions, e.g. read,post (none: \"\")")
	fs.BoolVar(&o.public, "public", false, "let hubs serve the history to anyone (--public=false: members only)")
}

// serverPolicy changes the policy; channels whose readers it removes are
// re-keyed.
func serverPolicy(ctx context.Context, e *env, a *args, o *serverPolicyOpts) (any, error) {
	st, err := a.c.State(ctx, a.server)
	if err != nil {
		return nil, err
	}
	p := st.Policy()
	if !isSet(o.fs, "everyone") && !isSet(o.fs, "public") {
		return nil, usageError("nothing to change: give --everyone or --public")
	}
	if isSet(o.fs, "everyone") {
		if p.Everyone, err = policy.ParsePerm(o.everyone); err != nil {
			return nil, err
		}
	}
	if isSet(o.fs, "public") {
		p.PublicHistory = o.public
	}
	if _, err := a.c.PublishChange(ctx, a.server, &p); err != nil {
		return nil, err
	}
	s := "everyone may: " + p.Everyone.String()
	if p.PublicHistory {
		s += "  (history public)"
	}
	return message(s), nil
}

func serverRename(ctx context.Context, e *env, a *args) (any, error) {
	name := a.word("NAME")
	if strings.TrimSpace(name) == "" {
		return nil, usageError("a server's name cannot be empty")
	}
	st, err := a.c.State(ctx, a.server)
	if err != nil {
		return nil, err
	}
	p := st.Policy()
	p.Name = name
	if _, err := a.c.Publish(ctx, a.server, &p); err != nil {
		return nil, err
	}
	return idOut{Kind: "renamed server", ID: a.server, Name: name}, nil
}
