package hub

import (
	"encoding/binary"
	"errors"
	"testing"
)

func TestSpentChallengesAreBounded(t *testing.T) {
	sp := spentChallenges{m: map[[16]byte]int64{}}
	id := func(i int) (r [16]byte) { binary.BigEndian.PutUint64(r[:], uint64(i)); return r }
	for i := range maxSpent {
		if err := sp.spend(id(i), 1000+int64(i%2)*1000, 500); err != nil {
			t.Fatalf("challenge %d: %v", i, err)
		}
	}
	if err := sp.spend(id(maxSpent), 3000, 900); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("over the bound with none expired: %v", err)
	}
	// At 1500 half of them have expired: they are forgotten to make room.
	if err := sp.spend(id(maxSpent), 3000, 1500); err != nil {
		t.Fatalf("over the bound with expired ones: %v", err)
	}
	if len(sp.m) != maxSpent/2+1 {
		t.Fatalf("%d remembered, want %d", len(sp.m), maxSpent/2+1)
	}
	if err := sp.spend(id(1), 3000, 1500); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("a remembered challenge answered again: %v", err)
	}
}
