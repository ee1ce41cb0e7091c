package profile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
	"github.com/guildhall/guildhall/storage/fs"
	"github.com/guildhall/guildhall/storage/postgres"
	"github.com/guildhall/guildhall/storage/s3"
	"github.com/guildhall/guildhall/storage/sqlite"
	"github.com/guildhall/guildhall/storage/storagetest"
)

func TestConfigRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Config
	}{
		{"embedded without a directory", Config{}},
		{"S3 without PostgreSQL", Config{Dir: t.TempDir(), S3: s3.Config{Endpoint: "s3:9000", Bucket: "b"}}},
		{"PostgreSQL with file blobs but no directory", Config{PostgresURL: "postgres://h@db/h"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := Open(context.Background(), tc.c)
			if !errors.Is(err, storage.ErrInvalid) {
				t.Fatalf("opened %+v: %v", st, err)
			}
		})
	}
}

// roundTrip stores a tenant and a blob, so a profile is known to work
// end to end.
func roundTrip(t *testing.T, st *Stores) {
	t.Helper()
	ctx := context.Background()
	server := policy.Sum([]byte(t.Name()))
	if err := st.Meta.PutTenant(ctx, server, storage.Quota{Bytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	data := []byte("ciphertext")
	if err := st.Blobs.PutBlob(ctx, policy.Sum(data), bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	rc, _, err := st.Blobs.GetBlob(ctx, policy.Sum(data))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if got, _ := io.ReadAll(rc); !bytes.Equal(got, data) {
		t.Fatalf("blob read back as %q", got)
	}
}

// The embedded profile: SQLite and files, in the data directory (created
// 0700), and the data is there again on reopening.
func TestEmbedded(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hub")
	now := time.UnixMilli(1_700_000_000_000)
	st, err := Open(context.Background(), Config{Dir: dir, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Meta.(*sqlite.Store); !ok {
		t.Fatalf("metadata in %T", st.Meta)
	}
	if _, ok := st.Blobs.(*fs.Store); !ok {
		t.Fatalf("blobs in %T", st.Blobs)
	}
	roundTrip(t, st)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"hub.db", "blobs"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data directory: %v %v", fi, err)
	}
	st, err = Open(context.Background(), Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ts, err := st.Meta.Tenants(context.Background())
	if err != nil || len(ts) != 1 || ts[0].Created != now.UnixMilli() {
		t.Fatalf("after reopening: %+v %v (the clock given was not used, or the data is gone)", ts, err)
	}
}

// The PostgreSQL profile, with blobs in S3 or, without an endpoint, in the
// data directory.
func TestPostgres(t *testing.T) {
	pg := storagetest.Require(t, "GUILDHALL_TEST_POSTGRES")
	u, err := url.Parse(storagetest.Require(t, "GUILDHALL_TEST_S3"))
	if err != nil {
		t.Fatal(err)
	}
	bucket := s3.Config{Endpoint: u.Host, AccessKey: os.Getenv("GUILDHALL_TEST_S3_ACCESS_KEY"),
		SecretKey: os.Getenv("GUILDHALL_TEST_S3_SECRET_KEY"), Bucket: fmt.Sprintf("p-%x", rand.Uint64()), CreateBucket: true}
	for _, tc := range []struct {
		name string
		s3   s3.Config
		dir  string
	}{
		{"S3", bucket, ""},
		{"files", s3.Config{}, t.TempDir()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := Open(context.Background(), Config{Dir: tc.dir, PostgresURL: pg, Schema: fmt.Sprintf("p_%x", rand.Uint64()), S3: tc.s3})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, ok := st.Meta.(*postgres.Store); !ok {
				t.Fatalf("metadata in %T", st.Meta)
			}
			if _, isS3 := st.Blobs.(*s3.Store); isS3 != (tc.s3.Endpoint != "") {
				t.Fatalf("blobs in %T", st.Blobs)
			}
			roundTrip(t, st)
		})
	}
}
