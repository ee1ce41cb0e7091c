package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/guildhall/guildhall/client"
)

var messageCommands = []command{
	flagged("send", []param{pServer, pChannel, word("TEXT")}, "encrypt and send a message (with --file attachments); TEXT - reads it from standard input", send).fetchingState(),
	flagged("sync", []param{pServer, pChannel}, "fetch new messages by cursor (or --reconcile with a hub you switched to)", syncChannel).fetchingState(),
	flagged("history", []param{pServer, pChannel}, "show a channel's messages from the local store", history),
	plain("tail", []param{pServer, pChannel}, "follow a channel live (Ctrl-C to stop)", tail).fetchingState(),
	plain("delete", []param{pServer, pMessageID}, "delete a message (yours, or any if you moderate the channel)", deleteMessage).fetchingState(),
	flagged("download", []param{pServer, pChannel, pMessageID}, "decrypt a message's attachments into --out", download).fetchingState(),
	flagged("report", []param{pServer, pMessageID}, "report a message to the operators of the server's hubs (--reason); they can read that message only", report).fetchingState(),
	flagged("profile set", []param{pServer, pChannel}, "send your display name (and --about), shown for you in the whole server, through a channel's readers", profileSet).fetchingState(),
}

type sendOpts struct{ files multi }

func (o *sendOpts) register(fs *flag.FlagSet, e *env) {
	fs.Var(&o.files, "file", "file to attach, encrypted (repeatable)")
}

func send(ctx context.Context, e *env, a *args, o *sendOpts) (any, error) {
	var fl []client.File
	for _, p := range o.files {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		e.progress("encrypting and uploading %s (%d bytes)\n", filepath.Base(p), len(b))
		fl = append(fl, client.File{Name: filepath.Base(p), Data: b})
	}
	text := a.word("TEXT")
	if text == "-" { // from standard input, past the shell's argument limit
		b, err := io.ReadAll(io.LimitReader(e.stdin, client.MaxText+1))
		if err != nil {
			return nil, fmt.Errorf("reading the message from standard input: %w", err)
		}
		text = strings.TrimSuffix(string(b), "\n")
	}
	sent, err := a.c.Send(ctx, a.server, a.channel, text, fl...)
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

type syncOpts struct{ reconcile string }

func (o *syncOpts) register(fs *flag.FlagSet, e *env) {
	fs.StringVar(&o.reconcile, "reconcile", "", "hub URL to reconcile with instead of reading by cursor")
}

// syncChannel runs after the server's state log was fetched (fresh), so
// that a channel created elsewhere is found by name.
func syncChannel(ctx context.Context, e *env, a *args, o *syncOpts) (any, error) {
	if o.reconcile != "" {
		rs, err := a.c.Reconcile(ctx, o.reconcile, a.server, a.channel)
		msg := fmt.Sprintf("reconciled with %s in %d rounds: %d envelopes fetched, %d posted back", o.reconcile, rs.Rounds, rs.Fetched, rs.Posted)
		if rs.Refused > 0 {
			msg += fmt.Sprintf(" (%d older than the hub takes from clients: they return from its peer hubs)", rs.Refused)
		}
		return message(msg), err
	}
	total := 0
	n, err := a.c.Sync(ctx, a.server, a.channel, func(k int) {
		total += k
		e.progress("\rsynced %d envelopes", total)
	})
	e.progress("\n")
	return message(fmt.Sprintf("%d new envelopes", n)), err
}

type historyOpts struct{ limit int }

func (o *historyOpts) register(fs *flag.FlagSet, e *env) {
	fs.IntVar(&o.limit, "limit", 50, "most recent messages (0: all)")
}

func history(ctx context.Context, e *env, a *args, o *historyOpts) (any, error) {
	msgs, err := a.c.History(ctx, a.server, a.channel, o.limit)
	if err != nil {
		return nil, err
	}
	names, err := a.c.Names(ctx, a.server)
	if err != nil {
		return nil, err
	}
	out := historyOut{}
	for _, m := range msgs {
		if m.Body.Profile != nil {
			continue
		}
		out = append(out, toMsg(m, names))
	}
	return out, nil
}

// tail follows the channel until Ctrl-C, through the hub's restarts and
// outages: it says when it is live and when it lost the connection, and
// prints what was posted meanwhile once back.
func tail(ctx context.Context, e *env, a *args) (any, error) {
	name := a.channel.String()
	if st, err := a.c.State(ctx, a.server); err == nil {
		if ch, ok := st.Channel(a.channel); ok {
			name = "#" + ch.Name
		}
	}
	err := a.c.Follow(ctx, a.server, a.channel, func(m client.Message) {
		if m.Body.Profile == nil {
			names, _ := a.c.Names(ctx, a.server) // the local store: a failure shows keys instead
			e.print(historyOut{toMsg(m, names)})
		}
	}, func(ev client.FollowEvent) {
		if ev.Live {
			fmt.Fprintf(e.stderr, "live: following %s on %s\n", name, ev.Hub)
		} else {
			fmt.Fprintf(e.stderr, "connection lost: %v; retrying in %.1fs\n", ev.Err, ev.Retry.Seconds())
		}
	})
	return nil, err
}

func deleteMessage(ctx context.Context, e *env, a *args) (any, error) {
	return message("deleted " + a.message.String()), a.c.Delete(ctx, a.server, a.message)
}

type reportOpts struct{ reason string }

func (o *reportOpts) register(fs *flag.FlagSet, e *env) {
	fs.StringVar(&o.reason, "reason", "", "why, for the operator (at most 1,024 bytes)")
}

func report(ctx context.Context, e *env, a *args, o *reportOpts) (any, error) {
	hubs, err := a.c.Report(ctx, a.server, a.message, o.reason)
	if err != nil {
		return nil, err
	}
	return message(fmt.Sprintf("reported %s to the operators of %s: they can read that message, its sender and you as the reporter, nothing else", a.message, strings.Join(hubs, ", "))), nil
}

type downloadOpts struct{ dir string }

func (o *downloadOpts) register(fs *flag.FlagSet, e *env) {
	fs.StringVar(&o.dir, "out", ".", "directory to write the files to")
}

func download(ctx context.Context, e *env, a *args, o *downloadOpts) (any, error) {
	msgs, err := a.c.History(ctx, a.server, a.channel, 0)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(msgs, func(m client.Message) bool { return m.ID == a.message })
	if i < 0 {
		return nil, fmt.Errorf("no message %s in the local history", a.message)
	}
	var written []string
	for _, f := range msgs[i].Body.Files {
		e.progress("downloading %s (%d bytes)\n", f.Name, f.Size)
		b, err := a.c.Download(ctx, a.server, f)
		if err != nil {
			return nil, err
		}
		p := filepath.Join(o.dir, filepath.Base(f.Name))
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return nil, err
		}
		written = append(written, p)
	}
	return message("wrote " + strings.Join(written, ", ")), nil
}

type profileOpts struct{ name, about string }

func (o *profileOpts) register(fs *flag.FlagSet, e *env) {
	fs.StringVar(&o.name, "name", "", "display name")
	fs.StringVar(&o.about, "about", "", "a few words about you")
}

func profileSet(ctx context.Context, e *env, a *args, o *profileOpts) (any, error) {
	_, err := a.c.SetProfile(ctx, a.server, a.channel, client.Profile{Name: o.name, About: o.about})
	return message("profile sent"), err
}
