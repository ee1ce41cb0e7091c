// Package postgres is the storage backend of community and provider hubs:
// the storage contract's tenants, state logs, envelopes and blob references
// in PostgreSQL (github.com/jackc/pgx/v5). Several hub processes may share
// one database; that is the scale-out path.
//
// Durability: every session runs with synchronous_commit=on, and a write is
// acknowledged only after its transaction commits. Writes are grouped
// (internal/groupcommit): a group of envelope puts costs a handful of round
// trips (locks, one existence query, one COPY, counter updates) whatever its
// size. Sequences: a writer locks the channel row that holds the counter
// until it commits, so sequence N is committed before N+1 is handed out, in
// any number of processes.
//
// It never interprets ciphertext and never decides authority.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/guildhall/guildhall/internal/groupcommit"
	"github.com/guildhall/guildhall/internal/migration"
	"github.com/guildhall/guildhall/storage"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Config configures a Store.
type Config struct {
	// URL is a PostgreSQL connection URL or DSN.
	URL string
	// Schema, if set, holds the tables (created if missing); default: the
	// connection's search_path, normally "public".
	Schema string
	// MaxConns bounds the pool; default 16.
	MaxConns int32
	// MaxBatch bounds the writes one commit groups; default 512.
	MaxBatch int
	// Retries bounds re-runs of a group after a deadlock or serialization
	// failure with another hub process; default 5.
	Retries int
	// Timeout bounds each database operation (a connection, a query, a
	// group commit): past it the connection is dropped and the operation
	// fails with storage.ErrUnavailable, so a database that stops answering
	// (a stalled link, a half-open connection) cannot hold writers forever.
	// A commit cut off this way may still have committed; writes are
	// idempotent by content address, so the caller's retry is safe.
	// Default 30 s.
	Timeout time.Duration
	// Now is the clock for StoredAt and Created; default time.Now.
	Now func() time.Time
	// Logger receives operational messages; default discards them.
	Logger *slog.Logger
}

func (c *Config) validate() error {
	if c.URL == "" {
		return fmt.Errorf("postgres: %w: URL is required", storage.ErrInvalid)
	}
	if c.Schema != "" && strings.Trim(c.Schema, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
		return fmt.Errorf("postgres: %w: schema %q: use lowercase letters, digits and _", storage.ErrInvalid, c.Schema)
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 16
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 512
	}
	if c.Retries <= 0 {
		c.Retries = 5
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

var _ storage.Meta = (*Store)(nil)

// Store is the PostgreSQL backend. It is safe for concurrent use.
type Store struct {
	cfg    Config
	pool   *pgxpool.Pool
	commit *groupcommit.Committer[*batch]
	cancel context.CancelFunc
}

var (
	_ storage.Tenants       = (*Store)(nil)
	_ storage.EventLog      = (*Store)(nil)
	_ storage.EnvelopeStore = (*Store)(nil)
	_ storage.BlobRefs      = (*Store)(nil)
)

// Open connects, checks durability settings and migrates the schema.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w: %v", storage.ErrInvalid, err)
	}
	pc.MaxConns = cfg.MaxConns
	pc.ConnConfig.ConnectTimeout = cfg.Timeout
	pc.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	pc.ConnConfig.RuntimeParams["application_name"] = "guildhall-hub"
	if cfg.Schema != "" {
		pc.ConnConfig.RuntimeParams["search_path"] = cfg.Schema
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", unavailable(err))
	}
	if err := migrate(ctx, pool, cfg.Schema); err != nil {
		pool.Close()
		return nil, err
	}
	cctx, cancel := context.WithCancel(context.Background())
	s := &Store{cfg: cfg, pool: pool, cancel: cancel}
	s.commit = groupcommit.New(cctx, groupcommit.Config{MaxBatch: cfg.MaxBatch}, s.runBatch)
	return s, nil
}

// Close finishes queued writes and closes the pool.
func (s *Store) Close() error {
	s.commit.Close()
	s.cancel()
	s.pool.Close()
	return nil
}

// migrate applies the embedded migrations not yet applied, under an advisory
// lock so that hub processes starting together migrate once.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", unavailable(err))
	}
	defer conn.Release()
	if schema != "" {
		if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
			return fmt.Errorf("postgres: migrate: %w", err)
		}
	}
	const lockKey = 0x6775696c64 // "guild"
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockKey); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, lockKey)
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, applied bigint NOT NULL)`); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	var current int
	if err := conn.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&current); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	todo, err := migration.List(migrations, "migrations", current)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	for _, m := range todo {
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_version (version, applied) VALUES ($1, $2)`, m.Version, time.Now().UnixMilli())
			return err
		})
		if err != nil {
			return fmt.Errorf("postgres: migrate %s: %w", m.Name, err)
		}
	}
	return nil
}

// write runs fn in a group commit and maps a closed committer to ErrUnavailable.
func (s *Store) write(ctx context.Context, fn func(*batch) error) error {
	err := s.commit.Do(ctx, fn)
	if errors.Is(err, groupcommit.ErrClosed) {
		return fmt.Errorf("postgres: %w: store closed", storage.ErrUnavailable)
	}
	return err
}

// unavailable marks connection-level failures as ErrUnavailable; errors the
// server reported about a statement keep their own meaning.
func unavailable(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch c := pgErr.Code; {
		case strings.HasPrefix(c, "08"), // connection exception
			strings.HasPrefix(c, "53"),  // insufficient resources (too many connections, disk full)
			strings.HasPrefix(c, "57P"), // the server shutting down or starting
			c == "57014":                // query cancelled: our timeout
		default:
			return err // the database refused the statement itself: a bug, not an outage
		}
	}
	return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
}

// contractErrors are the storage errors a caller acts on; backendError
// leaves them as they are.
var contractErrors = []error{storage.ErrNotFound, storage.ErrNotHosted, storage.ErrSuspended, storage.ErrQuotaExceeded,
	storage.ErrBlobMismatch, storage.ErrInvalid, storage.ErrUnavailable}

// backendError classifies an error out of a commit group: one of the
// contract's stays; anything else (a connection lost mid-group, a timeout)
// is marked ErrUnavailable, as unavailable does.
func backendError(err error) error {
	if err == nil {
		return nil
	}
	for _, e := range contractErrors {
		if errors.Is(err, e) {
			return err
		}
	}
	return unavailable(err)
}

// retryable reports a conflict with another process that a re-run resolves.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// bound limits one operation to the configured Timeout.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.Timeout)
}

func (s *Store) now() int64 { return s.cfg.Now().UnixMilli() }
