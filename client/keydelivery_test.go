package client

import (
	"crypto/hpke"
	"slices"
	"testing"
	"time"

	"github.com/guildhall/guildhall/client/clienttest"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// A reader obtains a channel's key with its own entries only: however many
// devices a bundle seals the key to, the hub leaves bundles out of the
// reader's cursor reads and serves it its entry (about 1.2 KB with a
// hybrid key); the reader then reads the channel.
func TestReaderFetchesOnlyItsOwnKeyEntries(t *testing.T) {
	h := clienttest.StartHub(t, "sqlite")
	alice := newClient(t, "alice")
	server := must[policy.ID](t)(alice.CreateServer(ctx, "club", []string{h.URL}, ServerOptions{}))
	general := must[policy.ID](t)(alice.CreateChannel(ctx, server, policy.ChannelCreate{Name: "general", Durability: policy.Replicated}))
	bob := newClient(t, "bob")
	must[policy.ID](t)(bob.Join(ctx, must[string](t)(alice.Invite(ctx, server, 1, time.Hour, nil, nil))))
	must[*Sent](t)(alice.Send(ctx, server, general, "hello"))

	// The same key sealed again to 300 more devices and to bob: three
	// bundle envelopes of about 100 KB.
	k := must[[]epochKey](t)(alice.st.keys(ctx, server, general))[0]
	devices := []*policy.DeviceCert{must[*Device](t)(bob.Device()).Cert}
	for range 300 {
		priv := must[hpke.PrivateKey](t)(hpke.MLKEM768X25519().GenerateKey())
		d := NewDeviceKeys()
		devices = append(devices, &policy.DeviceCert{DeviceCertBody: policy.DeviceCertBody{Device: policy.KeyOf(d.Sign), KEM: policy.KEMMLKEM768X25519, EncKey: priv.PublicKey().Bytes()}})
	}
	payloads := must[[][]byte](t)(sealBundles(k, server, general, devices))
	bundleBytes := 0
	for _, p := range payloads {
		must[*Sent](t)(alice.post(ctx, server, general, k.Epoch, p))
		bundleBytes += len(p)
	}
	if len(payloads) < 3 {
		t.Fatalf("%d bundle envelopes; the test wants several", len(payloads))
	}

	api := bob.hub(h.URL)
	token := must[string](t)(api.Login(ctx, must[*Device](t)(bob.Device())))
	page := must[wire.Envelopes](t)(api.ReadOmittingBundles(ctx, token, server, general, 0, 1000))
	read, omitted := 0, 0
	for _, e := range page.Envelopes {
		read += len(e.Raw)
		if e.Raw == nil && e.BundleEpoch == k.Epoch {
			omitted++
		}
	}
	if omitted != 1+len(payloads) {
		t.Fatalf("%d bundles left out of the read, want %d", omitted, 1+len(payloads))
	}
	keys := must[wire.SealedKeys](t)(api.Keys(ctx, token, server, general, 0, 100))
	entryBytes := 0
	for _, sk := range keys.Keys {
		entryBytes += len(sk.Sealed)
	}
	if len(keys.Keys) != 2 || entryBytes > 4096 {
		t.Fatalf("bob is served %d entries, %d bytes; want his 2 (the epoch's first bundle and the one he is in), under 4 KiB", len(keys.Keys), entryBytes)
	}
	t.Logf("bundles posted: %d bytes; bob downloads %d bytes of entries and %d of messages", bundleBytes, entryBytes, read)
	if got := texts(t, bob, server, general); len(got) != 0 {
		t.Fatalf("bob read before syncing: %q", got)
	}
	must[int](t)(bob.Sync(ctx, server, general, nil))
	if got := texts(t, bob, server, general); !slices.Equal(got, []string{"hello"}) {
		t.Fatalf("bob reads %q", got)
	}
	// And what is sent next, in the same epoch.
	must[*Sent](t)(alice.Send(ctx, server, general, "second"))
	must[int](t)(bob.Sync(ctx, server, general, nil))
	if got := texts(t, bob, server, general); !slices.Equal(got, []string{"hello", "second"}) {
		t.Fatalf("bob reads %q", got)
	}
}
