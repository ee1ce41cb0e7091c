package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"

	"github.com/guildhall/guildhall/storage/storagetest"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{Path: filepath.Join(t.TempDir(), "hub.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storagetest.RunMeta(t, func(t *testing.T) storagetest.Meta { return openTest(t) })
}

// A write that fails after writing leaves nothing, even when it shares its
// commit with writes that succeed.
func TestFailedWriteInGroupLeavesNothing(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	bad, good := storagetest.ServerID("bad"), storagetest.ServerID("good")
	boom := errors.New("boom")
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if i%2 == 0 {
				err := s.write(ctx, func(tx *sql.Tx) error {
					if _, err := tx.ExecContext(ctx, `INSERT INTO tenants (server, created) VALUES (?, 1)`, append(bad[:31:31], byte(i))); err != nil {
						return err
					}
					return boom
				})
				if !errors.Is(err, boom) {
					t.Errorf("got %v", err)
				}
				return
			}
			if err := s.PutTenant(ctx, policy.ID(append(good[:31:31], byte(i))), storage.Quota{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	all, err := s.Tenants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 25 {
		t.Fatalf("%d tenants, want the 25 good ones: failed writes leaked into the commit", len(all))
	}
}
