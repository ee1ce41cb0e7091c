package sqlite

import (
	"context"
	"testing"

	"github.com/guildhall/guildhall/policy"
)

// BenchmarkTakenDown64: the check a post batch of 64 envelopes pays for
// takedowns (none recorded, the common case).
func BenchmarkTakenDown64(b *testing.B) {
	s := openBench(b)
	ids := make([]policy.ID, 64)
	for i := range ids {
		ids[i] = policy.Sum([]byte{byte(i)})
	}
	b.ResetTimer()
	for range b.N {
		if _, err := s.TakenDown(context.Background(), ids); err != nil {
			b.Fatal(err)
		}
	}
}
