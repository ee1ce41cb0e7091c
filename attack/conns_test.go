package attack

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/guildhall/guildhall/client/clienttest"
)

// Finding 7 (in part). Bound: one address holding limits.conns_per_source
// connections open (slow bodies, idle sockets) gets no more; the hub stays
// up and serves it again as soon as it lets go.
func TestOneSourceCannotHoldEveryConnection(t *testing.T) {
	h := clienttest.NewHub(t, "sqlite")
	h.Extra = "limits:\n  conns_per_source: 16\n"
	h.Start()
	addr := strings.TrimPrefix(h.URL, "http://")
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 16 { // slow POSTs that never finish their bodies
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c, "POST /v1/envelopes HTTP/1.1\r\nHost: x\r\nContent-Type: application/cbor\r\nContent-Length: 1000000\r\n\r\nab"); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := extra.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || n > 0 || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("a 17th connection of one source was kept open (read %d, %v)", n, err)
	}
	extra.Close()
	held[0].Close()
	held = held[1:]
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(h.URL + "/v1/info")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after one connection closed the source was not served: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
