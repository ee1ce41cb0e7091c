// Package fs is the embedded blob backend: client-encrypted blobs as files
// named by their content ID in sharded directories (ab/cd/abcd...).
//
// A blob is written to a temporary file while its SHA-256 is computed,
// checked against its ID and size, fsynced, atomically renamed into place and
// its directory fsynced: a blob that exists is complete and verified, and an
// acknowledged put survives a crash. It never interprets the bytes it stores.
package fs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// Config configures a Store.
type Config struct {
	Dir string // root directory; created with mode 0700
}

// Store is the filesystem blob store. It is safe for concurrent use.
type Store struct {
	blobs, tmp string
}

var _ storage.BlobStore = (*Store)(nil)

// Open prepares the directory and removes temporary files a crash left.
func Open(cfg Config) (*Store, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("fs: %w: Dir is required", storage.ErrInvalid)
	}
	s := &Store{blobs: filepath.Join(cfg.Dir, "blobs"), tmp: filepath.Join(cfg.Dir, "tmp")}
	for _, d := range []string{s.blobs, s.tmp} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("fs: open: %w", err)
		}
	}
	leftovers, err := os.ReadDir(s.tmp)
	if err != nil {
		return nil, fmt.Errorf("fs: open: %w", err)
	}
	for _, e := range leftovers {
		_ = os.Remove(filepath.Join(s.tmp, e.Name()))
	}
	return s, nil
}

func (s *Store) path(id policy.ID) string {
	h := hex.EncodeToString(id[:])
	return filepath.Join(s.blobs, h[0:2], h[2:4], h)
}

// PutBlob stores a blob after verifying its bytes against id and size.
func (s *Store) PutBlob(ctx context.Context, id policy.ID, r io.Reader, size int64) error {
	if size < 0 {
		return fmt.Errorf("fs: put blob: %w: negative size", storage.ErrInvalid)
	}
	final := s.path(id)
	if _, err := os.Stat(final); err == nil {
		return nil // content-addressed: what is there is these bytes
	}
	f, err := os.CreateTemp(s.tmp, "put-*")
	if err != nil {
		return fmt.Errorf("fs: put blob: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(ctxReader{ctx, r}, size+1))
	if err != nil {
		return fmt.Errorf("fs: put blob: %w", err)
	}
	if n != size || policy.ID(h.Sum(nil)) != id {
		return fmt.Errorf("fs: put blob %s: %w (got %d bytes, want %d)", id, storage.ErrBlobMismatch, n, size)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fs: put blob: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("fs: put blob: %w", err)
	}
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("fs: put blob: %w", err)
	}
	if err := os.Rename(f.Name(), final); err != nil {
		return fmt.Errorf("fs: put blob: %w", err)
	}
	committed = true
	// The rename is durable once the directories naming it are.
	for _, d := range []string{dir, filepath.Dir(dir), s.blobs} {
		if err := syncDir(d); err != nil {
			return fmt.Errorf("fs: put blob: %w", err)
		}
	}
	return nil
}

// GetBlob opens a blob for reading.
func (s *Store) GetBlob(ctx context.Context, id policy.ID) (io.ReadCloser, int64, error) {
	f, err := os.Open(s.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, fmt.Errorf("fs: blob %s: %w", id, storage.ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("fs: get blob: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("fs: get blob: %w", err)
	}
	return f, st.Size(), nil
}

// StatBlob returns a blob's size.
func (s *Store) StatBlob(ctx context.Context, id policy.ID) (int64, error) {
	st, err := os.Stat(s.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("fs: blob %s: %w", id, storage.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("fs: stat blob: %w", err)
	}
	return st.Size(), nil
}

// DeleteBlob removes a blob.
func (s *Store) DeleteBlob(ctx context.Context, id policy.ID) error {
	p := s.path(id)
	err := os.Remove(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("fs: delete blob: %w", err)
	}
	if err := syncDir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("fs: delete blob: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
