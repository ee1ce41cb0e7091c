package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/guildhall/guildhall/internal/ledger"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// batch is one group commit: a transaction; the tenant usage rows and
// channel counters it touched, locked (FOR UPDATE) until commit, cached and
// written back once; and the envelope puts of the group, deferred and done
// together at the end.
//
// The rule for write functions (as in the SQLite backend): check first, then
// write. A function that fails before writing fails alone; one that fails
// after writing aborts the group, which is rolled back, every caller in it
// getting the error. A failed write never leaves anything behind.
type batch struct {
	s        *Store
	tx       pgx.Tx
	wrote    bool
	usage    *ledger.Ledger
	channels map[chanKey]*chanRow
	puts     []*putReq
}

type chanKey struct{ server, channel policy.ID }

type chanRow struct {
	nextSeq, bytes int64
	dirty          bool
}

// putReq is one PutEnvelopes call waiting for the end of the group.
type putReq struct {
	envs []storage.Envelope
	out  []storage.Stored
	err  error
}

// errAborted wraps the error of a function that failed after writing.
type errAborted struct{ err error }

func (e errAborted) Error() string { return "postgres: batch aborted: " + e.err.Error() }
func (e errAborted) Unwrap() error { return e.err }

// runBatch runs a group in one transaction, re-running it when it lost a
// deadlock or serialization conflict with another hub process.
func (s *Store) runBatch(ctx context.Context, fns []func(*batch) error) ([]error, error) {
	for attempt := 0; ; attempt++ {
		errs, err := s.runOnce(ctx, fns)
		if err == nil || !retryable(err) || attempt == s.cfg.Retries {
			for i := range errs {
				errs[i] = backendError(errs[i])
			}
			return errs, backendError(err)
		}
		s.cfg.Logger.Info("retrying write group after a conflict", "attempt", attempt+1, "err", err)
	}
}

func (s *Store) runOnce(ctx context.Context, fns []func(*batch) error) ([]error, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: begin: %w", unavailable(err))
	}
	defer tx.Rollback(context.Background()) // no-op after Commit
	b := &batch{s: s, tx: tx, usage: ledger.New(), channels: map[chanKey]*chanRow{}}
	errs := make([]error, len(fns))
	put := make([]*putReq, len(fns)) // which function registered which put
	for i, fn := range fns {
		b.wrote = false
		n := len(b.puts)
		if errs[i] = fn(b); errs[i] != nil {
			if b.wrote {
				return nil, errAborted{errs[i]}
			}
			b.usage.Discard()
			continue
		}
		b.usage.Settle()
		if len(b.puts) > n {
			put[i] = b.puts[n]
		}
	}
	if err := b.runPuts(ctx); err != nil {
		return nil, err
	}
	for i, p := range put {
		if p != nil && p.err != nil {
			errs[i] = p.err
		}
	}
	if err := b.flush(ctx); err != nil {
		return nil, fmt.Errorf("postgres: write counters: %w", unavailable(err))
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("postgres: commit: %w", unavailable(err))
	}
	return errs, nil
}

func (b *batch) exec(ctx context.Context, sql string, args ...any) (int64, error) {
	b.wrote = true
	tag, err := b.tx.Exec(ctx, sql, args...)
	return tag.RowsAffected(), err
}

// lockTenants loads and locks, in server order, the tenant rows not cached yet.
func (b *batch) lockTenants(ctx context.Context, servers []policy.ID) error {
	var want [][]byte
	for _, s := range servers {
		if !b.usage.Has(s) {
			want = append(want, s[:])
		}
	}
	if len(want) == 0 {
		return nil
	}
	rows, err := b.tx.Query(ctx, `SELECT server, quota_bytes, quota_envelopes, quota_blobs, used_bytes, used_envelopes, used_blobs, suspended
		FROM tenants WHERE server = ANY($1) ORDER BY server FOR UPDATE`, want)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var server []byte
		var r ledger.Row
		if err := rows.Scan(&server, &r.Quota.Bytes, &r.Quota.Envelopes, &r.Quota.Blobs, &r.Used.Bytes, &r.Used.Envelopes, &r.Used.Blobs, &r.Suspended); err != nil {
			return err
		}
		b.usage.Load(policy.ID(server), r)
	}
	return rows.Err()
}

// charge checks d against a server's quota (locking its row on first use)
// and records it as the running function's pending change; it writes nothing.
func (b *batch) charge(ctx context.Context, server policy.ID, d ledger.Delta) error {
	if err := b.lockTenants(ctx, []policy.ID{server}); err != nil {
		return err
	}
	return b.usage.Charge(server, d)
}

// lockChannels creates missing channel rows, then loads and locks, in key
// order, the rows not cached yet.
func (b *batch) lockChannels(ctx context.Context, keys []chanKey) error {
	var servers, channels [][]byte
	for _, k := range keys {
		if _, ok := b.channels[k]; !ok {
			servers, channels = append(servers, k.server[:]), append(channels, k.channel[:])
		}
	}
	if len(servers) == 0 {
		return nil
	}
	b.wrote = true
	if _, err := b.tx.Exec(ctx, `INSERT INTO channels (server, channel) SELECT * FROM unnest($1::bytea[], $2::bytea[])
		ORDER BY 1, 2 ON CONFLICT DO NOTHING`, servers, channels); err != nil {
		return err
	}
	rows, err := b.tx.Query(ctx, `SELECT c.server, c.channel, c.next_seq, c.bytes FROM channels c
		JOIN unnest($1::bytea[], $2::bytea[]) AS k(server, channel) ON c.server = k.server AND c.channel = k.channel
		ORDER BY c.server, c.channel FOR UPDATE OF c`, servers, channels)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var server, channel []byte
		row := &chanRow{}
		if err := rows.Scan(&server, &channel, &row.nextSeq, &row.bytes); err != nil {
			return err
		}
		b.channels[chanKey{policy.ID(server), policy.ID(channel)}] = row
	}
	return rows.Err()
}

func (b *batch) channel(ctx context.Context, server, channel policy.ID) (*chanRow, error) {
	k := chanKey{server, channel}
	if err := b.lockChannels(ctx, []chanKey{k}); err != nil {
		return nil, err
	}
	return b.channels[k], nil
}

// runPuts stores the group's deferred envelope puts: lock their tenants,
// find which IDs exist, check each request's quota in order, lock the
// channels, then one COPY for every new envelope.
func (b *batch) runPuts(ctx context.Context) error {
	if len(b.puts) == 0 {
		return nil
	}
	serverSet, idSet := map[policy.ID]bool{}, map[policy.ID]bool{}
	for _, p := range b.puts {
		for _, e := range p.envs {
			serverSet[e.Server], idSet[e.ID] = true, true
		}
	}
	if err := b.lockTenants(ctx, slices.SortedFunc(maps.Keys(serverSet), policy.ID.Compare)); err != nil {
		return err
	}
	ids := make([][]byte, 0, len(idSet))
	for id := range idSet {
		ids = append(ids, id[:])
	}
	existing := map[policy.ID]storage.Stored{}
	rows, err := b.tx.Query(ctx, `SELECT id, seq, stored_at, size = 0 FROM envelopes WHERE id = ANY($1)`, ids)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id []byte
		var st storage.Stored
		if err := rows.Scan(&id, &st.Seq, &st.StoredAt, &st.Early); err != nil {
			rows.Close()
			return err
		}
		st.Duplicate = true
		existing[policy.ID(id)] = st
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	// Quota per request, in order; requests that fit claim their new IDs.
	claimed := map[policy.ID]*storage.Stored{} // new in this group: where its result will be
	var accepted []*putReq
	for _, p := range b.puts {
		mine := map[policy.ID]bool{}
		for _, c := range ledger.EnvelopeCharges(p.envs, func(i int) bool {
			id := p.envs[i].ID
			if _, ok := existing[id]; ok || claimed[id] != nil || mine[id] {
				return false
			}
			mine[id] = true
			return true
		}) {
			if p.err = b.usage.Charge(c.Server, c.Delta); p.err != nil {
				break
			}
		}
		if p.err != nil {
			b.usage.Discard()
			continue
		}
		b.usage.Settle()
		for i, e := range p.envs {
			if mine[e.ID] && claimed[e.ID] == nil {
				claimed[e.ID] = &p.out[i]
			}
		}
		accepted = append(accepted, p)
	}
	if len(claimed) == 0 {
		return b.resolveDuplicates(accepted, existing, claimed)
	}
	// Sequence numbers from the locked channel rows, in request order.
	keySet := map[chanKey]bool{}
	for _, p := range accepted {
		for _, e := range p.envs {
			keySet[chanKey{e.Server, e.Channel}] = true
		}
	}
	keys := slices.SortedFunc(maps.Keys(keySet), func(a, c chanKey) int {
		if n := a.server.Compare(c.server); n != 0 {
			return n
		}
		return a.channel.Compare(c.channel)
	})
	if err := b.lockChannels(ctx, keys); err != nil {
		return err
	}
	now := b.s.now()
	var copyRows [][]any
	for _, p := range accepted {
		for i, e := range p.envs {
			if claimed[e.ID] != &p.out[i] {
				continue
			}
			ch := b.channels[chanKey{e.Server, e.Channel}]
			p.out[i] = storage.Stored{Seq: uint64(ch.nextSeq), StoredAt: now}
			copyRows = append(copyRows, []any{e.ID[:], e.Server[:], e.Channel[:], ch.nextSeq, e.Time, e.Sender[:], now, len(e.Raw), e.Raw})
			ch.nextSeq++
			ch.bytes += int64(len(e.Raw))
			ch.dirty = true
		}
	}
	b.wrote = true
	if _, err := b.tx.CopyFrom(ctx, pgx.Identifier{"envelopes"},
		[]string{"id", "server", "channel", "seq", "time", "sender", "stored_at", "size", "raw"}, pgx.CopyFromRows(copyRows)); err != nil {
		return err
	}
	return b.resolveDuplicates(accepted, existing, claimed)
}

// resolveDuplicates fills the results of envelopes that were already stored
// or stored by an earlier request of the group.
func (b *batch) resolveDuplicates(accepted []*putReq, existing map[policy.ID]storage.Stored, claimed map[policy.ID]*storage.Stored) error {
	for _, p := range accepted {
		for i, e := range p.envs {
			if st, ok := existing[e.ID]; ok {
				p.out[i] = st
			} else if c := claimed[e.ID]; c != &p.out[i] {
				p.out[i] = *c
				p.out[i].Duplicate = true
			}
		}
	}
	return nil
}

// flush writes changed counters back.
func (b *batch) flush(ctx context.Context) error {
	var servers [][]byte
	var ub, ue, ubl []int64
	for server, used := range b.usage.Dirty() {
		servers = append(servers, server[:])
		ub, ue, ubl = append(ub, used.Bytes), append(ue, used.Envelopes), append(ubl, used.Blobs)
	}
	if len(servers) > 0 {
		if _, err := b.tx.Exec(ctx, `UPDATE tenants t SET used_bytes = u.b, used_envelopes = u.e, used_blobs = u.bl
			FROM unnest($1::bytea[], $2::bigint[], $3::bigint[], $4::bigint[]) AS u(server, b, e, bl) WHERE t.server = u.server`,
			servers, ub, ue, ubl); err != nil {
			return err
		}
	}
	var cs, cc [][]byte
	var next, bytes []int64
	for k, row := range b.channels {
		if row.dirty {
			cs, cc = append(cs, k.server[:]), append(cc, k.channel[:])
			next, bytes = append(next, row.nextSeq), append(bytes, row.bytes)
		}
	}
	if len(cs) > 0 {
		if _, err := b.tx.Exec(ctx, `UPDATE channels c SET next_seq = u.n, bytes = u.b
			FROM unnest($1::bytea[], $2::bytea[], $3::bigint[], $4::bigint[]) AS u(server, channel, n, b)
			WHERE c.server = u.server AND c.channel = u.channel`, cs, cc, next, bytes); err != nil {
			return err
		}
	}
	return nil
}

// forget writes back and drops a cached tenant row before a statement
// changes the row directly (quota, suspension); the row stays locked.
func (b *batch) forget(ctx context.Context, server policy.ID) error {
	used, dirty := b.usage.Forget(server)
	if !dirty {
		return nil
	}
	_, err := b.exec(ctx, `UPDATE tenants SET used_bytes = $1, used_envelopes = $2, used_blobs = $3 WHERE server = $4`,
		used.Bytes, used.Envelopes, used.Blobs, server[:])
	return err
}

func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
