package nodekey

import (
	"os"
	"path/filepath"
	"testing"
)

func TestNodeKeyFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "keys", "node.key")
	k1, created, err := Load(p)
	if err != nil || !created {
		t.Fatal(created, err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	k2, created, err := Load(p)
	if err != nil || created || !k1.Equal(k2) {
		t.Fatal("the key did not survive a restart")
	}
	os.Chmod(p, 0o644)
	if _, _, err := Load(p); err == nil {
		t.Fatal("a world-readable key was accepted")
	}
	os.WriteFile(p, []byte("garbage"), 0o600)
	if _, _, err := Load(p); err == nil {
		t.Fatal("a garbage key was accepted")
	}
}
