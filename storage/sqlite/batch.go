package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
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
	tenants  map[policy.ID]*tenantRow
	channels map[chanKey]*chanRow
	pending  map[policy.ID]delta // the running function's usage changes
}

type tenantRow struct {
	quota     [3]int64 // bytes, envelopes, blobs
	used      [3]int64
	suspended bool
	dirty     bool
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
	b := &batch{s: s, tx: tx, tenants: map[policy.ID]*tenantRow{}, channels: map[chanKey]*chanRow{}, pending: map[policy.ID]delta{}}
	errs := make([]error, len(fns))
	for i, fn := range fns {
		b.wrote = false
		if errs[i] = fn(b); errs[i] != nil {
			if b.wrote {
				tx.Rollback()
				return nil, errAborted{errs[i]}
			}
			clear(b.pending)
			continue
		}
		b.settle()
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

// charge checks d against a server's quota and records it as the running
// function's pending change; it writes nothing. Growth is refused for a
// server that is not hosted, is suspended, or would exceed a quota.
func (b *batch) charge(ctx context.Context, server policy.ID, d delta) error {
	row, err := b.tenant(ctx, server)
	if err != nil {
		return err
	}
	p := b.pending[server]
	add := [3]int64{d.bytes, d.envelopes, d.blobs}
	if (add[0] > 0 || add[1] > 0 || add[2] > 0) && row.suspended {
		return fmt.Errorf("sqlite: server %s: %w", server, storage.ErrSuspended)
	}
	used := [3]int64{row.used[0] + p.bytes, row.used[1] + p.envelopes, row.used[2] + p.blobs}
	for i, r := range []storage.Resource{storage.ResourceBytes, storage.ResourceEnvelopes, storage.ResourceBlobs} {
		if add[i] > 0 && row.quota[i] > 0 && used[i]+add[i] > row.quota[i] {
			return &storage.QuotaError{Resource: r, Limit: uint64(row.quota[i]), Used: uint64(used[i]), Want: uint64(add[i])}
		}
	}
	b.pending[server] = delta{p.bytes + d.bytes, p.envelopes + d.envelopes, p.blobs + d.blobs}
	return nil
}

func (b *batch) tenant(ctx context.Context, server policy.ID) (*tenantRow, error) {
	if row, ok := b.tenants[server]; ok {
		return row, nil
	}
	row := &tenantRow{}
	err := b.tx.StmtContext(ctx, b.s.stmts.tenantUsage).QueryRowContext(ctx, server[:]).
		Scan(&row.quota[0], &row.quota[1], &row.quota[2], &row.used[0], &row.used[1], &row.used[2], &row.suspended)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: server %s: %w", server, storage.ErrNotHosted)
	}
	if err != nil {
		return nil, err
	}
	b.tenants[server] = row
	return row, nil
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

// settle folds the succeeded function's usage changes into the rows.
func (b *batch) settle() {
	for server, d := range b.pending {
		row := b.tenants[server]
		row.used[0] += d.bytes
		row.used[1] += d.envelopes
		row.used[2] += d.blobs
		row.dirty = true
	}
	clear(b.pending)
}

// flush writes changed counters back, in key order.
func (b *batch) flush(ctx context.Context) error {
	upd := b.tx.StmtContext(ctx, b.s.stmts.tenantSetUsage)
	for _, server := range slices.SortedFunc(maps.Keys(b.tenants), policy.ID.Compare) {
		if row := b.tenants[server]; row.dirty {
			if _, err := upd.ExecContext(ctx, row.used[0], row.used[1], row.used[2], server[:]); err != nil {
				return err
			}
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
	row, ok := b.tenants[server]
	if !ok {
		return nil
	}
	if row.dirty {
		b.wrote = true
		if _, err := b.tx.StmtContext(ctx, b.s.stmts.tenantSetUsage).ExecContext(ctx, row.used[0], row.used[1], row.used[2], server[:]); err != nil {
			return err
		}
	}
	delete(b.tenants, server)
	return nil
}
