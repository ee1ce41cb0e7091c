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

// Finding 7 (in part). Bound: a body that trickles in is cut off after
// limits.body_timeout (1 s here, 30 s by default) plus its declared length
// at 64 KiB/s.
func TestSlowBodiesAreCutOff(t *testing.T) {
	h := clienttest.NewHub(t, "sqlite")
	h.Extra = "limits:\n  body_timeout: 1s\n"
	h.Start()
	c, err := net.Dial("tcp", strings.TrimPrefix(h.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "POST /v1/envelopes HTTP/1.1\r\nHost: x\r\nContent-Type: application/cbor\r\nContent-Length: 100\r\n\r\nab"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.SetReadDeadline(start.Add(60 * time.Second))
	_, err = io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("a body that never arrived held the connection for a minute")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("a trickling body was cut off after %v, want about 1 s", took)
	}
}
