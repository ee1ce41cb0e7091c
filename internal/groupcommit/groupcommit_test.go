package groupcommit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeTx records which functions ran in which transaction.
type fakeTx struct{ id int }

func TestBatchesConcurrentCallersAndIsolatesFailures(t *testing.T) {
	var txs atomic.Int64
	var mu sync.Mutex
	committed := map[int]bool{}
	run := func(ctx context.Context, fns []func(*fakeTx) error) ([]error, error) {
		tx := &fakeTx{id: int(txs.Add(1))}
		time.Sleep(2 * time.Millisecond) // an fsync: lets callers queue up
		errs := make([]error, len(fns))
		for i, fn := range fns {
			errs[i] = fn(tx)
		}
		return errs, nil
	}
	c := New(context.Background(), Config{MaxBatch: 64}, run)
	defer c.Close()
	boom := errors.New("boom")
	var wg sync.WaitGroup
	for i := range 500 {
		wg.Go(func() {
			err := c.Do(context.Background(), func(tx *fakeTx) error {
				if i%7 == 0 {
					return boom
				}
				mu.Lock()
				committed[i] = true
				mu.Unlock()
				return nil
			})
			if (i%7 == 0) != errors.Is(err, boom) {
				t.Errorf("caller %d: err %v", i, err)
			}
		})
	}
	wg.Wait()
	if n := txs.Load(); n >= 500 || n < 8 {
		t.Fatalf("%d transactions for 500 callers: not batching (or batches above MaxBatch)", n)
	}
	if len(committed) != 500-72 {
		t.Fatalf("%d committed, want %d", len(committed), 500-72)
	}
}

func TestCommitFailureReachesEveryCaller(t *testing.T) {
	fail := errors.New("disk full")
	c := New(context.Background(), Config{}, func(ctx context.Context, fns []func(int) error) ([]error, error) {
		return nil, fail
	})
	defer c.Close()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if err := c.Do(context.Background(), func(int) error { return nil }); !errors.Is(err, fail) {
				t.Errorf("got %v, want the commit error", err)
			}
		})
	}
	wg.Wait()
}

func TestCloseFinishesQueuedWorkThenRefuses(t *testing.T) {
	var ran atomic.Int64
	c := New(context.Background(), Config{}, func(ctx context.Context, fns []func(int) error) ([]error, error) {
		time.Sleep(time.Millisecond)
		for _, fn := range fns {
			_ = fn(0)
		}
		return nil, nil
	})
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if err := c.Do(context.Background(), func(int) error { ran.Add(1); return nil }); err != nil && !errors.Is(err, ErrClosed) {
				t.Error(err)
			}
		})
	}
	time.Sleep(5 * time.Millisecond)
	c.Close()
	wg.Wait()
	if err := c.Do(context.Background(), func(int) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Do after Close: %v", err)
	}
	if ran.Load() == 0 {
		t.Fatal("nothing ran")
	}
}

func TestCallerGivingUpWhileQueuedIsSkipped(t *testing.T) {
	release := make(chan struct{})
	c := New(context.Background(), Config{MaxBatch: 1}, func(ctx context.Context, fns []func(int) error) ([]error, error) {
		<-release
		for _, fn := range fns {
			_ = fn(0)
		}
		return nil, nil
	})
	defer c.Close()
	go func() { _ = c.Do(context.Background(), func(int) error { return nil }) }() // occupies the loop
	time.Sleep(5 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	var skippedRan atomic.Bool
	errc := make(chan error, 1)
	go func() { errc <- c.Do(ctx, func(int) error { skippedRan.Store(true); return nil }) }()
	time.Sleep(5 * time.Millisecond)
	cancel()
	close(release)
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if skippedRan.Load() {
		t.Fatal("a cancelled, still-queued function ran")
	}
}
