package client

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/guildhall/guildhall/client/clienttest"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// Backup, post, restore, post, as docs/OPERATIONS.md tells an operator to
// restore: the restored hub hands out the lost envelope's sequence number
// again, and a member whose cursor counted it still ends with both
// messages; the member's client gives the hub back what it lost.
func TestBackupPostRestorePost(t *testing.T) {
	for _, profile := range []string{"sqlite", "postgres"} {
		t.Run(profile, func(t *testing.T) {
			h := clienttest.StartHub(t, profile)
			alice, bob := newClient(t, "alice"), newClient(t, "bob")
			server := must[policy.ID](t)(alice.CreateServer(ctx, "club", []string{h.URL}, ServerOptions{}))
			general := must[policy.ID](t)(alice.CreateChannel(ctx, server, policy.ChannelCreate{Name: "general", Durability: policy.Replicated}))
			must[policy.ID](t)(bob.Join(ctx, must[string](t)(alice.Invite(ctx, server, 1, time.Hour, nil, nil))))
			var sent []policy.ID
			send := func(text string) { sent = append(sent, must[*Sent](t)(alice.Send(ctx, server, general, text)).ID) }
			send("before the backup")
			must[int](t)(bob.Sync(ctx, server, general, nil))

			h.Stop()
			restore := backup(t, h)
			h.Start()
			send("after the backup")
			must[int](t)(bob.Sync(ctx, server, general, nil)) // bob's cursor counts it
			h.Stop()
			restore()
			h.Start()
			send("after the restore") // takes the lost one's sequence number
			must[int](t)(bob.Sync(ctx, server, general, nil))

			want := []string{"before the backup", "after the backup", "after the restore"}
			if got := texts(t, bob, server, general); !slices.Equal(got, want) {
				t.Fatalf("bob holds %q, want %q", got, want)
			}
			// The hub has the lost envelope again: bob posted it back.
			api := alice.hub(h.URL)
			token := must[string](t)(api.Login(ctx, must[*Device](t)(alice.Device())))
			page := must[wire.Envelopes](t)(api.Read(ctx, token, server, general, 0, 1000))
			held := map[policy.ID]bool{}
			for _, e := range page.Envelopes {
				held[e.ID] = true
			}
			for i, id := range sent {
				if !held[id] {
					t.Errorf("the restored hub lacks %q (%s)", want[i], id)
				}
			}
		})
	}
}

// backup copies a stopped hub's data the documented way and returns the
// restore, run with the hub stopped too.
func backup(t *testing.T, h *clienttest.Hub) (restore func()) {
	t.Helper()
	if h.Profile == "postgres" {
		dump := filepath.Join(t.TempDir(), "hub.dump")
		run(t, "pg_dump", "-Fc", "-f", dump, h.DBURL)
		return func() { run(t, "pg_restore", "-d", h.DBURL, "--clean", "--if-exists", "--no-owner", dump) }
	}
	saved := t.TempDir()
	for _, f := range []string{"hub.db", "hub.db-wal"} {
		if b, err := os.ReadFile(filepath.Join(h.Dir, f)); err == nil {
			ok(t, os.WriteFile(filepath.Join(saved, f), b, 0o600))
		}
	}
	return func() {
		for _, f := range []string{"hub.db-wal", "hub.db-shm"} {
			os.Remove(filepath.Join(h.Dir, f))
		}
		for _, f := range []string{"hub.db", "hub.db-wal"} {
			if b, err := os.ReadFile(filepath.Join(saved, f)); err == nil {
				ok(t, os.WriteFile(filepath.Join(h.Dir, f), b, 0o600))
			}
		}
		if out := h.Command("mark-restored"); !strings.Contains(out, "new incarnation") {
			t.Fatalf("mark-restored printed %q", out)
		}
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
}
