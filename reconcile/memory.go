package reconcile

import (
	"context"
	"slices"
)

// Memory is a Set held in memory: sorted keys with prefix sums, so that a
// fingerprint costs two binary searches and a subtraction.
type Memory struct {
	keys []Key
	sums []Fingerprint // sums[i]: fingerprint of keys[:i]
}

// NewMemory returns a Set of keys (copied and sorted).
func NewMemory(keys []Key) *Memory {
	m := &Memory{keys: slices.Clone(keys)}
	slices.SortFunc(m.keys, Compare)
	m.keys = slices.CompactFunc(m.keys, func(a, b Key) bool { return a == b })
	m.sums = make([]Fingerprint, len(m.keys)+1)
	for i, k := range m.keys {
		m.sums[i+1] = m.sums[i]
		m.sums[i+1].Add(k.ID)
	}
	return m
}

func (m *Memory) index(k Key) int {
	i, _ := slices.BinarySearchFunc(m.keys, k, Compare)
	return i
}

// Fingerprint implements Set.
func (m *Memory) Fingerprint(_ context.Context, from, to Key) (Fingerprint, error) {
	a, b := m.index(from), m.index(to)
	if b <= a {
		return Fingerprint{}, nil
	}
	return sub(m.sums[b], m.sums[a]), nil
}

// Keys implements Set.
func (m *Memory) Keys(_ context.Context, from, to Key, limit int) ([]Key, error) {
	a, b := m.index(from), m.index(to)
	if b <= a {
		return nil, nil
	}
	return slices.Clone(m.keys[a:min(b, a+limit)]), nil
}

// Len returns how many keys the set holds.
func (m *Memory) Len() int { return len(m.keys) }

// sub returns x - y: counts subtract, and sums subtract modulo 2^256.
func sub(x, y Fingerprint) Fingerprint {
	out := Fingerprint{Count: x.Count - y.Count}
	var borrow int16
	for i := range 32 {
		d := int16(x.Sum[i]) - int16(y.Sum[i]) - borrow
		borrow = 0
		if d < 0 {
			d += 256
			borrow = 1
		}
		out.Sum[i] = byte(d)
	}
	return out
}
