package wire

import (
	"net/http"

	"github.com/guildhall/guildhall/policy"
)

// Error codes the hub's API adds to policy's (policy.Code). An Error's Code
// is one of policy's codes or one of these; docs/API.md §Errors lists them
// all with their meaning and HTTP status. Clients match codes, never
// messages.
const (
	CodeNotFound        = "not_found"       // no such envelope, blob, tenant or event
	CodeNotHosted       = "not_hosted"      // this hub does not host the server
	CodeSuspended       = "suspended"       // the operator suspended the server's tenancy
	CodeQuotaExceeded   = "quota_exceeded"  // the server's quota is spent
	CodeBlobMismatch    = "blob_mismatch"   // uploaded bytes do not hash to the blob's ID
	CodeBadRequest      = "bad_request"     // well-formed but meaningless request
	CodeRateLimited     = "rate_limited"    // over a rate limit: retry later
	CodeUnauthenticated = "unauthenticated" // needs a valid session token
	CodeUnavailable     = "unavailable"     // a backend is down or slow: retry later
	CodeInternal        = "internal"        // a bug; details are in the hub's log only
	CodeTakenDown       = "taken_down"      // the hub's operator removed this content (a takedown record is kept)
	CodeBlocked         = "blocked"         // the hub's operator blocked the server on this hub
	CodeNotConfigured   = "not_configured"  // this hub does not offer the feature (TURN credentials)

	// WebSocket only: why the hub ended a subscription. Both come with
	// resume cursors (Frame.Topics).
	CodeSlow      = "slow"       // the subscriber fell behind
	CodeGoingAway = "going_away" // the hub is shutting down
)

// Status maps an error code to its HTTP status; an unknown code is 500.
func Status(code string) int {
	switch code {
	case string(policy.CodeMalformed), string(policy.CodeNonCanonical), string(policy.CodeBadSignature),
		string(policy.CodeCertInvalid), string(policy.CodeCertExpired), string(policy.CodeWrongServer),
		string(policy.CodeClock), string(policy.CodeExpired), CodeBadRequest, CodeBlobMismatch:
		return http.StatusBadRequest
	case CodeUnauthenticated:
		return http.StatusUnauthorized
	case string(policy.CodeNotMember), string(policy.CodeBanned), string(policy.CodeForbidden), string(policy.CodeRank),
		string(policy.CodeDeviceRevoked), string(policy.CodeNotEligible), CodeSuspended,
		string(policy.CodeInvalidInvite), string(policy.CodeInviteExpired), string(policy.CodeInviteExhausted), string(policy.CodeInviteRevoked):
		return http.StatusForbidden
	case CodeNotFound, CodeNotHosted, CodeNotConfigured, string(policy.CodeUnknownChannel), string(policy.CodeUnknownRole):
		return http.StatusNotFound
	case string(policy.CodeConflict), string(policy.CodeStale):
		return http.StatusConflict
	case string(policy.CodeTooLarge):
		return http.StatusRequestEntityTooLarge
	case CodeQuotaExceeded:
		return http.StatusInsufficientStorage
	case CodeRateLimited:
		return http.StatusTooManyRequests
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	case CodeTakenDown, CodeBlocked:
		return http.StatusUnavailableForLegalReasons
	}
	return http.StatusInternalServerError
}
