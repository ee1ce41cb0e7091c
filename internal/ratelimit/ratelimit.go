// Package ratelimit holds keyed token buckets: a rate per key (a source
// address, an identity) with bursts, over a bounded set of keys, for the
// hub and the relay to refuse what would be abused.
package ratelimit

import (
	"sync"
	"time"
)

// Limiter is a keyed token bucket: each key may spend Rate tokens per
// second with bursts of Burst. It remembers at most MaxKeys keys; when full
// it forgets the keys idle longest, whose buckets were refilled anyway. It
// is safe for concurrent use.
type Limiter[K comparable] struct {
	rate    float64
	burst   float64
	maxKeys int
	now     func() time.Time

	mu      sync.Mutex
	buckets map[K]*bucket // guarded by mu
}

type bucket struct {
	tokens float64
	last   time.Time
}

// New returns a Limiter.
func New[K comparable](rate float64, burst, maxKeys int) *Limiter[K] {
	return &Limiter[K]{rate: rate, burst: float64(burst), maxKeys: maxKeys, now: time.Now, buckets: map[K]*bucket{}}
}

// Allow spends one token of key, reporting whether it had one.
func (l *Limiter[K]) Allow(key K) bool { return l.AllowN(key, 1) }

// AllowN spends n tokens of key, all or none.
func (l *Limiter[K]) AllowN(key K, n int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refill(key)
	if b.tokens < float64(n) {
		return false
	}
	b.tokens -= float64(n)
	return true
}

// Available returns the tokens key could spend now, without spending any.
// With Charge it lets a caller decide first and pay only for what it did:
// the hub charges a sender only for envelopes it newly stored, so that
// replaying someone's envelopes costs them nothing.
func (l *Limiter[K]) Available(key K) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.refill(key).tokens
}

// Charge spends n tokens of key even if it has fewer: the bucket goes into
// debt and refuses until it has refilled.
func (l *Limiter[K]) Charge(key K, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill(key).tokens -= float64(n)
}

// refill returns key's bucket, refilled to now. Guarded by mu.
func (l *Limiter[K]) refill(key K) *bucket {
	now := l.now()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= l.maxKeys {
			l.sweep(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	return b
}

// sweep forgets full buckets, and if none is full, half of the others in
// map order (random): an attacker cycling keys only resets buckets to full,
// which is where a new key starts anyway. Guarded by mu.
func (l *Limiter[K]) sweep(now time.Time) {
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.last) >= full {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets {
		if len(l.buckets) < l.maxKeys/2 {
			break
		}
		delete(l.buckets, k)
	}
}
