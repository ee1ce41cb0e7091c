package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/guildhall/guildhall/storage/storagetest"
)

// openTest opens a store in a fresh schema of the test database.
func openTest(t testing.TB) *Store {
	t.Helper()
	url := storagetest.Require(t, "GUILDHALL_TEST_POSTGRES")
	s, err := Open(context.Background(), Config{URL: url, Schema: fmt.Sprintf("t_%x", rand.Uint64())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.pool.Exec(context.Background(), "DROP SCHEMA "+s.cfg.Schema+" CASCADE")
		s.Close()
	})
	return s
}

func TestConformance(t *testing.T) {
	storagetest.RunMeta(t, func(t *testing.T) storagetest.Meta { return openTest(t) })
}
