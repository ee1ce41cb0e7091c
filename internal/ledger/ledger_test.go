package ledger

import (
	"errors"
	"slices"
	"testing"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

func TestChargeSettleDiscard(t *testing.T) {
	a, b := policy.Sum([]byte("a")), policy.Sum([]byte("b"))
	l := New()
	if err := l.Charge(a, Delta{Bytes: 1}); !errors.Is(err, storage.ErrNotHosted) {
		t.Fatalf("unloaded row: %v", err)
	}
	l.Load(a, Row{Quota: Delta{Envelopes: 3}, Used: Delta{Envelopes: 1}})
	l.Load(b, Row{Suspended: true, Used: Delta{Bytes: 10}})
	if err := l.Charge(a, Delta{Envelopes: 2}); err != nil {
		t.Fatal(err)
	}
	var qe *storage.QuotaError
	if err := l.Charge(a, Delta{Envelopes: 1}); !errors.As(err, &qe) || qe.Used != 3 || qe.Limit != 3 {
		t.Fatalf("pending changes must count toward the quota: %v", err)
	}
	l.Discard()
	if err := l.Charge(a, Delta{Envelopes: 2}); err != nil {
		t.Fatalf("after discard: %v", err)
	}
	l.Settle()
	if err := l.Charge(a, Delta{Envelopes: 1}); !errors.As(err, &qe) {
		t.Fatal("settled usage must count")
	}
	l.Discard()
	if err := l.Charge(b, Delta{Bytes: 1}); !errors.Is(err, storage.ErrSuspended) {
		t.Fatalf("suspended: %v", err)
	}
	if err := l.Charge(b, Delta{Bytes: -4}); err != nil {
		t.Fatalf("a suspended tenant may shrink: %v", err)
	}
	l.Settle()
	var dirty []policy.ID
	for s, used := range l.Dirty() {
		dirty = append(dirty, s)
		if s == b && used.Bytes != 6 {
			t.Fatalf("b used %+v", used)
		}
	}
	want := []policy.ID{a, b}
	slices.SortFunc(want, policy.ID.Compare)
	if !slices.Equal(dirty, want) {
		t.Fatalf("dirty = %v", dirty)
	}
	if used, d := l.Forget(a); !d || used.Envelopes != 3 || l.Has(a) {
		t.Fatalf("forget = %+v, %v", used, d)
	}
}

func TestEnvelopeCharges(t *testing.T) {
	a, b := policy.Sum([]byte("a")), policy.Sum([]byte("b"))
	envs := []storage.Envelope{{Server: b, Raw: make([]byte, 10)}, {Server: a, Raw: make([]byte, 5)}, {Server: b, Raw: make([]byte, 7)}, {Server: a, Raw: make([]byte, 100)}}
	got := EnvelopeCharges(envs, func(i int) bool { return i != 3 })
	want := []Charge{{a, Delta{Bytes: 5, Envelopes: 1}}, {b, Delta{Bytes: 17, Envelopes: 2}}}
	if a.Compare(b) > 0 {
		want[0], want[1] = want[1], want[0]
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if len(EnvelopeCharges(envs, func(int) bool { return false })) != 0 {
		t.Fatal("charges for nothing")
	}
}
