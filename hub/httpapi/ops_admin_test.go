package httpapi

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
	"github.com/guildhall/guildhall/wire"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// PATCH /v1/admin/tenants/{server} in plain JSON changes only the limits
// its body names; a missing tenant is not_found. A post over quota tells
// the member the limit in words and logs the backend's at Info.
func TestQuotaPatchAndQuotaMessages(t *testing.T) {
	var logs syncBuffer
	e := newAPIEnv(t, "sqlite", func(_ *hub.Config, c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	e.Community()
	server := e.Gen.ID.String()
	patch := func(path, body string) (int, string) {
		req, _ := http.NewRequest("PATCH", e.admin.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", wire.JSON)
		req.Header.Set("Authorization", "Bearer admin-secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if err := e.Store.PutTenant(t.Context(), e.Gen.ID, storage.Quota{Bytes: 50 << 30, Envelopes: 1000}); err != nil {
		t.Fatal(err)
	}
	if st, b := patch("/v1/admin/tenants/"+server, `{"blobs": 5}`); st != 200 || !strings.Contains(b, `"quota":{"bytes":53687091200,"envelopes":1000,"blobs":5}`) {
		t.Fatalf("PATCH blobs: %d %s", st, b)
	}
	if st, b := patch("/v1/admin/tenants/"+server, `{"envelopes": 0, "bytes": 1}`); st != 200 || !strings.Contains(b, `"quota":{"bytes":1,"envelopes":0,"blobs":5}`) {
		t.Fatalf("PATCH bytes and envelopes: %d %s", st, b)
	}
	if st, b := patch("/v1/admin/tenants/"+policy.Sum([]byte("nobody")).String(), `{"blobs": 5}`); st != 404 || !strings.Contains(b, "not_found") {
		t.Fatalf("PATCH of no tenant: %d %s", st, b)
	}
	if st, b := patch("/v1/admin/tenants/"+server, `{"blobz": 5}`); st != 400 || !strings.Contains(b, "malformed") {
		t.Fatalf("PATCH with an unknown field: %d %s", st, b)
	}

	res := e.postHTTP(e.envelopeBy(e.Device("dave"), e.General, 100))
	host := strings.TrimPrefix(e.srv.URL, "http://")
	if res[0].Error == nil || res[0].Error.Code != wire.CodeQuotaExceeded ||
		!strings.HasPrefix(res[0].Error.Message, "this server's storage on hub "+host+" is full (bytes: limit 1, used ") ||
		strings.Contains(res[0].Error.Message, "storage:") || strings.Contains(res[0].Error.Message, "sqlite") {
		t.Fatalf("a post over quota: %+v", res[0].Error)
	}
	if !strings.Contains(logs.String(), "storage: quota exceeded: bytes limit 1") {
		t.Fatalf("the hub's log lacks the details: %s", logs.String())
	}
}
