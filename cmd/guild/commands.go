package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/guildhall/guildhall/client"
	"github.com/guildhall/guildhall/client/hubapi"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/relay"
	"github.com/guildhall/guildhall/wire"
)

type runFunc = func(ctx context.Context, e *env, args []string) (any, error)

// simple adapts a command without flags.
func simple(f runFunc) func(*flag.FlagSet) runFunc { return func(*flag.FlagSet) runFunc { return f } }

var commands = []command{
	{"identity create", "", "create an identity and certify this device; prints the recovery phrase once", func(fs *flag.FlagSet) runFunc {
		name := fs.String("device", hostname(), "this device's name")
		return func(ctx context.Context, e *env, args []string) (any, error) {
			c, err := e.client()
			if err != nil {
				return nil, err
			}
			id, err := c.CreateIdentity(ctx, *name)
			if err != nil {
				return nil, err
			}
			return identityOut{Identity: id.Public(), Device: policy.KeyOf(mustDevice(c).Keys.Sign), Phrase: id.Phrase()}, nil
		}
	}},
	{"identity show", "", "show this identity and device", simple(func(ctx context.Context, e *env, args []string) (any, error) {
		c, err := e.client()
		if err != nil {
			return nil, err
		}
		d, err := c.Device()
		if err != nil {
			return nil, err
		}
		_, holds := c.Identity()
		return identityOut{Identity: d.Identity(), Device: d.Cert.Device, DeviceName: d.Cert.Name, HoldsIdentityKey: holds, Expires: time.UnixMilli(d.Cert.Expires)}, nil
	})},
	{"identity phrase", "", "print the recovery phrase (needs the identity key on this device)", simple(func(ctx context.Context, e *env, args []string) (any, error) {
		id, err := identityKey(e)
		if err != nil {
			return nil, err
		}
		return phraseOut(id.Phrase()), nil
	})},
	{"identity recover", "", "re-derive the identity from its recovery phrase (read from stdin) on this device", func(fs *flag.FlagSet) runFunc {
		name := fs.String("device", hostname(), "this device's name")
		return func(ctx context.Context, e *env, args []string) (any, error) {
			line, err := readLine(e)
			if err != nil {
				return nil, err
			}
			id, err := client.IdentityFromPhrase(line)
			if err != nil {
				return nil, err
			}
			return adopt(ctx, e, id, *name)
		}
	}},
	{"identity export", "FILE", "write the identity key encrypted under a password (GUILD_PASSWORD, else stdin)", simple(func(ctx context.Context, e *env, args []string) (any, error) {
		if err := need(args, 1); err != nil {
			return nil, err
		}
		id, err := identityKey(e)
		if err != nil {
			return nil, err
		}
		pw, err := password(e)
		if err != nil {
			return nil, err
		}
		b, err := id.Export(pw)
		if err != nil {
			return nil, err
		}
		return message("identity written to " + args[0]), os.WriteFile(args[0], b, 0o600)
	})},
	{"identity import", "FILE", "take an exported identity onto this device (password from GUILD_PASSWORD, else stdin)", func(fs *flag.FlagSet) runFunc {
		name := fs.String("device", hostname(), "this device's name")
		return func(ctx context.Context, e *env, args []string) (any, error) {
			if err := need(args, 1); err != nil {
				return nil, err
			}
			b, err := os.ReadFile(args[0])
			if err != nil {
				return nil, err
			}
			pw, err := password(e)
			if err != nil {
				return nil, err
			}
			id, err := client.ImportIdentity(b, pw)
			if err != nil {
				return nil, err
			}
			return adopt(ctx, e, id, *name)
		}
	}},
	{"device request", "", "on a new device: print a link request for the identity holder", func(fs *flag.FlagSet) runFunc {
		name := fs.String("name", hostname(), "this device's name")
		return func(ctx context.Context, e *env, args []string) (any, error) {
			c, err := e.client()
			if err != nil {
				return nil, err
			}
			req, err := c.RequestLink(ctx, *name)
			if err != nil {
				return nil, err
			}
			return tokenOut{Token: req.Encode(), Next: "on the device holding the identity: guild device approve TOKEN"}, nil
		}
	}},
	{"device approve", "TOKEN", "certify a new device of this identity; prints its certificate", simple(func(ctx context.Context, e *env, args []string) (any, error) {
		if err := need(args, 1); err != nil {
			return nil, err
		}
		c, err := e.client()
		if err != nil {
			return nil, err
		}
		req, err := policy.DecodeLinkRequest(args[0])
		if err != nil {
			return nil, err
		}
		cert, err := c.LinkDevice(ctx, req)
		if err != nil {
			return nil, err
		}
		return tokenOut{Token: policy.EncodeCertToken(cert), Next: "on the new device: guild device install TOKEN"}, nil
	})},
	{"device install", "TOKEN", "on the new device: install the certificate the identity holder approved", simple(func(ctx context.Context, e *env, args []string) (any, error) {
		if err := need(args, 1); err != nil {
			return nil, err
		}
		c, err := e.client()
		if err != nil {
			return nil, err
		}
		cert, err := policy.DecodeCertToken(args[0])
		if err != nil {
			return nil, err
		}
		return message("this device now acts for " + cert.Identity.String()), c.InstallCert(ctx, cert)
	})},
	{"device revoke", "SERVER DEVICE", "revoke one of this identity's devices in a server (and re-key its channels)", simple(func(ctx context.Context, e *env, args []string) (any, error) {
		if err := need(args, 2); err != nil {
			return nil, err
		}
		c, server, err := serverArg(ctx, e, args[0])
		if err != nil {
			return nil, err
		}
		dev, err := policy.ParsePublicKey(args[1])
		if err != nil {
			return nil, err
		}
		return message("revoked " + dev.String()), c.RevokeDevice(ctx, server, dev)
	})},
	{"server create", "NAME", "create a server on one or more hubs", func(fs *flag.FlagSet) runFunc {
		var hubs multi
		fs.Var(&hubs, "hub", "hub URL (repeatable)")
		public := fs.Bool("public", false, "let hubs serve the history to anyone")
		return func(ctx context.Context, e *env, args []string) (any, error) {
			if err := need(args, 1); err != nil {
				return nil, err
			}
			if len(hubs) == 0 {
				return nil, fmt.Errorf("%w: at least one --hub", errUsage)
			}
			c, err := e.client()
			if err != nil {
				return nil, err
			}
			id, err := c.CreateServer(ctx, args[0], hubs, client.ServerOptions{PublicHistory: *public})
			if err != nil {
				return nil, err
			}
			return idOut{Kind: "server", ID: id, Name: args[0]}, nil
		}
	}},
	{"server list", "", "list the servers this client knows", simple(func(ctx context.Context, e *env, args []string) (any, error) {
		c, err := e.client()
		if err != nil {
			return nil, err
		}
		ids, err := c.Servers(ctx)
		if err != nil {
			return nil, err
		}
		var out serverList
		for _, id := range ids {
			st, err := c.State(ctx, id)
			if err != nil {
				continue
			}
			hubs, _ := c.Hubs(ctx, id)
			out = append(out, serverItem{ID: id, Name: st.Policy().Name, Members: len(st.Members()), Hubs: hubs})
		}
		return out, nil
	})},
	{"server show", "SERVER", "show the server's state, resolved and verified here", simple(func(ctx context.Context, e *env, args []string) (any, error) {
		if err := need(args, 1); err != nil {
			return nil, err
		}
		c, server, err := serverArg(ctx, e, args[0])
		if err != nil {
			return nil, err
		}
		st, err := c.State(ctx, server)
		if err != nil {
			return nil, err
		}
		return showState(server, st), nil
	})},
	{"server sync", "SERVER", "fetch and verify the server's state log from its hubs", simple(func(ctx context.Context, e *env, args []string) (any, error) {
		if err := need(args, 1); err != nil {
			return nil, err
		}
		c, server, err := serverArg(ctx, e, args[0])
		if err != nil {
			return nil, err
		}
		n, err := c.SyncState(ctx, server)
		return message(fmt.Sprintf("%d new state events", n)), err
	})},
	{"channel create", "SERVER NAME", "create a channel", func(fs *flag.FlagSet) runFunc {
		dur := fs.String("durability", "replicated", "strict, replicated or guaranteed")
		topic := fs.String("topic", "", "topic")
		retention := fs.Duration("retention", 0, "keep envelopes this long (0: forever)")
		retBytes := fs.Uint64("retention-bytes", 0, "keep at most this many bytes (0: no cap)")
		return func(ctx context.Context, e *env, args []string) (any, error) {
			if err := need(args, 2); err != nil {
				return nil, err
			}
			d, err := policy.ParseDurability(*dur)
			if err != nil {
				return nil, err
			}
			c, server, err := serverArg(ctx, e, args[0])
			if err != nil {
				return nil, err
			}
			id, err := c.CreateChannel(ctx, server, policy.ChannelCreate{Name: args[1], Topic: *topic, Durability: d, RetentionMs: retention.Milliseconds(), RetentionBytes: *retBytes})
			if err != nil {
				return nil, err
			}
			return idOut{Kind: "channel", ID: id, Name: args[1]}, nil
		}
	}},
	{"channel override", "SERVER CHANNEL", "set a role's (or everyone's) allow and deny permissions in a channel", func(fs *flag.FlagSet) runFunc {
		role := fs.String("role", "", "role name or ID (default: everyone)")
		allow := fs.String("allow", "", "permissions to allow, e.g. read,post")
		deny := fs.String("deny", "", "permissions to deny")
		return func(ctx context.Context, e *env, args []string) (any, error) {
			if err := need(args, 2); err != nil {
				return nil, err
			}
			c, server, err := serverArg(ctx, e, args[0])
			if err != nil {
				return nil, err
			}
			ch, err := channelArg(ctx, c, server, args[1])
			if err != nil {
				return nil, err
			}
			var r policy.ID
			if *role != "" {
				if r, err = roleArg(ctx, c, server, *role); err != nil {
					return nil, err
				}
			}
			a, err := policy.ParsePerm(*allow)
			if err != nil {
				return nil, err
			}
			d, err := policy.ParsePerm(*deny)
			if err != nil {
				return nil, err
			}
			_, err = c.PublishChange(ctx, server, &policy.ChannelOverride{Channel: ch, Role: r, Allow: a, Deny: d})
			return message("override set"), err
		}
	}},
	{"role create", "SERVER NAME", "define a role", func(fs *flag.FlagSet) runFunc {
		rank := fs.Uint("rank", 10, "rank: higher outranks lower")
		perms := fs.String("perms", "read,post", "permissions")
		return func(ctx context.Context, e *env, args []string) (any, error) {
			if err := need(args, 2); err != nil {
				return nil, err
			}
			p, err := policy.ParsePerm(*perms)
			if err != nil {
				return nil, err
			}
			c, server, err := serverArg(ctx, e, args[0])
			if err != nil {
				return nil, err
			}
			ev, err := c.Publish(ctx, server, &policy.RoleDefine{Name: args[1], Rank: uint32(*rank), Perms: p})
			if err != nil {
				return nil, err
			}
			return idOut{Kind: "role", ID: ev.ID, Name: args[1]}, nil
		}
	}},
	{"role grant", "SERVER ROLE MEMBER", "give a member a role", simple(roleChange(true))},
	{"role revoke", "SERVER ROLE MEMBER", "take a role from a member (re-keys channels they can no longer read)", simple(roleChange(false))},
	{"storage grant", "SERVER HUB-URL", "make a hub eligible to store the server (or --channel strict channels)", func(fs *flag.FlagSet) runFunc {
		var chans multi
		fs.Var(&chans, "channel", "channel (repeatable); none: every non-strict channel")
		return func(ctx context.Context, e *env, args []string) (any, error) {
			if err := need(args, 2); err != nil {
				return nil, err
			}
			c, server, err := serverArg(ctx, e, args[0])
			if err != nil {
				return nil, err
			}
			var ids []policy.ID
			for _, ch := range chans {
				id, err := channelArg(ctx, c, server, ch)
				if err != nil {
					return nil, err
				}
				ids = append(ids, id)
			}
			return message("granted " + args[1]), c.GrantStorage(ctx, server, args[1], ids...)
		}
	}},
	{"ban", "SERVER MEMBER", "ban a member and re-key the channels they could read", func(fs *flag.FlagSet) runFunc {
		reason := fs.String("reason", "", "reason, recorded in the state log")
		return func(ctx context.Context, e *env, args []string) (any, error) {
			if err := need(args, 2); err != nil {
				return nil, err
			}
			c, server, err := serverArg(ctx, e, args[0])
			if err != nil {
				return nil, err
			}
			m, err := policy.ParsePublicKey(args[1])
			if err != nil {
				return nil, err
			}
			return message("banned " + m.String()), c.Ban(ctx, server, m, *reason)
		}
	}},
	{"unban", "SERVER MEMBER", "lift a ban (the member joins again with an invite)", simple(func(ctx context.Context, e *env, args []string) (any, error) {
		if err := need(args, 2); err != nil {
			return nil, err
		}
		c, server, err := serverArg(ctx, e, args[0])
		if err != nil {
			return nil, err
		}
		m, err := policy.ParsePublicKey(args[1])
		if err != nil {
			return nil, err
		}
		_, err = c.Publish(ctx, server, &policy.Unban{Member: m})
		return message("unbanned " + m.String()), err
	})},
	{"invite create", "SERVER", "create an invite token that works while you are offline", func(fs *flag.FlagSet) runFunc {
		uses := fs.Uint("uses", 1, "joins it admits")
		ttl := fs.Duration("ttl", 7*24*time.Hour, "lifetime")
		var roles, relays multi
		fs.Var(&roles, "role", "role granted on join (repeatable)")
		fs.Var(&relays, "relay", "relay address to include as a hint (repeatable)")
		return func(ctx context.Context, e *env, args []string) (any, error) {
			if err := need(args, 1); err != nil {
				return nil, err
			}
			c, server, err := serverArg(ctx, e, args[0])
			if err != nil {
				return nil, err
			}
			var ids []policy.ID
			for _, r := range roles {
				id, err := roleArg(ctx, c, server, r)
				if err != nil {
					return nil, err
				}
				ids = append(ids, id)
			}
			tok, err := c.Invite(ctx, server, uint32(*uses), *ttl, ids, relays)
			if err != nil {
				return nil, err
			}
			return tokenOut{Token: tok, Next: "the invitee runs: guild join TOKEN"}, nil
		}
	}},
	{"join", "TOKEN", "join a server with an invite token", simple(func(ctx context.Context, e *env, args []string) (any, error) {
		if err := need(args, 1); err != nil {
			return nil, err
		}
		c, err := e.client()
		if err != nil {
			return nil, err
		}
		id, err := c.Join(ctx, args[0])
		if err != nil {
			return nil, err
		}
		st, _ := c.State(ctx, id)
		name := ""
		if st != nil {
			name = st.Policy().Name
		}
		return idOut{Kind: "joined server", ID: id, Name: name}, nil
	})},
	{"send", "SERVER CHANNEL TEXT", "encrypt and send a message (with --file attachments)", func(fs *flag.FlagSet) runFunc {
		var files multi
		fs.Var(&files, "file", "file to attach, encrypted (repeatable)")
		return func(ctx context.Context, e *env, args []string) (any, error) {
			if err := need(args, 3); err != nil {
				return nil, err
			}
			c, server, err := serverArg(ctx, e, args[0])
			if err != nil {
				return nil, err
			}
			ch, err := channelArg(ctx, c, server, args[1])
			if err != nil {
				return nil, err
			}
			var fl []client.File
			for _, p := range files {
				b, err := os.ReadFile(p)
				if err != nil {
					return nil, err
				}
				e.progress("encrypting and uploading %s (%d bytes)\n", filepath.Base(p), len(b))
				fl = append(fl, client.File{Name: filepath.Base(p), Data: b})
			}
			sent, err := c.Send(ctx, server, ch, args[2], fl...)
			if err != nil {
				return nil, err
			}
			out := sentOut{ID: sent.ID}
			for _, r := range sent.Receipts {
				out.Receipts = append(out.Receipts, receiptOut{Hub: r.Hub, Seq: r.Seq, StoredAt: time.UnixMilli(r.StoredAt)})
			}
			for url, err := range sent.Refused {
				out.Refused = append(out.Refused, url+": "+err.Error())
			}
			return out, nil
		}
	}},
	{"sync", "SERVER CHANNEL", "fetch new messages by cursor (or --reconcile with a hub you switched to)", func(fs *flag.FlagSet) runFunc {
		rec := fs.String("reconcile", "", "hub URL to reconcile with instead of reading by cursor")
		return func(ctx context.Context, e *env, args []string) (any, error) {
			if err := need(args, 2); err != nil {
				return nil, err
			}
			c, server, err := serverArg(ctx, e, args[0])
			if err != nil {
				return nil, err
			}
			if _, err := c.SyncState(ctx, server); err != nil {
				return nil, err
			}
			ch, err := channelArg(ctx, c, server, args[1])
			if err != nil {
				return nil, err
			}
			if *rec != "" {
				n, rounds, err := c.Reconcile(ctx, *rec, server, ch)
				return message(fmt.Sprintf("reconciled with %s in %d rounds: %d envelopes fetched", *rec, rounds, n)), err
			}
			total := 0
			n, err := c.Sync(ctx, server, ch, func(k int) {
				total += k
				e.progress("\rsynced %d envelopes", total)
			})
			e.progress("\n")
			return message(fmt.Sprintf("%d new envelopes", n)), err
		}
	}},
	{"history", "SERVER CHANNEL", "show a channel's messages from the local store", func(fs *flag.FlagSet) runFunc {
		limit := fs.Int("limit", 50, "most recent messages (0: all)")
		return func(ctx context.Context, e *env, args []string) (any, error) {
			if err := need(args, 2); err != nil {
				return nil, err
			}
			c, server, err := serverArg(ctx, e, args[0])
			if err != nil {
				return nil, err
			}
			ch, err := channelArg(ctx, c, server, args[1])
			if err != nil {
				return nil, err
			}
			msgs, err := c.History(ctx, server, ch, *limit)
			if err != nil {
				return nil, err
			}
			names, _ := c.Profiles(ctx, server, ch)
			out := historyOut{}
			for _, m := range msgs {
				if m.Body.Profile != nil {
					continue
				}
				out = append(out, toMsg(m, names))
			}
			return out, nil
		}
	}},
	{"tail", "SERVER CHANNEL", "follow a channel live (Ctrl-C to stop)", simple(func(ctx context.Context, e *env, args []string) (any, error) {
		if err := need(args, 2); err != nil {
			return nil, err
		}
		c, server, err := serverArg(ctx, e, args[0])
		if err != nil {
			return nil, err
		}
		ch, err := channelArg(ctx, c, server, args[1])
		if err != nil {
			return nil, err
		}
		for {
			err := c.Tail(ctx, server, ch, func(m client.Message) {
				if m.Body.Profile == nil {
					e.print(historyOut{toMsg(m, nil)})
				}
			})
			if ctx.Err() != nil {
				return nil, nil
			}
			if client.IsCode(err, wire.CodeSlow) || client.IsCode(err, wire.CodeGoingAway) {
				e.progress("resubscribing: %v\n", err)
				time.Sleep(time.Second)
				continue
			}
			return nil, err
		}
	})},
	{"delete", "SERVER MESSAGE-ID", "delete a message (yours, or any if you moderate the channel)", simple(func(ctx context.Context, e *env, args []string) (any, error) {
		if err := need(args, 2); err != nil {
			return nil, err
		}
		c, server, err := serverArg(ctx, e, args[0])
		if err != nil {
			return nil, err
		}
		id, err := policy.ParseID(args[1])
		if err != nil {
			return nil, err
		}
		return message("deleted " + id.String()), c.Delete(ctx, server, id)
	})},
	{"download", "SERVER CHANNEL MESSAGE-ID", "decrypt a message's attachments into --out", func(fs *flag.FlagSet) runFunc {
		dir := fs.String("out", ".", "directory to write the files to")
		return func(ctx context.Context, e *env, args []string) (any, error) {
			if err := need(args, 3); err != nil {
				return nil, err
			}
			c, server, err := serverArg(ctx, e, args[0])
			if err != nil {
				return nil, err
			}
			ch, err := channelArg(ctx, c, server, args[1])
			if err != nil {
				return nil, err
			}
			id, err := policy.ParseID(args[2])
			if err != nil {
				return nil, err
			}
			msgs, err := c.History(ctx, server, ch, 0)
			if err != nil {
				return nil, err
			}
			i := slices.IndexFunc(msgs, func(m client.Message) bool { return m.ID == id })
			if i < 0 {
				return nil, fmt.Errorf("no message %s in the local history", id)
			}
			var written []string
			for _, a := range msgs[i].Body.Files {
				e.progress("downloading %s (%d bytes)\n", a.Name, a.Size)
				b, err := c.Download(ctx, server, a)
				if err != nil {
					return nil, err
				}
				p := filepath.Join(*dir, filepath.Base(a.Name))
				if err := os.WriteFile(p, b, 0o600); err != nil {
					return nil, err
				}
				written = append(written, p)
			}
			return message("wrote " + strings.Join(written, ", ")), nil
		}
	}},
	{"profile set", "SERVER CHANNEL", "send your display name (and --about) to a channel's readers", func(fs *flag.FlagSet) runFunc {
		name := fs.String("name", "", "display name")
		about := fs.String("about", "", "a few words about you")
		return func(ctx context.Context, e *env, args []string) (any, error) {
			if err := need(args, 2); err != nil {
				return nil, err
			}
			c, server, err := serverArg(ctx, e, args[0])
			if err != nil {
				return nil, err
			}
			ch, err := channelArg(ctx, c, server, args[1])
			if err != nil {
				return nil, err
			}
			_, err = c.SetProfile(ctx, server, ch, client.Profile{Name: *name, About: *about})
			return message("profile sent"), err
		}
	}},
	{"admin tenants", "", "operator: list a hub's tenants and usage", adminCmd(func(ctx context.Context, a *hubapi.Admin, args []string) (any, error) {
		t, err := a.Tenants(ctx)
		return tenantsOut(t), err
	})},
	{"admin quota", "SERVER", "operator: create a tenant or set its quota (--bytes, --envelopes, --blobs)", func(fs *flag.FlagSet) runFunc {
		bytes := fs.Uint64("bytes", 0, "bytes (0: unlimited)")
		envs := fs.Uint64("envelopes", 0, "envelopes (0: unlimited)")
		blobs := fs.Uint64("blobs", 0, "blobs (0: unlimited)")
		return adminCmd(func(ctx context.Context, a *hubapi.Admin, args []string) (any, error) {
			if err := need(args, 1); err != nil {
				return nil, err
			}
			id, err := policy.ParseID(args[0])
			if err != nil {
				return nil, err
			}
			t, err := a.PutTenant(ctx, id, wire.Quota{Bytes: *bytes, Envelopes: *envs, Blobs: *blobs})
			return tenantsOut{Tenants: []wire.Tenant{t}}, err
		})(fs)
	}},
	{"admin suspend", "SERVER", "operator: suspend a tenant's writes", adminCmd(suspendCmd(true))},
	{"admin resume", "SERVER", "operator: resume a tenant's writes", adminCmd(suspendCmd(false))},
	{"admin usage", "", "operator: usage of every tenant as CSV, for billing", adminCmd(func(ctx context.Context, a *hubapi.Admin, args []string) (any, error) {
		b, err := a.UsageCSV(ctx)
		return message(strings.TrimSpace(string(b))), err
	})},
	{"turn credentials", "", "operator: TURN REST credentials for a relay's static-auth-secret", func(fs *flag.FlagSet) runFunc {
		secret := fs.String("secret", os.Getenv("GUILD_TURN_SECRET"), "the relay's shared secret (or GUILD_TURN_SECRET)")
		user := fs.String("user", "", "user name to embed")
		ttl := fs.Duration("ttl", 24*time.Hour, "lifetime")
		return func(ctx context.Context, e *env, args []string) (any, error) {
			exp := time.Now().Add(*ttl)
			u, p, err := relay.RESTCredential(*secret, *user, exp)
			if err != nil {
				return nil, err
			}
			return turnOut{Username: u, Password: p, Expires: exp}, nil
		}
	}},
}

func (e *env) progress(format string, args ...any) {
	if fi, err := os.Stderr.Stat(); e.stderr == os.Stderr && err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		fmt.Fprintf(e.stderr, format, args...)
	}
}

func adminCmd(f func(ctx context.Context, a *hubapi.Admin, args []string) (any, error)) func(*flag.FlagSet) runFunc {
	return func(fs *flag.FlagSet) runFunc {
		url := fs.String("admin", envOr("GUILD_ADMIN_URL", "http://127.0.0.1:7421"), "the hub's admin URL (or GUILD_ADMIN_URL)")
		token := fs.String("token", os.Getenv("GUILD_ADMIN_TOKEN"), "admin token (or GUILD_ADMIN_TOKEN)")
		return func(ctx context.Context, e *env, args []string) (any, error) {
			return f(ctx, hubapi.NewAdmin(*url, *token), args)
		}
	}
}

func suspendCmd(suspend bool) func(ctx context.Context, a *hubapi.Admin, args []string) (any, error) {
	return func(ctx context.Context, a *hubapi.Admin, args []string) (any, error) {
		if err := need(args, 1); err != nil {
			return nil, err
		}
		id, err := policy.ParseID(args[0])
		if err != nil {
			return nil, err
		}
		t, err := a.Suspend(ctx, id, suspend)
		return tenantsOut{Tenants: []wire.Tenant{t}}, err
	}
}

func roleChange(grant bool) runFunc {
	return func(ctx context.Context, e *env, args []string) (any, error) {
		if err := need(args, 3); err != nil {
			return nil, err
		}
		c, server, err := serverArg(ctx, e, args[0])
		if err != nil {
			return nil, err
		}
		role, err := roleArg(ctx, c, server, args[1])
		if err != nil {
			return nil, err
		}
		m, err := policy.ParsePublicKey(args[2])
		if err != nil {
			return nil, err
		}
		if grant {
			_, err = c.Publish(ctx, server, &policy.RoleGrant{Role: role, Member: m})
			return message("granted"), err
		}
		_, err = c.PublishChange(ctx, server, &policy.RoleRevoke{Role: role, Member: m})
		return message("revoked"), err
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "device"
	}
	return h
}

func mustDevice(c *client.Client) *client.Device {
	d, _ := c.Device()
	return d
}

func identityKey(e *env) (client.Identity, error) {
	c, err := e.client()
	if err != nil {
		return client.Identity{}, err
	}
	id, ok := c.Identity()
	if !ok {
		return client.Identity{}, errors.New("this device does not hold the identity key (it was linked)")
	}
	return id, nil
}

func adopt(ctx context.Context, e *env, id client.Identity, name string) (any, error) {
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	if err := c.RestoreIdentity(ctx, id, name); err != nil {
		return nil, err
	}
	return identityOut{Identity: id.Public(), Device: mustDevice(c).Cert.Device}, nil
}

func readLine(e *env) (string, error) {
	sc := bufio.NewScanner(e.stdin)
	if !sc.Scan() {
		return "", errors.New("nothing on standard input")
	}
	return strings.TrimSpace(sc.Text()), nil
}

func password(e *env) (string, error) {
	if p := os.Getenv("GUILD_PASSWORD"); p != "" {
		return p, nil
	}
	fmt.Fprint(e.stderr, "password: ")
	return readLine(e)
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
