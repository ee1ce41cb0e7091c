package hub

import (
	"github.com/guildhall/guildhall/internal/ratelimit"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// Limits are the parts of a Service's Config that may change while it
// runs (a configuration reload): the allow-list, the default quota of
// servers admitted from now on, and the rate of envelopes per sender.
type Limits struct {
	Allowed         []policy.ID
	AllowedCreators []policy.PublicKey
	DefaultQuota    storage.Quota
	// PostRate and PostBurst as in Config (0: the defaults, a negative
	// PostRate: no limit). A changed rate starts every sender afresh.
	PostRate  float64
	PostBurst int
}

// SetLimits makes l current. It is safe to call while the service serves:
// each decision reads one whole version of each limit.
func (s *Service) SetLimits(l Limits) {
	allowed := make(map[policy.ID]bool, len(l.Allowed))
	for _, id := range l.Allowed {
		allowed[id] = true
	}
	s.allowed.Store(&allowed)
	creators := make(map[policy.PublicKey]bool, len(l.AllowedCreators))
	for _, k := range l.AllowedCreators {
		creators[k] = true
	}
	s.creators.Store(&creators)
	q := l.DefaultQuota
	s.quota.Store(&q)
	if l.PostRate == 0 {
		l.PostRate = 50
	}
	if l.PostBurst <= 0 {
		l.PostBurst = 200
	}
	var senders *ratelimit.Limiter[policy.PublicKey]
	if l.PostRate > 0 {
		senders = ratelimit.New[policy.PublicKey](l.PostRate, l.PostBurst, 1<<16)
	}
	s.senders.Store(senders)
}
