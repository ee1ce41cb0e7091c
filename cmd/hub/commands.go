package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/guildhall/guildhall/storage/profile"
)

// commands are the hub's one-shot commands, run instead of serving, with
// the same flags and configuration: "hub COMMAND [flags]".
var commands = map[string]func(ctx context.Context, s settings, stdout io.Writer) error{
	"link-request":  func(_ context.Context, s settings, stdout io.Writer) error { return linkRequest(s, stdout) },
	"mark-restored": markRestored,
}

func commandNames() string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// markRestored gives the store a new incarnation after the operator put
// back a copy of its files (an embedded store restored from a backup; a
// PostgreSQL restore renews it by itself). Clients then read everything
// again instead of trusting cursors the copy may hand out a second time,
// and post back what the copy lacks. Run it with the hub stopped.
func markRestored(ctx context.Context, s settings, stdout io.Writer) error {
	stores, err := profile.Open(ctx, s.stores)
	if err != nil {
		return err
	}
	defer stores.Close()
	m, ok := stores.Meta.(interface {
		MarkRestored(ctx context.Context) (string, error)
	})
	if !ok {
		return fmt.Errorf("this store cannot be marked restored")
	}
	inc, err := m.MarkRestored(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "new incarnation %s: clients will read this hub's channels again and post back what it lacks\n", inc)
	return nil
}
