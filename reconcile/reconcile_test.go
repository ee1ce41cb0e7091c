package reconcile

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/guildhall/guildhall/policy"
)

var ctx = context.Background()

// keys makes n keys with times spread over a day from t0 and random IDs.
func keys(r *rand.Rand, n int, t0 int64) []Key {
	out := make([]Key, n)
	for i := range out {
		out[i].Time = t0 + r.Int64N(86_400_000)
		binary.LittleEndian.PutUint64(out[i].ID[:], r.Uint64())
		binary.LittleEndian.PutUint64(out[i].ID[8:], r.Uint64())
	}
	return out
}

// over runs Answer in process, counting the bytes each round would carry
// encoded (CBOR), as the transports encode them.
func over(responder Set, now int64, bytes *int) Exchange {
	return func(ctx context.Context, in []Range) ([]Range, error) {
		b, _ := cbor.Marshal(in)
		*bytes += len(b)
		out, err := Answer(ctx, responder, in, 1<<16, now)
		b, _ = cbor.Marshal(out)
		*bytes += len(b)
		return out, err
	}
}

func TestFindsExactlyTheDifference(t *testing.T) {
	const t0 = 1_767_225_600_000
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct{ common, onlyRemote, onlyLocal int }{
		{0, 0, 0}, {0, 10, 0}, {10, 0, 10}, {1000, 1, 0}, {5000, 37, 12}, {20000, 500, 500},
	} {
		common := keys(r, c.common, t0)
		extraRemote := keys(r, c.onlyRemote, t0)
		extraLocal := keys(r, c.onlyLocal, t0)
		local := NewMemory(append(slices.Clone(common), extraLocal...))
		remote := NewMemory(append(slices.Clone(common), extraRemote...))
		var bytes int
		missing, st, err := Run(ctx, local, over(remote, t0+86_400_000, &bytes), 256, 64)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(missing, Compare)
		want := slices.Clone(extraRemote)
		slices.SortFunc(want, Compare)
		if !slices.Equal(missing, want) {
			t.Fatalf("%+v: found %d, want %d", c, len(missing), len(want))
		}
		t.Logf("%+v: %d rounds, %d bytes", c, st.Rounds, bytes)
	}
}

// Many keys in one millisecond split by ID.
func TestSameMillisecond(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	ks := keys(r, 3000, 0)
	for i := range ks {
		ks[i].Time = 42
	}
	local := NewMemory(ks[:2900])
	var bytes int
	missing, _, err := Run(ctx, local, over(NewMemory(ks), 1000, &bytes), 256, 64)
	if err != nil || len(missing) != 100 {
		t.Fatalf("%d missing, %v", len(missing), err)
	}
}

// 100,000 keys on one side and the same plus 1,000 on the other converge
// in at most 10 round trips.
func TestReconciliationCost100k(t *testing.T) {
	const t0 = 1_767_225_600_000
	r := rand.New(rand.NewPCG(5, 6))
	base := keys(r, 100_000, t0)
	extra := keys(r, 1000, t0)
	local := NewMemory(base)
	remote := NewMemory(append(slices.Clone(base), extra...))
	var bytes int
	start := time.Now()
	missing, st, err := Run(ctx, local, over(remote, t0+86_400_000, &bytes), 4096, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) != 1000 {
		t.Fatalf("found %d of 1000", len(missing))
	}
	t.Logf("100,000 vs 101,000: %d round trips, %d ranges, %d bytes, %v", st.Rounds, st.Ranges, bytes, time.Since(start))
}

func TestAnswerBounds(t *testing.T) {
	m := NewMemory(nil)
	if _, err := Answer(ctx, m, make([]Range, 5), 4, 0); err == nil {
		t.Fatal("a round over the bound was answered")
	}
	if _, err := Answer(ctx, m, []Range{{From: Top, To: Key{}}}, 4, 0); err == nil {
		t.Fatal("an inverted range was answered")
	}
}

func TestMemoryFingerprintsMatchAdd(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	ks := keys(r, 500, 0)
	m := NewMemory(ks)
	slices.SortFunc(ks, Compare)
	from, to := ks[100], ks[400]
	var want Fingerprint
	for _, k := range ks[100:400] {
		want.Add(k.ID)
	}
	if got, _ := m.Fingerprint(ctx, from, to); got != want {
		t.Fatal("prefix-sum fingerprint differs from the sum")
	}
	_ = policy.ID{}
}

// BenchmarkMillion reconciles two sets of 1,000,000 keys differing by
// 1,000 (500 on each side).
func BenchmarkMillion(b *testing.B) {
	const t0 = 1_767_225_600_000
	r := rand.New(rand.NewPCG(9, 10))
	base := keys(r, 1_000_000, t0)
	a := NewMemory(append(slices.Clone(base), keys(r, 500, t0)...))
	c := NewMemory(append(slices.Clone(base), keys(r, 500, t0)...))
	b.ResetTimer()
	var rounds, bytes int
	for range b.N {
		bytes = 0
		missing, st, err := Run(ctx, a, over(c, t0+86_400_000, &bytes), 4096, 32)
		if err != nil || len(missing) != 500 {
			b.Fatalf("%d missing, %v", len(missing), err)
		}
		rounds = st.Rounds
	}
	b.ReportMetric(float64(rounds), "rounds")
	b.ReportMetric(float64(bytes), "bytes")
}

// scanned counts the keys a storage-backed set would read to answer: every
// key inside each fingerprinted or listed range.
type scanned struct {
	*Memory
	n int
}

func (s *scanned) Fingerprint(ctx context.Context, from, to Key) (Fingerprint, error) {
	fp, err := s.Memory.Fingerprint(ctx, from, to)
	s.n += int(fp.Count)
	return fp, err
}

func (s *scanned) Keys(ctx context.Context, from, to Key, limit int) ([]Key, error) {
	ks, err := s.Memory.Keys(ctx, from, to, limit)
	s.n += len(ks)
	return ks, err
}

// One round reads each stored key a bounded number of times whatever its
// ranges: overlapping ranges (256 copies of the whole key space cost 256
// scans of the channel) are refused, and the most a valid round of 256
// ranges costs is a few passes.
func TestARoundCostsAFewPassesAtMost(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	ks := keys(r, 20_000, 0)
	s := &scanned{Memory: NewMemory(ks)}
	whole := make([]Range, 256)
	for i := range whole {
		whole[i] = Range{From: Key{}, To: Top}
	}
	if _, err := Answer(ctx, s, whole, 256, 86_400_000); !errors.Is(err, ErrBadRange) {
		t.Fatalf("256 overlapping whole-set ranges: %v, want ErrBadRange", err)
	}
	if s.n > len(ks) {
		t.Fatalf("refusing them read %d keys", s.n)
	}
	// 256 disjoint ranges covering everything, each with a wrong
	// fingerprint so that every one is split: the worst valid round.
	sorted := slices.Clone(ks)
	slices.SortFunc(sorted, Compare)
	disjoint := make([]Range, 256)
	for i := range disjoint {
		from, to := Key{}, Top
		if i > 0 {
			from = sorted[i*len(sorted)/256]
		}
		if i < 255 {
			to = sorted[(i+1)*len(sorted)/256]
		}
		disjoint[i] = Range{From: from, To: to}
	}
	s.n = 0
	if _, err := Answer(ctx, s, disjoint, 256, 86_400_000); err != nil {
		t.Fatal(err)
	}
	if s.n > 3*len(ks) {
		t.Fatalf("a valid round of 256 ranges read %d keys of %d: more than three passes", s.n, len(ks))
	}
	t.Logf("a worst-case valid round read %d keys of %d (%.1f passes)", s.n, len(ks), float64(s.n)/float64(len(ks)))
}

// RunBoth finds both sides' differences in one reconciliation.
func TestRunBothFindsWhatEachSideLacks(t *testing.T) {
	const t0 = 1_767_225_600_000
	r := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct{ common, onlyRemote, onlyLocal int }{
		{0, 0, 5}, {0, 10, 0}, {10, 3, 10}, {1000, 0, 700}, {5000, 37, 12}, {20000, 500, 500},
	} {
		common := keys(r, c.common, t0)
		extraRemote, extraLocal := keys(r, c.onlyRemote, t0), keys(r, c.onlyLocal, t0)
		local := NewMemory(append(slices.Clone(common), extraLocal...))
		remote := NewMemory(append(slices.Clone(common), extraRemote...))
		var bytes int
		missing, extra, _, err := RunBoth(ctx, local, over(remote, t0+86_400_000, &bytes), 256, 64)
		if err != nil {
			t.Fatal(err)
		}
		for _, pair := range []struct {
			name      string
			got, want []Key
		}{{"missing", missing, extraRemote}, {"extra", extra, extraLocal}} {
			slices.SortFunc(pair.got, Compare)
			slices.SortFunc(pair.want, Compare)
			if !slices.Equal(pair.got, pair.want) {
				t.Fatalf("%+v: %s: found %d keys, want %d", c, pair.name, len(pair.got), len(pair.want))
			}
		}
	}
}
