package httpapi

import (
	"net/netip"

	"github.com/guildhall/guildhall/internal/ratelimit"
)

// Limits are the parts of Config that may change while the API serves (a
// configuration reload). Zero values take Config's defaults.
type Limits struct {
	SourceRate       float64
	SourceBurst      int
	MaxSockets       int
	SocketsPerSource int
}

// SetLimits makes l current for what comes next: requests are charged at
// the new source rate (every source starting afresh when it changed), and
// WebSockets are admitted under the new caps (those open already stay).
func (a *API) SetLimits(l Limits) {
	c := Config{SourceRate: l.SourceRate, SourceBurst: l.SourceBurst, MaxSockets: l.MaxSockets, SocketsPerSource: l.SocketsPerSource}
	c.defaults()
	a.mu.Lock() // reserveSocket reads the caps under mu
	a.cfg.MaxSockets, a.cfg.SocketsPerSource = c.MaxSockets, c.SocketsPerSource
	changed := a.cfg.SourceRate != c.SourceRate || a.cfg.SourceBurst != c.SourceBurst
	a.cfg.SourceRate, a.cfg.SourceBurst = c.SourceRate, c.SourceBurst
	a.mu.Unlock()
	if !changed {
		return // unchanged: sources keep their buckets
	}
	var sources *ratelimit.Limiter[netip.Addr]
	if c.SourceRate > 0 {
		sources = ratelimit.New[netip.Addr](c.SourceRate, c.SourceBurst, 1<<16)
	}
	a.sources.Store(sources)
}
