package hub

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/guildhall/guildhall/storage"
	"github.com/guildhall/guildhall/storage/fs"
	"github.com/guildhall/guildhall/storage/postgres"
	"github.com/guildhall/guildhall/storage/s3"
	"github.com/guildhall/guildhall/storage/sqlite"
	"github.com/guildhall/guildhall/storage/storagetest"
)

// profiles are the two ways a hub stores data: embedded (SQLite + files)
// and PostgreSQL + S3 (MinIO).
var profiles = []string{"sqlite", "postgres"}

// eachProfile runs a test against every storage profile.
func eachProfile(t *testing.T, run func(t *testing.T, profile string)) {
	for _, p := range profiles {
		t.Run(p, func(t *testing.T) { run(t, p) })
	}
}

// openProfile opens fresh metadata and blob stores of a profile.
func openProfile(t testing.TB, profile string, clock func() time.Time) (Store, storage.BlobStore) {
	t.Helper()
	ctx := context.Background()
	switch profile {
	case "sqlite":
		dir := t.TempDir()
		st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "hub.db"), Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		blobs, err := fs.Open(fs.Config{Dir: filepath.Join(dir, "blobs")})
		if err != nil {
			t.Fatal(err)
		}
		return st, blobs
	case "postgres":
		st, err := postgres.Open(ctx, postgres.Config{URL: pgURL(t), Schema: fmt.Sprintf("h_%x", rand.Uint64()), Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st, openS3(t)
	}
	t.Fatalf("unknown profile %q", profile)
	return nil, nil
}

func pgURL(t testing.TB) string { return storagetest.Require(t, "GUILDHALL_TEST_POSTGRES") }

func openS3(t testing.TB) *s3.Store {
	u, err := url.Parse(storagetest.Require(t, "GUILDHALL_TEST_S3"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s3.Open(context.Background(), s3.Config{Endpoint: u.Host, AccessKey: os.Getenv("GUILDHALL_TEST_S3_ACCESS_KEY"),
		SecretKey: os.Getenv("GUILDHALL_TEST_S3_SECRET_KEY"), Bucket: fmt.Sprintf("h-%x", rand.Uint64()), CreateBucket: true})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
