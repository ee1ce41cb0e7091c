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
	h, alice, bob, server, general := aliceAndBob(t, "general")
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

// A re-key large enough to span several sealing chunks and posting
// batches reaches the hub whole: every device's entry once, in bundles
// the hub holds, posted while the rest were sealed; bob, among them, is
// served his entry.
func TestRekeyPostsWhileSealing(t *testing.T) {
	h, alice, bob, server, general := aliceAndBob(t, "general")
	bobDevice := must[*Device](t)(bob.Device()).Cert
	devices := []*policy.DeviceCert{bobDevice}
	for range 2*sealChunk - 1 {
		priv := must[hpke.PrivateKey](t)(hpke.MLKEM768X25519().GenerateKey())
		d := NewDeviceKeys()
		devices = append(devices, &policy.DeviceCert{DeviceCertBody: policy.DeviceCertBody{Device: policy.KeyOf(d.Sign), KEM: policy.KEMMLKEM768X25519, EncKey: priv.PublicKey().Bytes()}})
	}
	k := newEpochKey(7)
	if err := alice.sealAndPost(ctx, server, general, k, devices); err != nil {
		t.Fatal(err)
	}

	api := alice.hub(h.URL)
	token := must[string](t)(api.Login(ctx, must[*Device](t)(alice.Device())))
	seen := map[policy.PublicKey]int{}
	bundles := 0
	for after := uint64(0); ; {
		page := must[wire.Envelopes](t)(api.Read(ctx, token, server, general, after, 1000))
		for _, e := range page.Envelopes {
			env, err := policy.ParseEnvelope(e.Raw)
			if err != nil || env.Epoch != k.Epoch {
				continue
			}
			_, _, recipients, err := parseBundle(env.Ciphertext)
			if err != nil {
				t.Fatal(err)
			}
			bundles++
			for _, d := range recipients {
				seen[d]++
			}
		}
		if after = page.Next; !page.More {
			break
		}
	}
	if bundles <= bundleBatch {
		t.Fatalf("%d bundles: the test wants more than one batch of %d", bundles, bundleBatch)
	}
	for i, d := range devices {
		if seen[d.Device] != 1 {
			t.Fatalf("device %d of %d is in %d bundles the hub holds, want 1", i+1, len(devices), seen[d.Device])
		}
	}
	if len(seen) != len(devices) {
		t.Fatalf("the hub's bundles name %d devices, %d were sealed to", len(seen), len(devices))
	}
	bobAPI := bob.hub(h.URL)
	bobToken := must[string](t)(bobAPI.Login(ctx, must[*Device](t)(bob.Device())))
	keys := must[wire.SealedKeys](t)(bobAPI.Keys(ctx, bobToken, server, general, 0, 100))
	found := false
	for _, sk := range keys.Keys {
		found = found || sk.Epoch == k.Epoch
	}
	if !found {
		t.Fatalf("bob is served %d entries, none of epoch %d", len(keys.Keys), k.Epoch)
	}
	t.Logf("%d devices in %d bundles", len(devices), bundles)
}

// aliceAndBob starts a hub with alice's server "club", one replicated
// channel of that name, and bob, who joined it through her invite.
func aliceAndBob(t *testing.T, channel string) (*clienttest.Hub, *Client, *Client, policy.ID, policy.ID) {
	t.Helper()
	h := clienttest.StartHub(t, "sqlite")
	alice := newClient(t, "alice")
	server := must[policy.ID](t)(alice.CreateServer(ctx, "club", []string{h.URL}, ServerOptions{}))
	ch := must[policy.ID](t)(alice.CreateChannel(ctx, server, policy.ChannelCreate{Name: channel, Durability: policy.Replicated}))
	bob := newClient(t, "bob")
	must[policy.ID](t)(bob.Join(ctx, must[string](t)(alice.Invite(ctx, server, 1, time.Hour, nil, nil))))
	return h, alice, bob, server, ch
}
