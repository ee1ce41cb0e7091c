package storage

import (
	"errors"
	"fmt"
)

// Sentinel errors. Backends wrap them with context; callers test with errors.Is.
var (
	ErrNotFound      = errors.New("storage: not found")
	ErrNotHosted     = errors.New("storage: server not hosted here")
	ErrSuspended     = errors.New("storage: tenant suspended")
	ErrQuotaExceeded = errors.New("storage: quota exceeded")
	ErrBlobMismatch  = errors.New("storage: blob bytes do not match their id or size")
	ErrInvalid       = errors.New("storage: invalid argument")
	ErrUnavailable   = errors.New("storage: backend unavailable")
)

// Resource names a quota dimension.
type Resource string

// Quota dimensions.
const (
	ResourceBytes     Resource = "bytes"
	ResourceEnvelopes Resource = "envelopes"
	ResourceBlobs     Resource = "blobs"
)

// QuotaError reports which quota a write would have exceeded. It matches
// ErrQuotaExceeded with errors.Is.
type QuotaError struct {
	Resource Resource
	Limit    uint64
	Used     uint64 // before the write
	Want     uint64 // what the write would add
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("storage: quota exceeded: %s limit %d, used %d, write needs %d more", e.Resource, e.Limit, e.Used, e.Want)
}

// Is makes errors.Is(err, ErrQuotaExceeded) true.
func (e *QuotaError) Is(target error) bool { return target == ErrQuotaExceeded }
