package policy

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable reason for a rejection. Hubs and relays
// map codes to wire errors at their edge; the strings never change meaning.
type Code string

// The rejection codes. Each has a sentinel Err* value for errors.Is.
const (
	CodeMalformed       Code = "malformed"        // not decodable, wrong field types or lengths
	CodeNonCanonical    Code = "non_canonical"    // decodable, but not the one canonical byte form
	CodeTooLarge        Code = "too_large"        // over a size or count limit
	CodeBadSignature    Code = "bad_signature"    // signature does not verify
	CodeCertInvalid     Code = "cert_invalid"     // device certificate malformed, mis-signed or for another identity
	CodeCertExpired     Code = "cert_expired"     // device certificate not valid at the relevant time
	CodeDeviceRevoked   Code = "device_revoked"   // the signing device has been revoked
	CodeWrongServer     Code = "wrong_server"     // object names another server
	CodeNotMember       Code = "not_member"       // author is not a member of the server
	CodeBanned          Code = "banned"           // author (or target) is banned
	CodeForbidden       Code = "forbidden"        // author lacks the permission
	CodeRank            Code = "rank"             // author does not outrank the target
	CodeUnknownChannel  Code = "unknown_channel"  // no such channel, or archived
	CodeUnknownRole     Code = "unknown_role"     // no such role
	CodeInvalidInvite   Code = "invalid_invite"   // invite mis-signed, for another server, or its inviter may not invite
	CodeInviteExpired   Code = "invite_expired"   // invite used after its expiry
	CodeInviteExhausted Code = "invite_exhausted" // invite has no uses left
	CodeInviteRevoked   Code = "invite_revoked"   // invite was revoked
	CodeClock           Code = "clock"            // timestamp out of the accepted window or before a parent
	CodeNotEligible     Code = "not_eligible"     // node may not store this channel's ciphertext
	CodeConflict        Code = "conflict"         // event contradicts the state (already a member, duplicate role...)
	CodeExpired         Code = "expired"          // a record or token past its expiry, an envelope past its channel's retention
	CodeStale           Code = "stale"            // a live state event built on history too far behind the log's heads
)

// Error is the typed error every policy decision returns. errors.Is matches it
// against the sentinel of the same Code, so callers test
// errors.Is(err, policy.ErrBanned) and read err.(*Error).Code for the wire.
type Error struct {
	Code   Code
	Detail string // human-readable, lowercase, no trailing period
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return "policy: " + string(e.Code)
	}
	return "policy: " + string(e.Code) + ": " + e.Detail
}

// Is reports whether target is a policy error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels, one per Code.
var (
	ErrMalformed       = &Error{Code: CodeMalformed}
	ErrNonCanonical    = &Error{Code: CodeNonCanonical}
	ErrTooLarge        = &Error{Code: CodeTooLarge}
	ErrBadSignature    = &Error{Code: CodeBadSignature}
	ErrCertInvalid     = &Error{Code: CodeCertInvalid}
	ErrCertExpired     = &Error{Code: CodeCertExpired}
	ErrDeviceRevoked   = &Error{Code: CodeDeviceRevoked}
	ErrWrongServer     = &Error{Code: CodeWrongServer}
	ErrNotMember       = &Error{Code: CodeNotMember}
	ErrBanned          = &Error{Code: CodeBanned}
	ErrForbidden       = &Error{Code: CodeForbidden}
	ErrRank            = &Error{Code: CodeRank}
	ErrUnknownChannel  = &Error{Code: CodeUnknownChannel}
	ErrUnknownRole     = &Error{Code: CodeUnknownRole}
	ErrInvalidInvite   = &Error{Code: CodeInvalidInvite}
	ErrInviteExpired   = &Error{Code: CodeInviteExpired}
	ErrInviteExhausted = &Error{Code: CodeInviteExhausted}
	ErrInviteRevoked   = &Error{Code: CodeInviteRevoked}
	ErrClock           = &Error{Code: CodeClock}
	ErrNotEligible     = &Error{Code: CodeNotEligible}
	ErrConflict        = &Error{Code: CodeConflict}
	ErrExpired         = &Error{Code: CodeExpired}
	ErrStale           = &Error{Code: CodeStale}
)

// CodeOf returns the Code of a policy error anywhere in err's chain, or ""
// when err is nil or not a policy error.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func errf(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Detail: fmt.Sprintf(format, args...)}
}
