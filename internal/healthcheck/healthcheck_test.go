package healthcheck

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestProbe(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ok.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer bad.Close()
	if err := Probe(ok.URL); err != nil {
		t.Fatal(err)
	}
	if err := Probe(bad.URL); err == nil {
		t.Fatal("a 503 passed")
	}
	if err := Probe("http://127.0.0.1:1/"); err == nil {
		t.Fatal("nothing listening passed")
	}
}
