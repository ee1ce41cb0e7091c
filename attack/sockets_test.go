package attack

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/guildhall/guildhall/client/clienttest"
	"github.com/guildhall/guildhall/wire"
)

// wsURL is a hub's WebSocket endpoint.
func wsURL(h *clienttest.Hub) string { return "ws" + strings.TrimPrefix(h.URL, "http") + "/v1/ws" }

// dialFrom opens a WebSocket to a hub from a local address (any of
// 127.0.0.0/8 is this machine, and a different source to the hub).
func dialFrom(h *clienttest.Hub, from string) (*websocket.Conn, *http.Response, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return websocket.Dial(dctx, wsURL(h), &websocket.DialOptions{HTTPClient: hc})
}

// scrape returns the value of one series on a hub's admin /metrics.
func scrape(t *testing.T, admin, token, series string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", admin+"/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	t.Fatalf("no series %s on /metrics (status %d)", series, resp.StatusCode)
	return ""
}

// Finding 7. Bound: one source (an address; an IPv6 /64; behind a trusted
// proxy, the client it names) holds at most limits.sockets_per_source
// WebSockets (8 here, 64 by default) of the hub's max_sockets: the next is
// refused with 429 rate_limited and counted in
// guildhall_hub_rate_limited_total{scope="socket_source"}, while another
// source still gets a socket, and the first gets one again once it lets one
// go.
func TestOneSourceCannotHoldEverySocket(t *testing.T) {
	h := clienttest.NewHub(t, "sqlite")
	h.Extra = "limits:\n  sockets_per_source: 8\n"
	h.Start()
	var held []*websocket.Conn
	defer func() {
		for _, c := range held {
			c.CloseNow()
		}
	}()
	for i := range 8 {
		c, _, err := dialFrom(h, "127.0.0.1")
		if err != nil {
			t.Fatalf("socket %d of the source: %v", i+1, err)
		}
		held = append(held, c)
	}
	c, resp, err := dialFrom(h, "127.0.0.1")
	if err == nil {
		c.CloseNow()
		t.Fatal("a 9th WebSocket of one source was accepted")
	}
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a 9th WebSocket of one source: %v (response %+v), want 429", err, resp)
	}
	var we wire.Error
	b, _ := io.ReadAll(resp.Body)
	if wire.Unmarshal(wire.JSON, b, &we); we.Code != wire.CodeRateLimited || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("a 9th WebSocket of one source: %q (Retry-After %q), want rate_limited", b, resp.Header.Get("Retry-After"))
	}
	if got := scrape(t, h.Admin, "", `guildhall_hub_rate_limited_total{scope="socket_source"}`); got != "1" {
		t.Fatalf("refusals counted: %s, want 1", got)
	}
	other, _, err := dialFrom(h, "127.0.0.2")
	if err != nil {
		t.Fatalf("another source was refused while the first held its share: %v", err)
	}
	other.CloseNow()
	held[0].Close(websocket.StatusNormalClosure, "")
	held = held[1:]
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, _, err := dialFrom(h, "127.0.0.1")
		if err == nil {
			held = append(held, c)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the source was refused after closing one of its sockets: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

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
