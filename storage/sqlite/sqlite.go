// Package sqlite is the embedded storage backend of a home or small hub:
// the storage contract's tenants, state logs, envelopes and blob references
// in one SQLite database file (modernc.org/sqlite, pure Go).
//
// Durability: WAL journal with synchronous=FULL, so a commit is on disk when
// it returns; every write goes through one connection and a group committer,
// so concurrent writers share commits. Reads use a separate pool and never
// block writes. Retention frees space: the database uses incremental
// auto-vacuum and a sweep returns freed pages to the file system.
//
// It never interprets ciphertext and never decides authority.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/guildhall/guildhall/internal/groupcommit"
	"github.com/guildhall/guildhall/internal/migration"
	"github.com/guildhall/guildhall/storage"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// Config configures a Store.
type Config struct {
	// Path of the database file; created with its directory's permissions.
	Path string
	// MaxBatch bounds the writes one commit groups; default 256.
	MaxBatch int
	// ReadConns bounds concurrent readers; default 4.
	ReadConns int
	// Now is the clock for StoredAt and Created; default time.Now.
	Now func() time.Time
	// Logger receives operational messages; default discards them.
	Logger *slog.Logger
}

func (c *Config) validate() error {
	if c.Path == "" {
		return fmt.Errorf("sqlite: %w: Path is required", storage.ErrInvalid)
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 256
	}
	if c.ReadConns <= 0 {
		c.ReadConns = 4
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

// Store is the SQLite backend. It is safe for concurrent use.
type Store struct {
	cfg    Config
	w      *sql.DB    // exactly one connection: every write, through commit
	r      *sql.DB    // readers
	stmts  statements // on w
	commit *groupcommit.Committer[*batch]
	cancel context.CancelFunc
}

var (
	_ storage.Tenants       = (*Store)(nil)
	_ storage.EventLog      = (*Store)(nil)
	_ storage.EnvelopeStore = (*Store)(nil)
	_ storage.BlobRefs      = (*Store)(nil)
)

func dsn(path string, readOnly bool) string {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "synchronous(FULL)", "foreign_keys(ON)"} {
		q.Add("_pragma", p)
	}
	if readOnly {
		q.Add("_pragma", "query_only(ON)")
	} else {
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode()
}

// Open opens (creating if needed) and migrates the database.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	w, err := sql.Open("sqlite", dsn(cfg.Path, false))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	// auto_vacuum must be chosen before the first table exists; WAL is a
	// property of the file and persists.
	for _, pragma := range []string{"PRAGMA auto_vacuum = INCREMENTAL", "PRAGMA journal_mode = WAL"} {
		if _, err := w.ExecContext(ctx, pragma); err != nil {
			w.Close()
			return nil, fmt.Errorf("sqlite: %s: %w", pragma, err)
		}
	}
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, err
	}
	s := &Store{cfg: cfg, w: w}
	if err := s.stmts.prepare(ctx, w); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", dsn(cfg.Path, true))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open readers: %w", err)
	}
	r.SetMaxOpenConns(cfg.ReadConns)
	r.SetMaxIdleConns(cfg.ReadConns)
	cctx, cancel := context.WithCancel(context.Background())
	s.r, s.cancel = r, cancel
	s.commit = groupcommit.New(cctx, groupcommit.Config{MaxBatch: cfg.MaxBatch}, s.runBatch)
	return s, nil
}

// Close finishes queued writes and closes the database.
func (s *Store) Close() error {
	s.commit.Close()
	s.cancel()
	return errors.Join(s.r.Close(), s.w.Close())
}

// migrate applies the embedded migrations not yet applied, each in its own
// transaction, recording the schema version.
func migrate(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	var current int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&current); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	todo, err := migration.List(migrations, "migrations", current)
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	for _, m := range todo {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("sqlite: migrate %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			tx.Rollback()
			return fmt.Errorf("sqlite: migrate %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version, applied) VALUES (?, ?)`, m.Version, time.Now().UnixMilli()); err != nil {
			tx.Rollback()
			return fmt.Errorf("sqlite: migrate %s: %w", m.Name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("sqlite: migrate %s: %w", m.Name, err)
		}
	}
	return nil
}

// write runs fn in a group commit and maps a closed committer to ErrUnavailable.
func (s *Store) write(ctx context.Context, fn func(*batch) error) error {
	err := s.commit.Do(ctx, fn)
	if errors.Is(err, groupcommit.ErrClosed) {
		return fmt.Errorf("sqlite: %w: store closed", storage.ErrUnavailable)
	}
	return err
}

func unavailable(err error) error { return fmt.Errorf("%w: %w", storage.ErrUnavailable, err) }

func (s *Store) now() int64 { return s.cfg.Now().UnixMilli() }
