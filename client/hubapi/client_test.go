package hubapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/guildhall/guildhall/wire"
)

// A hub's refusal comes back as an Error with the code it sent; an answer
// that is not the API's error form keeps its HTTP status as the code.
func TestRefusals(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/info":
			w.Header().Set("Content-Type", wire.JSON)
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"code":"unavailable","message":"storage is down"}`))
		default:
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("bad gateway\n"))
		}
	}))
	defer srv.Close()
	h := New(srv.URL + "/")
	for _, tc := range []struct {
		name, code string
		call       func() error
	}{
		{"api error", wire.CodeUnavailable, func() error { _, err := h.Info(context.Background()); return err }},
		{"plain status", "http_502", func() error { _, err := NewAdmin(srv.URL, "t").Tenants(context.Background()); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !IsCode(err, tc.code) {
				t.Fatalf("got %v, want code %s", err, tc.code)
			}
		})
	}
}
