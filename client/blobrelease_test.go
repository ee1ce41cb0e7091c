package client

import (
	"bytes"
	"testing"
	"time"

	"github.com/guildhall/guildhall/client/clienttest"
	"github.com/guildhall/guildhall/client/hubapi"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// Deleting a message releases its attachment: the tenant's usage drops by
// the blob's size and the hub no longer holds it.
func TestDeletingAMessageReleasesItsAttachment(t *testing.T) {
	for _, p := range profiles {
		t.Run(p, func(t *testing.T) {
			h := clienttest.StartHub(t, p)
			alice := newClient(t, "alice")
			server := must[policy.ID](t)(alice.CreateServer(ctx, "club", []string{h.URL}, ServerOptions{}))
			general := must[policy.ID](t)(alice.CreateChannel(ctx, server, policy.ChannelCreate{Name: "general", Durability: policy.Replicated}))
			admin := hubapi.NewAdmin(h.Admin, "")
			usage := func() wire.Usage {
				t.Helper()
				for _, tn := range must[wire.Tenants](t)(admin.Tenants(ctx)).Tenants {
					if tn.Server == server {
						return tn.Usage
					}
				}
				t.Fatal("no tenant")
				return wire.Usage{}
			}
			before := usage()
			file := bytes.Repeat([]byte("attachment "), 100_000) // 1.1 MB
			sent := must[*Sent](t)(alice.Send(ctx, server, general, "see attached", File{Name: "big.txt", Data: file}))
			withFile := usage()
			if withFile.Blobs != before.Blobs+1 || withFile.Bytes < before.Bytes+uint64(len(file)) {
				t.Fatalf("usage with the file %+v, before %+v", withFile, before)
			}
			msgs := must[[]Message](t)(alice.History(ctx, server, general, 0))
			blob := msgs[len(msgs)-1].Body.Files[0].Blob
			ok(t, alice.Delete(ctx, server, sent.ID))
			after := usage()
			if after.Blobs != before.Blobs || after.Bytes+uint64(len(file)) > withFile.Bytes {
				t.Fatalf("usage after deleting the message %+v; before the file %+v, with it %+v", after, before, withFile)
			}
			api := alice.hub(h.URL)
			token := must[string](t)(api.Login(ctx, must[*Device](t)(alice.Device())))
			if _, err := api.GetBlob(ctx, token, server, blob); !hubapi.IsCode(err, wire.CodeNotFound) {
				t.Fatalf("the released blob is still served: %v", err)
			}
		})
	}
}

// A message swept by its channel's retention releases its attachment as a
// deletion does: usage drops by the blob's size and the hub no longer
// serves it.
func TestRetentionReleasesAttachments(t *testing.T) {
	h := clienttest.NewHub(t, "sqlite")
	h.Extra = "storage:\n  sweep_interval: 1s\n"
	h.Start()
	alice := newClient(t, "alice")
	server := must[policy.ID](t)(alice.CreateServer(ctx, "club", []string{h.URL}, ServerOptions{}))
	// At most 4 KiB of envelopes: a second message pushes out the first.
	general := must[policy.ID](t)(alice.CreateChannel(ctx, server, policy.ChannelCreate{Name: "general", Durability: policy.Replicated, RetentionBytes: 4096}))
	admin := hubapi.NewAdmin(h.Admin, "")
	usage := func() wire.Usage {
		t.Helper()
		for _, tn := range must[wire.Tenants](t)(admin.Tenants(ctx)).Tenants {
			if tn.Server == server {
				return tn.Usage
			}
		}
		t.Fatal("no tenant")
		return wire.Usage{}
	}
	before := usage()
	file := bytes.Repeat([]byte("attachment "), 50_000)
	must[*Sent](t)(alice.Send(ctx, server, general, "see attached", File{Name: "big.txt", Data: file}))
	msgs := must[[]Message](t)(alice.History(ctx, server, general, 0))
	blob := msgs[len(msgs)-1].Body.Files[0].Blob
	if u := usage(); u.Blobs != before.Blobs+1 {
		t.Fatalf("usage with the file %+v, before %+v", u, before)
	}
	for range 3 {
		must[*Sent](t)(alice.Send(ctx, server, general, string(bytes.Repeat([]byte("x"), 1500))))
	}
	api := alice.hub(h.URL)
	token := must[string](t)(api.Login(ctx, must[*Device](t)(alice.Device())))
	deadline := time.Now().Add(10 * time.Second)
	for usage().Blobs != before.Blobs && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if u := usage(); u.Blobs != before.Blobs || u.Bytes >= before.Bytes+uint64(len(file)) {
		t.Fatalf("usage after the sweep %+v; before the file %+v: the swept message's attachment is still billed", u, before)
	}
	if _, err := api.GetBlob(ctx, token, server, blob); !hubapi.IsCode(err, wire.CodeNotFound) {
		t.Fatalf("the swept message's blob is still served: %v", err)
	}
}
