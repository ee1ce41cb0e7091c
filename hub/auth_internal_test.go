package hub

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/guildhall/guildhall/policy"
)

func TestSpentChallengesAreBounded(t *testing.T) {
	id := func(i int) (r [16]byte) { binary.BigEndian.PutUint64(r[:], uint64(i)); return r }
	who := func(i int) (k policy.PublicKey) { binary.BigEndian.PutUint64(k[:], uint64(i)); return k }

	t.Run("per identity", func(t *testing.T) {
		sp := newSpentChallenges()
		for i := range maxSpentBy {
			if err := sp.spend(id(i), who(1), 1000, 500); err != nil {
				t.Fatalf("challenge %d: %v", i, err)
			}
		}
		if err := sp.spend(id(maxSpentBy), who(1), 1000, 500); !errors.Is(err, ErrRateLimited) {
			t.Fatalf("one identity over its share: %v", err)
		}
		if err := sp.spend(id(maxSpentBy), who(2), 1000, 500); err != nil {
			t.Fatalf("another identity meanwhile: %v", err)
		}
		if err := sp.spend(id(maxSpentBy+1), who(1), 2000, 1500); err != nil {
			t.Fatalf("the first identity once its challenges expired: %v", err)
		}
		if err := sp.spend(id(maxSpentBy+1), who(3), 2000, 1500); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("a remembered challenge answered again: %v", err)
		}
	})
	t.Run("in all", func(t *testing.T) {
		sp := newSpentChallenges()
		for i := range maxSpent {
			if err := sp.spend(id(i), who(i/maxSpentBy), 1000+int64(i%2)*1000, 500); err != nil {
				t.Fatalf("challenge %d: %v", i, err)
			}
		}
		if err := sp.spend(id(maxSpent), who(-1), 3000, 900); !errors.Is(err, ErrRateLimited) {
			t.Fatalf("over the bound with none expired: %v", err)
		}
		// At 1500 half of them have expired: they are forgotten to make room.
		if err := sp.spend(id(maxSpent), who(-1), 3000, 1500); err != nil {
			t.Fatalf("over the bound with expired ones: %v", err)
		}
		if len(sp.m) != maxSpent/2+1 {
			t.Fatalf("%d remembered, want %d", len(sp.m), maxSpent/2+1)
		}
	})
}
