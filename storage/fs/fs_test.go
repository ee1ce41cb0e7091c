package fs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	iofs "io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/guildhall/guildhall/storage"
	"github.com/guildhall/guildhall/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.RunBlobs(t, func(t *testing.T) storage.BlobStore {
		s, err := Open(Config{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

const crashDir = "GUILDHALL_CRASH_FS"

func TestMain(m *testing.M) {
	storagetest.CrashChild(func(ctx context.Context) (storagetest.Writer, error) {
		s, err := Open(Config{Dir: os.Getenv(crashDir)})
		if err != nil {
			return nil, err
		}
		return storagetest.BlobWriter(s), nil
	})
	os.Exit(m.Run())
}

// TestCrashSafety kills a process writing blobs with SIGKILL and finds every
// blob it acknowledged, complete, after reopening.
func TestCrashSafety(t *testing.T) {
	dir := t.TempDir()
	storagetest.RunCrash(t, 500, []string{crashDir + "=" + dir}, func(ctx context.Context) (storagetest.Lookup, func(), error) {
		s, err := Open(Config{Dir: dir})
		if err != nil {
			return nil, nil, err
		}
		return storagetest.BlobLookup(s), func() {}, nil
	})
	// Atomic rename: whatever the kill interrupted, no blob is visible
	// unless complete, acknowledged or not.
	n := 0
	err := filepath.WalkDir(filepath.Join(dir, "blobs"), func(path string, d iofs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != d.Name() {
			t.Errorf("blob %s is visible but incomplete (%d bytes)", d.Name(), len(data))
		}
		n++
		return nil
	})
	if err != nil || n < 500 {
		t.Fatalf("walked %d blobs: %v", n, err)
	}
}
