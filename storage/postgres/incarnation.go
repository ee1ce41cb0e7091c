package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/jackc/pgx/v5"
)

func newIncarnation() string { return hex.EncodeToString([]byte(rand.Text()))[:32] }

// Incarnation returns the store's incarnation ID. It is renewed when the
// tenants table is not the one it was recorded with: a pg_restore --clean,
// or a restore into a fresh database, recreates the table under a new OID.
// Sequence numbers of one incarnation never repeat; across incarnations
// they may, so a client holding a cursor of another incarnation resyncs.
func (s *Store) Incarnation(ctx context.Context) (string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var id string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE incarnation IN EXCLUSIVE MODE`); err != nil {
			return err
		}
		var oid, recorded int64
		if err := tx.QueryRow(ctx, `SELECT 'tenants'::regclass::oid::bigint`).Scan(&oid); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `SELECT id, table_oid FROM incarnation`).Scan(&id, &recorded)
		if err == nil && recorded == oid {
			return nil
		}
		if err != nil && err != pgx.ErrNoRows {
			return err
		}
		id = newIncarnation()
		if _, err := tx.Exec(ctx, `DELETE FROM incarnation`); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO incarnation (id, table_oid) VALUES ($1, $2)`, id, oid)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("postgres: incarnation: %w", unavailable(err))
	}
	return id, nil
}

// MarkRestored renews the incarnation unconditionally: the operator's step
// for a restore the store cannot detect.
func (s *Store) MarkRestored(ctx context.Context) (string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if _, err := s.pool.Exec(ctx, `DELETE FROM incarnation`); err != nil {
		return "", fmt.Errorf("postgres: mark restored: %w", unavailable(err))
	}
	return s.Incarnation(ctx)
}
