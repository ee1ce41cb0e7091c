package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/guildhall/guildhall/policy"
)

// FollowBackoff bounds the waits between a follower's attempts to
// reconnect: the first, doubled after each failed attempt up to the
// second, with jitter. A connection that came up starts again from the
// first.
var FollowBackoff = struct{ Min, Max time.Duration }{500 * time.Millisecond, 30 * time.Second}

// FollowEvent is a follower's change of connection: live on a hub, or lost
// (Err) with the wait before the next attempt.
type FollowEvent struct {
	Live  bool
	Hub   string        // the hub it follows, when Live
	Err   error         // why it lost the connection (or could not make one)
	Retry time.Duration // the wait before the next attempt
}

// Follow is Tail that stays up: whenever the hub cuts it off, goes away or
// cannot be reached, it waits (FollowBackoff) and subscribes again from
// this client's cursor, calling fn for what was posted meanwhile first, so
// fn sees each message once, in the hub's order. status (if set) hears
// each change of connection. It returns nil when ctx ends, or an error no
// retry can mend: the local store, no such server or channel, a ban, no
// longer a member.
func (c *Client) Follow(ctx context.Context, server, channel policy.ID, fn func(Message), status func(FollowEvent)) error {
	if status == nil {
		status = func(FollowEvent) {}
	}
	delay := FollowBackoff.Min
	for attempt := 0; ; attempt++ {
		err := c.tail(ctx, server, channel, fn, func(hub string) {
			delay = FollowBackoff.Min
			status(FollowEvent{Live: true, Hub: hub})
		}, attempt > 0)
		if ctx.Err() != nil {
			return nil
		}
		if lasting(err) {
			return err
		}
		wait := delay/2 + rand.N(delay/2+1) // jitter: followers of one hub do not come back at once
		status(FollowEvent{Err: err, Retry: wait})
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		delay = min(delay*2, FollowBackoff.Max)
	}
}

// lasting reports whether a follower's error stays until someone acts.
func lasting(err error) bool {
	for _, e := range []error{ErrStore, ErrNoIdentity, ErrUnknown, policy.ErrBanned, policy.ErrNotMember, policy.ErrUnknownChannel} {
		if errors.Is(err, e) {
			return true
		}
	}
	return errors.Is(err, ErrNoHub) && !errors.As(err, new(*HubsError)) // no hub configured at all
}
