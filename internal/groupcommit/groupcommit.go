// Package groupcommit batches concurrent writes into shared transactions:
// callers queue a function, one loop runs as many queued functions as are
// waiting (up to a bound) in one transaction, and every caller is answered
// only after that transaction committed or failed. One durable commit (one
// fsync) then acknowledges many writes.
//
// The package knows nothing of databases: a backend supplies RunFunc, which
// runs a batch in one transaction and isolates each function with a
// savepoint, so one caller's failure does not fail the others.
package groupcommit

import (
	"context"
	"errors"
	"sync"
)

// ErrClosed is returned by Do after Close.
var ErrClosed = errors.New("groupcommit: closed")

// RunFunc runs fns in one transaction. It returns one error per function
// (nil where the function's writes are part of the commit) or, when the
// transaction as a whole failed, commitErr, which every caller receives.
type RunFunc[T any] func(ctx context.Context, fns []func(T) error) (errs []error, commitErr error)

// Config bounds a Committer.
type Config struct {
	MaxBatch int // functions per transaction; default 256
	Queue    int // functions waiting at most; default 4096 (callers block beyond)
}

// Committer runs queued functions in group commits. It is safe for
// concurrent use.
type Committer[T any] struct {
	run      RunFunc[T]
	maxBatch int
	queue    chan *request[T]
	quit     chan struct{}
	done     chan struct{}
	closing  sync.Once
}

type request[T any] struct {
	ctx   context.Context
	fn    func(T) error
	reply chan error // buffered: the loop never blocks on a caller
}

// New starts a Committer; ctx bounds the transactions it runs.
func New[T any](ctx context.Context, cfg Config, run RunFunc[T]) *Committer[T] {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 256
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 4096
	}
	c := &Committer[T]{run: run, maxBatch: cfg.MaxBatch, queue: make(chan *request[T], cfg.Queue),
		quit: make(chan struct{}), done: make(chan struct{})}
	go c.loop(ctx)
	return c
}

// Do queues fn and waits until the transaction that ran it committed (nil)
// or failed (the error). If ctx ends while fn is still queued, Do returns
// ctx's error and fn is skipped; once fn is running, Do waits for the commit
// so that a nil error always means durable.
func (c *Committer[T]) Do(ctx context.Context, fn func(T) error) error {
	select {
	case <-c.quit:
		return ErrClosed
	default:
	}
	r := &request[T]{ctx: ctx, fn: fn, reply: make(chan error, 1)}
	select {
	case c.queue <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.quit:
		return ErrClosed
	}
	select {
	case err := <-r.reply:
		return err
	case <-c.done:
		// The loop has exited: it either answered r before exiting or, if r
		// was queued after the final drain, never will.
		select {
		case err := <-r.reply:
			return err
		default:
			return ErrClosed
		}
	}
}

// Close stops accepting work, finishes what is queued and returns when the
// last transaction is done.
func (c *Committer[T]) Close() {
	c.closing.Do(func() { close(c.quit) })
	<-c.done
}

func (c *Committer[T]) loop(ctx context.Context) {
	defer close(c.done)
	batch := make([]*request[T], 0, c.maxBatch)
	for {
		batch = batch[:0]
		select {
		case r := <-c.queue:
			batch = append(batch, r)
		case <-c.quit:
			c.drain(ctx, batch)
			return
		}
	fill:
		for len(batch) < c.maxBatch {
			select {
			case r := <-c.queue:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		c.commit(ctx, batch)
	}
}

// drain commits whatever is still queued when Close is called.
func (c *Committer[T]) drain(ctx context.Context, batch []*request[T]) {
	for {
		select {
		case r := <-c.queue:
			batch = append(batch, r)
			if len(batch) == c.maxBatch {
				c.commit(ctx, batch)
				batch = batch[:0]
			}
		default:
			if len(batch) > 0 {
				c.commit(ctx, batch)
			}
			return
		}
	}
}

func (c *Committer[T]) commit(ctx context.Context, batch []*request[T]) {
	fns := make([]func(T) error, 0, len(batch))
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil { // gave up while queued: skip
			r.reply <- err
			continue
		}
		fns = append(fns, r.fn)
		live = append(live, r)
	}
	if len(fns) == 0 {
		return
	}
	errs, commitErr := c.run(ctx, fns)
	for i, r := range live {
		switch {
		case commitErr != nil:
			r.reply <- commitErr
		case i < len(errs):
			r.reply <- errs[i]
		default:
			r.reply <- nil
		}
	}
}
