package client

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/guildhall/guildhall/policy"
)

// failWrites makes the local store refuse to keep messages, as a full disk
// would, until the returned function is called.
func failWrites(t *testing.T, c *Client) func() {
	t.Helper()
	if _, err := c.st.db.ExecContext(ctx, "CREATE TRIGGER fail_messages BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'disk full'); END"); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if _, err := c.st.db.ExecContext(ctx, "DROP TRIGGER fail_messages"); err != nil {
			t.Fatal(err)
		}
	}
}

// Every operation on a store that cannot be used says so: nothing reads as
// empty or succeeds.
func TestClosedStoreFails(t *testing.T) {
	c := newClient(t, "phone")
	var server, id policy.ID
	ok(t, c.st.close())
	for name, op := range map[string]func() error{
		"servers":    func() error { _, err := c.Servers(ctx); return err },
		"hubs":       func() error { _, err := c.Hubs(ctx, server); return err },
		"add hub":    func() error { return c.AddHub(ctx, server, "http://hub") },
		"prefer hub": func() error { return c.PreferHub(ctx, server, "http://hub") },
		"history":    func() error { _, err := c.History(ctx, server, id, 0); return err },
		"delete":     func() error { return c.Delete(ctx, server, id) },
		"sync":       func() error { _, err := c.Sync(ctx, server, id, nil); return err },
		"state":      func() error { _, err := c.State(ctx, server); return err },
	} {
		t.Run(name, func(t *testing.T) {
			if err := op(); !errors.Is(err, ErrStore) {
				t.Fatalf("got %v, want ErrStore", err)
			}
		})
	}
}

// An envelope the store could not keep is an error, not a message.
func TestRecordReturnsStoreErrors(t *testing.T) {
	c := newClient(t, "phone")
	d := must[*Device](t)(c.Device())
	env := must[*policy.Envelope](t)(policy.NewEnvelope(d.Signer(), policy.EnvelopeBody{Server: policy.Sum([]byte("s")), Channel: policy.Sum([]byte("c")),
		Epoch: 1, Time: time.Now().UnixMilli(), Ciphertext: []byte{payloadMessage, 1, 2, 3}}))
	restore := failWrites(t, c)
	if m, err := c.record(ctx, env, nil); !errors.Is(err, ErrStore) || m != nil {
		t.Fatalf("record on a failing store: %v, %v", m, err)
	}
	restore()
	if _, err := c.record(ctx, env, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(must[[]Message](t)(c.History(ctx, env.Server, env.Channel, 0))); n != 1 {
		t.Fatalf("%d messages kept", n)
	}
}

// Sync counts only what it kept, and does not move its cursor past what it
// could not keep: once the store works again, the next Sync brings it.
func TestSyncCountsOnlyWhatItKept(t *testing.T) {
	hub := startHub(t, "sqlite")
	alice, bob := newClient(t, "alice"), newClient(t, "bob")
	server := must[policy.ID](t)(alice.CreateServer(ctx, "club", []string{hub.URL}, ServerOptions{}))
	general := must[policy.ID](t)(alice.CreateChannel(ctx, server, policy.ChannelCreate{Name: "general", Durability: policy.Replicated}))
	must[policy.ID](t)(bob.Join(ctx, must[string](t)(alice.Invite(ctx, server, 1, time.Hour, nil, nil))))
	hello := marker(t, "hello")
	must[*Sent](t)(alice.Send(ctx, server, general, hello))

	restore := failWrites(t, bob)
	if n, err := bob.Sync(ctx, server, general, nil); !errors.Is(err, ErrStore) || n != 0 {
		t.Fatalf("sync on a failing store: %d new, %v", n, err)
	}
	if _, err := bob.Send(ctx, server, general, "not kept"); !errors.Is(err, ErrStore) {
		t.Fatalf("send on a failing store: %v", err)
	}
	restore()
	if n := must[int](t)(bob.Sync(ctx, server, general, nil)); n == 0 {
		t.Fatal("the envelopes the store failed to keep were skipped")
	}
	if got := texts(t, bob, server, general); !slices.Contains(got, hello) {
		t.Fatalf("bob reads %q", got)
	}
}
