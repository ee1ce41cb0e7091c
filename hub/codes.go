package hub

import (
	"context"
	"errors"
	"net/http"

	"github.com/guildhall/guildhall/wire"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// Codes the hub adds to policy's (docs/API.md lists them all).
const (
	CodeNotFound       = "not_found"
	CodeNotHosted      = "not_hosted"
	CodeSuspended      = "suspended"
	CodeQuotaExceeded  = "quota_exceeded"
	CodeBlobMismatch   = "blob_mismatch"
	CodeBadRequest     = "bad_request"
	CodeRateLimited    = "rate_limited"
	CodeUnauthenticate = "unauthenticated"
	CodeUnavailable    = "unavailable"
	CodeInternal       = "internal"
)

// Code returns the stable wire code of an error.
func Code(err error) string {
	if c := policy.CodeOf(err); c != "" {
		return string(c)
	}
	switch {
	case errors.Is(err, wire.ErrMalformed):
		return string(policy.CodeMalformed)
	case errors.Is(err, ErrTooLarge):
		return string(policy.CodeTooLarge)
	case errors.Is(err, ErrRateLimited):
		return CodeRateLimited
	case errors.Is(err, ErrUnauthenticated):
		return CodeUnauthenticate
	case errors.Is(err, ErrBadRequest), errors.Is(err, storage.ErrInvalid):
		return CodeBadRequest
	case errors.Is(err, storage.ErrNotHosted):
		return CodeNotHosted
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, ErrNoBlobs):
		return CodeNotFound
	case errors.Is(err, storage.ErrSuspended):
		return CodeSuspended
	case errors.Is(err, storage.ErrQuotaExceeded):
		return CodeQuotaExceeded
	case errors.Is(err, storage.ErrBlobMismatch):
		return CodeBlobMismatch
	case errors.Is(err, storage.ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return CodeUnavailable
	}
	return CodeInternal
}

// Status maps a wire code to an HTTP status.
func Status(code string) int {
	switch code {
	case string(policy.CodeMalformed), string(policy.CodeNonCanonical), string(policy.CodeBadSignature),
		string(policy.CodeCertInvalid), string(policy.CodeCertExpired), string(policy.CodeWrongServer),
		string(policy.CodeClock), string(policy.CodeExpired), CodeBadRequest, CodeBlobMismatch:
		return http.StatusBadRequest
	case CodeUnauthenticate:
		return http.StatusUnauthorized
	case string(policy.CodeNotMember), string(policy.CodeBanned), string(policy.CodeForbidden), string(policy.CodeRank),
		string(policy.CodeDeviceRevoked), string(policy.CodeNotEligible), CodeSuspended,
		string(policy.CodeInvalidInvite), string(policy.CodeInviteExpired), string(policy.CodeInviteExhausted), string(policy.CodeInviteRevoked):
		return http.StatusForbidden
	case CodeNotFound, CodeNotHosted, string(policy.CodeUnknownChannel), string(policy.CodeUnknownRole):
		return http.StatusNotFound
	case string(policy.CodeConflict):
		return http.StatusConflict
	case string(policy.CodeTooLarge):
		return http.StatusRequestEntityTooLarge
	case CodeQuotaExceeded:
		return http.StatusInsufficientStorage
	case CodeRateLimited:
		return http.StatusTooManyRequests
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// wireError converts an error for the wire; internal details stay in logs.
func wireError(err error) *wire.Error {
	c := Code(err)
	msg := err.Error()
	if c == CodeInternal {
		msg = "internal error"
	}
	return &wire.Error{Code: c, Message: msg}
}
