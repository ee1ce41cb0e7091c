// Command guild is Guildhall's reference client and operator's tool: it
// creates identities and servers, invites and joins, sends, tails and syncs
// encrypted messages through hubs, bans and re-keys; and for operators it
// manages a hub's tenants and quotas and issues TURN credentials.
//
// Run "guild help" for the commands. State lives in --home (default
// $XDG_DATA_HOME/guildhall/guild, else ~/.local/share/guildhall/guild).
// The commands live in one file per noun (identity.go, server.go...).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"

	"golang.org/x/term"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	sys := system{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, terminal: isTerminal(os.Stderr)}
	if isTerminal(os.Stdin) {
		sys.readSecret = func() (string, error) {
			b, err := term.ReadPassword(int(os.Stdin.Fd()))
			return strings.TrimSpace(string(b)), err
		}
	}
	sys.hostname, _ = os.Hostname()
	sys.userHome, _ = os.UserHomeDir()
	if err := run(ctx, os.Args[1:], sys); err != nil {
		os.Exit(reportError(os.Stderr, wantsJSON(os.Args[1:]), err))
	}
}

var errUsage = errors.New("usage")

// commands are every noun's commands; usage lists them sorted.
var commands = slices.Concat(identityCommands, deviceCommands, serverCommands, memberCommands,
	channelCommands, messageCommands, adminCommands, turnCommands, hubCommands)

func run(ctx context.Context, argv []string, sys system) error {
	global := flag.NewFlagSet("guild", flag.ContinueOnError)
	global.SetOutput(sys.stderr)
	home := global.String("home", defaultHome(sys), "where this client keeps its keys and history")
	asJSON := global.Bool("json", false, "print results as JSON")
	global.Usage = func() { usage(sys.stderr) }
	if err := global.Parse(argv); err != nil {
		return errUsage
	}
	argv = global.Args()
	if len(argv) == 0 {
		usage(sys.stdout)
		return nil
	}
	if handled, err := builtin(argv, sys); handled {
		return err
	}
	e := &env{system: sys, home: *home, json: *asJSON}
	defer e.close()
	for _, cmd := range commands {
		words := strings.Fields(cmd.name)
		if len(argv) < len(words) || strings.Join(argv[:len(words)], " ") != cmd.name {
			continue
		}
		return e.exec(ctx, &cmd, argv[len(words):])
	}
	if group := groupOf(argv[0]); len(group) > 0 { // "guild server": say what it holds
		groupHelp(sys.stderr, argv[0], group)
		return fmt.Errorf("%w: guild %s needs a subcommand", errUsage, strings.Join(argv, " "))
	}
	usage(sys.stderr)
	return fmt.Errorf("%w: unknown command %q", errUsage, strings.Join(argv, " "))
}

// exec parses a command's flags and arguments, runs it and prints its
// result.
func (e *env) exec(ctx context.Context, cmd *command, argv []string) error {
	fs := flag.NewFlagSet("guild "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	do := cmd.bind(fs, e)
	fs.BoolVar(&e.json, "json", e.json, "print results as JSON") // global flags, accepted after the command too
	fs.StringVar(&e.home, "home", e.home, "where this client keeps its keys and history")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: guild %s %s\n  %s\n", cmd.name, usageLine(cmd.params), cmd.help)
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, argv)
	if err != nil {
		return errUsage
	}
	if cmd.name != "tail" { // tail runs until stopped and says itself what it is doing
		defer e.waiting(cmd.name)() // a person at a terminal is told when a command takes a while
	}
	a, err := cmd.resolve(ctx, e, pos)
	var out any
	if err == nil {
		out, err = do(ctx, e, a)
	}
	if err != nil {
		if errors.Is(err, errUsage) {
			fs.Usage()
		}
		return err
	}
	return e.print(out)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: guild [--home DIR] [--json] COMMAND [flags] ARGS")
	fmt.Fprintln(w, "\ncommands:")
	sorted := slices.Concat(commands)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	for _, c := range sorted {
		fmt.Fprintf(w, "  %-22s %s\n", c.name, c.help)
	}
	fmt.Fprintln(w, "\nSERVER and CHANNEL are IDs or names; MEMBER is an identity key. \"guild help COMMAND\" shows its flags.")
	fmt.Fprintln(w, exitCodesHelp)
}
