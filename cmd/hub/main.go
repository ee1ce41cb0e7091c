// Command hub runs a Guildhall hub: it stores the ciphertext and state logs
// of the servers it hosts, serves them to their members, fans new messages
// out to subscribers, and signs storage receipts.
//
// With no configuration it runs a home node: embedded storage in the user's
// data directory, listening on loopback. A config file (-config, see
// configs/hub.yaml) selects PostgreSQL and S3, listeners, TLS, limits and
// admission; GUILDHALL_HUB_* environment variables and flags override it.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

// version is stamped at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "hub:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("hub", flag.ContinueOnError)
	fl.SetOutput(stderr)
	if len(args) > 0 && commands[args[0]] != nil { // "hub link-request -data-dir X": flags after the command
		args = append(slices.Clone(args[1:]), args[0])
	}
	cfg, err := configure(fl, args, getenv, stdout)
	if err != nil || cfg == nil { // an error, or -version or -healthcheck done
		return err
	}
	s, err := cfg.resolve(getenv)
	if err != nil {
		return err
	}
	switch {
	case fl.NArg() == 1 && commands[fl.Arg(0)] != nil:
		return commands[fl.Arg(0)](ctx, s, stdout)
	case fl.NArg() > 0:
		return fmt.Errorf("unknown command or argument %q (commands: %s; flags: hub -help)", strings.Join(fl.Args(), " "), commandNames())
	}
	reread := func() (settings, error) { return reconfigure(args, getenv) }
	return serve(ctx, s, reread, stderr, stdout)
}
