package discovery

import (
	"context"
	"time"

	"github.com/guildhall/guildhall/policy"
)

// WithHooks gives an announcer a clock and a publication of the test's.
func WithHooks(c AnnouncerConfig, now func() time.Time, publish func(context.Context, *policy.Record) error) AnnouncerConfig {
	c.now, c.publish = now, publish
	return c
}

// Record is the record the announcer would publish now.
func (a *Announcer) Record() (*policy.Record, error) { return a.record() }
