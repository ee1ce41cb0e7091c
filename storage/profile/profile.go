// Package profile opens the stores of one of a hub's two storage profiles:
// embedded (SQLite and blobs in files, in one data directory: a home node)
// or PostgreSQL with blobs in S3 (a community or provider hub, which may
// run as several replicas sharing both). The hub binary and the tests that
// need real backends open them here, so there is one way to do it.
//
// It only opens and closes; it must never choose a profile on its own
// (from the environment or files it finds) or hold anything beyond the
// stores it returns.
package profile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/guildhall/guildhall/storage"
	"github.com/guildhall/guildhall/storage/fs"
	"github.com/guildhall/guildhall/storage/postgres"
	"github.com/guildhall/guildhall/storage/s3"
	"github.com/guildhall/guildhall/storage/sqlite"
)

// Config selects and configures a profile.
type Config struct {
	// Dir is the data directory. The embedded profile keeps hub.db and
	// blobs/ in it (created with mode 0700); the PostgreSQL profile keeps
	// blobs/ in it when S3 has no endpoint. Required unless both
	// PostgresURL and S3.Endpoint are set.
	Dir string
	// PostgresURL selects the PostgreSQL profile; empty selects embedded.
	PostgresURL string
	// Schema holds the PostgreSQL tables; default the connection's
	// search_path (tests give each their own).
	Schema string
	// S3, when its Endpoint is set, holds the blobs (PostgreSQL profile
	// only: blob references live in the database). Its Timeout defaults to
	// Timeout.
	S3 s3.Config
	// Timeout bounds each database and bucket operation; default the
	// backends' (30 s). The embedded profile has no such bound.
	Timeout time.Duration
	// Now is the stores' clock; default time.Now.
	Now func() time.Time
	// Logger receives the stores' operational messages; default discards.
	Logger *slog.Logger
}

func (c *Config) validate() error {
	if c.S3.Endpoint != "" && c.PostgresURL == "" {
		return fmt.Errorf("profile: %w: S3 needs PostgresURL (blob references live in the database)", storage.ErrInvalid)
	}
	if c.Dir == "" && (c.PostgresURL == "" || c.S3.Endpoint == "") {
		return fmt.Errorf("profile: %w: Dir is required", storage.ErrInvalid)
	}
	if c.S3.Timeout == 0 {
		c.S3.Timeout = c.Timeout
	}
	return nil
}

// Meta is the metadata store a profile opens: every metadata contract,
// and Close.
type Meta interface {
	storage.Meta
	Close() error
}

// Stores are the opened stores of a profile.
type Stores struct {
	Meta  Meta
	Blobs storage.BlobStore
}

// Close closes the metadata store (committing what is pending). The blob
// stores hold nothing to close.
func (s *Stores) Close() error { return s.Meta.Close() }

// Embedded reports whether c selects the embedded profile.
func (c Config) Embedded() bool { return c.PostgresURL == "" }

// Open opens the stores c selects. On error nothing is left open.
func Open(ctx context.Context, c Config) (*Stores, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	var meta Meta
	if c.Embedded() {
		if err := os.MkdirAll(c.Dir, 0o700); err != nil {
			return nil, err
		}
		st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(c.Dir, "hub.db"), Now: c.Now, Logger: c.Logger})
		if err != nil {
			return nil, err
		}
		meta = st
	} else {
		st, err := postgres.Open(ctx, postgres.Config{URL: c.PostgresURL, Schema: c.Schema, Timeout: c.Timeout, Now: c.Now, Logger: c.Logger})
		if err != nil {
			return nil, err
		}
		meta = st
	}
	var blobs storage.BlobStore
	var err error
	if c.S3.Endpoint != "" {
		blobs, err = s3.Open(ctx, c.S3)
	} else {
		blobs, err = fs.Open(fs.Config{Dir: filepath.Join(c.Dir, "blobs")})
	}
	if err != nil {
		return nil, errors.Join(err, meta.Close())
	}
	return &Stores{Meta: meta, Blobs: blobs}, nil
}
