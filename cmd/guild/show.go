package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/guildhall/guildhall/policy"
)

// fullStateOut is server show's result: the resolved state with its bans,
// overrides, topics, creators and storage grants.
type fullStateOut struct {
	stateOut
	Creators  []policy.PublicKey `json:"creators"`
	Topics    map[string]string  `json:"topics,omitempty"` // channel name -> topic
	Bans      []banOut           `json:"bans,omitempty"`
	Overrides []overrideOut      `json:"overrides,omitempty"`
	Storage   grantList          `json:"storage"`
}

type banOut struct {
	Member policy.PublicKey `json:"member"`
	Reason string           `json:"reason,omitempty"`
}

type overrideOut struct {
	Channel string `json:"channel"`
	Role    string `json:"role"` // "everyone" for the base
	Allow   string `json:"allow,omitempty"`
	Deny    string `json:"deny,omitempty"`
}

func showFull(ctx context.Context, a *args) (fullStateOut, error) {
	st, err := a.c.State(ctx, a.server)
	if err != nil {
		return fullStateOut{}, err
	}
	rec, err := a.c.Record(ctx, a.server)
	if err != nil {
		return fullStateOut{}, err
	}
	g, err := grants(ctx, a)
	if err != nil {
		return fullStateOut{}, err
	}
	out := fullStateOut{stateOut: showState(a.server, st), Creators: rec.Creators, Storage: g}
	for _, c := range st.Channels() {
		if c.Topic != "" {
			if out.Topics == nil {
				out.Topics = map[string]string{}
			}
			out.Topics[c.Name] = c.Topic
		}
	}
	for _, b := range rec.Bans {
		out.Bans = append(out.Bans, banOut{Member: b.Member, Reason: b.Reason})
	}
	for _, o := range rec.Overrides {
		ch, _ := st.Channel(o.Channel)
		role := "everyone"
		if !o.Role.IsZero() {
			r, _ := st.Role(o.Role)
			role = r.Name
		}
		oo := overrideOut{Channel: ch.Name, Role: role}
		if o.Allow != 0 {
			oo.Allow = o.Allow.String()
		}
		if o.Deny != 0 {
			oo.Deny = o.Deny.String()
		}
		out.Overrides = append(out.Overrides, oo)
	}
	return out, nil
}

func (o fullStateOut) Human() string {
	var b strings.Builder
	b.WriteString(o.stateOut.Human())
	b.WriteString("\ncreators:\n")
	for _, c := range o.Creators {
		fmt.Fprintf(&b, "  %s\n", c)
	}
	if len(o.Topics) > 0 {
		b.WriteString("topics:\n")
		for _, c := range o.Channels {
			if t, ok := o.Topics[c.Name]; ok {
				fmt.Fprintf(&b, "  #%-18s %s\n", c.Name, t)
			}
		}
	}
	if len(o.Overrides) > 0 {
		b.WriteString("overrides:\n")
		for _, v := range o.Overrides {
			fmt.Fprintf(&b, "  #%-18s %-12s allow %s  deny %s\n", v.Channel, v.Role, orNone(v.Allow), orNone(v.Deny))
		}
	}
	if len(o.Bans) > 0 {
		b.WriteString("banned:\n")
		for _, v := range o.Bans {
			fmt.Fprintf(&b, "  %s  %s\n", v.Member, v.Reason)
		}
	}
	b.WriteString("storage:\n  ")
	b.WriteString(strings.ReplaceAll(o.Storage.Human(), "\n", "\n  "))
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
