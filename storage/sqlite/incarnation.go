package sqlite

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

func newIncarnation() string { return hex.EncodeToString([]byte(rand.Text()))[:32] }

// Incarnation returns the store's incarnation ID, creating it on first use.
// A restore by file copy cannot be told from the original file: after one,
// the operator renews it with MarkRestored.
func (s *Store) Incarnation(ctx context.Context) (string, error) {
	var id string
	err := s.w.QueryRowContext(ctx, `SELECT id FROM incarnation`).Scan(&id)
	if err == nil {
		return id, nil
	}
	return s.MarkRestored(ctx)
}

// MarkRestored renews the incarnation unconditionally.
func (s *Store) MarkRestored(ctx context.Context) (string, error) {
	id := newIncarnation()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("sqlite: incarnation: %w", unavailable(err))
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM incarnation`); err != nil {
		return "", fmt.Errorf("sqlite: incarnation: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO incarnation (id) VALUES (?)`, id); err != nil {
		return "", fmt.Errorf("sqlite: incarnation: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("sqlite: incarnation: %w", unavailable(err))
	}
	return id, nil
}
