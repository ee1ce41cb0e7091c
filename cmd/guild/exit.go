package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/guildhall/guildhall/client"
	"github.com/guildhall/guildhall/policy"
)

// Exit codes, for scripts (guild help lists them).
const (
	exitLocal       = 1 // a failure here: the local store, a file, input that does not decode
	exitUsage       = 2 // the command line is wrong
	exitRefused     = 3 // a hub, or the server's rules checked here, refused the act
	exitUnreachable = 4 // no hub answered
)

const exitCodesHelp = `exit codes: 0 done, 1 a local failure (store, file, bad data), 2 a wrong command line,
  3 refused (by a hub, or by the server's rules checked here: the code says which), 4 no hub answered.
With --json an error is one object on stderr: {"code", "message", "exit"}.`

// classify returns an error's exit code and its stable code: the hub's or
// policy's code for a refusal, else usage, unreachable or local.
func classify(err error) (int, string) {
	var he *client.HubError
	var ne net.Error
	switch {
	case errors.Is(err, errUsage):
		return exitUsage, "usage"
	case errors.As(err, &he):
		return exitRefused, he.Code
	case policy.CodeOf(err) != "":
		return exitRefused, string(policy.CodeOf(err))
	case errors.Is(err, client.ErrNoHub), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne):
		return exitUnreachable, "unreachable"
	}
	return exitLocal, "local"
}

// reportError prints err for a person, or as one JSON object.
func reportError(w io.Writer, asJSON bool, err error) int {
	code, name := classify(err)
	if asJSON {
		json.NewEncoder(w).Encode(struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Exit    int    `json:"exit"`
		}{name, err.Error(), code})
		return code
	}
	fmt.Fprintln(w, "guild:", err)
	return code
}

// wantsJSON reports whether --json is among the arguments (before or after
// the command), for the error of a run that did not get to parse it.
func wantsJSON(argv []string) bool {
	for _, a := range argv {
		if a == "--" {
			return false
		}
		if a == "--json" || a == "-json" || a == "--json=true" || a == "-json=true" {
			return true
		}
	}
	return false
}
