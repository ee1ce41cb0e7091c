package httpapi

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"testing"

	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/hub/hubtest"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
	"github.com/guildhall/guildhall/wire"
)

// Finding 12 (the rest): knowing a held blob's ID and size is not enough
// to reference it from another server (the upload must carry its bytes),
// and a wrong upload is refused alike whether or not the hub holds the
// blob, saying nothing of its size; a presigned upload of a held blob is
// not issued.
func TestUploadsProvePossession(t *testing.T) {
	eachProfile(t, func(t *testing.T, profile string) {
		e := newAPIEnv(t, profile, func(c *hub.Config, a *Config) { c.DefaultQuota = storage.Quota{Bytes: 1 << 20} })
		e.Community()
		data := bytes.Repeat([]byte("members only"), 100)
		id := policy.Sum(data)
		if st, we := call(t, "PUT", e.url("/v1/servers/%s/blobs/%s", e.Gen.ID, id), e.login(e.Device("dave")), data, nil); st != http.StatusCreated {
			t.Fatalf("upload: %d %+v", st, we)
		}
		// zed runs a public server of his own on the same hub.
		g, err := policy.NewEvent(policy.IdentitySigner(hubtest.Key("zed")), policy.ID{}, nil, e.Now().UnixMilli(), &policy.Genesis{
			Creators: []policy.PublicKey{policy.KeyOf(hubtest.Key("zed"))}, Policy: policy.ServerPolicy{Name: "zed's", Everyone: policy.PermRead | policy.PermPost, PublicHistory: true}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Hub.PublishEvents(context.Background(), g.ID, [][]byte{g.Raw}); err != nil {
			t.Fatal(err)
		}
		zed := e.login(e.Device("zed"))
		forged := bytes.Repeat([]byte("x"), len(data))
		if st, we := call(t, "PUT", e.url("/v1/servers/%s/blobs/%s", g.ID, id), zed, forged, nil); we == nil || we.Code != wire.CodeBlobMismatch {
			t.Fatalf("an upload of a held blob's ID with other bytes of its size: %d %+v, want blob_mismatch", st, we)
		}
		if st, we := call(t, "GET", e.url("/v1/servers/%s/blobs/%s", g.ID, id), "", nil, nil); we == nil || we.Code != wire.CodeNotFound {
			t.Fatalf("the held blob under zed's server after the forged upload: %d %+v, want not_found", st, we)
		}
		held, heldErr := call(t, "PUT", e.url("/v1/servers/%s/blobs/%s", g.ID, id), zed, []byte{1}, nil)
		unheld, unheldErr := call(t, "PUT", e.url("/v1/servers/%s/blobs/%s", g.ID, policy.Sum([]byte("never uploaded"))), zed, []byte{1}, nil)
		if heldErr == nil || unheldErr == nil || held != unheld || heldErr.Code != unheldErr.Code ||
			bytes.Contains([]byte(heldErr.Message), []byte("1200")) {
			t.Fatalf("1-byte uploads: of a held blob %d %+v, of another %d %+v: want the same refusal, no size", held, heldErr, unheld, unheldErr)
		}
		if st, we := call(t, "PUT", e.url("/v1/servers/%s/blobs/%s", g.ID, id), zed, data, nil); st != http.StatusCreated {
			t.Fatalf("an upload of the held blob's own bytes: %d %+v", st, we)
		}
		if profile == "postgres" {
			other := e.url("/v1/servers/%s/blobs/%s/presign?op=put&size=", e.Gen.ID, id) + strconv.Itoa(len(data))
			if st, we := call(t, "POST", other, e.login(e.Device("carol")), nil, nil); we == nil || we.Code != wire.CodeNotFound {
				t.Fatalf("a presigned upload of a held blob: %d %+v, want not_found", st, we)
			}
		}
	})
}
