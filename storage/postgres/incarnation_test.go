package postgres_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/guildhall/guildhall/storage/postgres"
)

// TestIncarnationChangesOnRestore runs the documented pg_dump/pg_restore
// (--clean --if-exists) against a real database and checks that the
// restored store reports a new incarnation while a plain reopen does not.
func TestIncarnationChangesOnRestore(t *testing.T) {
	url := os.Getenv("GUILDHALL_TEST_POSTGRES")
	if url == "" {
		t.Skip("GUILDHALL_TEST_POSTGRES not set")
	}
	for _, tool := range []string{"pg_dump", "pg_restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skip(tool, " not installed")
		}
	}
	ctx := context.Background()
	open := func() *postgres.Store {
		s, err := postgres.Open(ctx, postgres.Config{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	a, err := s.Incarnation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open()
	if b, _ := s.Incarnation(ctx); b != a {
		t.Fatalf("reopened: %q, want %q", b, a)
	}
	s.Close()
	dump := filepath.Join(t.TempDir(), "hub.dump")
	if out, err := exec.Command("pg_dump", "-Fc", "-f", dump, url).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	if out, err := exec.Command("pg_restore", "-d", url, "--clean", "--if-exists", "--no-owner", dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}
	s = open()
	defer s.Close()
	c, err := s.Incarnation(ctx)
	if err != nil || c == a {
		t.Fatalf("after restore: %q %v, want a new incarnation", c, err)
	}
}
