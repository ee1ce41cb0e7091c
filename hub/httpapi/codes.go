package httpapi

import (
	"context"
	"errors"

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
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, hub.ErrNoBlobs):
		return wire.CodeNotFound
	case errors.Is(err, storage.ErrSuspended):
		return wire.CodeSuspended
	case errors.Is(err, storage.ErrQuotaExceeded):
		return wire.CodeQuotaExceeded
	case errors.Is(err, storage.ErrBlobMismatch):
		return wire.CodeBlobMismatch
	case errors.Is(err, storage.ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return wire.CodeUnavailable
	}
	return wire.CodeInternal
}

// wireError converts an error for the wire; internal details stay in logs.
// A backend's own words (its name, its addresses, its paths) never reach a
// client: the codes that come from storage get a message of their own.
func wireError(err error) *wire.Error {
	c := Code(err)
	msg := err.Error()
	switch c {
	case wire.CodeInternal:
		msg = "internal error"
	case wire.CodeUnavailable:
		msg = "storage is unavailable or slow; retry later, or at another hub"
	case wire.CodeNotFound:
		msg = "not found"
	}
	return &wire.Error{Code: c, Message: msg}
}
