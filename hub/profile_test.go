package hub

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/guildhall/guildhall/storage"
	storageprofile "github.com/guildhall/guildhall/storage/profile"
	"github.com/guildhall/guildhall/storage/s3"
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
	c := storageprofile.Config{Dir: t.TempDir(), Now: clock}
	switch profile {
	case "sqlite":
	case "postgres":
		c.PostgresURL, c.Schema, c.S3 = pgURL(t), fmt.Sprintf("h_%x", rand.Uint64()), s3Config(t)
	default:
		t.Fatalf("unknown profile %q", profile)
	}
	st, err := storageprofile.Open(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st.Meta, st.Blobs
}

func pgURL(t testing.TB) string { return storagetest.Require(t, "GUILDHALL_TEST_POSTGRES") }

// s3Config names a fresh bucket of the test environment's MinIO.
func s3Config(t testing.TB) s3.Config {
	u, err := url.Parse(storagetest.Require(t, "GUILDHALL_TEST_S3"))
	if err != nil {
		t.Fatal(err)
	}
	return s3.Config{Endpoint: u.Host, AccessKey: os.Getenv("GUILDHALL_TEST_S3_ACCESS_KEY"),
		SecretKey: os.Getenv("GUILDHALL_TEST_S3_SECRET_KEY"), Bucket: fmt.Sprintf("h-%x", rand.Uint64()), CreateBucket: true}
}
