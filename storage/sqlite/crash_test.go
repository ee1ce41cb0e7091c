package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/guildhall/guildhall/storage"
	"github.com/guildhall/guildhall/storage/storagetest"
)

const crashDB = "GUILDHALL_CRASH_SQLITE"

func TestMain(m *testing.M) {
	storagetest.CrashChild(func(ctx context.Context) (storagetest.Writer, error) {
		s, err := Open(ctx, Config{Path: os.Getenv(crashDB)})
		if err != nil {
			return nil, err
		}
		return storagetest.EnvelopeWriter(s), nil
	})
	os.Exit(m.Run())
}

// TestCrashSafety kills a writing process with SIGKILL and finds every write
// it acknowledged after reopening the database.
func TestCrashSafety(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crash.db")
	ctx := context.Background()
	s, err := Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutTenant(ctx, storagetest.ServerID("crash"), storage.Quota{}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	storagetest.RunCrash(t, 3000, []string{crashDB + "=" + path}, func(ctx context.Context) (storagetest.Lookup, func(), error) {
		s, err := Open(ctx, Config{Path: path})
		if err != nil {
			return nil, nil, err
		}
		return storagetest.EnvelopeLookup(s), func() { s.Close() }, nil
	})
}
