package httpapi

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
	"github.com/guildhall/guildhall/wire"
)

// Code returns the stable wire code of an error (docs/API.md, "Errors"):
// the one place a Go error of the service, policy or storage becomes a code.
func Code(err error) string {
	if c := policy.CodeOf(err); c != "" {
		return string(c)
	}
	switch {
	case errors.Is(err, wire.ErrMalformed):
		return string(policy.CodeMalformed)
	case errors.Is(err, hub.ErrTooLarge), errors.Is(err, wire.ErrTooLarge):
		return string(policy.CodeTooLarge)
	case errors.Is(err, hub.ErrRateLimited):
		return wire.CodeRateLimited
	case errors.Is(err, hub.ErrUnauthenticated):
		return wire.CodeUnauthenticated
	case errors.Is(err, hub.ErrBadRequest), errors.Is(err, storage.ErrInvalid):
		return wire.CodeBadRequest
	case errors.Is(err, storage.ErrNotHosted):
		return wire.CodeNotHosted
	case errors.Is(err, hub.ErrTakenDown):
		return wire.CodeTakenDown
	case errors.Is(err, hub.ErrBlocked):
		return wire.CodeBlocked
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, hub.ErrNoBlobs):
		return wire.CodeNotFound
	case errors.Is(err, storage.ErrSuspended):
		return wire.CodeSuspended
	case errors.Is(err, storage.ErrQuotaExceeded):
		return wire.CodeQuotaExceeded
	case errors.Is(err, storage.ErrBlobMismatch):
		return wire.CodeBlobMismatch
	case errors.Is(err, errNotConfigured):
		return wire.CodeNotConfigured
	case errors.Is(err, storage.ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return wire.CodeUnavailable
	}
	return wire.CodeInternal
}

// wireError converts an error for the wire; internal details stay in logs.
// A backend's own words (its name, its addresses, its paths) never reach a
// client: the codes that come from storage get a message of their own.
func wireError(err error) *wire.Error { return wireErrorAt(err, "") }

// wireErrorAt is wireError for a request that reached the hub as host (its
// Host header, how the member names this hub; "" when unknown): a member
// over quota or suspended is told so in words, naming the hub, never with
// the backend's.
func wireErrorAt(err error, host string) *wire.Error {
	c := Code(err)
	msg := err.Error()
	hubName := "this hub"
	if validHost(host) {
		hubName = "hub " + host
	}
	var qe *storage.QuotaError
	switch c {
	case wire.CodeQuotaExceeded:
		msg = "this server's storage on " + hubName + " is full; ask the hub's operator for more room, or delete old messages"
		if errors.As(err, &qe) {
			msg = fmt.Sprintf("this server's storage on %s is full (%s: limit %d, used %d, this needs %d more); ask the hub's operator for more room, or delete old messages",
				hubName, qe.Resource, qe.Limit, qe.Used, qe.Want)
		}
	case wire.CodeSuspended:
		msg = "the operator of " + hubName + " suspended this server's hosting: it can still be read, but nothing new is stored"
	case wire.CodeTakenDown:
		msg = "the operator of " + hubName + " removed this content; the takedown record says why"
	case wire.CodeBlocked:
		msg = "the operator of " + hubName + " blocked this server: it is neither served nor stored there; try the server's other hubs"
	case wire.CodeInternal:
		msg = "internal error"
	case wire.CodeUnavailable:
		msg = "storage is unavailable or slow; retry later, or at another hub"
	case wire.CodeNotFound:
		msg = "not found"
	}
	return &wire.Error{Code: c, Message: msg}
}

// validHost reports whether a Host header is a plain host name or address
// with an optional port, fit to appear in a message.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-:[]", r)) {
			return false
		}
	}
	return true
}
