package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/guildhall/guildhall/storage/sqlite"
)

func TestIncarnationPersistsAndRenews(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hub.db")
	s, err := sqlite.Open(ctx, sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Incarnation(ctx)
	if err != nil || a == "" {
		t.Fatal(a, err)
	}
	s.Close()
	s, err = sqlite.Open(ctx, sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if b, _ := s.Incarnation(ctx); b != a {
		t.Fatalf("reopened: %q, want %q", b, a)
	}
	c, err := s.MarkRestored(ctx)
	if err != nil || c == a {
		t.Fatalf("marked restored: %q %v, want a new ID", c, err)
	}
}
