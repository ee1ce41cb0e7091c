package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/guildhall/guildhall/internal/ledger"
	"github.com/guildhall/guildhall/policy"
)

// batch is one group commit: the transaction, plus the tenant usage rows and
// channel counters it touches, kept in memory and written back once before
// COMMIT.
//
// The rule for write functions: check first, then write. A function that
// returns an error before its first write (b.exec and friends) fails alone;
// one that fails after writing aborts the whole batch, which is rolled back
// and every caller in it gets the error. Either way a failed write leaves
// nothing. (Savepoints per function would isolate failures too, but make
// SQLite copy every hot page into its sub-journal once per function: a fifth
// of ingest time.)
type batch struct {
	s        *Store
	tx       *sql.Tx
	wrote    bool // the running function has written
	usage    *ledger.Ledger
	channels map[chanKey]*chanRow
}

type chanKey struct{ server, channel policy.ID }

type chanRow struct {
	nextSeq, bytes int64
	dirty          bool
}

// errAborted wraps the error of a function that failed after writing.
type errAborted struct{ err error }

func (e errAborted) Error() string { return "sqlite: batch aborted: " + e.err.Error() }
func (e errAborted) Unwrap() error { return e.err }

// runBatch runs a group of write functions in one transaction.
func (s *Store) runBatch(ctx context.Context, fns []func(*batch) error) ([]error, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: begin: %w", unavailable(err))
	}
	b := &batch{s: s, tx: tx, usage: ledger.New(), channels: map[chanKey]*chanRow{}}
	errs := make([]error, len(fns))
	for i, fn := range fns {
		b.wrote = false
		if errs[i] = fn(b); errs[i] != nil {
			if b.wrote {
				tx.Rollback()
				return nil, errAborted{errs[i]}
			}
			b.usage.Discard()
			continue
		}
		b.usage.Settle()
	}
	if err := b.flush(ctx); err != nil {
		tx.Rollback()
		return nil, fmt.Errorf("sqlite: write counters: %w", unavailable(err))
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: commit: %w", unavailable(err))
	}
	return errs, nil
}

// exec runs a writing statement.
func (b *batch) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	b.wrote = true
	return b.tx.ExecContext(ctx, query, args...)
}

// query runs a writing statement that returns rows (INSERT/DELETE ... RETURNING).
func (b *batch) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	b.wrote = true
	return b.tx.QueryContext(ctx, query, args...)
}

// queryRowStmt runs a prepared writing statement that returns one row.
func (b *batch) queryRowStmt(ctx context.Context, st *sql.Stmt, args ...any) *sql.Row {
	b.wrote = true
	return b.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
}

// charge checks d against a server's quota (loading its row on first use)
// and records it as the running function's pending change; it writes nothing.
func (b *batch) charge(ctx context.Context, server policy.ID, d ledger.Delta) error {
	if !b.usage.Has(server) {
		var r ledger.Row
		err := b.tx.StmtContext(ctx, b.s.stmts.tenantUsage).QueryRowContext(ctx, server[:]).
			Scan(&r.Quota.Bytes, &r.Quota.Envelopes, &r.Quota.Blobs, &r.Used.Bytes, &r.Used.Envelopes, &r.Used.Blobs, &r.Suspended)
		switch {
		case err == nil:
			b.usage.Load(server, r)
		case !errors.Is(err, sql.ErrNoRows): // no row: Charge reports the server not hosted
			return err
		}
	}
	return b.usage.Charge(server, d)
}

// channel returns a channel's counters, loading them on first use.
func (b *batch) channel(ctx context.Context, server, channel policy.ID) (*chanRow, error) {
	k := chanKey{server, channel}
	if row, ok := b.channels[k]; ok {
		return row, nil
	}
	row := &chanRow{nextSeq: 1}
	err := b.tx.StmtContext(ctx, b.s.stmts.channelGet).QueryRowContext(ctx, server[:], channel[:]).Scan(&row.nextSeq, &row.bytes)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	b.channels[k] = row
	return row, nil
}

// flush writes changed counters back, in key order.
func (b *batch) flush(ctx context.Context) error {
	upd := b.tx.StmtContext(ctx, b.s.stmts.tenantSetUsage)
	for server, used := range b.usage.Dirty() {
		if _, err := upd.ExecContext(ctx, used.Bytes, used.Envelopes, used.Blobs, server[:]); err != nil {
			return err
		}
	}
	put := b.tx.StmtContext(ctx, b.s.stmts.channelPut)
	for _, k := range slices.SortedFunc(maps.Keys(b.channels), func(a, c chanKey) int {
		if n := a.server.Compare(c.server); n != 0 {
			return n
		}
		return a.channel.Compare(c.channel)
	}) {
		if row := b.channels[k]; row.dirty {
			if _, err := put.ExecContext(ctx, k.server[:], k.channel[:], row.nextSeq, row.bytes); err != nil {
				return err
			}
		}
	}
	return nil
}

// forget writes back and drops a cached tenant row before a statement
// changes the row directly (quota, suspension).
func (b *batch) forget(ctx context.Context, server policy.ID) error {
	used, dirty := b.usage.Forget(server)
	if !dirty {
		return nil
	}
	b.wrote = true
	_, err := b.tx.StmtContext(ctx, b.s.stmts.tenantSetUsage).ExecContext(ctx, used.Bytes, used.Envelopes, used.Blobs, server[:])
	return err
}
