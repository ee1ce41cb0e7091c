package hub

import "errors"

// Errors of the hub itself (policy and storage errors pass through typed).
var (
	// ErrRateLimited refuses a request over a rate limit; retry later.
	ErrRateLimited = errors.New("hub: rate limit exceeded")
	// ErrUnauthenticated refuses a request that needs a valid session or
	// carries a bad one.
	ErrUnauthenticated = errors.New("hub: not authenticated")
	// ErrBadRequest refuses a request that is well-formed but makes no sense.
	ErrBadRequest = errors.New("hub: bad request")
	// ErrTooLarge refuses a body, frame or batch over its limit.
	ErrTooLarge = errors.New("hub: request too large")
	// ErrNoBlobs is returned when this hub has no blob store.
	ErrNoBlobs = errors.New("hub: this hub stores no blobs")
)
