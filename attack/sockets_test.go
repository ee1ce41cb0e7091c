package attack

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/guildhall/guildhall/client/clienttest"
)

// Finding 14 (c). Bound: with an admin token configured, the admin
// listener's /metrics needs it as a bearer token like every admin route
// (401 unauthenticated without it or with another); /healthz and /readyz
// stay open for probes.
func TestAdminMetricsNeedTheToken(t *testing.T) {
	t.Setenv("GUILDHALL_HUB_ADMIN_TOKEN", "metrics-token-for-the-test")
	h := clienttest.StartHub(t, "sqlite")
	get := func(path, auth string) (int, string) {
		req, _ := http.NewRequest("GET", h.Admin+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, auth := range []string{"", "Bearer wrong", "metrics-token-for-the-test"} {
		if st, body := get("/metrics", auth); st != http.StatusUnauthorized || !strings.Contains(body, `"unauthenticated"`) {
			t.Fatalf("/metrics with Authorization %q: %d %.80s, want 401 unauthenticated", auth, st, body)
		}
	}
	if st, body := get("/metrics", "Bearer metrics-token-for-the-test"); st != http.StatusOK || !strings.Contains(body, "guildhall_hub_websockets ") {
		t.Fatalf("/metrics with the token: %d %.80s", st, body)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if st, body := get(path, ""); st != http.StatusOK {
			t.Fatalf("%s without the token: %d %s, want 200", path, st, body)
		}
	}
}
