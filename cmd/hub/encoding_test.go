package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guildhall/guildhall/wire"
)

// A person with curl reads JSON: a plain GET of /v1/info or of the admin
// API (no Accept, no body) is answered in JSON. A request that asks for
// CBOR (Accept), or sends it (Content-Type, as the reference client does on
// every request), is answered in CBOR (docs/API.md, "Encodings").
func TestPlainRequestsGetJSON(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hub.yaml")
	cfg := fmt.Sprintf("data_dir: %s\nlisten: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\n", dir)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	_, api, admin, _ := startHubBinary(t, path)
	for _, tc := range []struct {
		url, accept, contentType, want string
	}{
		{api + "/v1/info", "", "", wire.JSON},
		{api + "/v1/info", "*/*", "", wire.JSON}, // what curl sends
		{admin + "/v1/admin/tenants", "", "", wire.JSON},
		{admin + "/v1/admin/usage", "", "", wire.JSON},
		{api + "/v1/info", wire.CBOR, "", wire.CBOR},
		{api + "/v1/info", "", wire.CBOR, wire.CBOR},
		{admin + "/v1/admin/tenants", "", wire.CBOR, wire.CBOR},
		{api + "/v1/info", wire.JSON, wire.CBOR, wire.JSON}, // Accept decides
	} {
		req, _ := http.NewRequest("GET", tc.url, nil)
		if tc.accept != "" {
			req.Header.Set("Accept", tc.accept)
		}
		if tc.contentType != "" {
			req.Header.Set("Content-Type", tc.contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || got != tc.want {
			t.Errorf("GET %s (Accept %q, Content-Type %q): %d %s, want %s: %q", tc.url, tc.accept, tc.contentType, resp.StatusCode, got, tc.want, b)
			continue
		}
		var v any = &wire.Info{}
		if strings.Contains(tc.url, "/admin/") {
			v = &wire.Tenants{}
		}
		if err := wire.Unmarshal(tc.want, b, v); err != nil {
			t.Errorf("GET %s: the %s body does not decode: %v", tc.url, tc.want, err)
		}
	}
}
