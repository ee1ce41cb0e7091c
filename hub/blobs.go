package hub

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// mayUpload applies policy's upload rule and the tenant's quota before
// any byte is received.
func (s *Service) mayUpload(ctx context.Context, r Caller, server policy.ID, size int64) error {
	if s.cfg.Blobs == nil {
		return ErrNoBlobs
	}
	if size < 0 || size > s.cfg.MaxBlob {
		return fmt.Errorf("%w: blob of %d bytes, limit %d", ErrTooLarge, size, s.cfg.MaxBlob)
	}
	sl, err := s.lockLog(ctx, server)
	if err != nil {
		return err
	}
	err = sl.log.State().MayUpload(r.Identity, r.Device)
	sl.mu.Unlock()
	if err != nil {
		return err
	}
	t, err := s.cfg.Store.Tenant(ctx, server)
	switch {
	case err != nil:
		return err
	case t.Suspended:
		return fmt.Errorf("hub: server %s: %w", server, storage.ErrSuspended)
	case t.Quota.Bytes > 0 && t.Usage.Bytes+uint64(size) > t.Quota.Bytes:
		return &storage.QuotaError{Resource: storage.ResourceBytes, Limit: t.Quota.Bytes, Used: t.Usage.Bytes, Want: uint64(size)}
	case t.Quota.Blobs > 0 && t.Usage.Blobs+1 > t.Quota.Blobs:
		return &storage.QuotaError{Resource: storage.ResourceBlobs, Limit: t.Quota.Blobs, Used: t.Usage.Blobs, Want: 1}
	}
	return nil
}

// PutBlob stores a blob for a server, streaming and verifying size bytes
// from body against id, and counts it toward the server's quota. A blob
// already held (by any server) is not uploaded again. On any failure the
// server does not reference the blob, and a blob stored by this call alone
// is deleted.
func (s *Service) PutBlob(ctx context.Context, r Caller, server, id policy.ID, body io.Reader, size int64) error {
	if err := s.mayUpload(ctx, r, server, size); err != nil {
		return err
	}
	if err := s.blobTakenDown(ctx, id); err != nil {
		return err
	}
	_, err := s.cfg.Blobs.StatBlob(ctx, id)
	existed := err == nil
	switch {
	case existed:
		// Held already (perhaps for another server): the uploader proves it
		// has the bytes before its server references them, and learns
		// nothing of the stored blob (its size) from a refusal, which is
		// the one any wrong upload gets.
		if err := checkBody(body, id, size); err != nil {
			return err
		}
	case errors.Is(err, storage.ErrNotFound):
		if err := s.cfg.Blobs.PutBlob(ctx, id, body, size); err != nil {
			return err
		}
	case err != nil:
		return err
	}
	if err := s.cfg.Store.AddBlobRef(ctx, server, id, size); err != nil {
		if existed {
			return err
		}
		if still, rerr := s.cfg.Store.RemoveBlobRef(ctx, server, id); rerr == nil && !still {
			_ = s.cfg.Blobs.DeleteBlob(ctx, id)
		}
		return err
	}
	return nil
}

// checkBody reads exactly size bytes from body and checks that they hash
// to id, storing nothing.
func checkBody(body io.Reader, id policy.ID, size int64) error {
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(body, size+1))
	if err != nil {
		return err
	}
	if n != size || policy.ID(h.Sum(nil)) != id {
		return fmt.Errorf("hub: put blob %s: %w (got %d bytes, want %d)", id, storage.ErrBlobMismatch, n, size)
	}
	return nil
}

// GetBlob streams a blob to a reader who may read the server's history,
// only if the server references it (here, or at the peer hub it is fetched
// from): a blob of one server is never served under another's name.
func (s *Service) GetBlob(ctx context.Context, r Caller, server, id policy.ID) (io.ReadCloser, int64, error) {
	if s.cfg.Blobs == nil {
		return nil, 0, ErrNoBlobs
	}
	if err := s.MayRead(ctx, server, policy.ID{}, r); err != nil {
		return nil, 0, err
	}
	if err := s.blobTakenDown(ctx, id); err != nil {
		return nil, 0, err
	}
	referenced, err := s.cfg.Store.HasBlobRef(ctx, server, id)
	if err != nil {
		return nil, 0, err
	}
	var rc io.ReadCloser
	var size int64
	err = fmt.Errorf("hub: blob %s of server %s: %w", id, server, storage.ErrNotFound)
	if referenced { // a blob is served only under a server that references it
		rc, size, err = s.cfg.Blobs.GetBlob(ctx, id)
	}
	if errors.Is(err, storage.ErrNotFound) && s.blobSource != nil {
		// Replicated lazily: fetched from a peer hub the first time it is read.
		b, ferr := s.blobSource.FetchBlob(ctx, server, id)
		if ferr != nil || policy.Sum(b) != id || int64(len(b)) > s.cfg.MaxBlob {
			return nil, 0, err
		}
		if err := s.cfg.Blobs.PutBlob(ctx, id, bytes.NewReader(b), int64(len(b))); err != nil {
			return nil, 0, err
		}
		if err := s.cfg.Store.AddBlobRef(ctx, server, id, int64(len(b))); err != nil {
			return nil, 0, err
		}
		return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
	}
	return rc, size, err
}

// PresignBlob returns a URL with which the client moves a blob's bytes
// directly to (put) or from the store, when the store can presign; nil
// otherwise, and for a put of a blob the store already holds. A presigned upload carries the blob's checksum, which the store
// enforces; the reference and its quota are recorded when the URL is issued.
func (s *Service) PresignBlob(ctx context.Context, r Caller, server, id policy.ID, put bool, size int64, ttl time.Duration) (*url.URL, http.Header, error) {
	p, ok := s.cfg.Blobs.(storage.Presigner)
	if !ok {
		return nil, nil, nil
	}
	if err := s.blobTakenDown(ctx, id); err != nil {
		return nil, nil, err
	}
	if !put {
		if err := s.MayRead(ctx, server, policy.ID{}, r); err != nil {
			return nil, nil, err
		}
		u, err := p.PresignGet(ctx, id, ttl)
		return u, nil, err
	}
	if err := s.mayUpload(ctx, r, server, size); err != nil {
		return nil, nil, err
	}
	// The store cannot tell the hub who uploads to the URL, so a blob it
	// already holds is referenced only through PutBlob, which reads and
	// checks the bytes: else anyone knowing a blob's ID could reference it
	// from their own server, and read it there.
	switch _, err := s.cfg.Blobs.StatBlob(ctx, id); {
	case err == nil:
		return nil, nil, nil
	case !errors.Is(err, storage.ErrNotFound):
		return nil, nil, err
	}
	if err := s.cfg.Store.AddBlobRef(ctx, server, id, size); err != nil {
		return nil, nil, err
	}
	return p.PresignPut(ctx, id, size, ttl)
}

// MaxBlob is the largest blob this hub takes, in bytes.
func (s *Service) MaxBlob() int64 { return s.cfg.MaxBlob }

// Presigns reports whether the blob store issues presigned URLs
// (PresignBlob returns nil without them).
func (s *Service) Presigns() bool {
	_, ok := s.cfg.Blobs.(storage.Presigner)
	return ok
}

// blobTakenDown refuses a blob the operator took down: it is neither
// served nor stored again (its ID is its content's hash).
func (s *Service) blobTakenDown(ctx context.Context, id policy.ID) error {
	found, err := s.takenDown(ctx, []policy.ID{id})
	if err != nil {
		return err
	}
	if _, gone := found[id]; gone {
		return fmt.Errorf("%w: blob %s", ErrTakenDown, id)
	}
	return nil
}
