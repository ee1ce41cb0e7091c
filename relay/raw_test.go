package relay

import (
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// rawClient speaks TURN by hand over UDP, TCP or TLS, for requests pion's client
// does not make (address families, lifetimes, bogus nonces).
type rawClient struct {
	t                 *testing.T
	conn              net.Conn
	stream            bool
	user, pass, realm string
	nonce             string
}

// dialRaw connects from local (a loopback address, "" for any) to r over
// UDP, TCP or TLS.
func dialRaw(t *testing.T, r *testRelay, network, local, user, pass string) *rawClient {
	t.Helper()
	d := net.Dialer{}
	if local != "" {
		if network == "udp" {
			d.LocalAddr = &net.UDPAddr{IP: net.ParseIP(local)}
		} else {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
		}
	}
	var c net.Conn
	var err error
	if network == "tls" {
		c, err = tls.DialWithDialer(&d, "tcp4", "127.0.0.1:"+strconv.Itoa(r.tlsPort), &tls.Config{InsecureSkipVerify: true})
	} else {
		c, err = d.Dial(network+"4", "127.0.0.1:"+strconv.Itoa(r.port))
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, conn: c, stream: network != "udp", user: user, pass: pass, realm: "guildhall"}
}

func (c *rawClient) send(m *stun.Message) {
	c.t.Helper()
	if _, err := c.conn.Write(m.Raw); err != nil {
		c.t.Fatal(err)
	}
}

// frame returns the next STUN message or ChannelData message as it came
// (over a stream: one frame, its padding included), or nil after the timeout.
func (c *rawClient) frame(timeout time.Duration) []byte {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 1<<17)
	if !c.stream {
		n, err := c.conn.Read(buf)
		if err != nil {
			return nil
		}
		return buf[:n]
	}
	if _, err := io.ReadFull(c.conn, buf[:4]); err != nil {
		return nil
	}
	n := int(binary.BigEndian.Uint16(buf[2:4]))
	if buf[0]&0xc0 == 0 { // STUN: a 20-byte header
		n += 16
	} else { // ChannelData: padded to four bytes over a stream
		n = (n + 3) &^ 3
	}
	if _, err := io.ReadFull(c.conn, buf[4:4+n]); err != nil {
		return nil
	}
	return buf[:4+n]
}

// read returns the next message, or nil after the timeout.
func (c *rawClient) read(timeout time.Duration) *stun.Message {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 1600)
	var raw []byte
	if c.stream {
		if _, err := io.ReadFull(c.conn, buf[:20]); err != nil {
			return nil
		}
		n := int(binary.BigEndian.Uint16(buf[2:4]))
		if _, err := io.ReadFull(c.conn, buf[20:20+n]); err != nil {
			return nil
		}
		raw = buf[:20+n]
	} else {
		n, err := c.conn.Read(buf)
		if err != nil {
			return nil
		}
		raw = buf[:n]
	}
	m := &stun.Message{Raw: append([]byte(nil), raw...)}
	if err := m.Decode(); err != nil {
		c.t.Fatalf("a reply that does not decode: %v", err)
	}
	return m
}

// request sends an authenticated request (after a 401 round for the nonce
// if there is none yet) and returns the answer's error code (0: success)
// and the answer.
func (c *rawClient) request(method stun.Method, attrs ...stun.Setter) (int, *stun.Message) {
	c.t.Helper()
	for range 2 {
		setters := []stun.Setter{stun.TransactionID, stun.NewType(method, stun.ClassRequest)}
		setters = append(setters, attrs...)
		if c.nonce != "" {
			setters = append(setters, stun.NewUsername(c.user), stun.NewRealm(c.realm), stun.NewNonce(c.nonce),
				stun.NewLongTermIntegrity(c.user, c.realm, c.pass))
		}
		setters = append(setters, stun.Fingerprint)
		c.send(stun.MustBuild(setters...))
		m := c.read(2 * time.Second)
		if m == nil {
			return -1, nil
		}
		if m.Type.Class == stun.ClassSuccessResponse {
			return 0, m
		}
		var code stun.ErrorCodeAttribute
		if err := code.GetFrom(m); err != nil {
			c.t.Fatalf("an error answer without a code: %v", m)
		}
		var nonce stun.Nonce
		if (code.Code == stun.CodeUnauthorized || code.Code == stun.CodeStaleNonce) && nonce.GetFrom(m) == nil && c.nonce == "" {
			c.nonce = nonce.String()
			continue
		}
		return int(code.Code), m
	}
	return -1, nil
}

// transport is REQUESTED-TRANSPORT for UDP (17) or TCP (6).
func transport(proto byte) stun.Setter {
	return stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{proto, 0, 0, 0}}
}

func family(f byte) stun.Setter {
	return stun.RawAttribute{Type: stun.AttrRequestedAddressFamily, Value: []byte{f, 0, 0, 0}}
}

func lifetime(d time.Duration) stun.Setter {
	return stun.RawAttribute{Type: stun.AttrLifetime, Value: binary.BigEndian.AppendUint32(nil, uint32(d/time.Second))}
}

func lifetimeOf(t *testing.T, m *stun.Message) time.Duration {
	t.Helper()
	v, err := m.Get(stun.AttrLifetime)
	if err != nil || len(v) != 4 {
		t.Fatalf("no LIFETIME in %v", m)
	}
	return time.Duration(binary.BigEndian.Uint32(v)) * time.Second
}

func peerAddr(ip string, port int) stun.Setter {
	return setterFunc(func(m *stun.Message) error {
		return stun.XORMappedAddress{IP: net.ParseIP(ip), Port: port}.AddToAs(m, stun.AttrXORPeerAddress)
	})
}

type setterFunc func(*stun.Message) error

func (f setterFunc) AddTo(m *stun.Message) error { return f(m) }

func (c *rawClient) String() string { return fmt.Sprintf("%s client", c.conn.LocalAddr().Network()) }
