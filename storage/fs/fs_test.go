package fs

import (
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
