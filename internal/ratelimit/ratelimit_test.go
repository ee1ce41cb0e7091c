package ratelimit

import (
	"testing"
	"time"
)

func TestBurstRefillAndBound(t *testing.T) {
	now := time.Unix(0, 0)
	l := New[int](10, 5, 100)
	l.now = func() time.Time { return now }
	for i := range 5 {
		if !l.Allow(1) {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	if l.Allow(1) {
		t.Fatal("over the burst allowed")
	}
	if !l.Allow(2) {
		t.Fatal("another key shares the bucket")
	}
	now = now.Add(100 * time.Millisecond) // one token back
	if !l.Allow(1) || l.Allow(1) {
		t.Fatal("refill is not rate × time")
	}
	if l.AllowN(3, 6) {
		t.Fatal("more than the burst at once")
	}
	for k := range 1000 {
		l.Allow(k + 10)
	}
	if len(l.buckets) > 100 {
		t.Fatalf("%d keys remembered, bound 100", len(l.buckets))
	}
}
