package storagetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"testing"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// RunBlobs runs the blob store conformance suite. open must return a fresh,
// empty store and arrange for it to be closed when the test ends.
func RunBlobs(t *testing.T, open func(t *testing.T) storage.BlobStore) {
	t.Run("RoundTrip", func(t *testing.T) {
		b := open(t)
		data := bytes.Repeat([]byte("ciphertext"), 1000)
		id := policy.Sum(data)
		if err := b.PutBlob(ctx, id, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		if err := b.PutBlob(ctx, id, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatalf("repeat put: %v", err)
		}
		if n, err := b.StatBlob(ctx, id); err != nil || n != int64(len(data)) {
			t.Fatalf("stat = %d, %v", n, err)
		}
		rc, n, err := b.GetBlob(ctx, id)
		if err != nil || n != int64(len(data)) {
			t.Fatalf("get: %d, %v", n, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatal("blob bytes differ")
		}
		if err := b.DeleteBlob(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := b.StatBlob(ctx, id); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("stat after delete: %v", err)
		}
		if _, _, err := b.GetBlob(ctx, id); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("get after delete: %v", err)
		}
		if err := b.DeleteBlob(ctx, id); err != nil {
			t.Fatalf("deleting a missing blob: %v", err)
		}
	})
	t.Run("WrongBytesRefused", func(t *testing.T) {
		b := open(t)
		data := []byte("the real ciphertext")
		id := policy.Sum(data)
		for name, tc := range map[string]struct {
			body []byte
			size int64
		}{
			"other bytes":  {[]byte("forged ciphertext!!"), int64(len(data))},
			"short":        {data[:5], int64(len(data))},
			"long":         {append(data, 'x'), int64(len(data))},
			"size too big": {data, int64(len(data)) + 1},
		} {
			err := b.PutBlob(ctx, id, bytes.NewReader(tc.body), tc.size)
			if !errors.Is(err, storage.ErrBlobMismatch) {
				t.Fatalf("%s: got %v, want ErrBlobMismatch", name, err)
			}
			if _, err := b.StatBlob(ctx, id); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("%s: a refused blob was stored", name)
			}
		}
	})
	t.Run("LargeBlobStreams", func(t *testing.T) {
		b := open(t)
		const size = 64 << 20
		h := sha256.New()
		if _, err := io.Copy(h, newPattern(size)); err != nil {
			t.Fatal(err)
		}
		id := policy.ID(h.Sum(nil))
		if err := b.PutBlob(ctx, id, newPattern(size), size); err != nil {
			t.Fatal(err)
		}
		rc, n, err := b.GetBlob(ctx, id)
		if err != nil || n != size {
			t.Fatalf("get: %d, %v", n, err)
		}
		defer rc.Close()
		h.Reset()
		if m, err := io.Copy(h, rc); err != nil || m != size || policy.ID(h.Sum(nil)) != id {
			t.Fatalf("streamed back %d bytes that do not hash to the id (%v)", m, err)
		}
	})
}

// pattern is a reader of n deterministic bytes that holds none in memory.
type pattern struct {
	n, off int64
}

func newPattern(n int64) *pattern { return &pattern{n: n} }

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.n-p.off)]
	for i := range b {
		x := uint64(p.off + int64(i))
		b[i] = byte(x*2654435761>>13) ^ byte(x>>20)
	}
	p.off += int64(len(b))
	return len(b), nil
}
