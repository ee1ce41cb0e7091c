package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
	"github.com/guildhall/guildhall/storage/storagetest"
)

// openTest opens a store on a fresh bucket of the test MinIO.
func openTest(t testing.TB) *Store {
	t.Helper()
	endpoint := storagetest.Require(t, "GUILDHALL_TEST_S3")
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), Config{
		Endpoint: u.Host, AccessKey: os.Getenv("GUILDHALL_TEST_S3_ACCESS_KEY"), SecretKey: os.Getenv("GUILDHALL_TEST_S3_SECRET_KEY"),
		Bucket: fmt.Sprintf("t-%x", rand.Uint64()), CreateBucket: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storagetest.RunBlobs(t, func(t *testing.T) storage.BlobStore { return openTest(t) })
}

func TestMissingBucketIsAnError(t *testing.T) {
	s := openTest(t)
	cfg := s.cfg
	cfg.Bucket, cfg.CreateBucket = "no-such-bucket-here", false
	if _, err := Open(context.Background(), cfg); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
}

// TestBucketRefusesMismatchedBytes sends bytes that do not hash to the ID
// straight through the client, bypassing the backend's own length check:
// the bucket itself must refuse them.
func TestBucketRefusesMismatchedBytes(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	real, forged := []byte("the real ciphertext"), []byte("forged ciphertext!!")
	id := policy.Sum(real)
	err := s.PutBlob(ctx, id, bytes.NewReader(forged), int64(len(forged)))
	if !errors.Is(err, storage.ErrBlobMismatch) {
		t.Fatalf("got %v, want ErrBlobMismatch from the bucket", err)
	}
	if _, err := s.StatBlob(ctx, id); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal("the bucket stored mismatched bytes")
	}
}

// TestMultipartMismatchNeverVisible: a blob above the part size whose last
// part is wrong is aborted, not completed.
func TestMultipartMismatchNeverVisible(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	data := make([]byte, s.cfg.PartSize+1024)
	for i := range data {
		data[i] = byte(i * 7)
	}
	id := policy.Sum(data)
	bad := bytes.Clone(data)
	bad[len(bad)-1] ^= 1
	if err := s.PutBlob(ctx, id, bytes.NewReader(bad), int64(len(bad))); !errors.Is(err, storage.ErrBlobMismatch) {
		t.Fatalf("got %v, want ErrBlobMismatch", err)
	}
	if _, err := s.StatBlob(ctx, id); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal("a mismatched multipart blob became visible")
	}
	if err := s.PutBlob(ctx, id, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if n, err := s.StatBlob(ctx, id); err != nil || n != int64(len(data)) {
		t.Fatalf("stat = %d, %v", n, err)
	}
}

// TestPresignedUpload: a client uploading through a presigned URL must send
// the signed checksum, and the bucket refuses bytes that do not match it.
func TestPresignedUpload(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	data := []byte("client-encrypted attachment")
	id := policy.Sum(data)
	short, sh, err := s.PresignPut(ctx, id, 1, time.Minute) // declared 1 byte
	if err != nil {
		t.Fatal(err)
	}
	u, h, err := s.PresignPut(ctx, id, int64(len(data)), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	putTo := func(u *url.URL, body []byte, header http.Header) int {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	put := func(body []byte, header http.Header) int { return putTo(u, body, header) }
	if code := putTo(short, data, sh); code < 400 {
		t.Fatalf("the right bytes through a URL presigned for 1 byte answered %d", code)
	}
	if code := put([]byte("forged attachment bytes!!!!"), h); code < 400 {
		t.Fatalf("presigned upload of wrong bytes answered %d", code)
	}
	if _, err := s.StatBlob(ctx, id); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal("the bucket stored wrong bytes uploaded through a presigned URL")
	}
	if code := put(data, nil); code < 400 {
		t.Fatalf("presigned upload without the signed checksum header answered %d", code)
	}
	if code := put(data, h); code != http.StatusOK {
		t.Fatalf("presigned upload of the right bytes answered %d", code)
	}
	g, err := s.PresignGet(ctx, id, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(g.String())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, data) {
		t.Fatal("presigned download returned other bytes")
	}
}

// BenchmarkBlob1MiB puts and gets 1 MiB blobs, reporting MB/s of each.
func BenchmarkBlob1MiB(b *testing.B) {
	s := openTest(b)
	ctx := context.Background()
	blobs := make([][]byte, b.N)
	for i := range blobs {
		blobs[i] = make([]byte, 1<<20)
		for j := 0; j < len(blobs[i]); j += 8 {
			blobs[i][j] = byte(i >> (j % 24))
			blobs[i][j+1] = byte(j)
		}
	}
	b.SetBytes(2 << 20)
	var putTime, getTime time.Duration
	for i := range b.N {
		id := policy.Sum(blobs[i])
		t0 := time.Now()
		if err := s.PutBlob(ctx, id, bytes.NewReader(blobs[i]), 1<<20); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		rc, _, err := s.GetBlob(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, rc); err != nil || n != 1<<20 {
			b.Fatal(n, err)
		}
		rc.Close()
		putTime += t1.Sub(t0)
		getTime += time.Since(t1)
	}
	b.ReportMetric(float64(b.N)/putTime.Seconds(), "put-MiB/s")
	b.ReportMetric(float64(b.N)/getTime.Seconds(), "get-MiB/s")
}

// blackHole accepts connections and never answers: a bucket behind a
// stalled link.
func blackHole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan net.Conn, 64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held <- c
		}
	}()
	t.Cleanup(func() {
		l.Close()
		for {
			select {
			case c := <-held:
				c.Close()
			default:
				return
			}
		}
	})
	return l.Addr().String()
}

// A bucket that stops answering fails the operation as unavailable after
// the configured timeout (and its retries), instead of holding it.
func TestStalledBucketTimesOut(t *testing.T) {
	start := time.Now()
	_, err := Open(context.Background(), Config{Endpoint: blackHole(t), AccessKey: "a", SecretKey: "s", Bucket: "b",
		Timeout: 200 * time.Millisecond})
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("a stalled bucket: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("a stalled bucket held Open for %v", d)
	}
	// A transfer that stops half way is cut by the idle timeout too.
	c := &idleConn{Conn: stalledConn(t), idle: 200 * time.Millisecond}
	if _, err := c.Read(make([]byte, 1)); err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a read from a stalled connection: %v", err)
	}
}

// stalledConn is a connection to a black hole.
func stalledConn(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", blackHole(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
