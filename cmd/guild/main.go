// Command guild is Guildhall's reference client and operator's tool: it
// creates identities and servers, invites and joins, sends, tails and syncs
// encrypted messages through hubs, bans and re-keys; and for operators it
// manages a hub's tenants and quotas and issues TURN credentials.
//
// Run "guild help" for the commands. State lives in --home (default
// $XDG_DATA_HOME/guildhall/guild, else ~/.local/share/guildhall/guild).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"

	"github.com/guildhall/guildhall/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "guild:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

// env is what every command gets.
type env struct {
	home   string
	json   bool
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	c      *client.Client // opened lazily
}

func (e *env) client() (*client.Client, error) {
	if e.c == nil {
		c, err := client.Open(e.home)
		if err != nil {
			return nil, err
		}
		e.c = c
	}
	return e.c, nil
}

// command is one subcommand: "server create", "send"...
type command struct {
	name  string
	args  string // usage of the positional arguments
	help  string
	flags func(fs *flag.FlagSet) func(ctx context.Context, e *env, args []string) (any, error)
}

func run(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) error {
	global := flag.NewFlagSet("guild", flag.ContinueOnError)
	global.SetOutput(stderr)
	home := global.String("home", defaultHome(), "where this client keeps its keys and history")
	asJSON := global.Bool("json", false, "print results as JSON")
	global.Usage = func() { usage(stderr) }
	if err := global.Parse(argv); err != nil {
		return errUsage
	}
	args := global.Args()
	if len(args) == 0 || args[0] == "help" {
		usage(stdout)
		return nil
	}
	e := &env{home: *home, json: *asJSON, stdin: stdin, stdout: stdout, stderr: stderr}
	defer func() {
		if e.c != nil {
			e.c.Close()
		}
	}()
	for _, cmd := range commands {
		words := strings.Fields(cmd.name)
		if len(args) < len(words) || strings.Join(args[:len(words)], " ") != cmd.name {
			continue
		}
		fs := flag.NewFlagSet("guild "+cmd.name, flag.ContinueOnError)
		fs.SetOutput(stderr)
		do := cmd.flags(fs)
		fs.Usage = func() {
			fmt.Fprintf(stderr, "usage: guild %s %s\n  %s\n", cmd.name, cmd.args, cmd.help)
			fs.PrintDefaults()
		}
		pos, err := parseInterspersed(fs, args[len(words):])
		if err != nil {
			return errUsage
		}
		out, err := do(ctx, e, pos)
		if err != nil {
			if errors.Is(err, errUsage) {
				fs.Usage()
			}
			return err
		}
		return e.print(out)
	}
	usage(stderr)
	return fmt.Errorf("%w: unknown command %q", errUsage, strings.Join(args, " "))
}

// print writes a result: JSON with --json, else its human form.
func (e *env) print(v any) error {
	if v == nil {
		return nil
	}
	if e.json {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	if h, ok := v.(interface{ Human() string }); ok {
		fmt.Fprintln(e.stdout, h.Human())
		return nil
	}
	fmt.Fprintln(e.stdout, v)
	return nil
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: guild [--home DIR] [--json] COMMAND [flags] ARGS")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	byName := map[string]command{}
	for _, c := range commands {
		names = append(names, c.name)
		byName[c.name] = c
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-22s %s\n", n, byName[n].help)
	}
	fmt.Fprintln(w, "\nSERVER and CHANNEL are IDs or names; MEMBER is an identity key. \"guild COMMAND -h\" shows its flags.")
}

func defaultHome() string {
	if base := os.Getenv("XDG_DATA_HOME"); base != "" {
		return filepath.Join(base, "guildhall", "guild")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".guild"
	}
	return filepath.Join(home, ".local", "share", "guildhall", "guild")
}

// parseInterspersed parses flags wherever they appear among the positional
// arguments ("send SERVER CHANNEL TEXT --file F"); after "--" everything is
// positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// need checks the count of positional arguments.
func need(args []string, n int) error {
	if len(args) != n {
		return fmt.Errorf("%w: want %d arguments, got %d", errUsage, n, len(args))
	}
	return nil
}

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }
