// Package s3 is the blob backend of community and provider hubs: blobs in
// an S3-compatible bucket (github.com/minio/minio-go/v7), one object per
// blob under "blobs/<hex content ID>".
//
// The bucket verifies what it stores. A blob up to PartSize is one PUT whose
// signed payload hash is the blob's ID (its SHA-256), so the bucket refuses
// other bytes. A larger blob is a multipart upload whose parts each carry
// their own hash; the backend hashes the whole stream as it goes and
// completes the upload only if the total matches the ID, aborting it
// otherwise, so a mismatched blob is never visible. Presigned uploads sign
// an x-amz-checksum-sha256 header with the ID.
//
// It never interprets the bytes it stores.
package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// Config configures a Store.
type Config struct {
	Endpoint  string // host:port
	Secure    bool   // HTTPS
	AccessKey string
	SecretKey string
	Region    string
	Bucket    string
	// CreateBucket creates the bucket if it is missing (development and
	// tests); production buckets are provisioned by the operator.
	CreateBucket bool
	// PartSize is the largest blob sent in one PUT, and the part size of
	// larger ones; default and minimum 16 MiB (S3 needs at least 5 MiB).
	PartSize int64
	// MaxPresignTTL caps presigned URL lifetimes; default 15 minutes.
	MaxPresignTTL time.Duration
	// Timeout bounds each wait on the bucket: connecting, the answer's
	// headers, and every pause within a transfer (a large blob may take
	// longer as a whole, as long as bytes keep moving). A bucket that stops
	// answering fails the operation with storage.ErrUnavailable instead of
	// holding it. Default 30 s.
	Timeout time.Duration
	// MaxRetries bounds the client's retries of a failed request; default 2.
	MaxRetries int
}

func (c *Config) validate() error {
	switch {
	case c.Endpoint == "":
		return fmt.Errorf("s3: %w: Endpoint is required", storage.ErrInvalid)
	case c.Bucket == "":
		return fmt.Errorf("s3: %w: Bucket is required", storage.ErrInvalid)
	}
	if c.PartSize < 16<<20 {
		c.PartSize = 16 << 20
	}
	if c.MaxPresignTTL <= 0 {
		c.MaxPresignTTL = 15 * time.Minute
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.MaxRetries <= 0 {
		c.MaxRetries = 2
	}
	return nil
}

var (
	_ storage.BlobStore = (*Store)(nil)
	_ storage.Presigner = (*Store)(nil)
)

// Store is the S3 blob store. It is safe for concurrent use.
type Store struct {
	cfg  Config
	core minio.Core
}

var (
	_ storage.BlobStore = (*Store)(nil)
	_ storage.Presigner = (*Store)(nil)
)

// Open connects and checks (or creates) the bucket.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	tr, err := minio.DefaultTransport(cfg.Secure)
	if err != nil {
		return nil, fmt.Errorf("s3: %w: %v", storage.ErrInvalid, err)
	}
	dial := (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &idleConn{Conn: c, idle: cfg.Timeout}, nil
	}
	tr.ResponseHeaderTimeout = cfg.Timeout
	tr.TLSHandshakeTimeout = min(cfg.Timeout, tr.TLSHandshakeTimeout)
	c, err := minio.NewCore(cfg.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:     cfg.Secure,
		Region:     cfg.Region,
		Transport:  tr,
		MaxRetries: cfg.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("s3: %w: %v", storage.ErrInvalid, err)
	}
	s := &Store{cfg: cfg, core: *c}
	ok, err := c.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3: bucket %s: %w: %v", cfg.Bucket, storage.ErrUnavailable, err)
	}
	if !ok {
		if !cfg.CreateBucket {
			return nil, fmt.Errorf("s3: bucket %s does not exist: %w", cfg.Bucket, storage.ErrNotFound)
		}
		if err := c.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region}); err != nil {
			return nil, fmt.Errorf("s3: create bucket %s: %w", cfg.Bucket, err)
		}
	}
	return s, nil
}

// idleConn fails a read or write that makes no progress for idle: a
// transfer may last as long as it needs while bytes move, but not stall.
type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c *idleConn) Read(b []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	return c.Conn.Read(b)
}

func (c *idleConn) Write(b []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.idle))
	return c.Conn.Write(b)
}

func key(id policy.ID) string { return "blobs/" + hex.EncodeToString(id[:]) }

// PutBlob uploads a blob, verified by the bucket against its ID.
func (s *Store) PutBlob(ctx context.Context, id policy.ID, r io.Reader, size int64) error {
	if size < 0 {
		return fmt.Errorf("s3: put blob: %w: negative size", storage.ErrInvalid)
	}
	switch n, err := s.StatBlob(ctx, id); {
	case err == nil && n == size:
		return nil // content-addressed: what is there is these bytes
	case err != nil && !errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("s3: put blob: %w", err) // the bucket is not answering: do not wait twice
	}
	if size <= s.cfg.PartSize {
		// Read the blob (at most PartSize) so that a short or long stream is a
		// mismatch, not a hung or truncated request; the bucket checks the hash.
		buf, err := io.ReadAll(io.LimitReader(r, size+1))
		if err != nil {
			return fmt.Errorf("s3: put blob: %w", err)
		}
		if int64(len(buf)) != size {
			return fmt.Errorf("s3: put blob %s: %w (got %d bytes, want %d)", id, storage.ErrBlobMismatch, len(buf), size)
		}
		// The ID as the signed payload hash: the bucket verifies the body
		// against it. (Without DisableContentSha256 the client would sign a
		// streaming hash of whatever it sends over plain HTTP instead.)
		_, err = s.core.PutObject(ctx, s.cfg.Bucket, key(id), bytes.NewReader(buf), size, "", hex.EncodeToString(id[:]),
			minio.PutObjectOptions{ContentType: "application/octet-stream", DisableContentSha256: true})
		return s.putError(id, err)
	}
	return s.putMultipart(ctx, id, r, size)
}

func (s *Store) putMultipart(ctx context.Context, id policy.ID, r io.Reader, size int64) (err error) {
	k := key(id)
	upload, err := s.core.NewMultipartUpload(ctx, s.cfg.Bucket, k, minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return fmt.Errorf("s3: put blob: %w", unavailableErr(err))
	}
	defer func() {
		if err != nil {
			_ = s.core.AbortMultipartUpload(context.Background(), s.cfg.Bucket, k, upload)
		}
	}()
	whole := sha256.New()
	buf := make([]byte, s.cfg.PartSize)
	var parts []minio.CompletePart
	var total int64
	for n := 1; ; n++ {
		m, rerr := io.ReadFull(r, buf)
		if m > 0 {
			total += int64(m)
			if total > size {
				return fmt.Errorf("s3: put blob %s: %w (more than %d bytes)", id, storage.ErrBlobMismatch, size)
			}
			whole.Write(buf[:m])
			partHash := sha256.Sum256(buf[:m])
			p, err := s.core.PutObjectPart(ctx, s.cfg.Bucket, k, upload, n, bytes.NewReader(buf[:m]), int64(m),
				minio.PutObjectPartOptions{Sha256Hex: hex.EncodeToString(partHash[:]), DisableContentSha256: true})
			if err != nil {
				return fmt.Errorf("s3: put blob part %d: %w", n, unavailableErr(err))
			}
			parts = append(parts, minio.CompletePart{PartNumber: n, ETag: p.ETag})
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return fmt.Errorf("s3: put blob: %w", rerr)
		}
	}
	if total != size || policy.ID(whole.Sum(nil)) != id {
		return fmt.Errorf("s3: put blob %s: %w (got %d bytes, want %d)", id, storage.ErrBlobMismatch, total, size)
	}
	if _, err := s.core.CompleteMultipartUpload(ctx, s.cfg.Bucket, k, upload, parts, minio.PutObjectOptions{}); err != nil {
		return fmt.Errorf("s3: complete blob %s: %w", id, unavailableErr(err))
	}
	return nil
}

// putError maps the bucket's refusal of a payload hash to ErrBlobMismatch.
func (s *Store) putError(id policy.ID, err error) error {
	if err == nil {
		return nil
	}
	switch minio.ToErrorResponse(err).Code {
	case "XAmzContentSHA256Mismatch", "BadDigest", "XAmzContentChecksumMismatch", "IncompleteBody":
		return fmt.Errorf("s3: put blob %s: %w: %v", id, storage.ErrBlobMismatch, err)
	}
	return fmt.Errorf("s3: put blob %s: %w", id, unavailableErr(err))
}

// GetBlob streams a blob.
func (s *Store) GetBlob(ctx context.Context, id policy.ID) (io.ReadCloser, int64, error) {
	obj, info, _, err := s.core.GetObject(ctx, s.cfg.Bucket, key(id), minio.GetObjectOptions{})
	if err != nil {
		return nil, 0, s.readError(id, err)
	}
	return obj, info.Size, nil
}

// StatBlob returns a blob's size.
func (s *Store) StatBlob(ctx context.Context, id policy.ID) (int64, error) {
	info, err := s.core.StatObject(ctx, s.cfg.Bucket, key(id), minio.StatObjectOptions{})
	if err != nil {
		return 0, s.readError(id, err)
	}
	return info.Size, nil
}

func (s *Store) readError(id policy.ID, err error) error {
	if minio.ToErrorResponse(err).Code == "NoSuchKey" {
		return fmt.Errorf("s3: blob %s: %w", id, storage.ErrNotFound)
	}
	return fmt.Errorf("s3: blob %s: %w", id, unavailableErr(err))
}

// DeleteBlob removes a blob.
func (s *Store) DeleteBlob(ctx context.Context, id policy.ID) error {
	if err := s.core.RemoveObject(ctx, s.cfg.Bucket, key(id), minio.RemoveObjectOptions{}); err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil
		}
		return fmt.Errorf("s3: delete blob %s: %w", id, unavailableErr(err))
	}
	return nil
}

// PresignPut returns an upload URL bound to the blob's checksum.
func (s *Store) PresignPut(ctx context.Context, id policy.ID, size int64, ttl time.Duration) (*url.URL, http.Header, error) {
	h := http.Header{}
	h.Set("x-amz-checksum-sha256", base64.StdEncoding.EncodeToString(id[:]))
	h.Set("Content-Length", strconv.FormatInt(size, 10)) // signed: the bucket refuses another length
	u, err := s.core.PresignHeader(ctx, http.MethodPut, s.cfg.Bucket, key(id), min(ttl, s.cfg.MaxPresignTTL), nil, h)
	if err != nil {
		return nil, nil, fmt.Errorf("s3: presign put: %w", err)
	}
	return u, h, nil
}

// PresignGet returns a download URL.
func (s *Store) PresignGet(ctx context.Context, id policy.ID, ttl time.Duration) (*url.URL, error) {
	u, err := s.core.PresignedGetObject(ctx, s.cfg.Bucket, key(id), min(ttl, s.cfg.MaxPresignTTL), nil)
	if err != nil {
		return nil, fmt.Errorf("s3: presign get: %w", err)
	}
	return u, nil
}

// unavailableErr marks transport failures as ErrUnavailable and keeps the
// bucket's own error responses as they are.
func unavailableErr(err error) error {
	if minio.ToErrorResponse(err).Code != "" {
		return err
	}
	return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
}
